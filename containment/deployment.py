"""What a deployment of this app must declare, derived from the code so that infra/ can be
checked against it: the Event Grid subscriptions each Event Grid function expects (event
types and ARM operations; infra deploys exactly these filters, and replay routes by them),
and every ARM and Log Analytics operation the code can perform (infra's custom role grants
exactly these)."""
from __future__ import annotations

from containment.core.events import EventSubscription
from containment.detect import drift_sweep, egress_scan, guardrails, key_access, key_vault, nsg, role_assignments, storage
from containment.plan.registry import ACTIONS
from containment.record import impact

# Each Event Grid function's subscription, as its detection module declares it (and as the
# function itself checks the event types it is given).
EVENT_SUBSCRIPTIONS: dict[str, EventSubscription] = {
    "storage_exposure": storage.SUBSCRIPTION,
    "role_assignment_grant": role_assignments.SUBSCRIPTION,
    "nsg_exposure": nsg.SUBSCRIPTION,
    "storage_key_access": key_access.SUBSCRIPTION,
    "guardrail_change": guardrails.SUBSCRIPTION,
    "key_vault_write": key_vault.SUBSCRIPTION,
}

# The functions an exposure passes through before its containment write: the Event Grid
# function that detects it, then `contain`, the queue-triggered worker. Flex Consumption
# scales each of them on instances of its own, so infra keeps instances of each always
# ready (alwaysReady `function:<name>`, infra/app/function.bicep).
CONTAINMENT_PATH: tuple[str, ...] = (*EVENT_SUBSCRIPTIONS, "contain")


def required_permissions() -> set[str]:
    """Every ARM (and Log Analytics) operation the app's code can perform: what each
    detection path declares it reads, and what each containment action declares."""
    reads = {p for module in (storage, role_assignments, nsg, key_access, key_vault, guardrails, egress_scan,
                              drift_sweep, impact)
             for p in module.PERMISSIONS}
    return reads | {p for action in ACTIONS.values() for p in action.permissions}
