"""Putting a guardrail back (guardrail rules: containment.judge.guardrails).

- A diagnostic setting is restored automatically in enforce: it is the app's own signal, and
  it gives no one access to anything. What is written is built from scratch: the workspace
  of CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID and the last good body's log and metric
  categories, never another destination (an Event Hub someone added is not the app's to put
  back). Without that setting, or with a last good body that no longer sends reads there,
  nothing is restored; once another setting of the blob service sends the reads, it is moot.
- A policy assignment is restored only with a person's approval, always: governance is not
  the app's to impose, and a policy can deny or change what teams deploy. A deleted or
  weakened one is put back from its last good body, never from its current (tampered) one;
  without a last good body, only one whose one weakening is DoNotEnforce is put back, as it
  is with `enforcementMode: Default`. An assignment put back after a deletion is a new
  instance (the spec's `instanceId` "only and always changes when the assignment is deleted
  and recreated"): a system-assigned identity it names is a new principal, with none of the
  old one's role assignments, which a person grants again (the app never writes role assignments).
- A finding that leaves nothing to restore from is recorded, saying why (Action.unavailable).
"""
from __future__ import annotations

import copy

from containment.core.findings import Finding
from containment.core.ids import DIAGNOSTIC_SETTING, POLICY_ASSIGNMENT, ResourceId
from containment.core.settings import Settings
from containment.judge.guardrails import NEEDS_WORKSPACE, sends_reads, weakened_fields
from containment.plan.action import Action, CannotContain, State, Write

# PolicyAssignmentProperties the spec marks readOnly (2025-03-01): never sent back.
_ASSIGNMENT_READ_ONLY = ("scope", "instanceId", "latestDefinitionVersion", "effectiveDefinitionVersion")


def _finding(state: State, target: ResourceId) -> dict:
    """The evidence of the decision's finding on this target ({} where it holds none)."""
    for finding in state.facts.get("findings") or []:
        if str(finding.get("resource_id", "")).lower() == target.key:
            return finding.get("evidence") or {}
    return {}


def _kept(state: State, target: ResourceId) -> dict | None:
    """The last good body the decision's finding on this target carries, or None."""
    kept = _finding(state, target).get("lastGood")
    return kept["body"] if kept else None


def diagnostic_unrestorable(finding: Finding, settings: Settings) -> str | None:
    """Why a diagnostic setting finding leaves nothing to restore: no workspace configured to
    send to, no last good body, or one that no longer sends reads there under today's settings."""
    workspace = settings.log_workspace_resource_id
    if not workspace:
        return NEEDS_WORKSPACE
    kept = finding.evidence.get("lastGood")
    if not kept:
        return str(finding.evidence.get("restore") or "no last good body was recorded")
    sending, why = sends_reads(kept["body"], workspace)
    return None if sending else f"its last good body no longer sends reads where the app looks: {why}"


def restore_diagnostic_setting(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    """Built from scratch: the configured workspace, and the last good body's log and metric
    categories; never another destination the kept body may name."""
    kept = _kept(state, target)
    workspace = settings.log_workspace_resource_id
    if kept is None or not workspace:
        raise CannotContain(f"{target.text}: {NEEDS_WORKSPACE if not workspace else 'no last good body to restore from'}")
    sending, why = sends_reads(kept, workspace)
    if not sending:
        raise CannotContain(f"{target.text}: its last good body no longer sends reads where the app looks: {why}")
    properties = kept.get("properties") or {}
    written = {"workspaceId": workspace, "logs": copy.deepcopy(properties.get("logs") or [])}
    for name in ("metrics", "logAnalyticsDestinationType"):
        if properties.get(name):
            written[name] = copy.deepcopy(properties[name])
    return [Write("PUT", target.text, {"properties": written})]


def diagnostic_setting_missing(state: State, settings: Settings) -> bool:
    return state.body is None or not sends_reads(state.body, settings.log_workspace_resource_id)[0]


def reads_delivered_by_another(state: State, settings: Settings) -> str | None:
    """Why restoring is moot: another setting of the blob service (read with the target:
    containment.adapters.arm.read_state) sends StorageRead to the workspace by now."""
    workspace = settings.log_workspace_resource_id
    delivering = [setting["id"] for setting in state.facts.get("siblings", ()) if sends_reads(setting, workspace)[0]]
    return (f"another setting of its blob service, {delivering[0]}, sends StorageRead to the workspace the app scans"
            if delivering else None)


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


def assignment_unrestorable(finding: Finding, settings: Settings) -> str | None:
    """A removed or weakened assignment is restored from its last good body; without one,
    only an assignment whose one change is DoNotEnforce is, from itself."""
    if finding.evidence.get("lastGood") or finding.evidence.get("weakened") == ["enforcementMode"]:
        return None
    return str(finding.evidence.get("restore") or "no last good body was recorded")


def restore_policy_assignment(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    kept = _kept(state, target)
    if kept is not None:
        # Never the current body: whatever else was changed in it is not put back as good.
        return [Write("PUT", target.text, _writable_assignment(kept))]
    if state.body is None or weakened_fields(state.body, None, _finding(state, target).get("covers") or []) != [
            "enforcementMode"]:
        raise CannotContain(f"{target.text}: no last good body to restore from, and more than its enforcementMode is "
                            "weakened")
    written = _writable_assignment(state.body)
    written["properties"]["enforcementMode"] = "Default"
    return [Write("PUT", target.text, written)]


def assignment_weakened(state: State, settings: Settings) -> bool:
    target = state.facts["target"]
    return state.body is None or bool(weakened_fields(state.body, _kept(state, target),
                                                      _finding(state, target).get("covers") or []))


def governance_approval(target: ResourceId, settings: Settings) -> str:
    return ("restoring a policy assignment is governance, not the app's to impose: a person approves it; an assignment "
            "put back after a deletion is a new instance, and a managed identity it names is new, with none of the old "
            "one's role assignments (a person grants them again)")


ACTIONS = (
    Action("restore_diagnostic_setting", (DIAGNOSTIC_SETTING,),
           ("diagnostic_setting_removed", "diagnostic_setting_not_sending_reads"),
           ("Microsoft.Insights/diagnosticSettings/read", "Microsoft.Insights/diagnosticSettings/write"),
           restore_diagnostic_setting, exposed=diagnostic_setting_missing, moot=reads_delivered_by_another,
           unavailable=diagnostic_unrestorable),
    Action("restore_policy_assignment", (POLICY_ASSIGNMENT,),
           ("policy_assignment_removed", "policy_assignment_not_enforced"),
           ("Microsoft.Authorization/policyAssignments/read", "Microsoft.Authorization/policyAssignments/write"),
           restore_policy_assignment, exposed=assignment_weakened, approval=governance_approval,
           unavailable=assignment_unrestorable),
)
