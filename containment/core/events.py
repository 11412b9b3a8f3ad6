"""Azure Resource Manager events from the subscription system topic, parsed strictly.

An event is only a hint that something changed: it carries no resource properties, so the
app re-reads the resource. What the event does tell us, and the ledger keeps, is which
resource, which operation, when, and who (the caller's claims).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from containment.core.ids import MalformedResourceId, ResourceId, parse_resource_id

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
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
class Actor:
    """Who made the change, from the event's claims (what ARM authenticated)."""

    object_id: str | None = None
    app_id: str | None = None
    name: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("object_id", self.object_id), ("app_id", self.app_id), ("name", self.name)) if v}


@dataclass(frozen=True)
class ArmEvent:
    id: str
    type: str
    time: datetime | None
    operation: str
    resource: ResourceId
    actor: Actor = field(default_factory=Actor)


def envelope(event: Any) -> tuple[str | None, str | None, str | None, datetime | None, Any]:
    """(id, type, subject, time, data) from the Functions host's EventGridEvent or CloudEvent."""
    if hasattr(event, "event_type"):  # Event Grid schema
        return event.id, event.event_type, event.subject, event.event_time, event.get_json()
    return event.id, event.type, event.subject, event.time, event.get_json()


def parse_event(event: Any) -> ArmEvent:
    event_id, event_type, subject, time, data = envelope(event)
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ID_LENGTH:
        raise MalformedEvent(f"event id must be a non-empty string of at most {MAX_ID_LENGTH} characters, "
                             f"got {_show(event_id)}")
    if event_type != WRITE_SUCCESS:
        raise MalformedEvent(f"eventType {_show(event_type)} is not {WRITE_SUCCESS}", event_id)
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
    return ArmEvent(id=event_id, type=event_type, time=time, operation=operation, resource=resource,
                    actor=_actor(data))


def _actor(data: dict) -> Actor:
    claims = data.get("claims") if isinstance(data.get("claims"), dict) else {}
    evidence = (data.get("authorization") or {}).get("evidence") if isinstance(data.get("authorization"), dict) else {}
    evidence = evidence if isinstance(evidence, dict) else {}

    def text(value: Any) -> str | None:
        return value.strip()[:256] if isinstance(value, str) and value.strip() else None

    return Actor(
        object_id=text(claims.get(_OID) or claims.get("oid") or evidence.get("principalId")),
        app_id=text(claims.get("appid") or claims.get("azp")),
        name=text(claims.get("name") or claims.get(_UPN) or claims.get("upn")),
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
