"""From findings to a decision: which containment actions, on which resources, and whether
to act now, record what would be done, or only report. Pure: no I/O."""
from __future__ import annotations

from dataclasses import dataclass, field

from containment.catalogue import ACTIONS, RULES, action_for
from containment.findings import Finding
from containment.resource_ids import parse_resource_id
from containment.settings import Settings

OUTCOMES = ("contained", "would-contain", "pending-approval", "reported", "compliant", "exempt",
            "ignored", "failed", "rejected")
# A decision to act is carried out by the containment function; its record then says
# `contained` or `failed`. CONTAIN is that decision, never a recorded outcome.
CONTAIN = "contain"


@dataclass(frozen=True)
class PlannedAction:
    action: str
    target: str  # ARM ID of the resource the action changes

    def as_dict(self) -> dict[str, str]:
        return {"action": self.action, "target": self.target}


@dataclass(frozen=True)
class Decision:
    outcome: str
    reason: str
    findings: tuple[Finding, ...] = ()
    plan: tuple[PlannedAction, ...] = field(default=())
    awaiting: tuple[PlannedAction, ...] = field(default=())  # held back for a person's approval


def plan_for(findings: list[Finding], settings: Settings) -> tuple[list[PlannedAction], str]:
    """Which actions contain these findings under these settings, and what is only recorded.

    Most rules name the one action that contains them (CONTAINMENT_AUTO_CONTAIN chooses
    which run); egress findings are contained by severity (CONTAINMENT_EGRESS_CONTAINMENT)."""
    plan, contained, not_chosen, no_action = [], set(), set(), set()
    for finding in findings:
        if RULES[finding.rule].contained_by_severity:
            names = settings.egress_containment.get(finding.severity, ())
            (contained if names else not_chosen).add(finding.rule)
        else:
            action = action_for(finding.rule)
            names = (action.name,) if action and finding.rule in settings.auto_contain else ()
            (contained if names else no_action if action is None else not_chosen).add(finding.rule)
        for name in names:
            step = PlannedAction(name, finding.resource_id)
            if step not in plan:
                plan.append(step)
    reasons = [f"contain {', '.join(sorted(contained))}" if contained else "",
               f"recorded only (not chosen for automatic containment): {', '.join(sorted(not_chosen))}"
               if not_chosen else "",
               f"recorded only (no containment action exists): {', '.join(sorted(no_action))}" if no_action else ""]
    return plan, "; ".join(r for r in reasons if r)


def approval_needed(step: PlannedAction, settings: Settings) -> str | None:
    if step.action in settings.approval_actions:
        return f"{step.action} waits for a person (CONTAINMENT_APPROVAL_ACTIONS)"
    return ACTIONS[step.action].approval(parse_resource_id(step.target), settings)


def decide(findings: list[Finding], settings: Settings) -> Decision:
    if not findings:
        return Decision("compliant", "no rule found an exposure")
    plan, why = plan_for(findings, settings)
    if not plan:
        return Decision("reported", why, tuple(findings))
    approvals = {step: reason for step in plan if (reason := approval_needed(step, settings))}
    held = "; ".join(sorted(set(approvals.values())))
    runnable = tuple(step for step in plan if step not in approvals)
    awaiting = tuple(step for step in plan if step in approvals)
    if not runnable:
        return Decision("pending-approval", f"{why}: {held}", tuple(findings), awaiting, awaiting)
    if awaiting:
        why += f"; held for approval: {held}"
    if not settings.enforcing:
        return Decision("would-contain", f"{why} (CONTAINMENT_MODE is dry-run: nothing changed)", tuple(findings),
                        runnable, awaiting)
    return Decision(CONTAIN, why, tuple(findings), runnable, awaiting)
