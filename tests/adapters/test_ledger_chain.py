"""Every record the ledger writes takes a place in an evidence chain: its entity carries its
sequence, the previous record's hash and its own, and the chain verifies, however many
instances write at once, when a final record replaces a provisional one, and when a record
keeps its evidence in a blob. Real Azurite, real Table and Blob clients."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from functools import partial

import pytest

from containment.adapters.ledger import (GENESIS, HEAD, RECORD_HASH, entry_row, record_hash, resource_partition,
                                         superseded_row)
from containment.core.records import DecisionRecord
from containment.record.verify import verify
from tests.helpers import arm_bodies as b
from tests.helpers.concurrency import at_once
from tests.helpers.table_limits import every_entity_fits

ACCOUNT = b.storage_account()
TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def record(key: str, resource_id: str = ACCOUNT["id"], **fields) -> DecisionRecord:
    return DecisionRecord(key=key, resource_id=resource_id, outcome=fields.pop("outcome", "reported"), mode="enforce",
                          reason=fields.pop("reason", "test"), decided_at=fields.pop("decided_at", "2026-11-24T12:00:00Z"),
                          **fields)


def verified(ledger) -> list:
    """What verify finds wrong in everything written today."""
    return verify(ledger, TODAY, TODAY + timedelta(days=1)).ordered()


@pytest.fixture(autouse=True)
def one_chain(monkeypatch):
    """Every writer keeps to chain 0, as writers that chose the same chain do: they contend for its head."""
    from containment.adapters import ledger

    monkeypatch.setattr(ledger, "_any_chain", lambda: 0)


def numbered(count: int, prefix: str) -> list[str]:
    return [f"{prefix}-{n}" for n in range(count)]


def another_instance(app):
    """A second instance of the app on the same storage: its own clients, its own ledger."""
    from containment.adapters.runtime import Runtime

    return Runtime(app.runtime.settings).ledger


def entity(ledger, resource_id: str, key: str) -> dict:
    return ledger.table.get_entity(resource_partition(resource_id), key)


def test_each_record_names_its_place_the_previous_hash_and_its_own(app):
    ledger = app.runtime.ledger
    first, second = numbered(2, "placed")
    ledger.write(record(first))
    ledger.write(record(second, outcome="compliant"))
    one, two = entity(ledger, ACCOUNT["id"], first), entity(ledger, ACCOUNT["id"], second)
    assert (one["chain"], one["sequence"], one["previous_hash"]) == (0, 1, GENESIS)
    assert (two["chain"], two["sequence"], two["previous_hash"]) == (0, 2, one[RECORD_HASH])
    assert one[RECORD_HASH] == record_hash(one) and two[RECORD_HASH] == record_hash(two)
    entry = ledger.chain_entity(0, entry_row(2))
    assert (entry["key"], entry["resource_id"], entry[RECORD_HASH], entry["previous_hash"]) == (
        second, ACCOUNT["id"], two[RECORD_HASH], one[RECORD_HASH])
    head = ledger.chain_entity(0, HEAD)
    assert (head["sequence"], head[RECORD_HASH], head["key"]) == (2, two[RECORD_HASH], second)
    # The by-day copy (what exports read) hashes as its decision does.
    assert record_hash(ledger.day_copy(two["decided_at"], second)) == two[RECORD_HASH]
    assert verified(ledger) == []


def test_the_hash_covers_every_field(app):
    ledger = app.runtime.ledger
    ledger.write(record("covered", reason="public container", actor={"name": "dana"}))
    kept = dict(entity(ledger, ACCOUNT["id"], "covered"))
    for name, value in [("reason", "nothing"), ("actor", '{"name": "eve"}'), ("sequence", 2), ("previous_hash", "1"),
                        ("added", "a field written since")]:
        assert record_hash({**kept, name: value}) != kept[RECORD_HASH], name
    assert record_hash({**kept, "PartitionKey": "elsewhere", "RowKey": "x", RECORD_HASH: "y"}) == kept[RECORD_HASH]


def test_a_redelivery_takes_no_place(app):
    ledger = app.runtime.ledger
    assert ledger.write(record("once")) is not None
    assert ledger.write(record("once", outcome="contained")) is None
    assert ledger.chain_entity(0, HEAD)["sequence"] == 1
    assert verified(ledger) == []


class LosesTheRaceOnce:
    """One instance's chain table, through which another instance appends to the same chain
    after this one has read the head and written its record, just before it appends."""

    def __init__(self, chains, meanwhile):
        self._chains, self._meanwhile, self.appends = chains, meanwhile, 0

    def __getattr__(self, name):
        return getattr(self._chains, name)

    def submit_transaction(self, operations, **options):
        self.appends += 1
        if self.appends == 1:
            self._meanwhile()
        return self._chains.submit_transaction(operations, **options)


def test_an_instance_that_loses_the_place_takes_the_next_one(app):
    slow, fast = app.runtime.ledger, another_instance(app)
    slow_key, fast_key = numbered(2, "race")
    raced = LosesTheRaceOnce(slow.chains, lambda: fast.write(record(fast_key)))
    slow.chains = raced
    written = slow.write(record(slow_key, outcome="contained"))
    assert written is not None and raced.appends == 2  # its first append lost
    first, second = entity(slow, ACCOUNT["id"], fast_key), entity(slow, ACCOUNT["id"], slow_key)
    assert (first["sequence"], second["sequence"]) == (1, 2)
    assert second["previous_hash"] == first[RECORD_HASH] and second[RECORD_HASH] == record_hash(second)
    assert record_hash(slow.day_copy(second["decided_at"], slow_key)) == second[RECORD_HASH]
    assert slow.find(ACCOUNT["id"], slow_key) == written
    assert verified(slow) == []


class CountsHeadReads:
    """One instance's chain table, counting how often the head of a chain is read."""

    def __init__(self, chains):
        self._chains, self.head_reads = chains, 0

    def __getattr__(self, name):
        return getattr(self._chains, name)

    def get_entity(self, partition, row, **options):
        self.head_reads += row == HEAD
        return self._chains.get_entity(partition, row, **options)


def test_an_instance_appends_after_its_own_without_reading_the_head(app):
    ledger = app.runtime.ledger
    counted = ledger.chains = CountsHeadReads(ledger.chains)
    keys = numbered(3, "kept")
    for key in keys:
        ledger.write(record(key))
    assert counted.head_reads == 1  # the first record's; each later one takes the head its predecessor moved
    assert [entity(ledger, ACCOUNT["id"], key)["sequence"] for key in keys] == [1, 2, 3]
    assert verified(ledger) == []


def test_a_head_another_instance_moved_since_costs_one_read_and_the_chain_still_verifies(app):
    mine, theirs = app.runtime.ledger, another_instance(app)
    counted = mine.chains = CountsHeadReads(mine.chains)
    first, between, last = numbered(3, "stale")
    mine.write(record(first))
    theirs.write(record(between))  # the head this instance keeps is stale now
    written = mine.write(record(last, outcome="contained"))
    assert written is not None and mine.find(ACCOUNT["id"], last) == written
    assert counted.head_reads == 2  # the first record's, and once its kept head failed the transaction
    assert [entity(mine, ACCOUNT["id"], key)["sequence"] for key in (first, between, last)] == [1, 2, 3]
    assert record_hash(mine.day_copy(written.decided_at, last)) == entity(mine, ACCOUNT["id"], last)[RECORD_HASH]
    assert verified(mine) == []


def test_a_writer_that_finds_another_in_its_chain_moves_to_another_chain(app, monkeypatch):
    from containment.adapters import ledger as module

    chosen = iter([3, 3, 5])  # both instances choose chain 3; the first to lose a race there moves to 5
    monkeypatch.setattr(module, "_any_chain", lambda: next(chosen))
    mine, theirs = app.runtime.ledger, another_instance(app)
    first, between, lost, moved = numbered(4, "moving")
    mine.write(record(first))
    theirs.write(record(between))
    mine.write(record(lost))  # its kept head is stale: it loses the place, takes the next one, and moves on
    mine.write(record(moved))
    assert [(entity(mine, ACCOUNT["id"], key)["chain"], entity(mine, ACCOUNT["id"], key)["sequence"])
            for key in (first, between, lost, moved)] == [(3, 1), (3, 2), (3, 3), (5, 1)]
    assert verified(mine) == []


def test_two_instances_writing_at_once_build_one_chain_that_verifies(app):
    ledgers = [app.runtime.ledger, another_instance(app)]
    keys = numbered(40, "storm")

    def write(ledger, mine):
        for key in mine:
            assert ledger.write(record(key)) is not None

    at_once(*(partial(write, ledger, keys[n::2]) for n, ledger in enumerate(ledgers)))
    places = sorted((e["sequence"], e["key"]) for e in ledgers[0].chain_entries(0, "0", "9" * 20))
    assert [sequence for sequence, _ in places] == list(range(1, 41))
    assert sorted(key for _, key in places) == sorted(keys)
    assert all(entity(ledgers[0], ACCOUNT["id"], key)["sequence"] == sequence for sequence, key in places)
    assert verified(ledgers[0]) == []


def test_a_final_record_that_replaces_a_provisional_one_names_it_and_the_chain_verifies(app):
    ledger = app.runtime.ledger
    failure = ledger.write(record("retried", outcome="failed", reason="reading the resource failed"), provisional=True)
    provisional = dict(entity(ledger, ACCOUNT["id"], "retried"))
    chain = provisional["chain"]
    final = ledger.write(record("retried", outcome="contained"))
    assert failure is not None and final is not None
    replaced = entity(ledger, ACCOUNT["id"], "retried")
    assert (replaced["sequence"], replaced["supersedes"], replaced["previous_hash"]) == (
        2, 1, provisional[RECORD_HASH])
    assert "provisional" not in replaced and ledger.find(ACCOUNT["id"], "retried") == final
    kept = ledger.chain_entity(chain, superseded_row(1))
    assert {k: v for k, v in kept.items() if k not in ("PartitionKey", "RowKey")} == {
        k: v for k, v in provisional.items() if k not in ("PartitionKey", "RowKey")}
    assert verified(ledger) == []
    # The provisional record is evidence too: changing what was kept of it shows.
    ledger.chains.update_entity({"PartitionKey": kept["PartitionKey"], "RowKey": kept["RowKey"],
                                 "reason": "nothing failed"}, mode="merge")
    [mismatch] = verified(ledger)
    assert (mismatch.what, mismatch.key, mismatch.sequence) == ("hash mismatch", "retried", 1)


def test_a_final_record_written_by_a_writer_of_another_chain_lands_in_the_provisional_ones(app, monkeypatch):
    from containment.adapters import ledger as module

    chosen = iter([2, 7])
    monkeypatch.setattr(module, "_any_chain", lambda: next(chosen))
    failing, succeeding = app.runtime.ledger, another_instance(app)
    failing.write(record("elsewhere", outcome="failed", reason="reading the resource failed"), provisional=True)
    assert succeeding.write(record("elsewhere", outcome="contained")) is not None
    replaced = entity(succeeding, ACCOUNT["id"], "elsewhere")
    assert (replaced["chain"], replaced["sequence"], replaced["supersedes"]) == (2, 2, 1)
    assert succeeding.chain_entity(7, HEAD) is None
    assert verified(succeeding) == []


def test_a_record_whose_evidence_is_in_a_blob_is_chained_with_the_blobs_digest(app):
    ledger = app.runtime.ledger
    nsg = b.nsg(rules=[b.security_rule(f"allow-training-{n:04d}", 100 + n, source=f"10.20.{n // 250}.{n % 250}/32")
                       for n in range(1000)])
    written = ledger.write(record("thousand-rules", nsg["id"], before={nsg["id"]: nsg}))
    kept = entity(ledger, nsg["id"], "thousand-rules")
    assert "evidence_sha256" in kept and kept[RECORD_HASH] == record_hash(kept)
    assert verified(ledger) == []
    every_entity_fits(ledger.table)
    every_entity_fits(ledger.chains)
    # Other evidence in a blob of its own, and the entity pointed at it: the record still
    # reads (its blob matches the digest it names), but the chain does not vouch for it.
    other = ledger.evidence.download_blob(kept["evidence_blob"]).readall().replace(b'"Allow"', b'"Deny"', 1)
    digest = hashlib.sha256(other).hexdigest()
    ledger.evidence.upload_blob(f"thousand-rules/{digest}.json", other)
    ledger.table.update_entity({"PartitionKey": kept["PartitionKey"], "RowKey": kept["RowKey"],
                                "evidence_blob": f"thousand-rules/{digest}.json", "evidence_sha256": digest},
                               mode="merge")
    assert ledger.find(nsg["id"], "thousand-rules") != written
    [mismatch] = verified(ledger)
    assert (mismatch.what, mismatch.key, mismatch.resource_id) == ("hash mismatch", "thousand-rules", nsg["id"])
    assert "evidence_sha256" in mismatch.detail and kept["evidence_sha256"] in mismatch.detail


def test_a_head_deleted_or_set_back_by_hand_does_not_stop_the_chain(app):
    ledger = app.runtime.ledger
    keys = numbered(4, "headless")
    for key in keys[:2]:
        ledger.write(record(key))
    head = ledger.chain_entity(0, HEAD)
    ledger.chains.update_entity({**head, "sequence": 1}, mode="merge")  # set back behind its chain
    [mismatch] = verified(ledger)
    assert (mismatch.what, mismatch.chain, mismatch.sequence) == ("head not matching its chain", 0, 1)
    ledger.write(record(keys[2]))
    ledger.chains.delete_entity(head["PartitionKey"], HEAD)
    ledger.write(record(keys[3]))
    assert [entity(ledger, ACCOUNT["id"], key)["sequence"] for key in keys] == [1, 2, 3, 4]
    assert ledger.chain_entity(0, HEAD)["sequence"] == 4
    assert verified(ledger) == []


def test_a_chain_table_storage_lost_is_made_again_and_what_it_held_is_named(app):
    ledger = app.runtime.ledger
    before, after = numbered(2, "lost")
    ledger.write(record(before))
    ledger.chains.delete_table()  # an account restored, Azurite restarted, a table deleted by hand
    ledger.write(record(after))
    assert entity(ledger, ACCOUNT["id"], after)["sequence"] == 1
    [mismatch] = verified(ledger)
    assert (mismatch.what, mismatch.key) == ("not in a chain", before)
