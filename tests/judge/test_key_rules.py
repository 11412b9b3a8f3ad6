"""The key-access rules (containment.judge.keys): a listing of a protected account's keys, or
of a SAS signed with them, by a principal not on CONTAINMENT_ALLOWED_PRINCIPALS. Every rule
the family declares has a case here."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from containment.core.events import ACTION_SUCCESS, Actor, ArmEvent
from containment.core.ids import parse_resource_id
from containment.judge import keys as family
from containment.judge.keys import LIST_ACCOUNT_SAS, LIST_KEYS, LIST_SERVICE_SAS, key_access
from containment.judge.rule import Context
from containment.judge.scope import Protection
from containment.plan.decisions import decide
from containment.plan.registry import judge
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

ACCOUNT = b.storage_account()
CALLER = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"
APP = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
GRANT = {"role": "Storage Account Contributor", "roleAssignmentScope": f"/subscriptions/{b.SUBSCRIPTION}",
         "roleAssignmentId": "5b1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e"}


def listing(operation: str = LIST_KEYS, caller: str | None = CALLER, **actor) -> dict:
    event = ArmEvent(id="e1", type=ACTION_SUCCESS, time=datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=timezone.utc),
                     operation=operation, resource=parse_resource_id(ACCOUNT["id"]),
                     actor=Actor(object_id=caller, app_id=APP, principal_type="ServicePrincipal", **actor),
                     client_address="198.51.100.23", authorization=GRANT)
    return key_access(event, ACCOUNT["id"])


def findings(access: dict, **settings: str):
    context = Context(load_settings(settings), Protection(tagged=True, protected_scope=None), {"account": ACCOUNT})
    return judge(ACTION_SUCCESS, access, context)


CASES = {"storage_keys_listed_by_unallowed_principal": LIST_KEYS,
         "storage_sas_listed_by_unallowed_principal": LIST_ACCOUNT_SAS}


def test_every_key_rule_has_a_case_here():
    assert {rule.id for rule in family.RULES} == set(CASES)


def test_a_stranger_listing_the_keys_is_a_finding_naming_who_from_where_and_when():
    [found] = findings(listing(name="etl-sandbox"))
    assert (found.rule, found.severity, found.resource_id) == ("storage_keys_listed_by_unallowed_principal", "high",
                                                               ACCOUNT["id"])
    assert found.summary == ("ServicePrincipal etl-sandbox, not on CONTAINMENT_ALLOWED_PRINCIPALS, listed the account "
                             "keys of a protected account from 198.51.100.23 at 2026-11-24T10:00:00.123456Z: both "
                             "keys, key1 and key2, are in their hands")
    assert found.evidence == {
        "operation": LIST_KEYS, "principalId": CALLER, "appId": APP, "principalName": "etl-sandbox",
        "principalType": "ServicePrincipal", "clientIpAddress": "198.51.100.23",
        "eventTime": "2026-11-24T10:00:00.123456Z", **GRANT,
        "keys": ["key1", "key2"], "keys_why": "listKeys returns both account keys, key1 and key2"}


@pytest.mark.parametrize("operation", [LIST_ACCOUNT_SAS, LIST_SERVICE_SAS, LIST_SERVICE_SAS.lower()])
def test_a_sas_listed_names_both_keys_and_why(operation):
    [found] = findings(listing(operation))
    assert found.rule == "storage_sas_listed_by_unallowed_principal" and found.severity == "high"
    assert found.evidence["keys"] == ["key1", "key2"]
    assert "keyToSign is not in the event" in found.evidence["keys_why"]
    kind = "an account SAS" if operation == LIST_ACCOUNT_SAS else "a service SAS"
    assert f"had ARM sign {kind} with an account key" in found.summary


def test_the_allowlisted_pipeline_listing_keys_is_no_finding():
    assert findings(listing(), CONTAINMENT_ALLOWED_PRINCIPALS=CALLER) == []
    assert findings(listing(LIST_ACCOUNT_SAS), CONTAINMENT_ALLOWED_PRINCIPALS=f"{CALLER.upper()}@2099-12-31") == []


def test_an_entry_is_judged_as_it_stood_when_the_keys_were_listed_not_when_the_event_arrived():
    """Listed at 10:00 while the entry held until the end of that day, delivered late, judged
    the day after: allowed. A listing after the entry expired is not."""
    from containment.core import clock

    clock.set_source(lambda: datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc))
    try:
        assert findings(listing(), CONTAINMENT_ALLOWED_PRINCIPALS=f"{CALLER}@2026-11-24") == []
        [found] = findings(listing(), CONTAINMENT_ALLOWED_PRINCIPALS=f"{CALLER}@2026-11-24T09:00:00Z")
        assert found.evidence["allowlist_expired"] == "2026-11-24T09:00:00.000000Z"
    finally:
        clock.set_source(None)


def test_an_expired_allowlist_entry_no_longer_allows_it_and_says_so():
    [found] = findings(listing(), CONTAINMENT_ALLOWED_PRINCIPALS=f"{CALLER}@2020-01-31")
    assert found.evidence["allowlist_expired"] == "2020-02-01T00:00:00.000000Z"


def test_an_unidentified_caller_is_a_finding_all_the_same():
    """Fail closed: an event that names no caller is not an allowed one."""
    [found] = findings(listing(caller=None))
    assert "principalId" not in found.evidence and "ServicePrincipal (unidentified)" in found.summary


def test_another_action_is_no_key_listing():
    assert findings(listing("Microsoft.Storage/storageAccounts/regenerateKey/action")) == []


def test_the_findings_are_rotated_with_approval_by_default():
    """Both rules are in the CONTAINMENT_AUTO_CONTAIN default; their action, rotating the keys,
    is in CONTAINMENT_APPROVAL_ACTIONS: a person approves it, in dry-run or enforce alike."""
    for operation in CASES.values():
        for mode in ("dry-run", "enforce"):
            decision = decide(findings(listing(operation)), load_settings({"CONTAINMENT_MODE": mode}))
            assert decision.outcome == "pending-approval", (operation, mode)
            assert [(s.action, s.target) for s in decision.awaiting] == [("rotate_account_keys", ACCOUNT["id"])]
    decision = decide(findings(listing()), load_settings({"CONTAINMENT_AUTO_CONTAIN": ""}))
    assert decision.outcome == "reported"
