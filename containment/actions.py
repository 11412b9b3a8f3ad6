"""Containment actions: what each one changes, and the ARM permissions it needs.

An action is declared once, here, with the merge body that contains the exposure and the
rule it fixes; whether it is still needed is that rule's own judgement of the current
state, so "needed" and "fixed" can never disagree with what detection reports.
The permissions are what infra/'s custom role must grant, and no more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from containment.resource_ids import BLOB_CONTAINER, ROLE_ASSIGNMENT, STORAGE_ACCOUNT, ResourceId
from containment.settings import Settings

_ACCOUNT_RW = ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/write")
_CONTAINER_RW = ("Microsoft.Storage/storageAccounts/blobServices/containers/read",
                 "Microsoft.Storage/storageAccounts/blobServices/containers/write")


@dataclass(frozen=True)
class Action:
    name: str
    resource_type: str
    fixes: str  # the rule ID whose finding this action contains
    permissions: tuple[str, ...]
    change: Callable[[dict], dict[str, Any]] | None  # current ARM JSON -> PATCH body; None: DELETE
    # Why a person must approve this action on this target under these settings, or None.
    approval: Callable[[ResourceId, Settings], str | None] = lambda target, settings: None


def _set(**properties: Any) -> Callable[[dict], dict[str, Any]]:
    return lambda current: {"properties": dict(properties)}


def _deny_by_default(current: dict) -> dict[str, Any]:
    # Keep the account's IP and virtual-network rules and bypass: only the default flips,
    # so allowed training networks keep working.
    acls = dict((current.get("properties") or {}).get("networkAcls") or {})
    acls["defaultAction"] = "Deny"
    return {"properties": {"networkAcls": acls}}


def scope_level(scope: str) -> str:
    """managementGroup, subscription, resourceGroup or resource, for an ARM scope."""
    parts = scope.strip("/").lower().split("/")
    if parts == [""] or parts[:2] == ["providers", "microsoft.management"]:
        return "managementGroup"
    if len(parts) == 2:
        return "subscription"
    return "resourceGroup" if len(parts) == 4 else "resource"


def _role_deletion_approval(target: ResourceId, settings: Settings) -> str | None:
    level = scope_level(target.scope)
    if level in settings.role_deletion_approval_scopes:
        return (f"deleting a role assignment at {level} scope is reserved for a person "
                "(CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES)")
    return None


ACTIONS: dict[str, Action] = {action.name: action for action in (
    Action("disable_blob_public_access", STORAGE_ACCOUNT, "storage_blob_public_access_allowed", _ACCOUNT_RW,
           _set(allowBlobPublicAccess=False)),
    Action("deny_public_network_by_default", STORAGE_ACCOUNT, "storage_network_open_to_internet", _ACCOUNT_RW,
           _deny_by_default),
    Action("disable_shared_key_access", STORAGE_ACCOUNT, "storage_shared_key_access_allowed", _ACCOUNT_RW,
           _set(allowSharedKeyAccess=False)),
    Action("disable_cross_tenant_replication", STORAGE_ACCOUNT, "storage_cross_tenant_replication_allowed",
           _ACCOUNT_RW, _set(allowCrossTenantReplication=False)),
    Action("require_tls_1_2", STORAGE_ACCOUNT, "storage_tls_below_1_2", _ACCOUNT_RW, _set(minimumTlsVersion="TLS1_2")),
    Action("make_container_private", BLOB_CONTAINER, "storage_container_public_access", _CONTAINER_RW,
           _set(publicAccess="None")),
    # The full assignment body is recorded before the delete, so it can be recreated exactly.
    Action("delete_role_assignment", ROLE_ASSIGNMENT, "role_assignment_grants_data_access",
           ("Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleAssignments/delete",
            "Microsoft.Authorization/roleDefinitions/read"),
           None, _role_deletion_approval),
)}
