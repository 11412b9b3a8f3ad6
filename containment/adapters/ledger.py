"""The decision ledger in Table Storage: the evidence an auditor asks for.

One table (CONTAINMENT_LEDGER_TABLE) holds every kind of entity the app keeps:

| kind     | PartitionKey                 | RowKey                      | answers                            |
|----------|------------------------------|-----------------------------|------------------------------------|
| decision | `resource <resource id>`     | `<decision key>`            | everything about this resource     |
| by-day   | `day <YYYY-MM-DD>`           | `<decided at> <decision key>` | everything decided on this day   |
| claim    | `claim <decision key>`       | `<resource id>`             | who contains this decision's finding on this resource, in what state, and the decision itself |
| checkpoint | `checkpoint`               | scan name                   | where the egress scan got to       |
| pending  | `pending`                    | `<decision key>`            | what waits for a person's approval |
| exemption | `exemption`                 | `<scope id, '/' as '|'>`    | which scopes are exempt, why, until when |
| budget   | `budget`                     | `containment`, `held`       | actions taken in the last hour (blast radius); when the last hold was notified |
| notification failure | `notification-failure` | `<decision key>` | a notification that could not be published |

The decision key is the Event Grid event ID (sanitised), so the conditional insert of a
decision entity is what makes one delivered event lead to one record, however often Event
Grid redelivers it and however many instances handle it at once. A claim is keyed by the
event and the resource together, as the decision is: an event ID is the sender's to choose,
and one reused for another resource must not inherit the first one's claim. Resource IDs
are lower-cased and '/' becomes '|' (Table keys may not hold '/').
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any, Iterator

from containment.core.records import Claim, DecisionRecord

_CHUNK = 30_000
_JSON_FIELDS = ("actions", "findings", "plan", "awaiting_approval", "actor", "before", "after", "rules")
UNRESOLVED = "unresolved"


def resource_key(resource_id: str | None) -> str:
    return resource_id.lower().replace("/", "|") if resource_id else UNRESOLVED


def resource_partition(resource_id: str | None) -> str:
    return "resource " + resource_key(resource_id)


def to_entity(record: DecisionRecord) -> dict[str, Any]:
    entity: dict[str, Any] = {}
    for name, value in asdict(record).items():
        if value is None:
            continue
        if name not in _JSON_FIELDS:
            entity[name] = value
            continue
        # A Table property holds 32K characters; long evidence (an NSG's full body) is
        # split over numbered properties (an entity holds 1 MiB).
        text = json.dumps(value)
        chunks = [text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
        entity[name] = chunks[0]
        entity.update({f"{name}_{n}": chunk for n, chunk in enumerate(chunks[1:], 1)})
    entity["PartitionKey"] = resource_partition(record.resource_id)
    entity["RowKey"] = record.key
    return entity


def from_entity(entity: dict[str, Any]) -> DecisionRecord:
    values = {}
    for name in DecisionRecord.__dataclass_fields__:
        if name not in entity:
            continue
        if name not in _JSON_FIELDS:
            values[name] = entity[name]
            continue
        text, n = entity[name], 1
        while f"{name}_{n}" in entity:
            text, n = text + entity[f"{name}_{n}"], n + 1
        values[name] = json.loads(text)
    return DecisionRecord(**values)


def _day_key(record: DecisionRecord) -> tuple[str, str]:
    decided = record.decided_at or ""
    return "day " + decided[:10], f"{decided} {record.key}"


class Ledger:
    """Adapter over one TableClient. It records; it does not decide."""

    def __init__(self, table):
        self.table = table

    @classmethod
    def open(cls, table_service, name: str) -> "Ledger":
        from containment.adapters.clients import Recreating

        table = Recreating(table_service.get_table_client(name), lost="TableNotFound", create="create_table")
        table.recreate()
        return cls(table)

    def write(self, record: DecisionRecord, provisional: bool = False) -> DecisionRecord | None:
        """Insert the decision unless one with its key exists; the record as written (with
        the time it was recorded) when this call wrote it, else None.

        A provisional record (a failure that a later delivery may still overcome) is kept
        until a final record for the same key replaces it: the last failure leaves evidence,
        and an event that succeeds on retry still ends with exactly one record."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        record = replace(record, recorded_at=f"{time.time_ns():020d}")
        entity = {**to_entity(record), **({"provisional": True} if provisional else {})}
        try:
            self.table.create_entity(entity)
        except ResourceExistsError:
            existing = self.table.get_entity(entity["PartitionKey"], entity["RowKey"])
            if provisional or not existing.get("provisional"):
                return None
            try:  # ETag-guarded: of two deliveries that both succeed, one replaces it
                self.table.update_entity(entity, mode="replace", etag=existing.metadata["etag"],
                                         match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                return None
            self.table.delete_entity(*_day_key(from_entity(existing)))
        partition, row = _day_key(record)
        self.table.upsert_entity({**entity, "PartitionKey": partition, "RowKey": row})
        if record.outcome == "pending-approval" or record.awaiting_approval:
            # What waits for a person is listed in one partition, so approval finds it by key.
            self.table.upsert_entity({"PartitionKey": "pending", "RowKey": record.key,
                                      "resource_id": record.resource_id, "decided_at": record.decided_at or ""})
        return record

    def decided(self, resource_id: str | None, key: str) -> bool:
        """Whether the event has its final record (a provisional failure is not one)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return not self.table.get_entity(resource_partition(resource_id), key).get("provisional")
        except ResourceNotFoundError:
            return False

    def notification_failed(self, record: DecisionRecord, reason: str) -> None:
        """Keep a failed notification, naming the decision it was about."""
        self.table.upsert_entity({"PartitionKey": "notification-failure", "RowKey": record.key,
                                  "resource_id": record.resource_id, "reason": reason[:30_000]})

    def notification_failures(self) -> list[dict]:
        return [{"decision": e["RowKey"], "resource_id": e["resource_id"], "reason": e["reason"]}
                for e in self.table.query_entities("PartitionKey eq 'notification-failure'")]

    # -- what waits for approval ------------------------------------------------------------
    def pending(self) -> list[dict]:
        return [{"key": e["RowKey"], "resource_id": e["resource_id"], "decided_at": e["decided_at"]}
                for e in self.table.query_entities("PartitionKey eq 'pending'")]

    def take_pending(self, key: str) -> dict | None:
        """Remove a pending approval and return it; None if it is not (or no longer) pending.
        The delete is ETag-guarded: of two people acting at once, one takes it."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            entity = self.table.get_entity("pending", key)
            self.table.delete_entity("pending", key, etag=entity.metadata["etag"],
                                     match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, ResourceModifiedError):
            return None
        return {"key": key, "resource_id": entity["resource_id"], "decided_at": entity["decided_at"]}

    # -- exemptions -------------------------------------------------------------------------
    def exempt(self, scope: str, reason: str, owner: str, expires_at: str, created_by: str, created_at: str) -> None:
        self.table.upsert_entity({"PartitionKey": "exemption", "RowKey": scope.lower().replace("/", "|"),
                                  "scope": scope, "reason": reason, "owner": owner, "expires_at": expires_at,
                                  "created_by": created_by, "created_at": created_at})

    def exemptions(self) -> list[dict]:
        keep = ("scope", "reason", "owner", "expires_at", "created_by", "created_at")
        return [{k: e.get(k) for k in keep} for e in self.table.query_entities("PartitionKey eq 'exemption'")]

    def remove_exemption(self, scope: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.table.get_entity("exemption", scope.lower().replace("/", "|"))
        except ResourceNotFoundError:
            return False
        self.table.delete_entity("exemption", scope.lower().replace("/", "|"))
        return True

    # -- the blast-radius budget ---------------------------------------------------------------
    def spend_budget(self, actions: int, limit: int, now: float) -> int | None:
        """Count `actions` against the limit per rolling hour, across every instance (one
        entity, ETag-guarded): None when spent; when they would exceed it, spending nothing,
        what the last hour has spent. Counts are kept per minute, so the entity stays small
        however busy the hour."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        minute = int(now // 60)
        for _ in range(10):  # contention between instances: read again and retry
            try:
                entity = self.table.get_entity("budget", "containment")
                counts, etag = json.loads(entity["per_minute"]), entity.metadata["etag"]
            except (ResourceNotFoundError, KeyError):
                counts, etag = {}, None
            recent = {m: n for m, n in counts.items() if int(m) > minute - 60}
            if sum(recent.values()) + actions > limit:
                return sum(recent.values())
            recent[str(minute)] = recent.get(str(minute), 0) + actions
            updated = {"PartitionKey": "budget", "RowKey": "containment", "per_minute": json.dumps(recent)}
            try:
                if etag is None:
                    self.table.create_entity(updated)
                else:
                    self.table.update_entity(updated, etag=etag, match_condition=MatchConditions.IfNotModified)
                return None
            except (ResourceExistsError, ResourceModifiedError):
                continue
        raise RuntimeError("the containment budget is contended beyond 10 attempts")

    def first_hold(self, now: float) -> bool:
        """Whether this is the first decision the budget held in the last hour (which alone
        is notified: one alert, not one per finding). ETag-guarded, across instances."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        try:
            entity = self.table.get_entity("budget", "held")
            if now - float(entity["since"]) < 3600:
                return False
            self.table.update_entity({"PartitionKey": "budget", "RowKey": "held", "since": str(now)},
                                     etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified)
        except ResourceNotFoundError:
            try:
                self.table.create_entity({"PartitionKey": "budget", "RowKey": "held", "since": str(now)})
            except ResourceExistsError:
                return False  # another instance's hold came first
        except ResourceModifiedError:
            return False
        return True

    def find(self, resource_id: str | None, key: str) -> DecisionRecord | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return from_entity(self.table.get_entity(resource_partition(resource_id), key))
        except ResourceNotFoundError:
            return None

    # -- claims: who carries out an event's containment -------------------------------
    def claim(self, decision: DecisionRecord) -> tuple[bool, Claim]:
        """Claim a decision's containment of its resource, keeping the decision on the claim:
        (True, claim) when this call made it, else (False, the existing claim)."""
        from azure.core.exceptions import ResourceExistsError

        entity = {**to_entity(decision), "PartitionKey": f"claim {decision.key}",
                  "RowKey": resource_key(decision.resource_id), "state": "new", "holder": ""}
        try:
            written = self.table.create_entity(entity)
            return True, Claim(decision.key, decision.resource_id, "new", "", written["etag"], decision)
        except ResourceExistsError:
            return False, self.get_claim(decision.key, decision.resource_id)

    def get_claim(self, key: str, resource_id: str) -> Claim | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self.table.get_entity(f"claim {key}", resource_key(resource_id))
        except ResourceNotFoundError:
            return None
        decision = from_entity(entity) if "outcome" in entity else None  # a claim from before claims kept it
        return Claim(key, resource_id, entity["state"], entity["holder"], entity.metadata["etag"], decision,
                     bool(entity.get("budget_spent")))

    def move_claim(self, claim: Claim, state: str, holder: str = "", spent: bool = False) -> Claim | None:
        """Move a claim on, if nobody moved it since it was read (ETag); None if somebody did.
        A merge: the decision it carries stays."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            written = self.table.update_entity(
                {"PartitionKey": f"claim {claim.key}", "RowKey": resource_key(claim.resource_id), "state": state,
                 "holder": holder, **({"budget_spent": True} if spent else {})},
                mode="merge", etag=claim.etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return replace(claim, state=state, holder=holder, etag=written["etag"], spent=claim.spent or spent)

    # -- checkpoints: where a scan got to ----------------------------------------------------
    def checkpoint(self, name: str) -> tuple[str | None, str | None]:
        """(the position, its ETag), or (None, None) before the first scan."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self.table.get_entity("checkpoint", name)
        except ResourceNotFoundError:
            return None, None
        return entity["position"], entity.metadata["etag"]

    def advance(self, name: str, position: str, etag: str | None) -> str | None:
        """Move the checkpoint on if nobody else did since it was read; its new ETag, or None."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        entity = {"PartitionKey": "checkpoint", "RowKey": name, "position": position}
        try:
            if etag is None:
                return self.table.create_entity(entity)["etag"]
            return self.table.update_entity(entity, etag=etag, match_condition=MatchConditions.IfNotModified)["etag"]
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return None

    # -- reading for people and replay -------------------------------------------------
    def decisions(self) -> list[DecisionRecord]:
        """Every decision, in the order written."""
        entities = self.table.query_entities("PartitionKey ge 'resource ' and PartitionKey lt 'resource!'")
        return sorted((from_entity(e) for e in entities), key=lambda r: r.recorded_at)

    def for_resource(self, resource_id: str) -> Iterator[DecisionRecord]:
        partition = resource_partition(resource_id)
        for entity in self.table.query_entities("PartitionKey eq @p", parameters={"p": partition}):
            yield from_entity(entity)

    def for_day(self, day: datetime) -> Iterator[DecisionRecord]:
        partition = "day " + day.strftime("%Y-%m-%d")
        for entity in self.table.query_entities("PartitionKey eq @p", parameters={"p": partition}):
            yield from_entity(entity)
