"""`python -m containment verify` walks the evidence chains and the digests, and names the first
record that does not match: one edited in Azurite through the table client, one deleted, a place
deleted from its chain, a link rewritten, a record nobody chained, a chain cut back behind a
digest. Digests are written by the drift sweep and never overwritten."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from containment.adapters.ledger import (HEAD, RECORD_HASH, DigestExists, chain_partition, entry_row,
                                         resource_partition)
from containment.core import clock
from containment.core.records import DecisionRecord
from tests.helpers import arm_bodies as b
from tests.helpers.events import ACCOUNT_WRITE, CONTAINER_WRITE, write_event

ACCOUNT = b.storage_account()
PUBLIC = b.container(ACCOUNT["id"], "training", "Container")
SHARED_KEY = b.storage_account("synthshared01", allowSharedKeyAccess=True)  # reported, not contained
TODAY = f"{datetime.now(timezone.utc):%Y-%m-%d}"


def run_verify(capsys) -> tuple[int, dict, str]:
    """The command as an operator runs it: its exit status, its report, its verdict."""
    from containment.__main__ import main

    status = main(["verify", "--from", TODAY, "--to", TODAY])
    out, err = capsys.readouterr()
    return status, json.loads(out), err


def contain_a_public_container(app, emulator) -> str:
    """The app contains a public container, end to end; the decision's key."""
    emulator.seed([ACCOUNT, PUBLIC, SHARED_KEY])
    app.configure(CONTAINMENT_MODE="enforce")
    event = write_event(PUBLIC["id"], CONTAINER_WRITE)
    app.deliver(event)
    app.drain()
    assert app.runtime.ledger.find(PUBLIC["id"], event["id"]).outcome == "contained"
    return event["id"]


def test_the_ledger_the_app_wrote_verifies_and_an_outcome_changed_in_azurite_is_named(app, emulator, capsys):
    key = contain_a_public_container(app, emulator)
    app.deliver(write_event(SHARED_KEY["id"], ACCOUNT_WRITE))  # a reported record beside it
    status, report, verdict = run_verify(capsys)
    assert status == 0 and report["verified"] and report["records"] == 2, report
    assert "ledger verified" in verdict

    # Someone with write access to the storage account rewrites the outcome of one record.
    ledger = app.runtime.ledger
    ledger.table.update_entity({"PartitionKey": resource_partition(PUBLIC["id"]), "RowKey": key,
                                "outcome": "reported"}, mode="merge")
    status, report, verdict = run_verify(capsys)
    assert status == 1 and not report["verified"]
    assert len(report["mismatches"]) == 1
    first = report["first_mismatch"]
    assert (first["what"], first["key"], first["resource_id"]) == ("hash mismatch", key, PUBLIC["id"])
    assert "outcome: 'contained' when chained, now 'reported'" in first["detail"]
    assert f"the first: hash mismatch: decision {key} on {PUBLIC['id']}" in verdict


def write(ledger, key: str, resource_id: str = ACCOUNT["id"], **fields):
    return ledger.write(DecisionRecord(key=key, resource_id=resource_id, outcome=fields.pop("outcome", "reported"),
                                       mode="enforce", reason="test", decided_at=clock.iso(), **fields))


@pytest.fixture(autouse=True)
def one_chain(monkeypatch):
    """Every writer keeps to chain 0, so the records a test writes are places of one chain."""
    from containment.adapters import ledger

    monkeypatch.setattr(ledger, "_any_chain", lambda: 0)


def in_chain_0(ledger, count: int, prefix: str) -> list[str]:
    """Write `count` records (in chain 0); their keys."""
    keys = [f"{prefix}-{n}" for n in range(count)]
    for key in keys:
        write(ledger, key)
    return keys


def delete_record(ledger, key):
    entity = ledger.table.get_entity(resource_partition(ACCOUNT["id"]), key)
    ledger.table.delete_entity(entity["PartitionKey"], key)
    ledger.table.delete_entity(f"day {entity['decided_at'][:10]}", f"{entity['decided_at']} {key}")


def delete_place(ledger, key):
    sequence = ledger.table.get_entity(resource_partition(ACCOUNT["id"]), key)["sequence"]
    ledger.chains.delete_entity(chain_partition(0), entry_row(sequence))


def rewrite_link(ledger, key):
    sequence = ledger.table.get_entity(resource_partition(ACCOUNT["id"]), key)["sequence"]
    ledger.chains.update_entity({"PartitionKey": chain_partition(0), "RowKey": entry_row(sequence),
                                 "previous_hash": "0" * 64}, mode="merge")


def edit_the_day_copy(ledger, key):
    """What exports read, changed, and the decision itself left alone."""
    entity = ledger.table.get_entity(resource_partition(ACCOUNT["id"]), key)
    ledger.table.update_entity({"PartitionKey": f"day {entity['decided_at'][:10]}",
                                "RowKey": f"{entity['decided_at']} {key}", "outcome": "compliant"}, mode="merge")


def add_a_record(ledger, key):
    """A record copied from a real one under a new key, with its by-day copy: it reads as any other."""
    entity = dict(ledger.table.get_entity(resource_partition(ACCOUNT["id"]), key))
    forged = {**entity, "RowKey": key + "-forged", "key": key + "-forged", "outcome": "compliant"}
    ledger.table.create_entity(forged)
    ledger.table.create_entity({**forged, "PartitionKey": f"day {entity['decided_at'][:10]}",
                                "RowKey": f"{entity['decided_at']} {key}-forged"})
    return key + "-forged"


@pytest.mark.parametrize("tamper, what", [
    (delete_record, "missing record"),
    (delete_place, "missing sequence"),
    (rewrite_link, "broken link"),
    (edit_the_day_copy, "by-day copy differs"),
    (add_a_record, "not in a chain"),
], ids=["a deleted record", "a place deleted from its chain", "a link rewritten", "the copy exports read edited",
        "a record nobody chained"])
def test_each_kind_of_tampering_is_named(app, capsys, tamper, what):
    ledger = app.runtime.ledger
    first, middle, last = in_chain_0(ledger, 3, "tamper")
    assert run_verify(capsys)[0] == 0
    named = tamper(ledger, middle) or middle
    status, report, verdict = run_verify(capsys)
    assert status == 1
    mismatch = report["first_mismatch"]
    assert (mismatch["what"], mismatch["key"], mismatch["resource_id"]) == (what, named, ACCOUNT["id"]), report
    assert verdict.startswith("LEDGER DOES NOT VERIFY") and named in verdict


def cut_back(ledger, keys: list[str]) -> None:
    """An attacker removes the last records of chain 0 consistently: records, copies, places, head."""
    for key in keys:
        delete_place(ledger, key)
        delete_record(ledger, key)
    head = ledger.chain_entity(0, HEAD)
    kept = sorted(ledger.chain_entries(0, "0", "9" * 20), key=lambda e: e["sequence"])[-1]
    ledger.chains.update_entity({**head, "sequence": kept["sequence"], RECORD_HASH: kept[RECORD_HASH],
                                 "key": kept["key"], "recorded_at": kept["recorded_at"]})


def test_a_chain_cut_back_behind_a_digest_is_named_and_after_the_last_digest_it_is_not(app, capsys):
    ledger = app.runtime.ledger
    first, middle, last = in_chain_0(ledger, 3, "tamper")
    ledger.keep_digest(clock.now())
    status, report, _ = run_verify(capsys)
    assert status == 0 and report["not_yet_bounded_by_a_digest"] == []

    later = in_chain_0(ledger, 2, "after-the-digest")
    status, report, verdict = run_verify(capsys)
    assert status == 0 and report["not_yet_bounded_by_a_digest"] == ["chain 0: sequences 4 to 5"]
    # What an attacker can hide: records written after the last digest, removed consistently.
    cut_back(ledger, later)
    assert run_verify(capsys)[0] == 0

    cut_back(ledger, [last])  # ... but not what a digest has seen
    status, report, verdict = run_verify(capsys)
    mismatch = report["first_mismatch"]
    assert status == 1 and (mismatch["what"], mismatch["key"], mismatch["chain"], mismatch["sequence"]) == (
        "head not matching a digest", last, 0, 3)
    assert "no such sequence" in mismatch["detail"]


def test_a_digest_is_never_overwritten(app):
    ledger = app.runtime.ledger
    write(ledger, "before-the-digest")
    at = clock.now()
    name = ledger.keep_digest(at)
    kept = ledger.digest(name)
    assert [head["key"] for head in json.loads(kept)["chains"]] == ["before-the-digest"]
    write(ledger, "after-the-digest")
    with pytest.raises(DigestExists, match="never overwritten"):
        ledger.keep_digest(at)
    assert ledger.digest(name) == kept and ledger.digest_names() == [name]


def test_the_drift_sweep_writes_a_digest_and_one_it_cannot_write_is_a_failed_record(app, emulator):
    import function_app
    from localazure.functions_host import fire_timer

    emulator.seed([ACCOUNT])
    app.configure(CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    ledger = app.runtime.ledger
    write(ledger, "decided-before-the-sweep")
    at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    clock.set_source(lambda: at)
    try:
        assert fire_timer(function_app.app, "drift_sweep").error is None
        [name] = ledger.digest_names()
        assert name == f"{clock.iso(at)[:10]}/{clock.iso(at)}.json"
        assert [h["key"] for h in json.loads(ledger.digest(name))["chains"]] == ["decided-before-the-sweep"]
        assert fire_timer(function_app.app, "drift_sweep").error is None  # the same instant: it is not overwritten
    finally:
        clock.set_source(None)
    assert [h["key"] for h in json.loads(ledger.digest(name))["chains"]] == ["decided-before-the-sweep"]
    [failed] = [r for r in app.records() if r.outcome == "failed"]
    assert failed.key.startswith("sweep-failing-") and "never overwritten" in failed.reason


def test_a_record_moved_out_of_the_period_by_its_time_and_changed_is_named(app, emulator, capsys):
    """The review's attack: change a record, and set its time (and its place's, which no hash
    covers) past the period, so a walk by time would skip it. The walk goes by sequence."""
    key = contain_a_public_container(app, emulator)
    ledger = app.runtime.ledger
    entity = ledger.table.get_entity(resource_partition(PUBLIC["id"]), key)
    chain, sequence = entity["chain"], entity["sequence"]
    later = "0" + "9" * 19
    ledger.table.update_entity({"PartitionKey": resource_partition(PUBLIC["id"]), "RowKey": key,
                                "outcome": "reported", "recorded_at": later}, mode="merge")
    ledger.chains.update_entity({"PartitionKey": chain_partition(chain), "RowKey": entry_row(sequence),
                                 "recorded_at": later}, mode="merge")
    status, report, verdict = run_verify(capsys)
    assert status == 1 and report["first_mismatch"]["key"] == key
    assert report["first_mismatch"]["what"] == "hash mismatch"
