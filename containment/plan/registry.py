"""Every rule and every containment action the app knows, and the names settings may use.
Importing this module is how they are found: each family module declares its rules
(containment.judge) or actions (containment.plan) as data, and this collects them."""
from __future__ import annotations

from containment.core.settings import Vocabulary
from containment.judge.registry import RULES, judge
from containment.plan import keys, nsg, replication, restore, roles, storage
from containment.plan.action import Action

__all__ = ["ACTIONS", "RULES", "VOCABULARY", "action_for", "judge"]

FAMILIES = (storage, replication, keys, roles, nsg, restore)
ACTIONS: dict[str, Action] = {}
for _family in FAMILIES:
    for _action in _family.ACTIONS:
        if _action.name in ACTIONS:
            raise ValueError(f"action {_action.name} is declared twice")
        if _action.fixes is not None and _action.fixes not in RULES:
            raise ValueError(f"action {_action.name} fixes {_action.fixes}, which no rule declares")
        ACTIONS[_action.name] = _action

VOCABULARY = Vocabulary(actions=frozenset(ACTIONS),
                        containable_rules=frozenset(a.fixes for a in ACTIONS.values() if a.fixes))


def action_for(rule_id: str) -> Action | None:
    """The action that contains a rule's finding, or None where only recording is possible."""
    return next((action for action in ACTIONS.values() if action.fixes == rule_id), None)
