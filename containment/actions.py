"""Containment actions: what each one changes, and the ARM permissions it needs.

An action is declared once, here: the rule whose finding it contains, and how to plan the
one write that contains it from the resource's current state. Whether it is still needed
is that rule's own judgement of the current state (unless the action says otherwise), so
"needed" and "fixed" can never disagree with what detection reports. The permissions are
what infra/'s custom role must grant, and no more.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from containment.resource_ids import (BLOB_CONTAINER, DEFAULT_SECURITY_RULE, NSG, ROLE_ASSIGNMENT, SECURITY_RULE,
                                      STORAGE_ACCOUNT, ResourceId)
from containment.settings import Settings

_ACCOUNT_RW = ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/write")
_CONTAINER_RW = ("Microsoft.Storage/storageAccounts/blobServices/containers/read",
                 "Microsoft.Storage/storageAccounts/blobServices/containers/write")


@dataclass(frozen=True)
class State:
    """A target as ARM has it now. For an NSG rule, `facts` holds its NSG (judging a rule
    needs the rules around it) and `etag` the NSG's ETag, the precondition of any write."""

    body: dict | None  # None: the resource no longer exists
    facts: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None

    @property
    def evidence(self) -> dict | None:
        """What the ledger keeps as before/after: the whole NSG for a rule, else the body."""
        return self.facts.get("nsg", self.body)


@dataclass(frozen=True)
class Write:
    method: str  # PATCH, PUT, DELETE, or POST of an `operation` (revokeUserDelegationKeys, regenerateKey)
    resource_id: str
    body: dict[str, Any] | None = None
    if_match: str | None = None
    operation: str | None = None


Plan = Callable[[State, ResourceId, Settings], list[Write]]


@dataclass(frozen=True)
class Action:
    name: str
    resource_types: tuple[str, ...]
    fixes: str | None  # the rule whose finding this action contains; None: used by severity (egress)
    permissions: tuple[str, ...]
    plan: Plan
    # Whether the exposure is still there; None: the fixed rule's own judgement.
    exposed: Callable[[State, Settings], bool] | None = None
    # Why a person must approve this action on this target under these settings, or None.
    approval: Callable[[ResourceId, Settings], str | None] = lambda target, settings: None
    # False where nothing ARM returns shows the change (a revocation): ARM's 2xx is the proof.
    verified_by_reading: bool = True
    # Whether a person may ask for it by name (break-glass); restoring is release's alone.
    on_request: bool = True

    def applies_to(self, target: ResourceId) -> bool:
        return any(target.is_type(kind) for kind in self.resource_types)


class CannotContain(RuntimeError):
    """No write can contain this exposure here (it needs a person)."""


def _patch(**properties: Any) -> Plan:
    return lambda state, target, settings: [Write("PATCH", target.text, {"properties": dict(properties)})]


def _lock_network(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    if settings.network_lock == "disable-public-network-access":
        return [Write("PATCH", target.text, {"properties": {"publicNetworkAccess": "Disabled"}})]
    # Keep the account's IP and virtual-network rules and bypass: only the default flips,
    # so authorised training networks keep working. (The storage RP replaces networkAcls
    # as a whole on PATCH, so the body carries all of it.)
    acls = dict((state.body.get("properties") or {}).get("networkAcls") or {})
    acls["defaultAction"] = "Deny"
    return [Write("PATCH", target.text, {"properties": {"networkAcls": acls}})]


def _delete(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [Write("DELETE", target.text)]


def _contain_nsg_rule(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    from containment.nsg_containment import plan_rule_containment

    return [plan_rule_containment(state, target, settings)]


def _restore(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    from containment.restore import restore_writes

    return restore_writes(state, target, settings)


def _differs_from_recorded(state: State, settings: Settings) -> bool:
    from containment.restore import needs_restoring

    return needs_restoring(state, settings)


def _revoke_user_delegation_keys(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [Write("POST", target.text, operation="revokeUserDelegationKeys")]


def _rotate_keys(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    # Both keys: a SAS signed with either stays valid while that key lives. Only the keys
    # still older than the decision: a retry after a lost answer must not rotate one twice.
    return [Write("POST", target.text, {"keyName": name}, operation="regenerateKey") for name in _keys_to_rotate(state)]


def _keys_to_rotate(state: State) -> list[str]:
    """The account keys created before the decision to rotate them (all of them where a time is unknown)."""
    if state.body is None:
        return []
    created = (state.body.get("properties") or {}).get("keyCreationTime") or {}
    decided = _instant(state.facts.get("decided_at"))
    return [name for name in ("key1", "key2")
            if decided is None or _instant(created.get(name)) is None or _instant(created[name]) < decided]


def _keys_older_than_decision(state: State, settings: Settings) -> bool:
    """Rotation is still needed while a key was created before the decision to rotate it."""
    return bool(_keys_to_rotate(state))


def _instant(text: Any):
    """An ARM or ledger timestamp as a datetime (ARM writes 7 fractional digits, Python reads 6)."""
    from datetime import datetime

    if not isinstance(text, str) or not text:
        return None
    head, _, fraction = text.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00" if fraction else f"{head}+00:00")
    except ValueError:
        return None


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


_NSG_RULE_RW = ("Microsoft.Network/networkSecurityGroups/read",
                "Microsoft.Network/networkSecurityGroups/securityRules/read",
                "Microsoft.Network/networkSecurityGroups/securityRules/write")

ACTIONS: dict[str, Action] = {action.name: action for action in (
    Action("disable_blob_public_access", (STORAGE_ACCOUNT,), "storage_blob_public_access_allowed", _ACCOUNT_RW,
           _patch(allowBlobPublicAccess=False)),
    Action("lock_account_network", (STORAGE_ACCOUNT,), "storage_network_open_to_internet", _ACCOUNT_RW,
           _lock_network),
    Action("disable_shared_key_access", (STORAGE_ACCOUNT,), "storage_shared_key_access_allowed", _ACCOUNT_RW,
           _patch(allowSharedKeyAccess=False)),
    Action("disable_cross_tenant_replication", (STORAGE_ACCOUNT,), "storage_cross_tenant_replication_allowed",
           _ACCOUNT_RW, _patch(allowCrossTenantReplication=False)),
    Action("require_tls_1_2", (STORAGE_ACCOUNT,), "storage_tls_below_1_2", _ACCOUNT_RW,
           _patch(minimumTlsVersion="TLS1_2")),
    Action("make_container_private", (BLOB_CONTAINER,), "storage_container_public_access", _CONTAINER_RW,
           _patch(publicAccess="None")),
    # The full assignment body is recorded before the delete, so it can be recreated exactly.
    Action("delete_role_assignment", (ROLE_ASSIGNMENT,), "role_assignment_grants_data_access",
           ("Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleAssignments/delete",
            "Microsoft.Authorization/roleDefinitions/read"),
           _delete, exposed=lambda state, settings: state.body is not None, approval=_role_deletion_approval),
    # Invalidates every user-delegation SAS; nothing on the account shows it, so "needed"
    # is decided once, by the claim, and the write is trusted on ARM's 200.
    Action("revoke_user_delegation_keys", (STORAGE_ACCOUNT,), None,
           ("Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action",),
           _revoke_user_delegation_keys, exposed=lambda state, settings: state.body is not None,
           verified_by_reading=False),
    Action("rotate_account_keys", (STORAGE_ACCOUNT,), None,
           ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/regeneratekey/action"),
           _rotate_keys, exposed=_keys_older_than_decision),
    # Release: back to the state recorded before containment (see restore.py).
    Action("restore_recorded_state", (STORAGE_ACCOUNT, BLOB_CONTAINER, ROLE_ASSIGNMENT, NSG), None,
           ("Microsoft.Storage/storageAccounts/write", "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Authorization/roleAssignments/write", "Microsoft.Network/networkSecurityGroups/securityRules/write",
            "Microsoft.Network/networkSecurityGroups/securityRules/delete"),
           _restore, exposed=_differs_from_recorded, on_request=False),
    # A Deny with precedence over the rule (or the rule itself set to Deny): see nsg_containment.
    Action("block_untrusted_inbound", (SECURITY_RULE, DEFAULT_SECURITY_RULE), "nsg_inbound_admits_untrusted_sources",
           _NSG_RULE_RW, _contain_nsg_rule),
    Action("block_internet_outbound", (SECURITY_RULE, DEFAULT_SECURITY_RULE), "nsg_outbound_open_to_internet",
           _NSG_RULE_RW, _contain_nsg_rule),
)}
