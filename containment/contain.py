"""Carry out one planned action: re-read, change only if still needed, read back, verify.

Idempotent by construction: a redelivered request finds the resource already contained
and changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from containment import resources
from containment.azure import AzureClients
from containment.catalogue import ACTIONS, RULES
from containment.decisions import PlannedAction
from containment.resource_ids import parse_resource_id
from containment.rules import Context
from containment.scope import Protection
from containment.settings import Settings


class NotVerified(RuntimeError):
    """The write was accepted but reading back shows the exposure is still there."""


@dataclass(frozen=True)
class ActionResult:
    action: str
    target: str
    before: dict | None  # None: the resource was already gone
    after: dict | None  # None: the resource no longer exists (deleted, or already gone)
    changed: bool


def still_exposed(action_name: str, body: dict, settings: Settings) -> bool:
    rule = RULES[ACTIONS[action_name].fixes]
    return rule.check(body, Context(settings, Protection(tagged=True, protected_scope=None))) is not None


def carry_out(clients: AzureClients, step: PlannedAction, settings: Settings) -> ActionResult:
    action = ACTIONS[step.action]
    target = parse_resource_id(step.target)
    if not target.is_type(action.resource_type):
        raise ValueError(f"{step.action} applies to {action.resource_type}, not {target.type}")
    try:
        before = resources.read(clients, target)
    except resources.ResourceGone:
        return ActionResult(step.action, step.target, None, None, changed=False)  # nothing left to expose
    if action.change is None:
        resources.delete(clients, target)
        try:
            resources.read(clients, target)
        except resources.ResourceGone:
            return ActionResult(step.action, step.target, before, None, changed=True)
        raise NotVerified(f"{step.action} on {step.target}: ARM accepted the DELETE but the resource is still there")
    if not still_exposed(step.action, before, settings):
        return ActionResult(step.action, step.target, before, before, changed=False)
    resources.patch(clients, target, action.change(before))
    after = resources.read(clients, target)
    if still_exposed(step.action, after, settings):
        raise NotVerified(f"{step.action} on {step.target}: ARM accepted the change but the resource "
                          "still shows the exposure")
    return ActionResult(step.action, step.target, before, after, changed=True)
