"""What a deployment of this app must declare, derived from the code so that infra/ can be
checked against it: the Event Grid subscriptions each Event Grid function expects (event
types and ARM operations; infra deploys exactly these filters, and replay routes by them),
and every ARM and Log Analytics operation the code can perform (infra's custom role grants
exactly these)."""
from __future__ import annotations

from dataclasses import dataclass

from containment.core.events import WRITE_SUCCESS
from containment.detect import drift_sweep, egress_scan, nsg, role_assignments, storage
from containment.plan.registry import ACTIONS
from containment.record import impact


@dataclass(frozen=True)
class EventSubscription:
    event_types: tuple[str, ...]
    operations: tuple[str, ...]

    def admits(self, event_type: object, operation: object) -> bool:
        # Event Grid's string filters compare case-insensitively.
        return (isinstance(event_type, str) and event_type.lower() in (t.lower() for t in self.event_types)
                and isinstance(operation, str) and operation.lower() in (o.lower() for o in self.operations))


EVENT_SUBSCRIPTIONS: dict[str, EventSubscription] = {
    "storage_exposure": EventSubscription((WRITE_SUCCESS,), storage.OPERATIONS),
    "role_assignment_grant": EventSubscription((WRITE_SUCCESS,), role_assignments.OPERATIONS),
    "nsg_exposure": EventSubscription((WRITE_SUCCESS,), nsg.OPERATIONS),
}


def required_permissions() -> set[str]:
    """Every ARM (and Log Analytics) operation the app's code can perform: what each
    detection path declares it reads, and what each containment action declares."""
    reads = {p for module in (storage, role_assignments, nsg, egress_scan, drift_sweep, impact)
             for p in module.PERMISSIONS}
    return reads | {p for action in ACTIONS.values() for p in action.permissions}
