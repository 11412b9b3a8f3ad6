"""Azure Resource Manager events from the subscription system topic, parsed strictly.

An event is only a hint that something changed: it carries no resource properties, so the
app re-reads the resource. What the event does tell us, and the ledger keeps, is which
resource, which operation, when, who (the caller's claims and the role that let them) and,
where ARM records the request, from which address. A write is ResourceWriteSuccess; a POST
action (listKeys, ListAccountSas) is ResourceActionSuccess; a delete (a policy assignment, a
diagnostic setting) is ResourceDeleteSuccess
(https://learn.microsoft.com/azure/event-grid/event-schema-subscriptions). Each Event Grid
function accepts only the event types its subscription admits (EventSubscription): any other
is refused, so a misrouted event is a `rejected` record, never judged as something else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from containment.core.ids import MalformedResourceId, ResourceId, parse_resource_id

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
ACTION_SUCCESS = "Microsoft.Resources.ResourceActionSuccess"
DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"
_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
_UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
MAX_ID_LENGTH = 256


class MalformedEvent(ValueError):
    """The event cannot be trusted or understood; `event_id` where it had a usable one."""

    def __init__(self, reason: str, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


@dataclass(frozen=True)
class EventSubscription:
    """What an Event Grid function's subscription admits: its event types, and the ARM
    operations of its advanced filter on data.operationName. infra/ deploys exactly these
    filters (containment.deployment), replay routes by them, and the function refuses any
    other event type."""

    event_types: tuple[str, ...]
    operations: tuple[str, ...]

    def admits(self, event_type: object, operation: object) -> bool:
        return self.admits_type(event_type) and isinstance(operation, str) and operation.lower() in (
            o.lower() for o in self.operations)

    def admits_type(self, event_type: object) -> bool:
        # Event Grid's string filters compare case-insensitively.
        return isinstance(event_type, str) and event_type.lower() in (t.lower() for t in self.event_types)


@dataclass(frozen=True)
class Actor:
    """Who made the change, from the event's claims (what ARM authenticated) and its
    authorization evidence (`principalType`: User, Group, ServicePrincipal, ...)."""

    object_id: str | None = None
    app_id: str | None = None
    name: str | None = None
    principal_type: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("object_id", self.object_id), ("app_id", self.app_id), ("name", self.name),
                                  ("principal_type", self.principal_type)) if v}


@dataclass(frozen=True)
class ArmEvent:
    id: str
    type: str
    time: datetime | None
    operation: str
    resource: ResourceId
    actor: Actor = field(default_factory=Actor)
    # data.httpRequest.clientIpAddress: where the request came from (ARM records it for
    # actions and deletes; the write sample has no httpRequest).
    client_address: str | None = None
    # data.authorization.evidence: the role assignment that allowed the operation.
    authorization: dict[str, str] = field(default_factory=dict)


def envelope(event: Any) -> tuple[str | None, str | None, str | None, datetime | None, Any]:
    """(id, type, subject, time, data) from the Functions host's EventGridEvent or CloudEvent."""
    if hasattr(event, "event_type"):  # Event Grid schema
        return event.id, event.event_type, event.subject, event.event_time, event.get_json()
    return event.id, event.type, event.subject, event.time, event.get_json()


def parse_event(event: Any, accepted: tuple[str, ...] = (WRITE_SUCCESS,)) -> ArmEvent:
    """The event, if its type is one of `accepted` (what the function's subscription admits)."""
    event_id, event_type, subject, time, data = envelope(event)
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ID_LENGTH:
        raise MalformedEvent(f"event id must be a non-empty string of at most {MAX_ID_LENGTH} characters, "
                             f"got {_show(event_id)}")
    if event_type not in accepted:
        raise MalformedEvent(f"eventType {_show(event_type)} is not {' or '.join(accepted)}", event_id)
    if not isinstance(data, dict):
        raise MalformedEvent(f"data must be a JSON object, got {type(data).__name__}", event_id)
    operation = data.get("operationName")
    if not isinstance(operation, str) or not operation:
        raise MalformedEvent(f"data.operationName must be a string, got {_show(operation)}", event_id)
    target = data.get("resourceUri", subject)
    try:
        resource = parse_resource_id(target)
    except MalformedResourceId as error:
        raise MalformedEvent(f"data.resourceUri/subject: {error}", event_id) from None
    if isinstance(subject, str) and subject.lower() != resource.key:
        raise MalformedEvent(f"subject {_show(subject)} and data.resourceUri {_show(target)} name different "
                             "resources", event_id)
    claimed = data.get("subscriptionId")
    if claimed is not None and (not isinstance(claimed, str) or claimed.lower() != resource.subscription):
        raise MalformedEvent(f"data.subscriptionId {_show(claimed)} is not the resource's subscription "
                             f"{resource.subscription}", event_id)
    if time is not None and time.tzinfo is None:
        time = time.replace(tzinfo=timezone.utc)
    request = data.get("httpRequest") if isinstance(data.get("httpRequest"), dict) else {}
    evidence = _evidence(data)
    return ArmEvent(id=event_id, type=event_type, time=time, operation=operation, resource=resource,
                    actor=_actor(data, evidence), client_address=_text(request.get("clientIpAddress")),
                    authorization={name: value for name in _GRANT if (value := _text(evidence.get(name)))})


# What the authorization evidence says of the grant that allowed the operation.
_GRANT = ("role", "roleAssignmentScope", "roleAssignmentId", "roleDefinitionId")


def _evidence(data: dict) -> dict:
    evidence = (data.get("authorization") or {}).get("evidence") if isinstance(data.get("authorization"), dict) else {}
    return evidence if isinstance(evidence, dict) else {}


def _text(value: Any) -> str | None:
    return value.strip()[:256] if isinstance(value, str) and value.strip() else None


def _actor(data: dict, evidence: dict) -> Actor:
    claims = data.get("claims") if isinstance(data.get("claims"), dict) else {}
    return Actor(
        object_id=_text(claims.get(_OID) or claims.get("oid") or evidence.get("principalId")),
        app_id=_text(claims.get("appid") or claims.get("azp")),
        name=_text(claims.get("name") or claims.get(_UPN) or claims.get("upn")),
        principal_type=_text(evidence.get("principalType")),
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
