"""From findings to a decision: which containment actions, on which resources, and whether
to act now, record what would be done, or only report. Pure: no I/O."""
from __future__ import annotations

from dataclasses import dataclass, field

from containment.catalogue import ACTIONS, action_for
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


def decide(findings: list[Finding], settings: Settings) -> Decision:
    if not findings:
        return Decision("compliant", "no rule found an exposure")
    plan = []
    for finding in findings:
        action = action_for(finding.rule)
        if action is not None and finding.rule in settings.auto_contain:
            step = PlannedAction(action.name, finding.resource_id)
            if step not in plan:
                plan.append(step)
    contained = sorted({f.rule for f in findings if f.rule in settings.auto_contain and action_for(f.rule)})
    no_action = sorted({f.rule for f in findings if not action_for(f.rule)})
    not_chosen = sorted({f.rule for f in findings} - set(contained) - set(no_action))
    only = "; ".join(part for part in (
        f"recorded only (not in CONTAINMENT_AUTO_CONTAIN): {', '.join(not_chosen)}" if not_chosen else "",
        f"recorded only (no containment action exists): {', '.join(no_action)}" if no_action else "") if part)
    if not plan:
        return Decision("reported", only, tuple(findings))
    why = f"contain {', '.join(contained)}" + (f"; {only}" if only else "")
    approvals = sorted({reason for step in plan
                        if (reason := ACTIONS[step.action].approval(parse_resource_id(step.target), settings))})
    if approvals:
        return Decision("pending-approval", f"{why}: {'; '.join(approvals)}", tuple(findings), tuple(plan))
    if not settings.enforcing:
        return Decision("would-contain", f"{why} (CONTAINMENT_MODE is dry-run: nothing changed)", tuple(findings),
                        tuple(plan))
    return Decision(CONTAIN, why, tuple(findings), tuple(plan))
