"""Every rule and action the app knows, registered by importing their modules here."""
from containment import egress_rules, nsg_rules, role_rules, storage_rules  # noqa: F401  (register their rules)
from containment.actions import ACTIONS
from containment.rules import RULES

__all__ = ["ACTIONS", "RULES", "action_for", "required_permissions"]


def action_for(rule_id: str):
    """The action that contains a rule's finding, or None where only recording is possible."""
    return next((action for action in ACTIONS.values() if action.fixes == rule_id), None)


def required_permissions() -> set[str]:
    """Every ARM (and Log Analytics) operation the app's code can perform: what assessing
    reads, and what each containment action declares. infra/'s custom role grants these."""
    from containment import drift_sweep, egress_scan, nsg_exposure, role_assignments, storage_exposure

    reads = {p for module in (storage_exposure, role_assignments, nsg_exposure, egress_scan, drift_sweep)
             for p in module.PERMISSIONS}
    return reads | {p for action in ACTIONS.values() for p in action.permissions}
