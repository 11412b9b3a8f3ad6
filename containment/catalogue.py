"""Every rule and action the app knows, registered by importing their modules here."""
from containment import egress_rules, nsg_rules, role_rules, storage_rules  # noqa: F401  (register their rules)
from containment.actions import ACTIONS
from containment.rules import RULES

__all__ = ["ACTIONS", "RULES", "action_for"]


def action_for(rule_id: str):
    """The action that contains a rule's finding, or None where only recording is possible."""
    return next((action for action in ACTIONS.values() if action.fixes == rule_id), None)
