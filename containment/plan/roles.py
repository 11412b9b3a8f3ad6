"""Containing a role assignment that opens synthetic data: delete it, after recording its
full body so release can recreate it exactly (role rules: containment.judge.roles)."""
from __future__ import annotations

from containment.core.findings import Finding
from containment.core.ids import ROLE_ASSIGNMENT, ResourceId
from containment.core.settings import Settings
from containment.judge.allowlist import allowance
from containment.plan.action import Action, State, Write, still_there


def delete(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [Write("DELETE", target.text)]


def scope_level(scope: str) -> str:
    """managementGroup, subscription, resourceGroup or resource, for an ARM scope."""
    parts = scope.strip("/").lower().split("/")
    if parts == [""] or parts[:2] == ["providers", "microsoft.management"]:
        return "managementGroup"
    if len(parts) == 2:
        return "subscription"
    return "resourceGroup" if len(parts) == 4 else "resource"


def deletion_approval(target: ResourceId, settings: Settings) -> str | None:
    level = scope_level(target.scope)
    if level in settings.role_deletion_approval_scopes:
        return (f"deleting a role assignment at {level} scope is reserved for a person "
                "(CONTAINMENT_ROLE_DELETION_APPROVAL_SCOPES)")
    return None


def _identity(assignment: dict) -> tuple[str, str, str]:
    properties = assignment.get("properties") or {}
    return (str(properties.get("principalId") or "").lower(),
            str(properties.get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower(),
            str(properties.get("scope") or "").lower())


def storage_needs_it(finding: Finding, settings: Settings) -> str | None:
    """Why a finding leaves nothing to delete: the principal is the encryption identity of an
    account whose key the vault holds; deleting the assignment would take Storage's own access
    to the key too, and lock that account's data (containment.detect.role_assignments)."""
    account = finding.evidence.get("encryption_identity_of")
    if not account:
        return None
    return (f"the principal is the encryption identity of {account}: deleting its assignment locks that account's "
            "data; a person narrows the role to what Storage needs")


def replaced(state: State, settings: Settings) -> str | None:
    """An assignment ID that now holds another grant (another principal, role or scope)
    than the one the decision judged: deleting it would delete what nobody judged. Or the
    same grant, to a principal allowed since (CONTAINMENT_ALLOWED_PRINCIPALS): no longer
    an exposure, whatever was decided before."""
    target = state.facts.get("target")
    recorded = (state.facts.get("recorded") or {}).get(target.key) if target is not None else None
    if state.body is None:
        return None
    principal = _identity(state.body)[0]
    if allowance(principal, settings).allowed:
        return f"{principal} is allowed to hold data roles (CONTAINMENT_ALLOWED_PRINCIPALS) since it was judged"
    if recorded is None or _identity(recorded) == _identity(state.body):
        return None
    principal, role, scope = _identity(state.body)
    return (f"{target.text} now grants role {role} to {principal} at {scope}, not what was judged "
            f"(role {_identity(recorded)[1]} to {_identity(recorded)[0]} at {_identity(recorded)[2]})")


ACTIONS = (
    Action("delete_role_assignment", (ROLE_ASSIGNMENT,), "role_assignment_grants_data_access",
           ("Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleAssignments/delete",
            "Microsoft.Authorization/roleDefinitions/read"),
           delete, exposed=still_there, approval=deletion_approval, moot=replaced, unavailable=storage_needs_it),
)
