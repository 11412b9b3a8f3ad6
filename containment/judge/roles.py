"""When a role assignment is a leak path to synthetic data: its scope covers a protected
resource, its role reaches blob data, and its principal is not (or no longer) allowed."""
from __future__ import annotations

from containment.core.ids import ROLE_ASSIGNMENT
from containment.judge.rule import Context, Rule


def grants_data_access(assignment: dict, context: Context):
    facts = context.facts
    if not facts.get("data_paths") or not facts.get("covered"):
        return None
    properties = assignment.get("properties") or {}
    role = (facts.get("role_definition") or {}).get("properties") or {}
    evidence = {
        "principalId": properties.get("principalId"),
        "principalType": properties.get("principalType"),
        "roleDefinitionId": properties.get("roleDefinitionId"),
        "roleName": role.get("roleName"),
        "scope": properties.get("scope"),
        "data_paths": facts["data_paths"],
        "covers": facts["covered"],
    }
    if facts.get("allowlist_expired"):
        evidence["allowlist_expired"] = facts["allowlist_expired"]
    who = f"{properties.get('principalType') or 'principal'} {properties.get('principalId')}"
    return (f"{who} holds {role.get('roleName') or 'a role'} over protected synthetic data "
            f"({'; '.join(facts['data_paths'])})", evidence)


RULES = (
    Rule("role_assignment_grants_data_access", "high", ROLE_ASSIGNMENT, grants_data_access),
)
