"""Which account keys a rotation rotates (containment.plan.keys.keys_named): the keys the
decision's findings on the account name, their union; both where one names none."""
from __future__ import annotations

import pytest

from containment.core.ids import parse_resource_id
from containment.plan.action import State
from containment.plan.keys import keys_named, keys_to_rotate

ACCOUNT = "/subscriptions/0b1f6471-1bf0-4dda-aec3-111122223333/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/synthtrain01"
OTHER = ACCOUNT.replace("synthtrain01", "synthtrain02")


def finding(*keys: str, on: str = ACCOUNT, evidence: dict | None = None) -> dict:
    return {"rule": "r", "resource_id": on, "evidence": {"keys": list(keys)} if evidence is None else evidence}


@pytest.mark.parametrize("findings, rotated", [
    ([finding("key1")], ("key1",)),
    ([finding("key2"), finding("key2")], ("key2",)),
    ([finding("key2"), finding("key1")], ("key1", "key2")),
    ([finding("key1"), finding()], ("key1", "key2")),  # one finding on it names none: unknown
    ([finding("key1"), finding(evidence={})], ("key1", "key2")),
    ([finding("key3")], ("key1", "key2")),  # no account key: names none
    ([finding("key1"), finding(on=OTHER)], ("key1",)),  # another account's findings do not count
    ([finding("key1", on=OTHER)], ("key1", "key2")),  # none on this account (break-glass): both
    ([], ("key1", "key2")),
])
def test_the_keys_named_by_the_findings_on_the_account(findings, rotated):
    assert keys_named(findings, ACCOUNT.lower()) == rotated


def test_one_incident_rotates_a_key_once_and_still_rotates_the_other_when_it_leaks_later():
    """within_incident drops a rotation an earlier decision of the incident planned, unless
    the earlier one did not take the key these findings name: key1 rotated for one SAS does
    not rotate the key2 a later SAS was signed with."""
    from containment.core.findings import Finding
    from containment.core.records import DecisionRecord
    from containment.plan.decisions import decide, within_incident
    from tests.helpers.settings import load_settings

    settings = load_settings({"CONTAINMENT_MODE": "enforce"})
    step = {"action": "rotate_account_keys", "target": ACCOUNT}
    earlier = DecisionRecord(key="w1", resource_id=ACCOUNT, outcome="contained", mode="enforce", reason="",
                             awaiting_approval=[step], findings=[finding("key1")])

    def later(*keys: str):
        found = Finding("egress_key_or_sas_from_untrusted_network", "critical", ACCOUNT, "s", {"keys": list(keys)})
        return within_incident(decide([found], settings), [earlier])

    assert "rotate_account_keys" not in [s.action for s in later("key1").plan + later("key1").awaiting]
    assert "rotate_account_keys" in [s.action for s in later("key2").awaiting]
    assert "rotate_account_keys" in [s.action for s in later().awaiting]  # names none: both, key2 not yet taken


def test_a_rotation_keeps_on_its_step_only_the_keys_an_earlier_decision_did_not_take():
    """key1 taken by an earlier decision of the incident; a listing names key1 and key2: the
    step carries key2 alone, and the reason says what was already done."""
    from dataclasses import replace

    from containment.core.findings import Finding
    from containment.core.records import DecisionRecord, PlannedAction
    from containment.plan.decisions import decide, within_incident
    from tests.helpers.settings import load_settings

    settings = load_settings({"CONTAINMENT_MODE": "enforce"})
    step = {"action": "rotate_account_keys", "target": ACCOUNT}
    earlier = DecisionRecord(key="w1", resource_id=ACCOUNT, outcome="contained", mode="enforce", reason="",
                             plan=[step], findings=[finding("key1")], contained_at="2026-11-24T10:30:00.000000Z")
    listed = Finding("storage_keys_listed_by_unallowed_principal", "high", ACCOUNT, "s",
                     {"keys": ["key1", "key2"], "eventTime": "2026-11-24T10:00:00.000000Z"})
    decision = within_incident(decide([listed], settings), [earlier])
    assert decision.awaiting == (PlannedAction("rotate_account_keys", ACCOUNT, ("key2",)),)
    assert decision.plan == decision.awaiting and decision.outcome == "pending-approval"
    assert "already done in this incident by decision w1: rotate_account_keys of all but key2" in decision.reason
    # A rotation carried out before these keys were listed took the keys that were, not these.
    before = DecisionRecord(key="w0", resource_id=ACCOUNT, outcome="contained", mode="enforce", reason="",
                            plan=[step], findings=[finding("key1")], contained_at="2026-11-24T09:00:00.000000Z")
    assert within_incident(decide([listed], settings), [before]).awaiting == (
        PlannedAction("rotate_account_keys", ACCOUNT),)
    # Likewise reads in an egress window that began after it: the new key1 is in use.
    reads = Finding("egress_key_or_sas_from_untrusted_network", "critical", ACCOUNT, "s",
                    {"keys": ["key1"], "start": "2026-11-24T09:05:00.000000Z", "end": "2026-11-24T09:10:00.000000Z"})
    assert "rotate_account_keys" in [s.action for s in within_incident(decide([reads], settings), [before]).awaiting]
    assert "rotate_account_keys" not in [s.action for s in within_incident(decide([reads], settings), [
        replace(before, contained_at="2026-11-24T09:06:00.000000Z")]).awaiting]


def rotation_state(created, **facts) -> State:
    return State({"id": ACCOUNT, "properties": {"keyCreationTime": created}},
                 {"target": parse_resource_id(ACCOUNT), "findings": [finding("key1", "key2")], **facts})


def test_the_keys_rotated_are_those_the_step_carries_created_before_the_exposure():
    created = {"key1": "2026-11-24T11:00:00.0000000Z", "key2": "2026-06-01T08:00:00.0000000Z"}
    assert keys_to_rotate(rotation_state(created, exposed_at="2026-11-24T10:00:00.000000Z")) == ["key2"]
    assert keys_to_rotate(rotation_state(created, exposed_at="2026-11-24T12:00:00.000000Z")) == ["key1", "key2"]
    assert keys_to_rotate(rotation_state(created, exposed_at="2026-11-24T12:00:00.000000Z", keys=("key1",))) == [
        "key1"]


@pytest.mark.parametrize("created", ["2026-06-01T08:00:00Z", ["key1"], 7])
def test_key_creation_times_that_are_not_an_object_rotate_every_named_key(created):
    assert keys_to_rotate(rotation_state(created, exposed_at="2026-11-24T10:00:00.000000Z")) == ["key1", "key2"]
