"""Undoing a containment: exactly what its decision changed, and nothing anyone did since. Pure.

A release compares three states of each resource the decision wrote: as recorded before
containment, as containment left it, and as it is now. It puts back only what containment
changed (a storage property it set, a Deny rule it added, a rule it set to Deny, a role
assignment or object replication policy it deleted), and only where that still holds
containment's value. What someone
changed since (hardened further, or opened again) is theirs and stays, forced or not.

Key rotation and user-delegation revocation cannot be undone (a new key is not the old
one), and the release record says so. A release is refused (plan_release) when the
decision is not a containment, when the ledger lacks the state to go back to, when a
later decision superseded it, or (unless forced) when the resource changed since.
"""
from __future__ import annotations

import copy
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from containment.core.ids import (
    BLOB_CONTAINER,
    KEY_VAULT,
    NSG,
    REPLICATION_POLICY,
    ROLE_ASSIGNMENT,
    STORAGE_ACCOUNT,
    ResourceId,
    parse_resource_id,
)
from containment.core.records import DecisionRecord
from containment.core.settings import Settings
from containment.plan.action import AFTER_PREVIOUS, Action, State, Write, recreated

# Storage properties containment changes, with the value an absent property means.
_STORAGE = {
    "allowBlobPublicAccess": False, "allowSharedKeyAccess": True, "allowCrossTenantReplication": False,
    "minimumTlsVersion": "TLS1_0", "publicNetworkAccess": "Enabled", "networkAcls": None, "publicAccess": "None",
}
# A vault's: no networkAcls is the firewall off (every network; bypass "If not specified the
# default is 'AzureServices'", keyvault spec 2024-11-01 NetworkRuleSet; the firewall is off by
# default: https://learn.microsoft.com/azure/key-vault/general/network-security), and
# publicNetworkAccess "enabled" is the spec's default. Written back whole, so a vault that had
# none is opened as it was.
_VAULT = {
    "networkAcls": {"defaultAction": "Allow", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []},
    "publicNetworkAccess": "Enabled",
}
# What containment can change, by the type of what it writes (an NSG's: its rules, _parts).
RESTORABLE = {STORAGE_ACCOUNT: _STORAGE, BLOB_CONTAINER: _STORAGE, KEY_VAULT: _VAULT}
IRREVERSIBLE = ("revoke_user_delegation_keys", "rotate_account_keys", "enable_key_vault_purge_protection")
# What a release writes back. A deleted role assignment or replication policy is not among
# them: recreating either gives access (or a copy of the data) back, and the app's identity
# only takes access away, so a person applies its restore plan (restore_by_person). A vault's
# networkAcls is written back like a storage account's; its removed access policy entries are
# a person's to add back (access_policies_by_person).
RESOURCE_TYPES = (STORAGE_ACCOUNT, BLOB_CONTAINER, NSG, KEY_VAULT)
_ASSIGNMENT_FIELDS = ("roleDefinitionId", "principalId", "principalType", "description", "condition",
                      "conditionVersion", "delegatedManagedIdentityResourceId")
# ObjectReplicationPolicyProperties a PUT takes (storage spec 2026-09-01); policyId and
# enabledTime are read-only.
_REPLICATION_FIELDS = ("sourceAccount", "destinationAccount", "rules", "metrics", "priorityReplication",
                       "tagsReplication")
_ABSENT = object()  # an NSG rule that is not there


def _properties(body: dict | None) -> dict:
    return (body or {}).get("properties") or {}


def _rules(nsg: dict | None) -> dict[str, dict]:
    return {str(r.get("name")).lower(): r for r in _properties(nsg).get("securityRules") or []}


def _rule_properties(rule: dict) -> dict:
    properties = copy.deepcopy(rule.get("properties") or {})
    properties.pop("provisioningState", None)
    return properties


def _parts(body: dict | None, target: ResourceId) -> dict[str, Any]:
    """What containment can change on a resource, by name: whether a role assignment
    exists, each NSG rule's properties, each storage property (absent: its documented default)."""
    if any(target.is_type(kind) for kind in BY_PERSON):  # judged for a person's restore plan; never written by the app
        return {"existence": body is not None}
    if target.is_type(NSG):
        return {name: _rule_properties(rule) for name, rule in _rules(body).items()}
    properties = _properties(body)
    restorable = next(names for kind, names in RESTORABLE.items() if target.is_type(kind))
    return {name: default if properties.get(name) is None else properties[name] for name, default in restorable.items()}


def differences(first: dict | None, second: dict | None, target: ResourceId) -> list[str]:
    """What containment could have changed that differs between two states of a resource."""
    one, other = _parts(first, target), _parts(second, target)
    return sorted(name for name in set(one) | set(other) if one.get(name, _ABSENT) != other.get(name, _ABSENT))


@dataclass(frozen=True)
class Undo:
    restore: list[str]  # what containment changed and still holds its value: put back
    kept: list[str]  # what containment changed and someone changed since: left as they made it


def undo(before: dict | None, contained: dict | None, now: dict | None, target: ResourceId) -> Undo:
    changed = differences(before, contained, target)
    held, current = _parts(contained, target), _parts(now, target)
    still = [name for name in changed if current.get(name, _ABSENT) == held.get(name, _ABSENT)]
    return Undo(still, [name for name in changed if name not in still])


def _undo_of(state: State, target: ResourceId) -> tuple[dict | None, Undo]:
    release = state.facts["release"]
    before = release["before"].get(target.key)
    return before, undo(before, release["after"].get(target.key), state.body, target)


def restore_writes(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    """The writes that put back what containment changed and still holds its value."""
    recorded, plan = _undo_of(state, target)
    if not plan.restore:
        return []
    if target.is_type(NSG):
        before, now = _rules(recorded), _rules(state.body)
        writes = []
        for name in plan.restore:  # each write moves the NSG's ETag on: the next one expects the new one
            rule_id = f"{target.text}/securityRules/{(before.get(name) or now.get(name))['name']}"
            etag = state.etag if not writes else AFTER_PREVIOUS
            if name in before:
                writes.append(Write("PUT", rule_id, {"properties": _rule_properties(before[name])}, etag))
            else:
                writes.append(Write("DELETE", rule_id, if_match=etag))
        return writes
    values = _parts(recorded, target)
    return [Write("PATCH", target.text, {"properties": {name: values[name] for name in plan.restore
                                                        if values[name] is not None}})]


def _assignment_by_person(assignment: dict) -> dict:
    """A deleted role assignment as a person recreates it: the exact ARM request and the
    `az` command (https://learn.microsoft.com/cli/azure/role/assignment#az-role-assignment-create).
    The app's identity holds no roleAssignments/write, so it never grants access itself."""
    properties = {k: v for k, v in _properties(assignment).items() if k in _ASSIGNMENT_FIELDS and v is not None}
    scope = _properties(assignment).get("scope") or assignment["id"].split("/providers/Microsoft.Authorization")[0]
    command = ["az", "role", "assignment", "create", "--assignee-object-id", properties.get("principalId"),
               "--assignee-principal-type", properties.get("principalType") or "ServicePrincipal",
               "--role", str(properties.get("roleDefinitionId", "")).rsplit("/", 1)[-1], "--scope", scope]
    if properties.get("condition"):
        command += ["--condition", properties["condition"], "--condition-version",
                    properties.get("conditionVersion") or "2.0"]
    return {"method": "PUT", "url": f"https://management.azure.com{assignment['id']}?api-version=2022-04-01",
            "body": {"properties": properties}, "az": _shell(command)}


def _replication_by_person(policy: dict) -> dict:
    """A deleted object replication policy as a person puts it back on its source account:
    the same policy ID and rule IDs, which the destination's policy still holds
    (ObjectReplicationPolicies_CreateOrUpdate; `az rest` sends it as written,
    https://learn.microsoft.com/cli/azure/reference-index#az-rest). The app's identity holds
    no objectReplicationPolicies/write: it never starts a copy of the data itself."""
    properties = {k: v for k, v in _properties(policy).items() if k in _REPLICATION_FIELDS and v is not None}
    url = f"https://management.azure.com{policy['id']}?api-version=2026-09-01"
    body = {"properties": properties}
    command = ["az", "rest", "--method", "put", "--url", url, "--body", json.dumps(body, separators=(",", ":"))]
    return {"method": "PUT", "url": url, "body": body, "az": _shell(command)}


def _policy_identity(entry: dict) -> tuple[str, str, str]:
    return tuple(str(entry.get(name) or "").lower() for name in ("tenantId", "objectId", "applicationId"))


def access_policies_by_person(before: dict | None, after: dict | None) -> list[dict]:
    """The access policy entries a vault held before containment and not after it, each as a
    person adds it back: `PUT {vault}/accessPolicies/add` with the entry whole
    (Vaults_UpdateAccessPolicy, keyvault spec 2024-11-01), and the `az rest` command that sends
    it. The app's identity only removes entries: giving key access back is a person's act."""
    if not before or after is None:
        return []
    kept = {_policy_identity(entry): entry for entry in _properties(after).get("accessPolicies") or []}
    plans = []
    for entry in _properties(before).get("accessPolicies") or []:
        if kept.get(_policy_identity(entry)) == entry:
            continue
        url = f"https://management.azure.com{before['id']}/accessPolicies/add?api-version=2024-11-01"
        body = {"properties": {"accessPolicies": [entry]}}
        command = ["az", "rest", "--method", "put", "--url", url, "--body", json.dumps(body, separators=(",", ":"))]
        plans.append({"method": "PUT", "url": url, "body": body, "az": _shell(command)})
    return plans


# What containment deletes and only a person recreates, by type: how the request is written.
BY_PERSON = {ROLE_ASSIGNMENT: _assignment_by_person, REPLICATION_POLICY: _replication_by_person}


def restore_by_person(deleted: dict) -> dict:
    """A resource containment deleted, as a person recreates it: the exact ARM request
    (method, url, body) and the command that sends it."""
    target = parse_resource_id(deleted["id"])
    return next(plan(deleted) for kind, plan in BY_PERSON.items() if target.is_type(kind))


def _shell(command: list) -> str:
    # Every value quoted for a POSIX shell: a condition, a scope or a container name is the
    # resource's, not ours, and a person will paste this.
    return " ".join(shlex.quote(str(part)) for part in command)


def needs_restoring(state: State, settings: Settings) -> bool:
    return bool(_undo_of(state, state.facts["target"])[1].restore)


# -- whether a decision can be released, and what its release restores -------------------------
@dataclass(frozen=True)
class ReleasePlan:
    refused: str | None = None  # why not (nothing is done)
    targets: tuple[str, ...] = ()  # the resources with something to put back
    changed_since: dict[str, list[str]] = field(default_factory=dict)  # what differs from how containment left it
    kept: dict[str, list[str]] = field(default_factory=dict)  # what containment changed that someone changed since
    irreversible: tuple[str, ...] = ()
    by_person: tuple[dict, ...] = ()  # what only a person may put back: a deleted role assignment or policy


def plan_release(decision: DecisionRecord, now: dict[str, dict | None], later: list[DecisionRecord],
                 force: bool) -> ReleasePlan:
    """Whether `decision` can be released, given each resource it wrote as it is `now` (by
    ID, lower case) and the decisions recorded after it about those resources."""
    if decision.outcome != "contained":
        return ReleasePlan(f"decision {decision.key} is {decision.outcome}: only a contained decision can be released")
    irreversible = tuple(a for a in decision.actions if a in IRREVERSIBLE)
    for other in later:
        if other.operation == "release" and other.releases == decision.key:
            return ReleasePlan(f"decision {decision.key} was released already: {other.key} ({other.outcome})")
        if other.outcome == "contained" and set(_lower(other.after)) & set(_lower(decision.after)):
            return ReleasePlan(f"decision {decision.key} is superseded by decision {other.key}, which contained "
                               f"{other.resource_id} again at {other.contained_at}: release that one, if any")
    before, after = _lower(decision.before), _lower(decision.after)
    written = [rid for rid in decision.after if any(parse_resource_id(rid).is_type(kind) for kind in RESOURCE_TYPES)]
    by_person = tuple(restore_by_person(before[rid.lower()]) for rid in decision.after
                      if any(parse_resource_id(rid).is_type(kind) for kind in BY_PERSON) and before.get(rid.lower())
                      and after[rid.lower()] is None)
    by_person += tuple(plan for rid in decision.after if parse_resource_id(rid).is_type(KEY_VAULT)
                       for plan in access_policies_by_person(before.get(rid.lower()), after[rid.lower()]))
    missing = [rid for rid in written if before.get(rid.lower()) is None]
    if missing or (not written and not irreversible and not by_person):
        return ReleasePlan(f"the ledger holds no state from before decision {decision.key} for "
                           f"{', '.join(missing) or decision.resource_id}: nothing to go back to, nothing restored")
    targets, changed_since, kept = [], {}, {}
    for rid in written:
        target = parse_resource_id(rid)
        other = recreated(State(now.get(rid.lower()), {"target": target, "recorded": after}), settings=None)
        if other is not None:
            return ReleasePlan(f"not released: {other}; what decision {decision.key} contained is gone")
        drift = differences(after[rid.lower()], now.get(rid.lower()), target)
        if drift:
            changed_since[rid] = drift
        plan = undo(before[rid.lower()], after[rid.lower()], now.get(rid.lower()), target)
        if plan.restore:
            targets.append(rid)
        if plan.kept:
            kept[rid] = plan.kept
    if changed_since and not force:
        return ReleasePlan("changed since containment; release with force to put back only what containment "
                           "changed and still holds its value", changed_since=changed_since)
    return ReleasePlan(None, tuple(targets), changed_since, kept, irreversible, by_person)


def _lower(states: dict) -> dict:
    return {rid.lower(): body for rid, body in states.items()}


ACTIONS = (
    # Release: what the released decision changed, back as it was. Never asked for by name.
    Action("restore_recorded_state", RESOURCE_TYPES, None,
           ("Microsoft.Storage/storageAccounts/write", "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Network/networkSecurityGroups/securityRules/write",
            "Microsoft.Network/networkSecurityGroups/securityRules/delete", "Microsoft.KeyVault/vaults/write"),
           restore_writes, exposed=needs_restoring, on_request=False, moot=recreated),
)
