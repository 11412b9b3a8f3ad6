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

A record that a Table entity cannot hold keeps its largest fields in one blob of the
evidence container (CONTAINMENT_EVIDENCE_CONTAINER), `<decision key>/<sha256>.json`, which
its entity names with the digest; reading the record joins them again (split_record, Ledger._entity).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any, Iterator

from containment.core.records import Claim, DecisionRecord

# Table Storage's limits (https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model):
# an entity holds at most 1 MiB in at most 255 properties (three of them the system's), and a
# string property at most 64 KiB of UTF-16, 32K characters. A record has a fixed set of fields,
# one property each (far below 255); what would break the other two limits is kept in a blob.
MAX_ENTITY_BYTES = 1024 * 1024
MAX_STRING_UNITS = 32 * 1024
# The keys (each at most 1 KiB) and the few properties added beside a record (a claim's state
# and holder, `provisional`, the evidence blob's name and digest) are given this much of the
# entity; the record gets the rest.
_KEYS_AND_MARKERS = 4 * 1024
_JSON_FIELDS = ("actions", "findings", "plan", "awaiting_approval", "actor", "before", "after", "rules",
                "full_evidence")
# Bounded by construction and read without the blob (the key, what was decided, when):
# these never move out of the entity.
_KEPT = ("key", "outcome", "mode", "decided_at", "recorded_at")
# Where the rest of an oversized record is, and its digest: the blob is named by the decision
# and by the SHA-256 of its content, so the decision, its by-day copy and its claim share it.
EVIDENCE_BLOB, EVIDENCE_SHA256 = "evidence_blob", "evidence_sha256"
UNRESOLVED = "unresolved"


class EvidenceUnreadable(RuntimeError):
    """A record's evidence blob is missing or does not match the digest its entity keeps."""


def resource_key(resource_id: str | None) -> str:
    return resource_id.lower().replace("/", "|") if resource_id else UNRESOLVED


def resource_partition(resource_id: str | None) -> str:
    return "resource " + resource_key(resource_id)


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _property_bytes(name: str, value: Any) -> int:
    """A property's size as Table Storage counts it: 8 bytes, its name in UTF-16, and its
    value (a string: 4 bytes and its UTF-16; a bool 1 byte; a number 8). The formula is
    Microsoft's: https://learn.microsoft.com/en-us/archive/blogs/avkashchauhan/how-the-size-of-an-entity-is-caclulated-in-windows-azure-table-storage"""
    if isinstance(value, str):
        size = 4 + 2 * _utf16_units(value)
    elif isinstance(value, bool):
        size = 1
    else:
        size = 8
    return 8 + 2 * _utf16_units(name) + size


def _fits(properties: dict[str, Any]) -> bool:
    return (all(_utf16_units(v) <= MAX_STRING_UNITS for v in properties.values() if isinstance(v, str))
            and 4 + sum(_property_bytes(n, v) for n, v in properties.items())
            <= MAX_ENTITY_BYTES - _KEYS_AND_MARKERS)


def split_record(record: DecisionRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the record's properties as the entity keeps them, the fields that move to the
    evidence blob): the largest fields move, one at a time, until the rest fits a Table
    entity, so whatever the input (400 callers, an NSG of 1,000 rules before and after)
    the record is written, and a small record is kept whole in its entity."""
    values = {name: value for name, value in asdict(record).items() if value is not None}
    properties = {name: json.dumps(value) if name in _JSON_FIELDS else value for name, value in values.items()}
    moved: dict[str, Any] = {}
    while not _fits(properties):
        name = max((n for n in properties if n not in _KEPT), key=lambda n: _property_bytes(n, properties[n]))
        del properties[name]
        moved[name] = values[name]
    return properties, moved


def from_properties(entity: dict[str, Any], moved: dict[str, Any]) -> DecisionRecord:
    values = {}
    for name in DecisionRecord.__dataclass_fields__:
        if name in moved:
            values[name] = moved[name]
        elif name in entity:
            values[name] = json.loads(_joined(entity, name)) if name in _JSON_FIELDS else entity[name]
    return DecisionRecord(**values)


def _joined(entity: dict[str, Any], name: str) -> str:
    """A JSON field's text. Ledgers written before evidence blobs split long fields over
    numbered properties (`before`, `before_1`, ...): their records stay readable."""
    text, n = entity[name], 1
    while f"{name}_{n}" in entity:
        text, n = text + entity[f"{name}_{n}"], n + 1
    return text


def _day_key(decided_at: str | None, key: str) -> tuple[str, str]:
    decided = decided_at or ""
    return "day " + decided[:10], f"{decided} {key}"


class Ledger:
    """Adapter over one TableClient, and the blob container that keeps what a Table entity
    cannot hold. It records; it does not decide."""

    def __init__(self, table, evidence):
        self.table, self.evidence = table, evidence

    @classmethod
    def open(cls, table_service, name: str, evidence_container) -> "Ledger":
        from containment.adapters.clients import Recreating

        table = Recreating(table_service.get_table_client(name), lost="TableNotFound", create="create_table")
        table.recreate()
        # The container is made when the first oversized record needs it (or storage lost it).
        return cls(table, Recreating(evidence_container, lost="ContainerNotFound", create="create_container"))

    # -- records as entities: what does not fit goes to the evidence blob ---------------------
    def _entity(self, record: DecisionRecord, partition: str, row: str, **markers: Any) -> dict[str, Any]:
        """The record as a Table entity. What does not fit is written first to a blob named by
        the decision and its digest, which the entity names: an entity never refers to a blob
        that is not there."""
        properties, moved = split_record(record)
        if moved:
            content = json.dumps(moved, sort_keys=True, separators=(",", ":")).encode()
            digest = hashlib.sha256(content).hexdigest()
            name = f"{record.key}/{digest}.json"
            self._keep(name, content)
            properties.update({EVIDENCE_BLOB: name, EVIDENCE_SHA256: digest})
        return {**properties, **markers, "PartitionKey": partition, "RowKey": row}

    def _keep(self, name: str, content: bytes) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        try:  # never overwritten: the name is the content's digest, so what is there is the same
            self.evidence.upload_blob(name, content, overwrite=False,
                                      content_settings=ContentSettings(content_type="application/json"))
        except ResourceExistsError:
            pass

    def _record(self, entity: dict[str, Any]) -> DecisionRecord:
        """The whole record again, from its entity and, where it has one, its evidence blob,
        checked against the digest the entity keeps (fail closed: altered evidence is an error)."""
        from azure.core.exceptions import ResourceNotFoundError

        moved = {}
        if EVIDENCE_BLOB in entity:
            name = entity[EVIDENCE_BLOB]
            try:
                content = self.evidence.download_blob(name).readall()
            except ResourceNotFoundError:
                raise EvidenceUnreadable(f"decision {entity['key']}: its evidence blob {name} is missing") from None
            if hashlib.sha256(content).hexdigest() != entity[EVIDENCE_SHA256]:
                raise EvidenceUnreadable(f"decision {entity['key']}: its evidence blob {name} does not match the "
                                         f"SHA-256 its record keeps ({entity[EVIDENCE_SHA256]})")
            moved = json.loads(content)
        return from_properties(entity, moved)

    def write(self, record: DecisionRecord, provisional: bool = False) -> DecisionRecord | None:
        """Insert the decision unless one with its key exists; the record as written (with
        the time it was recorded) when this call wrote it, else None.

        A provisional record (a failure that a later delivery may still overcome) is kept
        until a final record for the same key replaces it: the last failure leaves evidence,
        and an event that succeeds on retry still ends with exactly one record."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        record = replace(record, recorded_at=f"{time.time_ns():020d}")
        entity = self._entity(record, resource_partition(record.resource_id), record.key,
                              **({"provisional": True} if provisional else {}))
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
            self.table.delete_entity(*_day_key(existing.get("decided_at"), existing["key"]))
        partition, row = _day_key(record.decided_at, record.key)
        self.table.upsert_entity({**entity, "PartitionKey": partition, "RowKey": row})
        if record.outcome == "pending-approval" or record.awaiting_approval:
            self.keep_pending(record)
        return record

    def keep_pending(self, record: DecisionRecord) -> None:
        """List the decision as waiting for a person: one partition, so approval finds it by key."""
        self.table.upsert_entity({"PartitionKey": "pending", "RowKey": record.key,
                                  "resource_id": record.resource_id, "decided_at": record.decided_at or ""})

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
    def exempt(self, scope: str, reason: str, owner: str, expires_at: str, created_by: str, created_at: str,
               rules: list[str] | None = None) -> None:
        """`rules`: the findings' rules it covers (a release's); None: every rule."""
        self.table.upsert_entity({"PartitionKey": "exemption", "RowKey": scope.lower().replace("/", "|"),
                                  "scope": scope, "reason": reason, "owner": owner, "expires_at": expires_at,
                                  "created_by": created_by, "created_at": created_at,
                                  **({"rules": json.dumps(sorted(rules))} if rules is not None else {})})

    def exemptions(self) -> list[dict]:
        keep = ("scope", "reason", "owner", "expires_at", "created_by", "created_at")
        return [{**{k: e.get(k) for k in keep}, "rules": json.loads(e["rules"]) if "rules" in e else None}
                for e in self.table.query_entities("PartitionKey eq 'exemption'")]

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
            return self._record(self.table.get_entity(resource_partition(resource_id), key))
        except ResourceNotFoundError:
            return None

    # -- claims: who carries out an event's containment -------------------------------
    def claim(self, decision: DecisionRecord) -> tuple[bool, Claim]:
        """Claim a decision's containment of its resource, keeping the decision on the claim:
        (True, claim) when this call made it, else (False, the existing claim)."""
        from azure.core.exceptions import ResourceExistsError

        entity = self._entity(decision, f"claim {decision.key}", resource_key(decision.resource_id),
                              state="new", holder="")
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
        decision = self._record(entity) if "outcome" in entity else None  # a claim from before claims kept it
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
        return sorted((self._record(e) for e in entities), key=lambda r: r.recorded_at)

    def for_resource(self, resource_id: str) -> Iterator[DecisionRecord]:
        partition = resource_partition(resource_id)
        for entity in self.table.query_entities("PartitionKey eq @p", parameters={"p": partition}):
            yield self._record(entity)

    def for_day(self, day: datetime) -> Iterator[DecisionRecord]:
        partition = "day " + day.strftime("%Y-%m-%d")
        for entity in self.table.query_entities("PartitionKey eq @p", parameters={"p": partition}):
            yield self._record(entity)
