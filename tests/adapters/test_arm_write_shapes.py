"""The app's role can write vaults, access policies, diagnostic settings and policy
assignments, and each of those permissions could also give access. adapters/arm.py refuses
every write to those types except the shapes containment and release plan, before it is sent."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from containment.adapters.arm import refused_shape
from containment.core.ids import parse_resource_id
from containment.plan.action import Write
from tests.helpers.arm_bodies import SUBSCRIPTION
from tests.helpers.settings import load_settings

WORKSPACE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/ws"
VAULT = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1"
ACCOUNT = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/synth01"
SETTING = f"{ACCOUNT}/blobServices/default/providers/Microsoft.Insights/diagnosticSettings/logs"
ASSIGNMENT = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/policyAssignments/deny-shared-key"
CLIENTS = SimpleNamespace(settings=load_settings({"CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID": WORKSPACE}))
READS = [{"category": "StorageRead", "enabled": True}]


def _refusal(method, resource_id, body=None):
    return refused_shape(CLIENTS, Write(method, resource_id, body), parse_resource_id(resource_id))


@pytest.mark.parametrize("method, resource_id, body", [
    ("PATCH", VAULT, {"properties": {"networkAcls": {"defaultAction": "Deny", "bypass": "AzureServices"}}}),
    ("PATCH", VAULT, {"properties": {"enablePurgeProtection": True}}),
    ("PUT", f"{VAULT}/accessPolicies/remove", {"properties": {"accessPolicies": []}}),
    ("PUT", SETTING, {"properties": {"workspaceId": WORKSPACE, "logs": READS}}),
    ("PUT", ASSIGNMENT, {"properties": {"enforcementMode": "Default"}}),
])
def test_the_shapes_containment_plans_are_sent(method, resource_id, body):
    assert _refusal(method, resource_id, body) is None


@pytest.mark.parametrize("method, resource_id, body, says", [
    ("PUT", f"{VAULT}/accessPolicies/add", {"properties": {"accessPolicies": []}}, "never adds"),
    ("PUT", f"{VAULT}/accessPolicies/replace", {"properties": {"accessPolicies": []}}, "never adds"),
    ("PATCH", VAULT, {"properties": {"accessPolicies": []}}, "only a PATCH"),
    ("PATCH", VAULT, {"properties": {"enableRbacAuthorization": False}}, "only a PATCH"),
    ("PATCH", VAULT, {"properties": {"enablePurgeProtection": False}}, "only ever switched on"),
    ("PUT", VAULT, {"location": "westeurope", "properties": {}}, "only a PATCH"),
    ("DELETE", VAULT, None, "only a PATCH"),
    ("PUT", SETTING, {"properties": {"workspaceId": WORKSPACE, "logs": READS,
                                     "eventHubAuthorizationRuleId": "/subscriptions/x/eh"}}, "only put back with"),
    ("PUT", SETTING, {"properties": {"workspaceId": WORKSPACE.replace("/ws", "/elsewhere"), "logs": READS}},
     "CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID"),
    ("DELETE", SETTING, None, "only put back"),
    ("DELETE", ASSIGNMENT, None, "never changed or deleted"),
    ("PUT", f"{VAULT}/keys/cmk", {"properties": {}}, "never writes"),
])
def test_any_other_shape_is_refused_before_it_is_sent(method, resource_id, body, says):
    assert says in (_refusal(method, resource_id, body) or "")


def test_without_a_configured_workspace_no_diagnostic_setting_is_written():
    clients = SimpleNamespace(settings=load_settings({}))
    write = Write("PUT", SETTING, {"properties": {"workspaceId": WORKSPACE, "logs": READS}})
    assert "CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID" in refused_shape(clients, write, parse_resource_id(SETTING))
