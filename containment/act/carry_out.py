"""Carry out one planned action: re-read, change only if still needed, read back, verify.

Idempotent by construction: a redelivered request finds the resource already contained
and changes nothing. A write whose precondition fails (someone changed the resource since
it was read: 412) is never forced, and a write whose outcome is unknown (a server error,
a lost answer) is never repeated blindly: the resource is read and judged again.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from containment.adapters import arm
from containment.adapters.clients import AzureClients
from containment.core.ids import parse_resource_id
from containment.core.records import PlannedAction
from containment.core.settings import Settings
from containment.judge.rule import Context
from containment.judge.scope import Protection
from containment.plan.action import AFTER_PREVIOUS, Action, State
from containment.plan.registry import ACTIONS, RULES


class NotVerified(RuntimeError):
    """The write was accepted but reading back shows the exposure is still there."""


@dataclass(frozen=True)
class ActionResult:
    action: str
    target: str
    before: dict | None  # what the ledger keeps (the whole NSG for a rule); None: already gone
    after: dict | None  # None: the resource no longer exists (deleted, or already gone)
    changed: bool
    moot: str | None = None  # why nothing was done: the target is no longer the one judged


def _in_context(state: State, context: dict) -> State:
    """The state with what the decision adds to judging it: when the exposure began and which
    keys (rotation), and for a release what it is to be restored to."""
    return State(state.body, {**state.facts, **context}, state.etag)


def still_exposed(action: Action, state: State, settings: Settings) -> bool:
    if action.exposed is not None:
        return action.exposed(state, settings)
    if state.body is None:
        return False  # nothing left to expose
    context = Context(settings, Protection(tagged=True, protected_scope=None), state.facts)
    return any(RULES[rule].check(state.body, context) is not None for rule in action.fixed_rules)


@dataclass(frozen=True)
class Judged:
    """What the worker knows of a decision when it carries it out: when the exposure began and
    its findings (rotation: which keys, created before when), the state it judged, and for a
    release the states of the released decision (each by resource ID, lower case)."""

    exposed_at: str = ""
    recorded: dict[str, dict] | None = None
    release: dict[str, dict[str, dict]] | None = None  # {"before": ..., "after": ...}
    findings: tuple[dict, ...] = ()  # as the decision record keeps them (Finding.as_dict)

    def context(self, step: PlannedAction) -> dict:
        return {"exposed_at": self.exposed_at, "recorded": self.recorded or {},
                "target": parse_resource_id(step.target), "keys": step.keys,
                "release": self.release or {"before": {}, "after": {}}, "findings": list(self.findings)}


def carry_out(clients: AzureClients, step: PlannedAction, settings: Settings, judged: Judged = Judged(),
              attempts: int = 3) -> ActionResult:
    action = ACTIONS[step.action]
    target = parse_resource_id(step.target)
    if not action.applies_to(target):
        raise ValueError(f"{step.action} does not apply to {target.type}")
    context = judged.context(step)
    sent_from, unknown = None, None  # the state a write went out from whose outcome is unknown
    for _ in range(attempts):
        before = _in_context(arm.read_state(clients, target), context)
        moot = action.moot(before, settings) if action.moot is not None and sent_from is None else None
        if moot is not None:
            return ActionResult(step.action, step.target, before.evidence, before.evidence, changed=False, moot=moot)
        if not still_exposed(action, before, settings):
            if sent_from is not None:  # the write whose answer was lost was carried out
                return ActionResult(step.action, step.target, sent_from.evidence, before.evidence, changed=True)
            return ActionResult(step.action, step.target, before.evidence, before.evidence, changed=False)
        try:
            etag = None
            for write in action.plan(before, target, settings):
                if write.if_match == AFTER_PREVIOUS:
                    write = replace(write, if_match=etag)
                etag = arm.write(clients, write)
        except arm.ChangedConcurrently:
            continue  # someone else changed it since it was read: read and judge it again
        except arm.OutcomeUnknown as error:
            sent_from, unknown = before, error
            continue
        after = _in_context(arm.read_state(clients, target), context)
        if action.verified_by_reading and still_exposed(action, after, settings):
            raise NotVerified(f"{step.action} on {step.target}: ARM accepted the change but the resource "
                              "still shows the exposure")
        return ActionResult(step.action, step.target, before.evidence, after.evidence, changed=True)
    if unknown is not None:
        raise unknown
    raise arm.ChangedConcurrently(f"{step.target} changed under every one of {attempts} attempts")
