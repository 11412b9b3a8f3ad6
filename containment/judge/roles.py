"""When a role assignment is a leak path to synthetic data: its scope covers a protected
resource, its role reaches blob data, and its principal is not (or no longer) allowed.

An assignment inherited from above the subscription (the tenant root, a management group)
is its own finding: the app's role is granted at the subscription and cannot delete it, so
the finding names who must act."""
from __future__ import annotations

from containment.core.ids import ROLE_ASSIGNMENT
from containment.judge.rule import Context, Rule


def grants_data_access(assignment: dict, context: Context):
    if context.facts.get("inherited_from"):
        return None  # inherited_grants_data_access
    return _verdict(assignment, context)


def inherited_grants_data_access(assignment: dict, context: Context):
    scope = context.facts.get("inherited_from")
    if not scope:
        return None
    verdict = _verdict(assignment, context)
    if verdict is None:
        return None
    summary, evidence = verdict
    must_act = f"an owner or User Access Administrator of {scope}"
    return (f"{summary}, through an assignment inherited from {scope}, above this app's reach: {must_act} must "
            "remove it", {**evidence, "inherited_from": scope, "must_act": must_act})


def _verdict(assignment: dict, context: Context):
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
    if facts.get("encryption_identity_of"):  # containment.detect.role_assignments: reported, never removed
        evidence["encryption_identity_of"] = facts["encryption_identity_of"]
    who = f"{properties.get('principalType') or 'principal'} {properties.get('principalId')}"
    return (f"{who} holds {role.get('roleName') or 'a role'} over protected synthetic data "
            f"({'; '.join(facts['data_paths'])})", evidence)


RULES = (
    Rule("role_assignment_grants_data_access", "high", ROLE_ASSIGNMENT, grants_data_access),
    Rule("role_assignment_inherited_grants_data_access", "high", ROLE_ASSIGNMENT, inherited_grants_data_access),
)
