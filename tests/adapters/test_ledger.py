"""The ledger keeps every record whole, whatever its size: what a Table entity cannot hold
is kept in a blob named by the decision and its SHA-256, and read back with the record.
Real Azurite; every entity written is held to Azure's limits (tests/helpers/table_limits.py)."""
from __future__ import annotations

import hashlib
import json

import pytest

from containment.core.records import DecisionRecord
from tests.helpers import arm_bodies as b
from tests.helpers.table_limits import every_entity_fits

DECIDED = "2026-11-24T12:00:00Z"


def big_nsg(rules: int = 1000) -> dict:
    return b.nsg(rules=[b.security_rule(f"allow-training-{n:04d}", 100 + n, source=f"10.20.{n // 250}.{n % 250}/32")
                        for n in range(rules)])


def record(key: str, resource_id: str, **fields) -> DecisionRecord:
    return DecisionRecord(key=key, resource_id=resource_id, outcome=fields.pop("outcome", "reported"),
                          mode="enforce", reason=fields.pop("reason", "test"), decided_at=DECIDED, **fields)


def blob_of(ledger, key: str, resource_id: str) -> tuple[str, bytes, str]:
    from containment.adapters.ledger import resource_partition

    entity = ledger.table.get_entity(resource_partition(resource_id), key)
    name = entity["evidence_blob"]
    return name, ledger.evidence.download_blob(name).readall(), entity["evidence_sha256"]


def test_an_nsg_of_a_thousand_rules_before_and_after_is_read_back_whole_everywhere(app):
    from datetime import datetime

    ledger = app.runtime.ledger
    nsg = big_nsg()
    after = json.loads(json.dumps(nsg))
    after["properties"]["securityRules"][0]["properties"]["access"] = "Deny"
    assert len(json.dumps(nsg)) > 300_000  # twice over, in UTF-16, more than an entity holds
    held = record("nsg-thousand", nsg["id"], outcome="pending-approval", before={nsg["id"]: nsg},
                  after={nsg["id"]: after}, awaiting_approval=[{"action": "block_untrusted_inbound",
                                                                "target": nsg["id"]}])
    written = ledger.write(held)
    assert ledger.find(nsg["id"], "nsg-thousand") == written
    assert list(ledger.for_resource(nsg["id"])) == [written]
    assert ledger.decisions() == [written]
    assert list(ledger.for_day(datetime.fromisoformat("2026-11-24T00:00:00+00:00"))) == [written]  # the by-day index
    assert [p["key"] for p in ledger.pending()] == ["nsg-thousand"]
    name, content, digest = blob_of(ledger, "nsg-thousand", nsg["id"])
    assert name == f"nsg-thousand/{digest}.json" and hashlib.sha256(content).hexdigest() == digest
    assert set(json.loads(content)) >= {"before", "after"}
    assert every_entity_fits(ledger.table) == 3  # the decision, its by-day copy, the pending entry


def test_a_claim_carries_an_oversized_decision_whole(app):
    ledger = app.runtime.ledger
    nsg = big_nsg()
    decision = record("claimed-thousand", nsg["id"], outcome="contain", before={nsg["id"]: nsg},
                      plan=[{"action": "block_untrusted_inbound", "target": nsg["id"]}])
    fresh, claim = ledger.claim(decision)
    assert fresh and ledger.get_claim("claimed-thousand", nsg["id"]).decision == decision
    moved = ledger.move_claim(claim, "acting", "instance-1")
    assert ledger.get_claim("claimed-thousand", nsg["id"]).decision == decision and moved.state == "acting"
    every_entity_fits(ledger.table)


@pytest.mark.parametrize("text", ["\N{PILE OF POO}" * 20_000, "\u00e9" * 40_000, "x" * 600_000],
                         ids=["astral: 20K characters, 40K UTF-16", "40K accented", "600K ASCII"])
def test_text_of_any_script_and_length_fits(app, text):
    """Table Storage counts strings in UTF-16: an astral character is two of its 32K."""
    ledger = app.runtime.ledger
    account = b.storage_account()
    written = ledger.write(record("long-text", account["id"], reason=text, actor={"name": text}))
    assert ledger.find(account["id"], "long-text") == written
    every_entity_fits(ledger.table)


def test_a_small_record_keeps_everything_in_its_entity(app):
    from containment.adapters.ledger import resource_partition

    ledger = app.runtime.ledger
    account = b.storage_account()
    written = ledger.write(record("small", account["id"], before={account["id"]: account}))
    entity = ledger.table.get_entity(resource_partition(account["id"]), "small")
    assert "evidence_blob" not in entity and json.loads(entity["before"]) == {account["id"]: account}
    assert ledger.find(account["id"], "small") == written


def test_evidence_altered_since_it_was_recorded_is_refused(app):
    from containment.adapters.ledger import EvidenceUnreadable

    ledger = app.runtime.ledger
    nsg = big_nsg()
    ledger.write(record("tampered", nsg["id"], before={nsg["id"]: nsg}))
    name, content, _ = blob_of(ledger, "tampered", nsg["id"])
    ledger.evidence.upload_blob(name, content.replace(b'"Allow"', b'"Deny"', 1), overwrite=True)
    with pytest.raises(EvidenceUnreadable, match="does not match the SHA-256"):
        ledger.find(nsg["id"], "tampered")
    ledger.evidence.delete_blob(name)
    with pytest.raises(EvidenceUnreadable, match="is missing"):
        ledger.find(nsg["id"], "tampered")


def test_an_evidence_container_storage_lost_is_made_again(app):
    ledger = app.runtime.ledger
    nsg = big_nsg()
    ledger.write(record("first", nsg["id"], before={nsg["id"]: nsg}))
    ledger.evidence.delete_container()  # an account restored, Azurite restarted
    written = ledger.write(record("second", nsg["id"], before={nsg["id"]: nsg}))
    assert ledger.find(nsg["id"], "second") == written


def test_a_record_a_ledger_wrote_before_evidence_blobs_is_read_whole(app):
    """Earlier versions split a long field over numbered properties: an upgrade keeps them readable."""
    from containment.adapters.ledger import resource_partition

    ledger = app.runtime.ledger
    nsg = big_nsg(120)
    text = json.dumps({nsg["id"]: nsg})
    entity = {"PartitionKey": resource_partition(nsg["id"]), "RowKey": "legacy-1", "key": "legacy-1",
              "resource_id": nsg["id"], "outcome": "contained", "mode": "enforce", "reason": "then",
              "decided_at": DECIDED, "recorded_at": "0" * 20,
              **{("before" if n == 0 else f"before_{n}"): text[n * 30_000:(n + 1) * 30_000]
                 for n in range(-(-len(text) // 30_000))}}
    assert "before_1" in entity
    ledger.table.create_entity(entity)
    assert ledger.find(nsg["id"], "legacy-1").before == {nsg["id"]: nsg}


# -- exemptions and mutes: read at most once per CONTAINMENT_CONTROLS_CACHE_SECONDS per instance ---------
class Queries:
    """A ledger's table, counting its queries; and the ledger's monotonic clock, set by the test."""

    def __init__(self, table):
        self._table, self.sent = table, 0

    def __getattr__(self, name):
        return getattr(self._table, name)

    def query_entities(self, *args, **kwargs):
        self.sent += 1
        return self._table.query_entities(*args, **kwargs)


@pytest.fixture
def seconds(monkeypatch):
    """The ledger's monotonic clock, which the test moves on: [now]."""
    import time
    from types import SimpleNamespace

    from containment.adapters import ledger

    now = [1000.0]
    monkeypatch.setattr(ledger, "time", SimpleNamespace(monotonic=lambda: now[0], time_ns=time.time_ns))
    return now


def exempt(ledger, scope: str) -> None:
    ledger.exempt(scope, "rehearsal", "ml-platform", "2026-12-01T00:00:00.000000Z", "dana", DECIDED)


def test_exemptions_and_mutes_read_within_the_bound_are_not_read_again(app, seconds):
    ledger = app.runtime.ledger
    exempt(ledger, b.RG_ID)
    counted = ledger.table = Queries(ledger.table)
    seconds[0] += 0.1
    assert [e["scope"] for e in ledger.exemptions(10)] == [b.RG_ID]
    seconds[0] += 10
    assert [e["scope"] for e in ledger.exemptions(10)] == [b.RG_ID] and ledger.mutes(10) == []
    assert ledger.mutes(10) == [] and counted.sent == 2  # one read of each
    seconds[0] += 10.5
    ledger.exemptions(10)
    assert counted.sent == 3  # older than the bound: read again
    ledger.exemptions(0)
    ledger.exemptions(0)
    assert counted.sent == 5  # 0: every time


def test_another_instances_change_is_seen_within_the_bound_and_this_ones_at_once(app, seconds):
    from containment.adapters.runtime import Runtime

    mine, theirs = app.runtime.ledger, Runtime(app.runtime.settings).ledger
    exempt(mine, b.RG_ID)
    seconds[0] += 0.1
    assert len(theirs.exemptions(10)) == 1 and len(mine.exemptions(10)) == 1
    mine.remove_exemption(b.RG_ID)
    assert mine.exemptions(10) == []  # the instance that removed it forgets its copy
    seconds[0] += 9
    assert len(theirs.exemptions(10)) == 1  # another instance holds it for the bound at most
    seconds[0] += 1.5
    assert theirs.exemptions(10) == []
    theirs.mute("storage_container_public_access", b.RG_ID, "noisy", "ml-platform", "2026-12-01T00:00:00.000000Z",
                "dana", DECIDED, "mute-1")
    assert mine.mutes(10) != [] and [m["decision"] for m in theirs.mutes(10)] == ["mute-1"]
    assert theirs.remove_mute("storage_container_public_access", b.RG_ID) and theirs.mutes(10) == []
