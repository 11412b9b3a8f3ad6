"""Policy assignments, policy exemptions and diagnostic settings in the emulator: extension
resources at any scope, over HTTPS on the SDK pipeline (containment.adapters.arm.rest), with
ARM's answers and refusals (localazure/guardrails.py names each source)."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from containment.adapters import arm
from containment.core.ids import DIAGNOSTIC_SETTING, POLICY_ASSIGNMENT, POLICY_EXEMPTION
from tests.conftest import OwnerCredential
from tests.helpers import arm_bodies as b

ACCOUNT = b.storage_account()
SUBSCRIPTION_ID = f"/subscriptions/{b.SUBSCRIPTION}"
SETTING = b.diagnostic_setting(ACCOUNT["id"])
ASSIGNMENT = b.policy_assignment(b.RG_ID)
VERSIONS = arm.API_VERSIONS


@pytest.fixture
def owner_clients(emulator):
    """The app's client plumbing with an Owner's token: arranges what the app's role may not."""
    from containment.adapters.clients import AzureClients
    from tests.helpers.settings import load_settings

    clients = AzureClients(load_settings(emulator.settings()))
    clients.credential = OwnerCredential()
    return clients


def rest(clients, method, path, kind, body=None):
    return arm.rest(clients, method, path, VERSIONS[kind], body)


def test_a_policy_assignment_is_created_read_listed_at_every_scope_and_deleted(emulator, owner_clients):
    emulator.seed([ACCOUNT])
    written = rest(owner_clients, "PUT", ASSIGNMENT["id"], POLICY_ASSIGNMENT, {"properties": {
        "policyDefinitionId": b.POLICY_DEFINITION, "enforcementMode": "DoNotEnforce", "scope": "/tampered"}})
    # scope and instanceId are read-only (the spec): the emulator sets them, whatever is sent.
    assert written["properties"]["scope"] == b.RG_ID and written["properties"]["instanceId"]
    assert rest(owner_clients, "GET", ASSIGNMENT["id"], POLICY_ASSIGNMENT)["properties"]["enforcementMode"] == "DoNotEnforce"
    at_subscription = b.policy_assignment(SUBSCRIPTION_ID, "sub-wide")
    on_account = b.policy_assignment(ACCOUNT["id"], "on-account")
    emulator.seed([at_subscription, on_account])
    listing = f"{b.RG_ID}/providers/Microsoft.Authorization/policyAssignments"
    names = lambda items: sorted(item["name"] for item in items)  # noqa: E731
    # Unfiltered: at, above and below the group (PolicyAssignments_ListForResourceGroup).
    assert names(arm.list_at(owner_clients, listing, VERSIONS[POLICY_ASSIGNMENT])) == [
        "deny-shared-key", "on-account", "sub-wide"]
    assert names(arm.list_policy_assignments(owner_clients, b.SUBSCRIPTION)) == [
        "deny-shared-key", "on-account", "sub-wide"]
    # atScope(): at and above the scope; atExactScope(): at it (the spec's $filter values).
    assert names(emulator.arm.handle("GET", listing, {"api-version": VERSIONS[POLICY_ASSIGNMENT], "$filter": "atScope()"},
                                     {"authorization": "Bearer local-azure-owner"}, None).body["value"]) == [
        "deny-shared-key", "sub-wide"]
    deleted = rest(owner_clients, "DELETE", ASSIGNMENT["id"], POLICY_ASSIGNMENT)
    assert deleted["name"] == "deny-shared-key"  # 200 with what was deleted
    assert rest(owner_clients, "DELETE", ASSIGNMENT["id"], POLICY_ASSIGNMENT) is None  # 204: nothing there
    with pytest.raises(arm.ResourceGone):
        rest(owner_clients, "GET", ASSIGNMENT["id"], POLICY_ASSIGNMENT)


def test_an_assignment_put_back_after_a_deletion_is_a_new_instance_with_a_new_identity(emulator, owner_clients):
    body = {"location": "westeurope", "identity": {"type": "SystemAssigned"},
            "properties": {"policyDefinitionId": b.POLICY_DEFINITION}}
    first = rest(owner_clients, "PUT", ASSIGNMENT["id"], POLICY_ASSIGNMENT, body)
    assert rest(owner_clients, "PUT", ASSIGNMENT["id"], POLICY_ASSIGNMENT, body)["identity"] == first["identity"]
    rest(owner_clients, "DELETE", ASSIGNMENT["id"], POLICY_ASSIGNMENT)
    again = rest(owner_clients, "PUT", ASSIGNMENT["id"], POLICY_ASSIGNMENT, body)
    assert again["properties"]["instanceId"] != first["properties"]["instanceId"]
    assert again["identity"]["principalId"] != first["identity"]["principalId"]


@pytest.mark.parametrize("body, status, code", [
    ({"properties": {"policyDefinitionId": b.POLICY_DEFINITION, "enforcementMode": "Sometimes"}}, 400,
     "InvalidRequestContent"),
    ({"properties": {}}, 400, "InvalidRequestContent"),
    ({"identity": {"type": "SystemAssigned"}, "properties": {"policyDefinitionId": b.POLICY_DEFINITION}}, 400,
     "InvalidRequestContent"),
])
def test_a_policy_assignment_arm_refuses_is_refused(emulator, owner_clients, body, status, code):
    with pytest.raises(HttpResponseError) as refused:
        rest(owner_clients, "PUT", ASSIGNMENT["id"], POLICY_ASSIGNMENT, body)
    assert (refused.value.status_code, refused.value.error.code) == (status, code)


def test_an_exemption_needs_its_required_fields_an_assignment_and_a_scope_under_it(emulator, owner_clients):
    emulator.seed([ACCOUNT, ASSIGNMENT])
    exemption = b.policy_exemption(ACCOUNT["id"], ASSIGNMENT["id"])
    assert rest(owner_clients, "PUT", exemption["id"], POLICY_EXEMPTION, {"properties": exemption["properties"]})
    for properties, status in (({"policyAssignmentId": ASSIGNMENT["id"]}, 400),  # exemptionCategory required
                               ({**exemption["properties"], "exemptionCategory": "Forever"}, 400),
                               ({**exemption["properties"], "policyAssignmentId": ASSIGNMENT["id"] + "x"}, 404)):
        with pytest.raises((HttpResponseError, arm.ResourceGone)) as refused:
            rest(owner_clients, "PUT", exemption["id"], POLICY_EXEMPTION, {"properties": properties})
        assert getattr(refused.value, "status_code", 404) == status
    above = b.policy_exemption(SUBSCRIPTION_ID, ASSIGNMENT["id"], "above")
    with pytest.raises(HttpResponseError) as refused:
        rest(owner_clients, "PUT", above["id"], POLICY_EXEMPTION, {"properties": above["properties"]})
    assert refused.value.status_code == 400
    listed = arm.list_at(owner_clients, f"{SUBSCRIPTION_ID}/providers/Microsoft.Authorization/policyExemptions",
                         VERSIONS[POLICY_EXEMPTION])
    assert [item["name"] for item in listed] == ["waive-shared-key"]


def test_a_diagnostic_setting_is_an_extension_resource_of_the_blob_service(emulator, owner_clients):
    emulator.seed([ACCOUNT])
    service = f"{ACCOUNT['id']}/blobServices/default"
    written = rest(owner_clients, "PUT", SETTING["id"], DIAGNOSTIC_SETTING, {"properties": SETTING["properties"]})
    assert written == SETTING
    assert arm.list_diagnostic_settings(owner_clients, service) == [SETTING]
    assert arm.list_diagnostic_settings(owner_clients, ACCOUNT["id"]) == []  # the account's own: none
    rest(owner_clients, "DELETE", SETTING["id"], DIAGNOSTIC_SETTING)
    with pytest.raises(arm.ResourceGone):
        rest(owner_clients, "GET", SETTING["id"], DIAGNOSTIC_SETTING)


def test_diagnostic_settings_arm_refuses_are_refused_in_the_insights_error_shape(emulator, owner_clients):
    emulator.seed([ACCOUNT, SETTING])
    twin = b.diagnostic_setting(ACCOUNT["id"], "twin")
    cases = [
        (twin, 409, "Conflict"),  # the same workspace for the same categories, in another setting
        (b.diagnostic_setting(ACCOUNT["id"], "odd", categories=("AuditEvent",)), 400, "BadRequest"),
        ({**twin, "properties": {"logs": [{"category": "StorageRead", "enabled": True}]}}, 400, "BadRequest"),
        (b.diagnostic_setting(b.storage_account("gone01")["id"]), 404, None),
    ]
    for body, status, code in cases:
        with pytest.raises((HttpResponseError, arm.ResourceGone)) as refused:
            rest(owner_clients, "PUT", body["id"], DIAGNOSTIC_SETTING, {"properties": body["properties"]})
        if code:
            assert (refused.value.status_code, refused.value.error.code) == (status, code)
            assert "error" not in refused.value.response.json()  # {"code", "message"} at the top level
        else:
            assert isinstance(refused.value, arm.ResourceGone)
    elsewhere = [b.diagnostic_setting(ACCOUNT["id"], f"extra{i}", workspace=f"{b.OTHER_WORKSPACE}{i}")
                 for i in range(4)]
    emulator.seed(elsewhere)
    with pytest.raises(HttpResponseError) as refused:  # a sixth: at most five per resource
        sixth = b.diagnostic_setting(ACCOUNT["id"], "sixth", workspace=b.OTHER_WORKSPACE)
        rest(owner_clients, "PUT", sixth["id"], DIAGNOSTIC_SETTING, {"properties": sixth["properties"]})
    assert refused.value.status_code == 400


def test_each_guardrail_answers_at_its_own_api_version_only(emulator, owner_clients):
    emulator.seed([ACCOUNT, SETTING])
    with pytest.raises(HttpResponseError) as refused:
        arm.rest(owner_clients, "GET", SETTING["id"], "2022-04-01")
    assert refused.value.error.code == "InvalidApiVersionParameter"
