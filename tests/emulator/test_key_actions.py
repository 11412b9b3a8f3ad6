"""The emulator's ARM answers listKeys, ListAccountSas and ListServiceSas as the storage
spec says, through the real azure-mgmt-storage client, and records the ResourceActionSuccess
event the subscription system topic publishes for each success (localazure/key_actions.py)."""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.storage.models import AccountSasParameters, ServiceSasParameters

from localazure.authorization import OWNER_OBJECT_ID
from tests.helpers import arm_bodies as b
from tests.helpers.principals import principal_clients

ACCOUNT = b.storage_account()
ENGINEER = "3a4b5c6d-7e8f-4a0b-8c1d-2e3f4a5b6c7d"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
GRANT = b.role_assignment(b.RG_ID, ENGINEER, STORAGE_ACCOUNT_CONTRIBUTOR, name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e0b")
EXPIRY = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)


def signed(key: str, string_to_sign: str) -> str:
    return base64.b64encode(hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()).decode()


def test_an_account_sas_is_signed_with_the_key_asked_for_and_shaped_as_microsofts_example(emulator, owner):
    emulator.seed([ACCOUNT])
    storage = owner.storage(b.SUBSCRIPTION).storage_accounts
    token = storage.list_account_sas(b.RG, ACCOUNT["name"], AccountSasParameters(
        services="b", resource_types="co", permissions="rl", shared_access_expiry_time=EXPIRY,
        protocols="https", key_to_sign="key2")).account_sas_token
    fields = dict(parse_qsl(token))
    assert list(fields) == ["sv", "ss", "srt", "sp", "se", "spr", "sig"]  # the example's order, st absent
    assert fields["se"] == "2026-11-25T10:00:00Z" and "se=2026-11-25T10%3A00%3A00Z" in token
    key2 = {k.key_name: k.value for k in storage.list_keys(b.RG, ACCOUNT["name"]).keys_property}["key2"]
    assert fields["sig"] == signed(key2, "synthtrain01\nrl\nb\nco\n\n2026-11-25T10:00:00Z\n\nhttps\n2015-04-05\n")


def test_a_service_sas_is_signed_with_key1_by_default(emulator, owner):
    emulator.seed([ACCOUNT])
    storage = owner.storage(b.SUBSCRIPTION).storage_accounts
    token = storage.list_service_sas(b.RG, ACCOUNT["name"], ServiceSasParameters(
        canonicalized_resource="/blob/synthtrain01/training", resource="c", permissions="l",
        shared_access_expiry_time=EXPIRY)).service_sas_token
    fields = dict(parse_qsl(token))
    assert list(fields) == ["sv", "sr", "se", "sp", "sig"]
    key1 = {k.key_name: k.value for k in storage.list_keys(b.RG, ACCOUNT["name"]).keys_property}["key1"]
    assert fields["sig"] == signed(key1, "l\n\n2026-11-25T10:00:00Z\n/blob/synthtrain01/training\n\n\n\n2015-04-05"
                                         "\n\n\n\n\n")


@pytest.mark.parametrize("call, missing", [
    (lambda s: s.list_account_sas(b.RG, ACCOUNT["name"], {"signedServices": "b", "signedPermission": "r",
                                                          "signedExpiry": "2026-11-25T10:00:00Z"}),
     "signedResourceTypes (required by AccountSasParameters)"),
    (lambda s: s.list_service_sas(b.RG, ACCOUNT["name"], {"signedPermission": "r"}),
     "canonicalizedResource (required by ServiceSasParameters)"),
    (lambda s: s.list_account_sas(b.RG, ACCOUNT["name"], {"signedServices": "b", "signedResourceTypes": "o",
                                                          "signedPermission": "r", "signedExpiry": "2026-11-25T10:00Z",
                                                          "keyToSign": "key3"}), "keyToSign (got 'key3'"),
])
def test_a_listing_the_spec_refuses_is_400_and_raises_no_event(emulator, owner, call, missing):
    emulator.seed([ACCOUNT])
    with pytest.raises(HttpResponseError) as refused:
        call(owner.storage(b.SUBSCRIPTION).storage_accounts)
    assert (refused.value.status_code, refused.value.error.code) == (400, "InvalidValuesForRequestParameters")
    assert missing in refused.value.error.message
    assert emulator.arm.action_events == []


def test_each_successful_action_raises_the_event_microsofts_sample_shows(emulator, owner):
    emulator.seed([ACCOUNT])
    owner.storage(b.SUBSCRIPTION).storage_accounts.list_keys(b.RG, ACCOUNT["name"])
    [event] = emulator.arm.action_events
    data = event["data"]
    assert (event["eventType"], event["subject"], event["topic"]) == (
        "Microsoft.Resources.ResourceActionSuccess", ACCOUNT["id"], f"/subscriptions/{b.SUBSCRIPTION}")
    assert (data["operationName"], data["resourceUri"], data["status"], data["subscriptionId"]) == (
        "Microsoft.Storage/storageAccounts/listKeys/action", ACCOUNT["id"], "Succeeded", b.SUBSCRIPTION)
    assert data["authorization"] == {"scope": ACCOUNT["id"], "action": "Microsoft.Storage/storageAccounts/listKeys/action",
                                     "evidence": {"principalId": OWNER_OBJECT_ID, "principalType": "User"}}
    assert data["claims"]["http://schemas.microsoft.com/identity/claims/objectidentifier"] == OWNER_OBJECT_ID
    assert data["httpRequest"]["clientIpAddress"] == "127.0.0.1" and data["httpRequest"]["method"] == "POST"
    # The request as sent (the SDK asks for Kerberos keys too: $expand=kerb), with its client request ID.
    assert data["httpRequest"]["url"] == (f"https://management.azure.com{ACCOUNT['id']}/listKeys"
                                          "?api-version=2026-09-01&$expand=kerb")
    [request] = emulator.traffic
    assert data["httpRequest"]["clientRequestId"] == request.request_headers["x-ms-client-request-id"]


def test_the_event_names_the_role_assignment_that_allowed_the_action(emulator):
    emulator.seed([ACCOUNT, GRANT])
    storage, _ = principal_clients(emulator, ENGINEER)
    storage.storage_accounts.list_account_sas(b.RG, ACCOUNT["name"], AccountSasParameters(
        services="b", resource_types="o", permissions="r", shared_access_expiry_time=EXPIRY))
    [event] = emulator.arm.action_events
    assert event["data"]["operationName"] == "Microsoft.Storage/storageAccounts/ListAccountSas/action"
    assert event["data"]["authorization"]["evidence"] == {
        "role": "Storage Account Contributor", "roleAssignmentScope": b.RG_ID, "roleAssignmentId": GRANT["name"],
        "roleDefinitionId": STORAGE_ACCOUNT_CONTRIBUTOR, "principalId": ENGINEER, "principalType": "ServicePrincipal"}


def test_a_refused_listing_raises_no_event(emulator):
    emulator.seed([ACCOUNT])
    storage, _ = principal_clients(emulator, ENGINEER)  # no role assignment: 403
    with pytest.raises(HttpResponseError) as refused:
        storage.storage_accounts.list_keys(b.RG, ACCOUNT["name"])
    assert refused.value.status_code == 403 and emulator.arm.action_events == []
