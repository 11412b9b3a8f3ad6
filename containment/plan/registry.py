"""Every rule and every containment action the app knows, and the names settings may use.
Importing this module is how they are found: each family module declares its rules
(containment.judge) or actions (containment.plan) as data, and this collects them."""
from __future__ import annotations

from containment.core.settings import Vocabulary
from containment.judge.registry import RULES, judge
from containment.plan import key_vault, keys, nsg, replication, restore, roles, storage
from containment.plan.action import Action

__all__ = ["ACTIONS", "RULES", "VOCABULARY", "action_for", "judge"]

FAMILIES = (storage, replication, keys, roles, nsg, key_vault, restore)
ACTIONS: dict[str, Action] = {}
for _family in FAMILIES:
    for _action in _family.ACTIONS:
        if _action.name in ACTIONS:
            raise ValueError(f"action {_action.name} is declared twice")
        for _rule in _action.fixed_rules:
            if _rule not in RULES:
                raise ValueError(f"action {_action.name} fixes {_rule}, which no rule declares")
            if any(_rule in other.fixed_rules for other in ACTIONS.values()):
                raise ValueError(f"rule {_rule} is fixed by two actions: which one contains it must be one answer")
        ACTIONS[_action.name] = _action

VOCABULARY = Vocabulary(actions=frozenset(ACTIONS),
                        containable_rules=frozenset(rule for a in ACTIONS.values() for rule in a.fixed_rules))


def action_for(rule_id: str) -> Action | None:
    """The action that contains a rule's finding, or None where only recording is possible."""
    return next((action for action in ACTIONS.values() if rule_id in action.fixed_rules), None)
