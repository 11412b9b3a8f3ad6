"""Containing a role assignment that opens synthetic data: delete it, after recording its
full body so release can recreate it exactly (role rules: containment.judge.roles)."""
from __future__ import annotations

from containment.core.ids import ROLE_ASSIGNMENT, ResourceId
from containment.core.settings import Settings
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


ACTIONS = (
    Action("delete_role_assignment", (ROLE_ASSIGNMENT,), "role_assignment_grants_data_access",
           ("Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleAssignments/delete",
            "Microsoft.Authorization/roleDefinitions/read"),
           delete, exposed=still_there, approval=deletion_approval),
)
