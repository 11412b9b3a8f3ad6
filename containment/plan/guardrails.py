"""Putting a guardrail back (guardrail rules: containment.judge.guardrails).

- A diagnostic setting is restored from the last good body the app recorded, automatically
  in enforce: it is the app's own signal, and it gives no one access to anything (it sends
  logs to the workspace that was there before).
- A policy assignment is restored only with a person's approval, always: governance is not
  the app's to impose, and a policy can deny or change what teams deploy. A deleted one is
  put back from its last good body; one set to DoNotEnforce gets `enforcementMode: Default`
  and keeps everything else. An assignment put back after a deletion is a new instance
  (the spec's `instanceId` "only and always changes when the assignment is deleted and
  recreated"): a system-assigned identity it names is a new principal, with none of the old
  one's role assignments, which a person grants again (the app never writes role assignments).
- A guardrail with no recorded last good body cannot be put back from anything: its finding
  is recorded, saying so (Action.unavailable).
"""
from __future__ import annotations

import copy

from containment.core.findings import Finding
from containment.core.ids import DIAGNOSTIC_SETTING, POLICY_ASSIGNMENT, ResourceId
from containment.core.settings import Settings
from containment.judge.guardrails import sends_reads
from containment.plan.action import Action, CannotContain, State, Write

# PolicyAssignmentProperties the spec marks readOnly (2025-03-01): never sent back.
_ASSIGNMENT_READ_ONLY = ("scope", "instanceId", "latestDefinitionVersion", "effectiveDefinitionVersion")


def last_good(state: State, target: ResourceId) -> dict:
    """The last good body the decision's finding on this target carries."""
    for finding in state.facts.get("findings") or []:
        if str(finding.get("resource_id", "")).lower() == target.key:
            kept = (finding.get("evidence") or {}).get("lastGood")
            if kept:
                return kept["body"]
    raise CannotContain(f"{target.text}: the decision holds no last good body to restore from")


def nothing_to_restore_from(finding: Finding) -> str | None:
    """Why the finding leaves nothing to restore: no last good body was recorded. A policy
    assignment set to DoNotEnforce is restored from itself."""
    if finding.rule == "policy_assignment_not_enforced" or finding.evidence.get("lastGood"):
        return None
    return str(finding.evidence.get("restore") or "no last good body was recorded")


def restore_diagnostic_setting(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [Write("PUT", target.text, {"properties": copy.deepcopy(last_good(state, target).get("properties") or {})})]


def diagnostic_setting_missing(state: State, settings: Settings) -> bool:
    return state.body is None or not sends_reads(state.body, settings.log_workspace_resource_id)[0]


def _writable_assignment(body: dict) -> dict:
    """A policy assignment as PolicyAssignments_Create takes it: its writable properties, its
    location, and the identity's type (and user-assigned identity IDs), not its principal."""
    properties = {k: v for k, v in (body.get("properties") or {}).items() if k not in _ASSIGNMENT_READ_ONLY}
    written: dict = {"properties": copy.deepcopy(properties)}
    if body.get("location"):
        written["location"] = body["location"]
    identity = body.get("identity") or {}
    if identity.get("type") and identity["type"] != "None":
        written["identity"] = {"type": identity["type"]}
        if identity.get("userAssignedIdentities"):
            written["identity"]["userAssignedIdentities"] = {key: {} for key in identity["userAssignedIdentities"]}
    return written


def restore_policy_assignment(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    if state.body is None:
        return [Write("PUT", target.text, _writable_assignment(last_good(state, target)))]
    written = _writable_assignment(state.body)
    written["properties"]["enforcementMode"] = "Default"
    return [Write("PUT", target.text, written)]


def assignment_weakened(state: State, settings: Settings) -> bool:
    return state.body is None or (state.body.get("properties") or {}).get("enforcementMode") == "DoNotEnforce"


def governance_approval(target: ResourceId, settings: Settings) -> str:
    return ("restoring a policy assignment is governance, not the app's to impose: a person approves it; an assignment "
            "put back after a deletion is a new instance, and a managed identity it names is new, with none of the old "
            "one's role assignments (a person grants them again)")


ACTIONS = (
    Action("restore_diagnostic_setting", (DIAGNOSTIC_SETTING,),
           ("diagnostic_setting_removed", "diagnostic_setting_not_sending_reads"),
           ("Microsoft.Insights/diagnosticSettings/read", "Microsoft.Insights/diagnosticSettings/write"),
           restore_diagnostic_setting, exposed=diagnostic_setting_missing, unavailable=nothing_to_restore_from),
    Action("restore_policy_assignment", (POLICY_ASSIGNMENT,),
           ("policy_assignment_removed", "policy_assignment_not_enforced"),
           ("Microsoft.Authorization/policyAssignments/read", "Microsoft.Authorization/policyAssignments/write"),
           restore_policy_assignment, exposed=assignment_weakened, approval=governance_approval,
           unavailable=nothing_to_restore_from),
)
