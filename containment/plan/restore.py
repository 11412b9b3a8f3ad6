"""Undoing a containment from its recorded before-state. Pure: what differs, and the writes
that put it back.

Only what containment changes is compared and restored: the storage properties the
actions set, a deleted role assignment, the rules of an NSG. Key rotation and
user-delegation revocation cannot be undone (a new key is not the old one), and the
release record says so.
"""
from __future__ import annotations

import copy

from containment.core.ids import BLOB_CONTAINER, NSG, ROLE_ASSIGNMENT, STORAGE_ACCOUNT, ResourceId
from containment.core.settings import Settings
from containment.plan.action import AFTER_PREVIOUS, Action, State, Write

# Storage properties containment changes, with the value an absent property means.
RESTORABLE = {
    "allowBlobPublicAccess": False, "allowSharedKeyAccess": True, "allowCrossTenantReplication": False,
    "minimumTlsVersion": "TLS1_0", "publicNetworkAccess": "Enabled", "networkAcls": None, "publicAccess": "None",
}
IRREVERSIBLE = ("revoke_user_delegation_keys", "rotate_account_keys")
_ASSIGNMENT_FIELDS = ("roleDefinitionId", "principalId", "principalType", "description", "condition",
                      "conditionVersion", "delegatedManagedIdentityResourceId")


def _properties(body: dict | None) -> dict:
    return (body or {}).get("properties") or {}


def _rules(nsg: dict | None) -> dict[str, dict]:
    return {str(r.get("name")).lower(): r for r in _properties(nsg).get("securityRules") or []}


def _rule_properties(rule: dict) -> dict:
    properties = copy.deepcopy(rule.get("properties") or {})
    properties.pop("provisioningState", None)
    return properties


def differences(recorded: dict | None, current: dict | None, target: ResourceId) -> list[str]:
    """What containment could have changed that differs between two states of a resource."""
    if target.is_type(ROLE_ASSIGNMENT):
        return [] if (recorded is None) == (current is None) else ["existence"]
    if target.is_type(NSG):
        before, now = _rules(recorded), _rules(current)
        return sorted(name for name in set(before) | set(now)
                      if name not in before or name not in now
                      or _rule_properties(before[name]) != _rule_properties(now[name]))
    before, now = _properties(recorded), _properties(current)
    return sorted(k for k in RESTORABLE if k in before or k in now
                  if before.get(k, RESTORABLE[k]) != now.get(k, RESTORABLE[k]))


def restore_writes(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    """The writes that bring the resource back to the recorded before-state."""
    recorded = state.facts["restore"].get(target.key)
    changed = differences(recorded, state.body, target)
    if target.is_type(ROLE_ASSIGNMENT):
        properties = {k: v for k, v in _properties(recorded).items() if k in _ASSIGNMENT_FIELDS and v is not None}
        return [Write("PUT", target.text, {"properties": properties})] if changed else []
    if target.is_type(NSG):
        before, now = _rules(recorded), _rules(state.body)
        writes = []
        for name in changed:  # each write moves the NSG's ETag on: the next one expects the new one
            rule_id = f"{target.text}/securityRules/{(before.get(name) or now.get(name))['name']}"
            etag = state.etag if not writes else AFTER_PREVIOUS
            if name in before:
                writes.append(Write("PUT", rule_id, {"properties": _rule_properties(before[name])}, etag))
            else:
                writes.append(Write("DELETE", rule_id, if_match=etag))
        return writes
    if target.is_type(STORAGE_ACCOUNT) or target.is_type(BLOB_CONTAINER):
        before = _properties(recorded)
        return [Write("PATCH", target.text, {"properties": {k: before.get(k, RESTORABLE[k]) for k in changed
                                                            if before.get(k, RESTORABLE[k]) is not None}})]
    raise ValueError(f"nothing to restore on a {target.type}")


def needs_restoring(state: State, settings: Settings) -> bool:
    target = state.facts["target"]
    return bool(differences(state.facts["restore"].get(target.key), state.body, target))


ACTIONS = (
    # Release: back to the state recorded before containment. Never asked for by name.
    Action("restore_recorded_state", (STORAGE_ACCOUNT, BLOB_CONTAINER, ROLE_ASSIGNMENT, NSG), None,
           ("Microsoft.Storage/storageAccounts/write", "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Authorization/roleAssignments/write", "Microsoft.Network/networkSecurityGroups/securityRules/write",
            "Microsoft.Network/networkSecurityGroups/securityRules/delete"),
           restore_writes, exposed=needs_restoring, on_request=False),
)
