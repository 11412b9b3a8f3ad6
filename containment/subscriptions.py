"""The Event Grid subscriptions this app's functions expect: which event types and which
ARM operations each Event Grid function is sent. infra/ deploys exactly these filters
(advanced filter StringIn on data.operationName); scenario replay routes by them."""
from __future__ import annotations

from dataclasses import dataclass

from containment.events import WRITE_SUCCESS
from containment.nsg_exposure import OPERATIONS as NSG_OPERATIONS
from containment.role_assignments import OPERATIONS as ROLE_ASSIGNMENT_OPERATIONS
from containment.storage_exposure import OPERATIONS as STORAGE_OPERATIONS


@dataclass(frozen=True)
class EventSubscription:
    event_types: tuple[str, ...]
    operations: tuple[str, ...]

    def admits(self, event_type: object, operation: object) -> bool:
        # Event Grid's string filters compare case-insensitively.
        return (isinstance(event_type, str) and event_type.lower() in (t.lower() for t in self.event_types)
                and isinstance(operation, str) and operation.lower() in (o.lower() for o in self.operations))


EVENT_SUBSCRIPTIONS: dict[str, EventSubscription] = {
    "storage_exposure": EventSubscription((WRITE_SUCCESS,), STORAGE_OPERATIONS),
    "role_assignment_grant": EventSubscription((WRITE_SUCCESS,), ROLE_ASSIGNMENT_OPERATIONS),
    "nsg_exposure": EventSubscription((WRITE_SUCCESS,), NSG_OPERATIONS),
}
