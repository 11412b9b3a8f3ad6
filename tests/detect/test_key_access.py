"""Key listings end to end, through the storage_key_access function as the host invokes it,
against the ARM emulator and Azurite."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import azure.functions as func
from azure.functions.eventgrid import EventGridEventInConverter

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
    assert first.outcome == second.outcome == "pending-approval"
    # The same caller on the same account: one incident.
    assert second.incident == first.incident


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
