"""Key listings end to end, through the storage_key_access function as the host invokes it,
against the ARM emulator and Azurite."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import azure.functions as func
from azure.functions.eventgrid import EventGridEventInConverter

from containment.core import clock
from tests.helpers import arm_bodies as b
from tests.helpers.events import (LIST_ACCOUNT_SAS, LIST_KEYS, LIST_SERVICE_SAS, SELF, STRANGER_APP, action_event,
                                  write_event)

ACCOUNT = b.storage_account()
UNTAGGED = b.storage_account("scratch01", tags={}, group="rg-scratch")
PIPELINE = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def test_a_stranger_listing_the_keys_of_a_protected_account_holds_the_rotation_for_a_person(app, emulator):
    emulator.seed([ACCOUNT])
    app.configure(CONTAINMENT_MODE="enforce")
    [invocation] = app.deliver(action_event(ACCOUNT["id"], LIST_KEYS))
    assert invocation.function == "storage_key_access" and invocation.error is None
    app.drain()

    [record] = app.records()
    assert (record.outcome, record.actions) == ("pending-approval", ["rotate_account_keys"])
    assert "rotate_account_keys waits for a person (CONTAINMENT_APPROVAL_ACTIONS)" in record.reason
    assert record.rules == ["storage_keys_listed_by_unallowed_principal"]
    assert record.actor == {"object_id": STRANGER_APP, "app_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                            "principal_type": "ServicePrincipal"}
    evidence = record.findings[0]["evidence"]
    assert (evidence["principalId"], evidence["clientIpAddress"], evidence["keys"]) == (
        STRANGER_APP, "198.51.100.23", ["key1", "key2"])
    assert evidence["eventTime"] == "2026-11-24T10:00:00.123456Z" and evidence["role"] == "Storage Account Contributor"
    assert record.before[ACCOUNT["id"]]["tags"] == ACCOUNT["tags"]  # the dataset, as read
    assert app.writes() == [] and [p["key"] for p in app.runtime.ledger.pending()] == [record.key]


def test_a_sas_listed_by_a_stranger_is_its_own_finding(app, emulator, moment):
    moment(datetime(2026, 11, 24, 10, 1, tzinfo=timezone.utc))  # a minute after the events
    emulator.seed([ACCOUNT])
    for operation in (LIST_ACCOUNT_SAS, LIST_SERVICE_SAS):
        app.deliver(action_event(ACCOUNT["id"], operation))
    first, second = app.records()
    assert first.rules == second.rules == ["storage_sas_listed_by_unallowed_principal"]
    # The same caller on the same account: one incident, one leak of the keys: the rotation
    # the first holds for a person is not held twice.
    assert second.incident == first.incident
    assert (first.outcome, second.outcome) == ("pending-approval", "reported")
    assert f"already contained in this incident by decision {first.key}" in second.reason
    assert [p["key"] for p in app.runtime.ledger.pending()] == [first.key]


def test_the_allowlisted_pipeline_listing_keys_is_compliant(app, emulator):
    emulator.seed([ACCOUNT])
    app.configure(CONTAINMENT_ALLOWED_PRINCIPALS=f"{PIPELINE}@2099-12-31")
    app.deliver(action_event(ACCOUNT["id"], LIST_KEYS, actor=PIPELINE))
    [record] = app.records()
    assert record.outcome == "compliant" and record.incident is None
    assert record.reason == (f"principal {PIPELINE} is on CONTAINMENT_ALLOWED_PRINCIPALS until 2100-01-01T00:00:00."
                             "000000Z: allowed to list keys and SAS")


def test_an_unprotected_account_is_ignored(app, emulator):
    emulator.seed([UNTAGGED])
    app.deliver(action_event(UNTAGGED["id"], LIST_KEYS))
    [record] = app.records()
    assert record.outcome == "ignored" and "not synthetic data" in record.reason


def test_a_protected_scope_protects_an_untagged_account(app, emulator):
    emulator.seed([UNTAGGED])
    app.configure(CONTAINMENT_PROTECTED_SCOPES=f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-scratch")
    app.deliver(action_event(UNTAGGED["id"], LIST_KEYS))
    assert [r.outcome for r in app.records()] == ["pending-approval"]


def test_the_apps_own_identity_is_ignored(app, emulator):
    emulator.seed([ACCOUNT])
    app.configure(CONTAINMENT_SELF_PRINCIPAL_ID=SELF)
    app.deliver(action_event(ACCOUNT["id"], LIST_KEYS, actor=SELF))
    assert [r.outcome for r in app.records()] == ["ignored"]


def test_a_redelivery_is_one_record(app, emulator):
    emulator.seed([ACCOUNT])
    event = action_event(ACCOUNT["id"], LIST_KEYS)
    app.deliver(event)
    app.deliver(event)
    assert len(app.records()) == 1


def test_an_action_routed_to_a_write_function_is_rejected_not_judged(app, emulator):
    """Strict parsing: a function given an event type its subscription does not admit
    records it `rejected`, naming what it accepts."""
    import function_app
    from localazure.functions_host import user_function

    emulator.seed([ACCOUNT])
    event = action_event(ACCOUNT["id"], LIST_KEYS)
    user_function(function_app.app, "storage_exposure")(
        EventGridEventInConverter.decode(func.meta.Datum(json.dumps(event), "json"), trigger_metadata={}))
    [record] = app.records()
    assert record.outcome == "rejected" and "is not Microsoft.Resources.ResourceWriteSuccess" in record.reason
    write = write_event(ACCOUNT["id"], "Microsoft.Storage/storageAccounts/write")
    user_function(function_app.app, "storage_key_access")(
        EventGridEventInConverter.decode(func.meta.Datum(json.dumps(write), "json"), trigger_metadata={}))
    assert [r.outcome for r in app.records()] == ["rejected", "rejected"]


def test_only_the_key_function_subscribes_to_key_listings():
    from localazure.functions_host import subscribers

    assert subscribers(action_event(ACCOUNT["id"], LIST_KEYS)) == ["storage_key_access"]
    assert subscribers(action_event(ACCOUNT["id"], "Microsoft.Storage/storageAccounts/regenerateKey/action")) == []


def test_end_to_end_a_principal_lists_the_keys_through_the_sdk_and_the_record_names_them(app, emulator):
    """A real StorageManagementClient lists the keys as an engineer whose Storage Account
    Contributor assignment allows it; the emulator's ARM publishes the ResourceActionSuccess
    the subscription system topic would, the host delivers it, and the record says who
    pulled the keys, through which grant, from where and when."""
    from tests.helpers.principals import principal_clients

    engineer = "3a4b5c6d-7e8f-4a0b-8c1d-2e3f4a5b6c7d"
    grant = b.role_assignment(b.RG_ID, engineer, "17d1049b-9a84-46fb-8f53-869881c3d3ab",
                              name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e0c", principal_type="User")
    emulator.seed([ACCOUNT, grant])
    storage, _ = principal_clients(emulator, engineer)
    assert storage.storage_accounts.list_keys(b.RG, ACCOUNT["name"]).keys_property

    [event] = emulator.arm.action_events
    emulator.clear_traffic()  # what follows is the app's
    [invocation] = app.deliver(event)
    assert invocation.function == "storage_key_access" and invocation.error is None

    [record] = app.records()
    assert (record.outcome, record.actions, record.event_id) == ("pending-approval", ["rotate_account_keys"],
                                                                 event["id"])
    assert record.actor == {"object_id": engineer, "principal_type": "User"}
    evidence = record.findings[0]["evidence"]
    assert (evidence["principalId"], evidence["principalType"], evidence["clientIpAddress"]) == (
        engineer, "User", "127.0.0.1")
    assert (evidence["role"], evidence["roleAssignmentId"]) == ("Storage Account Contributor", grant["name"])
    assert evidence["keys"] == ["key1", "key2"] and evidence["eventTime"].startswith(event["eventTime"][:19])
    assert app.writes() == []  # held for a person: nothing rotated


# -- one leak of the keys, one rotation of each ----------------------------------------------------
OLD_KEYS = {"key1": "2026-06-01T08:00:00.0000000Z", "key2": "2026-06-01T08:00:00.0000000Z"}
WORKSPACE = "4f1d3c2b-0a9e-4d8c-8b7a-6f5e4d3c2b1a"


def approve(key: str) -> int:
    import function_app
    from localazure.functions_host import call_http
    from tests.helpers.operators import ONCALL

    return call_http(function_app.app, "POST", f"decisions/{key}/approve", None, ONCALL).status_code


def regenerations(emulator) -> list[str]:
    """The keys the app asked ARM to regenerate, in the emulator's traffic."""
    return [(x.request_body if isinstance(x.request_body, dict) else json.loads(x.request_body))["keyName"]
            for x in emulator.traffic if x.method == "POST" and x.url.split("?")[0].lower().endswith("/regeneratekey")]


def test_two_listings_by_one_stranger_rotate_each_key_once_however_many_approvals(app, emulator, moment):
    """One stranger lists the keys twice: one leak, one incident. The second listing holds no
    second rotation, and approving whatever was held rotates key1 and key2 once each: two
    regenerateKey writes, not four."""
    moment(datetime(2026, 11, 24, 10, 6, tzinfo=timezone.utc))  # a minute after the second listing
    emulator.seed([b.storage_account(keyCreationTime=OLD_KEYS)])
    app.configure(CONTAINMENT_MODE="enforce")
    for at in ("2026-11-24T10:00:00.0000000Z", "2026-11-24T10:05:00.0000000Z"):
        app.deliver(action_event(ACCOUNT["id"], LIST_KEYS, time=at))
    first, second = app.records()
    assert second.incident == first.incident
    statuses = [approve(record.key) for record in (first, second)]
    app.drain()
    assert statuses == [202, 404]  # the second listing held nothing to approve
    assert sorted(regenerations(emulator)) == ["key1", "key2"]
    assert {r.key: r.outcome for r in app.records()}[f"{first.key}.approved"] == "contained"


def test_a_listing_after_the_rotation_is_a_new_leak_of_the_new_keys(app, emulator):
    """The stranger lists the keys again after they were rotated: those keys are new, and
    what the first rotation took is not what they now hold."""
    emulator.seed([b.storage_account(keyCreationTime=OLD_KEYS)])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(action_event(ACCOUNT["id"], LIST_KEYS, time="2026-11-24T10:00:00.0000000Z"))
    [first] = app.records()
    assert approve(first.key) == 202
    app.drain()
    later = clock.iso()  # after the rotation, which ARM timed a moment ago
    app.deliver(action_event(ACCOUNT["id"], LIST_KEYS, time=later))
    [again] = [r for r in app.records() if r.key not in (first.key, f"{first.key}.approved")]
    assert (again.outcome, again.actions) == ("pending-approval", ["rotate_account_keys"])
    assert approve(again.key) == 202
    app.drain()
    assert sorted(regenerations(emulator)) == ["key1", "key1", "key2", "key2"]


def test_a_rotation_a_person_denied_holds_nothing_so_the_next_listing_asks_again(app, emulator, moment):
    import function_app
    from localazure.functions_host import call_http
    from tests.helpers.operators import ONCALL

    moment(datetime(2026, 11, 24, 10, 6, tzinfo=timezone.utc))
    emulator.seed([ACCOUNT])
    app.deliver(action_event(ACCOUNT["id"], LIST_KEYS, time="2026-11-24T10:00:00.0000000Z"))
    [first] = app.records()
    assert call_http(function_app.app, "POST", f"decisions/{first.key}/deny", None, ONCALL).status_code == 200
    app.deliver(action_event(ACCOUNT["id"], LIST_KEYS, time="2026-11-24T10:05:00.0000000Z"))
    [again] = [r for r in app.records() if not r.key.startswith(first.key)]
    assert (again.outcome, again.actions) == ("pending-approval", ["rotate_account_keys"])


def test_a_key_an_earlier_decision_took_is_not_rotated_again_nor_previewed(app, emulator):
    """An earlier decision of the incident rotated key1 (a SAS it signed leaked); then the
    stranger lists both keys. Only key2 is left: the held step carries it, the preview shows
    who uses key2 alone, and the approval rotates key2 alone."""
    from containment.core.records import DecisionRecord

    emulator.seed([b.storage_account(keyCreationTime=OLD_KEYS)], {"StorageBlobLogs": []})
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_LOG_WORKSPACE_ID=WORKSPACE)
    rotation = {"action": "rotate_account_keys", "target": ACCOUNT["id"]}
    app.runtime.ledger.write(DecisionRecord(
        key="earlier-key1", resource_id=ACCOUNT["id"], outcome="contained", mode="enforce", reason="a SAS leaked",
        plan=[rotation], actions=["rotate_account_keys"], decided_at=clock.iso(), contained_at=clock.iso(),
        findings=[{"rule": "egress_key_or_sas_from_untrusted_network", "severity": "critical",
                   "resource_id": ACCOUNT["id"], "summary": "a SAS signed with key1",
                   "evidence": {"keys": ["key1"], "start": "2026-11-24T09:00:00.000000Z"}}]))
    app.deliver(action_event(ACCOUNT["id"], LIST_KEYS))
    [listing] = [r for r in app.records() if r.key != "earlier-key1"]
    assert listing.outcome == "pending-approval"
    assert listing.awaiting_approval == [{**rotation, "keys": ["key2"]}]
    assert "rotate_account_keys of all but key2" in listing.reason
    [step] = listing.impact_preview["steps"]
    # No blob logs were seeded: the preview cannot say whom it breaks, but says which key rotates.
    assert (step["status"], step["keys"]) == ("unavailable", ["key2"]) and "no StorageBlobLogs" in step["reason"]
    assert approve(listing.key) == 202
    app.drain()
    assert regenerations(emulator) == ["key2"]


# -- what the function refuses or cannot read -------------------------------------------------------
def test_an_action_its_subscription_does_not_admit_is_rejected_not_ignored(app, emulator):
    """A ResourceActionSuccess for an operation outside the function's filter (regenerateKey)
    is misrouted: refused on the record, as core/events.py's contract says, never judged."""
    import function_app
    from localazure.functions_host import user_function

    emulator.seed([ACCOUNT])
    event = action_event(ACCOUNT["id"], "Microsoft.Storage/storageAccounts/regenerateKey/action")
    user_function(function_app.app, "storage_key_access")(
        EventGridEventInConverter.decode(func.meta.Datum(json.dumps(event), "json"), trigger_metadata={}))
    [record] = app.records()
    assert record.outcome == "rejected" and record.event_id == event["id"]
    assert "operation Microsoft.Storage/storageAccounts/regenerateKey/action is not one this function's " \
           "subscription admits" in record.reason


def test_a_listing_whose_account_cannot_be_read_fails_saying_a_person_must_look(app, emulator):
    """No delivery could read the account: the drift sweep cannot see a key listing, so the
    failed record says only the event shows it, not that the sweep will re-judge it."""
    emulator.seed([ACCOUNT])
    emulator.faults.add("status", path=f"/storageAccounts/{ACCOUNT['name']}$", method="GET", status=403, times=None)
    [invocation] = app.deliver(action_event(ACCOUNT["id"], LIST_KEYS))
    assert invocation.error is not None  # Event Grid delivers it again
    [record] = app.records()
    assert record.outcome == "failed" and "reading the resource failed" in record.reason
    assert "a key listing is known only from its event" in record.reason and "a person must look" in record.reason
    assert "drift sweep re-judges" not in record.reason
