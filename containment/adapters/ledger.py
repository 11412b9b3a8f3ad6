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
| notification failure | `notification-failure` | `<notice id>` | a notification that could not be published, and the decision it was about |
| notice   | `notice`                     | `<incident> <kind>[ <about>]`, `<incident> watched`, `digest <YYYY-MM-DDTHH>` | a notification sent once: whoever creates the entity sends it (containment.record.notifications); the incident's Article 33 watch, claimed by its first exposure |
| notice clock | `notice`                 | `clock <incident id>`       | an incident whose Article 33 notices (assessment due, deadline passed) are still to come, and from when: beside the notices, so the watch and the clock are one transaction |
| digest entry | `digest`                 | `<recorded at> <decision key>` | a finding recorded `reported`, or a notification a mute silenced, not yet in an hourly digest |
| mute     | `mute`                       | `<rule> <scope id, '/' as '|'>` | whose notifications are muted, why, whose it is, until when |
| incident sign | `incident-sign`         | `<sign>` (`identity <id>`, `resource <id>`, `dataset <account id>`, `credential <account id> ...`); `closed <incident>`; `exposed <incident>` | which incident a finding with this sign joins, since when, last seen (containment.record.correlation); which incidents are closed; when each incident's first exposure was detected |
| incident | `incident <incident id>`       | `<recorded at> <decision key>` | which records belong to the incident (the record is read from its resource's partition) |
| repetition | `repetition`            | `<failure> <10^6 - occurrence>` | how often a failure that repeats happened since its record, first and last, and when it recovered |
| last good guardrail | `guardrail`            | `<resource id, '/' as '|'>` | the last body of a diagnostic setting or policy assignment on protected data that was judged compliant, and when: what a removed or weakened one is restored from (containment.detect.guardrails) |

The decision key is the Event Grid event ID (sanitised), so the conditional insert of a
decision entity is what makes one delivered event lead to one record, however often Event
Grid redelivers it and however many instances handle it at once. A claim is keyed by the
event and the resource together, as the decision is: an event ID is the sender's to choose,
and one reused for another resource must not inherit the first one's claim. Resource IDs
are lower-cased and '/' becomes '|' (Table keys may not hold '/').

A repetition counts a failure that repeats (containment.record.repeats). A failure is one
operation's, in one scope, of one cause: `<namespace>-failing-<digest>`. Each time it starts
(the first time, and again after it recovered) is an occurrence: one `failed` record, keyed
`<failure>-<occurrence>`, and one repetition entity that counts it until it recovers. Rows
count the occurrences down from 10^6, so a failure's latest is the first row of its range.

A record that a Table entity cannot hold keeps its largest fields in one blob of the
evidence container (CONTAINMENT_EVIDENCE_CONTAINER), `<decision key>/<sha256>.json`, which
its entity names with the digest; reading the record joins them again (split_record, Ledger._entity).

Every decision is also appended to one of CHAINS evidence chains (CONTAINMENT_LEDGER_CHAIN_TABLE),
so that a record changed or deleted since shows (containment.record.verify):

| kind       | PartitionKey  | RowKey                 | holds                                                  |
|------------|---------------|------------------------|--------------------------------------------------------|
| entry      | `chain <NN>`  | `entry <sequence>`     | the decision's key and resource, its hash, the previous record's hash |
| head       | `chain <NN>`  | `head`                 | the chain's last sequence and hash (ETag-guarded)      |
| superseded | `chain <NN>`  | `superseded <sequence>`| a provisional record, whole, as it was chained, before the final one replaced it |

The decision entity carries its place too (`chain`, `sequence`, `previous_hash`, `record_hash`,
and `supersedes` for a final record that replaced a provisional one), and its hash covers them.

A writer (a thread of an instance) keeps to one chain, chosen at random, and keeps its head as
it last moved it, with the ETag the transaction answered, so an append reads no head: two calls
(the decision's insert, the chain's transaction). A kept head that another writer moved since
fails the transaction on its ETag, and costs three calls more (the head read, the record's place
moved, the transaction again); the writer then moves to another chain. With fewer writers than
CHAINS they spread out and this is rare; with more (instances times worker threads, in a storm
that scales out far) they share chains, and once more than a third of appends find their head
stale, this costs more calls than reading the head before every append.
At the drift sweep's every run the heads go to a digest blob (CONTAINMENT_LEDGER_DIGEST_CONTAINER,
immutable in Azure), so a chain rewritten whole shows against the digests written before.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Iterator

from containment.core import clock
from containment.core.records import Claim, DecisionRecord

# Table Storage's limits (https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model):
# an entity holds at most 1 MiB in at most 255 properties (three of them the system's), and a
# string property at most 64 KiB of UTF-16, 32K characters. A record has a fixed set of fields,
# one property each (far below 255); what would break the other two limits is kept in a blob.
MAX_ENTITY_BYTES = 1024 * 1024
MAX_STRING_UNITS = 32 * 1024
# The keys (each at most 1 KiB) and the few properties added beside a record (a claim's state
# and holder, `provisional`, the evidence blob's name and digest, its place in its chain: about
# 450 bytes) are given this much of the entity; the record gets the rest.
_KEYS_AND_MARKERS = 4 * 1024
_JSON_FIELDS = ("actions", "findings", "plan", "awaiting_approval", "impact_preview", "actor", "before", "after",
                "rules", "full_evidence", "incident_update")
# Bounded by construction and read without the blob (the key, what was decided, when):
# these never move out of the entity.
_KEPT = ("key", "outcome", "mode", "decided_at", "recorded_at")
# Where the rest of an oversized record is, and its digest: the blob is named by the decision
# and by the SHA-256 of its content, so the decision, its by-day copy and its claim share it.
EVIDENCE_BLOB, EVIDENCE_SHA256 = "evidence_blob", "evidence_sha256"
UNRESOLVED = "unresolved"

# The evidence chains. A small fixed number, so the digest stays small, and enough that the
# writers of instances that scale out each keep to a chain of their own (Ledger._chain).
CHAINS = 16
GENESIS = "0" * 64  # the previous hash of a chain's first record
RECORD_HASH = "record_hash"
_LINK = ("chain", "sequence", "previous_hash", RECORD_HASH)
HEAD = "head"
SIGNS = "incident-sign"
# "No more than 15 discrete comparisons are permitted within a $filter string"
# (https://learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities);
# Azurite does not enforce it, so row_filter does: the partition and 14 rows.
FILTER_ROWS = 14
# Appending loses only to another instance appending to the same chain in between; each loss
# reads the head again, so this many in a row is contention nobody should see.
_APPEND_ATTEMPTS = 50
# What a lost race to a chain's head looks like in an entity group transaction: the entry's
# place taken, the head moved (or created, or lost) since it was read.
_LOST_RACE = ("EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound")


class EvidenceUnreadable(RuntimeError):
    """A record's evidence blob is missing or does not match the digest its entity keeps."""


class DigestExists(RuntimeError):
    """A digest with this name is there already: digests are never overwritten."""


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


def record_hash(entity: dict[str, Any]) -> str:
    """The SHA-256 of a record as its entity keeps it: every property but the entity's keys and
    this hash (the record's fields, `provisional`, the evidence blob's name and SHA-256, its
    chain, sequence, the previous record's hash and what it supersedes), as canonical JSON
    (keys sorted, no spaces, ASCII). A by-day copy hashes as its decision does."""
    canonical = {name: value for name, value in entity.items() if name not in ("PartitionKey", "RowKey", RECORD_HASH)}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sign_row(sign: str) -> str:
    """A sign as a RowKey: readable where Table keys allow it ('/' as '|'), else its digest."""
    row = sign.lower().replace("/", "|")
    if len(row) > 500 or any(c in row for c in "\\#?") or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in row):
        return "sha256 " + hashlib.sha256(sign.encode("utf-8", "replace")).hexdigest()
    return row


def row_filter(partition: str, rows: list[str]) -> tuple[str, dict[str, str]]:
    """A query for these rows of one partition: at most FILTER_ROWS of them, so the filter
    stays within Table storage's 15 comparisons."""
    if not 0 < len(rows) <= FILTER_ROWS:
        raise ValueError(f"a filter holds 1 to {FILTER_ROWS} rows, not {len(rows)}")
    names = {f"r{n}": row for n, row in enumerate(rows)}
    # The SDK reads a parameter's name up to a space: the brackets stand apart.
    return (f"PartitionKey eq @p and ( {' or '.join(f'RowKey eq @{name}' for name in names)} )",
            {"p": partition, **names})


NOTICE = "notice"
CLOCK = "clock "  # an incident's Article 33 clock, beside its notices: what one record claims is one transaction


def clock_row(incident: str) -> str:
    return CLOCK + incident


def incident_partition(incident: str) -> str:
    return "incident " + incident


def incidents_named(record: DecisionRecord) -> list[str]:
    """The incidents a record belongs in: its own, and the one a merge or split takes records from."""
    named = [record.incident, record.incident_update.get("from")]
    return [incident for incident in dict.fromkeys(named) if isinstance(incident, str) and incident]


def _any_chain() -> int:
    return random.randrange(CHAINS)


def chain_partition(chain: int) -> str:
    return f"chain {chain:02d}"


def entry_row(sequence: int) -> str:
    return f"entry {sequence:012d}"


def superseded_row(sequence: int) -> str:
    return f"superseded {sequence:012d}"


def _linked(entity: dict[str, Any], chain: int, sequence: int, previous_hash: str) -> dict[str, Any]:
    """The entity at a place in its chain, hashed with it."""
    placed = {**entity, "chain": chain, "sequence": sequence, "previous_hash": previous_hash}
    return {**placed, RECORD_HASH: record_hash(placed)}


@dataclass(frozen=True)
class _Head:
    """A chain's last place as read: the next record takes `sequence + 1` if the ETag still holds
    (None: the chain has no head yet)."""

    chain: int
    sequence: int = 0
    hash: str = GENESIS
    etag: str | None = None

    def next(self, entity: dict[str, Any]) -> dict[str, Any]:
        return _linked(entity, self.chain, self.sequence + 1, self.hash)

    def moved_to(self, entity: dict[str, Any]) -> tuple:
        """The transaction operation that moves the head to the entity's place, if nobody moved it since."""
        from azure.core import MatchConditions

        head = {"PartitionKey": chain_partition(self.chain), "RowKey": HEAD, "chain": self.chain,
                "sequence": entity["sequence"], RECORD_HASH: entity[RECORD_HASH], "key": entity["key"],
                "recorded_at": entity["recorded_at"]}
        if self.etag is None:
            return "create", head
        return "update", head, {"mode": "replace", "etag": self.etag, "match_condition": MatchConditions.IfNotModified}


REPETITION = "repetition"
# Rows count a failure's occurrences down from here, so its latest occurrence sorts first.
_OCCURRENCES = 10 ** 6
_REPEATED = re.compile(r"^(?P<failure>[a-z]+-failing-[0-9a-f]+)-(?P<occurrence>[1-9][0-9]{0,5})$")


def _repetition_row(failure: str, occurrence: int) -> str:
    return f"{failure} {_OCCURRENCES - occurrence:07d}"


@dataclass(frozen=True)
class Repetition:
    """One occurrence of a failure that repeats (containment.record.repeats): `count` times
    (its record's included) from `first_at` to `last_at`; once what failed works again, when
    (`recovered_at`) and which record says so (`recovery`)."""

    failure: str  # `<namespace>-failing-<digest>`: one operation, scope and cause
    occurrence: int  # 1, and one more each time it starts again after it recovered
    operation: str
    scope: str
    resource_id: str
    cause: str
    count: int
    first_at: str
    last_at: str
    recovered_at: str | None = None
    recovery: str | None = None
    etag: str | None = None

    @property
    def key(self) -> str:
        """The key of the record this occurrence wrote."""
        return f"{self.failure}-{self.occurrence}"

    @property
    def open(self) -> bool:
        return self.recovered_at is None

    def entity(self) -> dict[str, Any]:
        values = {name: value for name, value in asdict(self).items() if name != "etag" and value is not None}
        return {**values, "open": self.open, "PartitionKey": REPETITION,
                "RowKey": _repetition_row(self.failure, self.occurrence)}

    @classmethod
    def of(cls, entity: dict[str, Any]) -> Repetition:
        return cls(**{name: entity.get(name) for name in cls.__dataclass_fields__ if name != "etag"},
                   etag=entity.metadata["etag"])


class Ledger:
    """Adapter over one TableClient, and the blob container that keeps what a Table entity
    cannot hold. It records; it does not decide."""

    def __init__(self, table, evidence, chains, digests):
        self.table, self.evidence, self.chains, self.digests = table, evidence, chains, digests
        # Each budget as this instance last wrote it: (counts per minute, ETag) by pool.
        self._budgets: dict[str, tuple[dict[str, int], str]] = {}
        # Each chain's head as this instance last moved or read it: a record is appended without
        # reading the head first (Ledger._head). Threads of one instance share it.
        self._heads: dict[int, _Head] = {}
        self._heads_lock = threading.Lock()
        self._writer = threading.local()  # the chain each thread appends to
        # Exemptions and mutes as this instance last read them and when, and when it last changed
        # them (time.monotonic(): Ledger._controls).
        self._controls_read: dict[str, tuple[float, list[dict]]] = {}
        self._controls_changed: dict[str, float] = {}

    @classmethod
    def open(cls, table_service, name: str, evidence_container, chain_table: str, digest_container) -> "Ledger":
        from containment.adapters.clients import Recreating

        table, chains = (Recreating(table_service.get_table_client(n), lost="TableNotFound", create="create_table")
                         for n in (name, chain_table))
        table.recreate()
        # The chain table and the containers are made when the first record, oversized record or
        # digest needs them (or storage lost them): no call at cold start.
        return cls(table, Recreating(evidence_container, lost="ContainerNotFound", create="create_container"),
                   chains, Recreating(digest_container, lost="ContainerNotFound", create="create_container"))

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
        and an event that succeeds on retry still ends with exactly one record.

        The record takes the next place in its chain (read from the chain's head, so its entity
        carries its place and hash from the first write), and is appended to the chain once
        written: a redelivery takes no place."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        record = replace(record, recorded_at=f"{time.time_ns():020d}")
        head = self._head(self._chain())
        entity = head.next(self._entity(record, resource_partition(record.resource_id), record.key,
                                        **({"provisional": True} if provisional else {})))
        try:
            etag = self.table.create_entity(entity)["etag"]
        except ResourceExistsError:
            existing = self.table.get_entity(entity["PartitionKey"], entity["RowKey"])
            if provisional or not existing.get("provisional"):
                return None
            if isinstance(existing.get("chain"), int) and existing["chain"] != head.chain:
                # In the provisional record's chain, which keeps the copy of it that `supersedes` names.
                head = self._head(existing["chain"])
                entity = head.next(entity)
            entity = self._superseding(entity, existing)
            try:  # ETag-guarded: of two deliveries that both succeed, one replaces it
                etag = self.table.update_entity(entity, mode="replace", etag=existing.metadata["etag"],
                                                match_condition=MatchConditions.IfNotModified)["etag"]
            except ResourceModifiedError:
                return None
            self.table.delete_entity(*_day_key(existing.get("decided_at"), existing["key"]))
        entity = self._append(entity, head, etag)
        if entity is None:
            return None
        partition, row = _day_key(record.decided_at, record.key)
        self.table.upsert_entity({**entity, "PartitionKey": partition, "RowKey": row})
        if record.outcome == "pending-approval" or record.awaiting_approval:
            self.keep_pending(record)
        # Its own partition per incident (not beside the incident's signs, whose transaction could
        # carry it): what read_incident lists in one query, for every record an incident names.
        for incident in incidents_named(record):
            self.table.upsert_entity({"PartitionKey": incident_partition(incident),
                                      "RowKey": f"{record.recorded_at} {record.key}",
                                      "key": record.key, "resource_id": record.resource_id})
        return record

    def keep_pending(self, record: DecisionRecord) -> None:
        """List the decision as waiting for a person: one partition, so approval finds it by key."""
        self.table.upsert_entity({"PartitionKey": "pending", "RowKey": record.key,
                                  "resource_id": record.resource_id, "decided_at": record.decided_at or ""})

    # -- the evidence chains ------------------------------------------------------------------
    def _head(self, chain: int, read: bool = False) -> _Head:
        """The chain's head as this instance last moved or read it, else (or when `read`) as the
        chain table holds it. A head kept here that another instance has moved since costs the
        append that relies on it: its transaction fails on the head's ETag, and the lost-race
        path reads the head and moves the record's place (Ledger._append)."""
        from azure.core.exceptions import ResourceNotFoundError

        kept = None if read else self._heads.get(chain)
        if kept is not None:
            return kept
        try:
            entity = self.chains.get_entity(chain_partition(chain), HEAD)
            head = _Head(chain, entity["sequence"], entity[RECORD_HASH], entity.metadata["etag"])
        except ResourceNotFoundError:
            head = _Head(chain)
        with self._heads_lock:
            self._heads[chain] = head
        return head

    def _chain(self) -> int:
        """The chain this writer (a thread of this instance) appends to: one chosen at random,
        kept until another writer appends there too (Ledger._append moves it on), so the head
        it keeps is nearly always current and its appends read none."""
        if not hasattr(self._writer, "chain"):
            self._writer.chain = _any_chain()
        return self._writer.chain

    def _moved(self, head: _Head) -> None:
        """Keep the head this instance just moved, unless another of its threads moved it further."""
        with self._heads_lock:
            kept = self._heads.get(head.chain)
            if kept is None or kept.sequence <= head.sequence:
                self._heads[head.chain] = head

    def _caught_up(self, head: _Head) -> _Head:
        """A head its chain has gone past (deleted, or set back, by hand): the chain's true last
        place, with the head's ETag, so that moving it is still guarded. The whole chain is read,
        on this path alone; without it, every append to the chain would fail."""
        entries = self.chains.query_entities("PartitionKey eq @p and RowKey ge 'entry ' and RowKey lt 'entry!'",
                                             parameters={"p": chain_partition(head.chain)})
        last = max(entries, key=lambda entry: entry["sequence"], default=None)
        return head if last is None else _Head(head.chain, last["sequence"], last[RECORD_HASH], head.etag)

    def _append(self, entity: dict[str, Any], head: _Head, etag: str) -> dict[str, Any] | None:
        """Append the written record to its chain: its entry and the head's move in one entity
        group transaction (all or nothing, one partition:
        https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions).
        An instance that lost the place to another takes the next one, moving its record there
        first (ETag-guarded); the record as chained, or None when it was replaced meanwhile."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.data.tables import TableTransactionError

        for _ in range(_APPEND_ATTEMPTS):
            entry = {name: entity[name] for name in ("sequence", "key", "resource_id", "recorded_at", "previous_hash",
                                                     RECORD_HASH)}
            try:
                answers = self.chains.submit_transaction([
                    ("create", {**entry, "PartitionKey": chain_partition(head.chain),
                                "RowKey": entry_row(entity["sequence"])}),
                    head.moved_to(entity)])
            except TableTransactionError as error:
                if error.error_code not in _LOST_RACE:
                    raise
            else:
                # The head's new ETag is in the transaction's answer: the next append needs no read.
                # (Without one, the head kept holds no ETag, and the next append reads it again.)
                self._moved(_Head(head.chain, entity["sequence"], entity[RECORD_HASH], answers[1].get("etag")))
                return entity
            if head.chain == self._chain():
                self._writer.chain = _any_chain()  # shared with another writer: the next record goes elsewhere
            moved = self._head(head.chain, read=True)
            # Entry and head move together: a place taken under a head nobody moved is a head behind its chain.
            head = self._caught_up(moved) if moved.etag == head.etag else moved
            entity = head.next(entity)
            try:
                etag = self.table.update_entity({name: entity[name] for name in ("PartitionKey", "RowKey", *_LINK)},
                                                mode="merge", etag=etag,
                                                match_condition=MatchConditions.IfNotModified)["etag"]
            except ResourceModifiedError:
                return None  # a provisional record a final one replaced before it was chained
        raise RuntimeError(f"decision {entity['key']} is recorded but not in its chain {head.chain}: the chain was "
                           f"contended beyond {_APPEND_ATTEMPTS} attempts (verify names the record)")

    def _superseding(self, entity: dict[str, Any], provisional: dict[str, Any]) -> dict[str, Any]:
        """The final record that replaces a provisional one, naming its place. What the chain
        vouched for is kept whole first, beside its entry, so the chain still verifies; a
        provisional record its chain does not hold (written before chains, or its append never
        finished) is replaced as before, and verify names neither."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        chain, sequence = provisional.get("chain"), provisional.get("sequence")
        if sequence is None:
            return entity
        try:
            entry = self.chains.get_entity(chain_partition(chain), entry_row(sequence))
        except ResourceNotFoundError:
            return entity
        if entry["key"] != provisional["key"] or entry[RECORD_HASH] != provisional.get(RECORD_HASH):
            return entity
        try:  # an earlier delivery may have kept it already: the same record
            self.chains.create_entity({**provisional, "PartitionKey": chain_partition(chain),
                                       "RowKey": superseded_row(sequence)})
        except ResourceExistsError:
            pass
        return _linked({**entity, "supersedes": sequence}, entity["chain"], entity["sequence"], entity["previous_hash"])

    def keep_digest(self, at: datetime) -> str:
        """Write every chain's head (chain, sequence, hash, key, when recorded) as one digest
        blob named by the time, `<YYYY-MM-DD>/<time>.json`, create-only: a digest is never
        overwritten (and in Azure the container's immutability policy refuses it too). Its name."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        heads = sorted(({name: head[name] for name in ("chain", "sequence", RECORD_HASH, "key", "recorded_at")}
                        for head in self.chains.query_entities("RowKey eq @head", parameters={"head": HEAD})),
                       key=lambda head: head["chain"])
        written_at = clock.iso(at)
        name = f"{written_at[:10]}/{written_at}.json"
        content = json.dumps({"written_at": written_at, "chains": heads}, sort_keys=True, indent=1).encode()
        try:
            self.digests.upload_blob(name, content, overwrite=False,
                                     content_settings=ContentSettings(content_type="application/json"))
        except ResourceExistsError:
            raise DigestExists(f"a ledger digest named {name} exists already; digests are never overwritten") from None
        return name

    # -- the evidence chains as they are, for verifying them (containment.record.verify) -------
    def chain_entries(self, chain: int, since_ns: str, until_ns: str) -> list[dict]:
        """The chain's entries recorded in [since, until) (times as `recorded_at` keeps them)."""
        return list(self.chains.query_entities(
            "PartitionKey eq @p and RowKey ge 'entry ' and RowKey lt 'entry!' and recorded_at ge @since "
            "and recorded_at lt @until", parameters={"p": chain_partition(chain), "since": since_ns, "until": until_ns}))

    def chain_entity(self, chain: int, row: str) -> dict | None:
        """A chain's entry (entry_row), head (HEAD) or superseded record (superseded_row), as kept."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.chains.get_entity(chain_partition(chain), row)
        except ResourceNotFoundError:
            return None

    def as_chained(self, resource_id: str | None, key: str) -> bool:
        """Whether the decision is as its chain place holds it: not changed since it was
        written (what acts on a stored request checks this first)."""
        entity = self.decision_entity(resource_id, key)
        if entity is None or not isinstance(entity.get("chain"), int) or not isinstance(entity.get("sequence"), int):
            return False
        place = self.chain_entity(entity["chain"], entry_row(entity["sequence"]))
        return place is not None and place.get("key") == key and place[RECORD_HASH] == record_hash(entity)

    def decision_entity(self, resource_id: str | None, key: str) -> dict | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.table.get_entity(resource_partition(resource_id), key)
        except ResourceNotFoundError:
            return None

    def decision_entities(self, since_ns: str, until_ns: str) -> Iterator[dict]:
        """Every decision entity recorded in [since, until), as kept (chained or not)."""
        return self.table.query_entities(
            "PartitionKey ge 'resource ' and PartitionKey lt 'resource!' and recorded_at ge @since and "
            "recorded_at lt @until", parameters={"since": since_ns, "until": until_ns})

    def day_copy(self, decided_at: str | None, key: str) -> dict | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.table.get_entity(*_day_key(decided_at, key))
        except ResourceNotFoundError:
            return None

    def day_copies(self, day: datetime) -> Iterator[dict]:
        return self.table.query_entities("PartitionKey eq @p", parameters={"p": "day " + day.strftime("%Y-%m-%d")})

    def digest_names(self) -> list[str]:
        return sorted(blob.name for blob in self.digests.list_blobs())

    def digest(self, name: str) -> bytes:
        return self.digests.download_blob(name).readall()

    def decided(self, resource_id: str | None, key: str) -> bool:
        """Whether the event has its final record (a provisional failure is not one)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return not self.table.get_entity(resource_partition(resource_id), key).get("provisional")
        except ResourceNotFoundError:
            return False

    def notification_failed(self, notice: str, decision: str, resource_id: str, reason: str) -> None:
        """Keep a failed notification, naming the decision it was about (none for a digest or a clock notice)."""
        self.table.upsert_entity({"PartitionKey": "notification-failure", "RowKey": notice, "decision": decision,
                                  "resource_id": resource_id, "reason": reason[:30_000]})

    def notification_failures(self) -> list[dict]:
        # Kept before notices had IDs of their own, a failure's RowKey was the decision's key.
        return [{"notice": e["RowKey"], "decision": e.get("decision", e["RowKey"]), "resource_id": e["resource_id"],
                 "reason": e["reason"]}
                for e in self.table.query_entities("PartitionKey eq 'notification-failure'")]

    # -- notices: each sent once, across instances ------------------------------------------
    def claim_notice(self, row: str, **fields: Any) -> bool:
        """Whether this call is the one to send the notice (Ledger.claim_notices)."""
        return self.claim_notices([row], **fields)

    def claim_notices(self, rows: list[str], watch: tuple[str, str] | None = None, **fields: Any) -> bool:
        """Whether this call is the one to send these notices: their entities created in one
        entity group transaction (one partition, all or nothing:
        https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions),
        so of two instances that get there at once, one creates them; False, and nothing written,
        when one exists already. `watch`: (incident, due at), the incident's Article 33 clock,
        written with them (rows holds the incident's `watched`)."""
        from azure.data.tables import TableTransactionError

        at = clock.iso()
        operations: list[tuple] = [("create", {"PartitionKey": NOTICE, "RowKey": row, "at": at, **fields})
                                   for row in rows]
        if watch is not None:
            operations.append(("upsert", {"PartitionKey": NOTICE, "RowKey": clock_row(watch[0]), "due_at": watch[1]}))
        try:
            self.table.submit_transaction(operations)
        except TableTransactionError as error:
            if error.error_code != "EntityAlreadyExists":
                raise
            return False
        return True

    def notices(self, incident: str) -> dict[str, dict]:
        """The incident's notices that exist (its watch, what was sent about it, its latest
        assessment), by row: one query of the rows that start with its ID."""
        return {e["RowKey"]: dict(e) for e in self.table.query_entities(
            "PartitionKey eq @p and RowKey ge @first and RowKey lt @after",
            parameters={"p": NOTICE, "first": incident + " ", "after": incident + "!"})}

    def keep_notice(self, row: str, **fields: Any) -> None:
        """What later notices need to know (an incident's latest assessment), kept beside them."""
        self.table.upsert_entity({"PartitionKey": NOTICE, "RowKey": row, "at": clock.iso(), **fields})

    def forget_notice(self, row: str) -> None:
        """The notice may be sent again (its publishing failed, or what it announced ended)."""
        self.table.delete_entity(NOTICE, row)  # the SDK takes an entity already gone as deleted

    def keep_clock(self, incident: str, due_at: str) -> None:
        """Watch the incident's Article 33 clock from `due_at` on."""
        self.table.upsert_entity({"PartitionKey": NOTICE, "RowKey": clock_row(incident), "due_at": due_at})

    def clocks_due(self, now: str) -> list[str]:
        """The incidents whose clock is to be looked at by now (one query of the clocks' rows)."""
        self._move_old_clocks()
        return [e["RowKey"].removeprefix(CLOCK) for e in self.table.query_entities(
            "PartitionKey eq @p and RowKey ge @first and RowKey lt @after and due_at le @now",
            parameters={"p": NOTICE, "first": CLOCK, "after": CLOCK.strip() + "!", "now": now})]

    def _move_old_clocks(self) -> None:
        """Clocks that earlier versions kept in a partition of their own (`notice-clock`) are
        moved beside the notices, unless a newer one is there already, so no Article 33 notice of
        an incident watched before an upgrade is lost. The first hourly run after an upgrade moves
        them all (an instance of an earlier version still running may keep one more): after
        that, one empty query an hour, which can go in a later version."""
        from azure.core.exceptions import ResourceExistsError

        for old in self.table.query_entities("PartitionKey eq 'notice-clock'"):
            try:
                self.table.create_entity({"PartitionKey": NOTICE, "RowKey": clock_row(old["RowKey"]),
                                          "due_at": old["due_at"]})
            except ResourceExistsError:
                pass
            self.table.delete_entity("notice-clock", old["RowKey"])

    def drop_clock(self, incident: str) -> None:
        self.table.delete_entity(NOTICE, clock_row(incident))

    def keep_for_digest(self, record: DecisionRecord, muted: list[dict]) -> None:
        """Hold a record for the next digest: a finding recorded `reported`, or one whose
        notification `muted` (the mutes that silenced it) held back."""
        self.table.upsert_entity({"PartitionKey": "digest", "RowKey": f"{record.recorded_at} {record.key}",
                                  "key": record.key, "resource_id": record.resource_id,
                                  "incident": record.incident or "", "outcome": record.outcome,
                                  "severity": record.severity or "", "rules": json.dumps(record.rules),
                                  "decided_at": record.decided_at or "", "muted": json.dumps(muted)})

    def digest_entries(self) -> list[dict]:
        """What waits for the next digest, in the order recorded."""
        return [{**{k: e[k] for k in ("key", "resource_id", "incident", "outcome", "severity", "decided_at")},
                 "rules": json.loads(e["rules"]), "muted": json.loads(e["muted"]), "row": e["RowKey"]}
                for e in self.table.query_entities("PartitionKey eq 'digest'")]

    def drop_digest_entries(self, rows: list[str]) -> None:
        """Take what a digest carried off the list."""
        for row in rows:
            self.table.delete_entity("digest", row)

    # -- last good guardrails ---------------------------------------------------------------------
    def keep_guardrail(self, body: dict[str, Any]) -> bool:
        """Keep a guardrail's body as its last good one (the drift sweep and compliant event
        assessments keep them). False where one property cannot hold it (a policy assignment
        with huge parameters): nothing is kept, and a later finding says there is nothing to
        restore from."""
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        if _utf16_units(text) > MAX_STRING_UNITS:
            return False
        self.table.upsert_entity({"PartitionKey": "guardrail", "RowKey": resource_key(body["id"]), "body": text,
                                  "kept_at": clock.iso()})
        return True

    def last_good_guardrail(self, resource_id: str) -> dict[str, Any] | None:
        """{"body", "kept_at"} of the guardrail's last good body, or None where none was kept."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self.table.get_entity("guardrail", resource_key(resource_id))
        except ResourceNotFoundError:
            return None
        return {"body": json.loads(entity["body"]), "kept_at": entity["kept_at"]}

    # -- mutes ----------------------------------------------------------------------------------
    def mute(self, rule: str, scope: str, reason: str, owner: str, expires_at: str, created_by: str,
             created_at: str, decision: str, created_by_id: str = "") -> None:
        """Mute notifications of a rule's findings under a scope; the same rule and scope again replaces it.
        `created_by_id`: the object ID of who muted it (it never silences their own changes)."""
        self.table.upsert_entity({"PartitionKey": "mute", "RowKey": f"{rule} {resource_key(scope)}", "rule": rule,
                                  "scope": scope, "reason": reason, "owner": owner, "expires_at": expires_at,
                                  "created_by": created_by, "created_by_id": created_by_id.lower(),
                                  "created_at": created_at, "decision": decision})
        self._controls_changed["mute"] = time.monotonic()

    def mutes(self, max_age: float = 0) -> list[dict]:
        """Every mute, expired or not; as this instance read them at most `max_age` seconds ago."""
        keep = ("rule", "scope", "reason", "owner", "expires_at", "created_by", "created_by_id", "created_at",
                "decision")
        return self._controls("mute", max_age, lambda: [
            {k: e.get(k) for k in keep} for e in self.table.query_entities("PartitionKey eq 'mute'")])

    def remove_mute(self, rule: str, scope: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        row = f"{rule} {resource_key(scope)}"
        try:
            self.table.get_entity("mute", row)
        except ResourceNotFoundError:
            return False
        self.table.delete_entity("mute", row)
        self._controls_changed["mute"] = time.monotonic()
        return True

    # -- incidents: the signs that correlate findings, and each incident's records ------------
    def incident_signs(self, signs: list[str]) -> dict[str, dict]:
        """The entries of these signs that exist: sign -> {incident, opened_at, last_at, etag}
        (a query of one partition per FILTER_ROWS signs)."""
        rows = {sign_row(sign): sign for sign in signs}
        return {rows[e["RowKey"]]: {"incident": e["incident"], "opened_at": e["opened_at"], "last_at": e["last_at"],
                                    "etag": e.metadata["etag"]}
                for e in self._rows(SIGNS, list(rows))}

    def incident_markers(self, incidents: list[str]) -> dict[str, dict]:
        """What is marked of these incidents, in one query of their markers: `closed` (a person
        closed it: the marker is written before the closure record) and `exposed_at` (when its
        first exposure was detected; absent while it holds weaknesses only)."""
        rows = [row for incident in incidents for row in (f"closed {incident}", f"exposed {incident}")]
        markers: dict[str, dict] = {}
        for entity in self._rows(SIGNS, rows):
            if "closed" in entity:
                markers.setdefault(entity["closed"], {})["closed"] = True
            else:
                markers.setdefault(entity["exposed"], {})["exposed_at"] = entity["exposed_at"]
        return markers

    def close_incident(self, incident: str) -> None:
        """Nothing joins the incident any more: its marker first (a finding correlating at this
        moment sees it), then its signs (one that read them before fails its conditional update,
        and reads again)."""
        # `closed`, not `incident`: the marker is no sign, and forgetting the signs leaves it.
        self.table.upsert_entity({"PartitionKey": SIGNS, "RowKey": f"closed {incident}", "closed": incident})
        self.forget_incident_signs(incident)

    def _rows(self, partition: str, rows: list[str]) -> Iterator[dict]:
        """The entities of these rows in one partition that exist, FILTER_ROWS rows a query."""
        for start in range(0, len(rows), FILTER_ROWS):
            query, parameters = row_filter(partition, rows[start:start + FILTER_ROWS])
            yield from self.table.query_entities(query, parameters=parameters)

    def mark_incident_signs(self, signs: list[str], seen: dict[str, dict], incident: str, opened_at: str,
                            at: str, exposed_at: str | None = None) -> bool:
        """Point every sign at the incident, as last seen `at`, in one transaction that holds
        only if no sign changed since `seen` was read (and none seen absent appeared): False
        if one did, for the caller to read again. With `exposed_at`, the incident's first
        exposure is marked in the same transaction, which fails if another marked it first."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError

        operations = []
        for sign in signs:
            entity = {"PartitionKey": SIGNS, "RowKey": sign_row(sign), "sign": sign, "incident": incident,
                      "opened_at": opened_at, "last_at": max(at, seen.get(sign, {}).get("last_at", ""))}
            if sign in seen:
                operations.append(("update", entity, {"mode": "replace", "etag": seen[sign]["etag"],
                                                      "match_condition": MatchConditions.IfNotModified}))
            else:
                operations.append(("create", entity))
        if exposed_at:
            # `exposed`, not `incident`: a marker, no sign (closing forgets the signs, not it).
            operations.append(("create", {"PartitionKey": SIGNS, "RowKey": f"exposed {incident}",
                                          "exposed": incident, "exposed_at": exposed_at}))
        try:
            self.table.submit_transaction(operations)
        except TableTransactionError:
            return False
        return True

    def mark_incident_exposed(self, incident: str, exposed_at: str) -> None:
        """The incident's first exposure is at the latest `exposed_at` (a merge brings the merged
        incident's, a split the split-off findings'): an earlier marker stays."""
        marked = self.incident_markers([incident]).get(incident, {}).get("exposed_at")
        if not marked or exposed_at < marked:
            self.table.upsert_entity({"PartitionKey": SIGNS, "RowKey": f"exposed {incident}", "exposed": incident,
                                      "exposed_at": exposed_at})

    def forget_incident_signs(self, incident: str) -> int:
        """Delete the signs that lead to the incident (it closed: nothing joins it again)."""
        gone = 0
        for entity in self.table.query_entities(f"PartitionKey eq '{SIGNS}' and incident eq @i",
                                                parameters={"i": incident}):
            self.table.delete_entity(SIGNS, entity["RowKey"])
            gone += 1
        return gone

    def repoint_incident_signs(self, source: str, target: str, only: set[str] | None = None) -> None:
        """Signs that led to a merged incident lead to the one it was merged into; for a split,
        `only` the signs of what was split off."""
        rows = None if only is None else {sign_row(sign) for sign in only}
        for entity in self.table.query_entities(f"PartitionKey eq '{SIGNS}' and incident eq @i",
                                                parameters={"i": source}):
            if rows is None or entity["RowKey"] in rows:
                self.table.upsert_entity({**entity, "incident": target}, mode="merge")

    def incident_pointers(self, incident: str) -> list[tuple[str, str]]:
        """(resource ID, decision key) of every record written with this incident, or naming it
        (a merge from it, a split of it): one query of its partition. Each record is read from
        its resource's partition (Ledger.find)."""
        return [(pointer["resource_id"], pointer["key"]) for pointer in self.table.query_entities(
            "PartitionKey eq @p", parameters={"p": incident_partition(incident)})]

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
               rules: list[str] | None = None, decided_by: list[str] = ()) -> None:
        """`rules`: the findings' rules it covers (a release's); None: every rule.
        `decided_by`: the object IDs of the people who decided it (it never excuses their changes)."""
        self.table.upsert_entity({"PartitionKey": "exemption", "RowKey": scope.lower().replace("/", "|"),
                                  "scope": scope, "reason": reason, "owner": owner, "expires_at": expires_at,
                                  "created_by": created_by, "created_at": created_at,
                                  "decided_by": json.dumps(sorted(decided_by)),
                                  **({"rules": json.dumps(sorted(rules))} if rules is not None else {})})
        self._controls_changed["exemption"] = time.monotonic()

    def exemptions(self, max_age: float = 0) -> list[dict]:
        """Every exemption, expired or not; as this instance read them at most `max_age` seconds ago."""
        keep = ("scope", "reason", "owner", "expires_at", "created_by", "created_at")
        return self._controls("exemption", max_age, lambda: [
            {**{k: e.get(k) for k in keep}, "rules": json.loads(e["rules"]) if "rules" in e else None,
             "decided_by": json.loads(e.get("decided_by") or "[]")}
            for e in self.table.query_entities("PartitionKey eq 'exemption'")])

    def remove_exemption(self, scope: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.table.get_entity("exemption", scope.lower().replace("/", "|"))
        except ResourceNotFoundError:
            return False
        self.table.delete_entity("exemption", scope.lower().replace("/", "|"))
        self._controls_changed["exemption"] = time.monotonic()
        return True

    def _controls(self, kind: str, max_age: float, read) -> list[dict]:
        """Exemptions or mutes (`kind`, its partition) as this instance last read them, if that
        read was sent at most `max_age` seconds ago (CONTAINMENT_CONTROLS_CACHE_SECONDS) and
        after this instance last changed them, else read again: only another instance's change
        can be missed, for at most `max_age` seconds. Whether one has expired is judged at each
        use, so an expiry is never late."""
        kept = self._controls_read.get(kind)
        if (max_age > 0 and kept is not None and time.monotonic() - kept[0] <= max_age
                and kept[0] > self._controls_changed.get(kind, float("-inf"))):
            return list(kept[1])
        sent_at = time.monotonic()
        listed = read()
        self._controls_read[kind] = (sent_at, listed)
        return list(listed)

    # -- the blast-radius budget ---------------------------------------------------------------
    def spend_budget(self, actions: int, limit: int, now: float, pool: str = "containment") -> int | None:
        """Count `actions` against the limit per rolling hour, across every instance (one
        entity, ETag-guarded): None when spent; when they would exceed it, spending nothing,
        what the last hour has spent. Counts are kept per minute, so the entity stays small
        however busy the hour. `pool`: automatic containment's, or break-glass's own.
        The instance keeps the entity as it last wrote it and spends from that without reading
        it first; another instance's spending since fails the ETag, and it is read then. A hold
        is only ever decided on what was read just now."""
        minute = int(now // 60)
        for _ in range(10):  # contention between instances: read again and retry
            kept = self._budgets.pop(pool, None)
            counts, etag = kept if kept is not None else self._read_budget(pool)
            recent = {m: n for m, n in counts.items() if int(m) > minute - 60}
            if sum(recent.values()) + actions > limit:
                if kept is not None:
                    continue  # decided on what this instance wrote earlier: read it first
                return sum(recent.values())
            recent[str(minute)] = recent.get(str(minute), 0) + actions
            if self._write_budget(pool, recent, etag):
                return None
        raise RuntimeError(f"the {pool} budget is contended beyond 10 attempts")

    def refund_budget(self, actions: int, spent_at: float, pool: str = "containment") -> None:
        """Give back what was spent at `spent_at` on actions that wrote nothing (the resource was
        no longer exposed when containment read it), from the minute it was spent in, so the hour
        counts only writes that changed something. Nothing where that minute has left the hour."""
        minute = str(int(spent_at // 60))
        for _ in range(10):
            kept = self._budgets.pop(pool, None)
            counts, etag = kept if kept is not None else self._read_budget(pool)
            if counts.get(minute, 0) <= 0:
                if kept is not None:
                    continue
                return
            counts = {**counts, minute: max(0, counts[minute] - actions)}
            if self._write_budget(pool, counts, etag):
                return
        raise RuntimeError(f"the {pool} budget is contended beyond 10 attempts")

    def _read_budget(self, pool: str) -> tuple[dict[str, int], str | None]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self.table.get_entity("budget", pool)
            return json.loads(entity["per_minute"]), entity.metadata["etag"]
        except (ResourceNotFoundError, KeyError):
            return {}, None

    def _write_budget(self, pool: str, counts: dict[str, int], etag: str | None) -> bool:
        """Write the counts if nobody changed them since `etag` (None: if nobody created them);
        kept by this instance for its next spending."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        entity = {"PartitionKey": "budget", "RowKey": pool, "per_minute": json.dumps(counts)}
        try:
            if etag is None:
                written = self.table.create_entity(entity)
            else:
                written = self.table.update_entity(entity, etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        self._budgets[pool] = (counts, written["etag"])
        return True

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
        """Claim a decision's containment of its resource, `queued` at once and keeping the
        decision: (True, claim) when this call made it, else (False, the existing claim)."""
        from azure.core.exceptions import ResourceExistsError

        queued_at = time.time()
        entity = self._entity(decision, f"claim {decision.key}", resource_key(decision.resource_id),
                              state="queued", holder="", queued_at=queued_at)
        try:
            written = self.table.create_entity(entity)
            return True, Claim(decision.key, decision.resource_id, "queued", "", written["etag"], decision,
                               queued_at=queued_at)
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
                     bool(entity.get("budget_spent")), entity.get("queued_at"))

    def move_claim(self, claim: Claim, state: str, holder: str = "", spent: bool | None = None) -> Claim | None:
        """Move a claim on, if nobody moved it since it was read (ETag); None if somebody did.
        A merge: the decision it carries stays. `spent`: mark (or, False, unmark) the budget spent on it."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            written = self.table.update_entity(
                {"PartitionKey": f"claim {claim.key}", "RowKey": resource_key(claim.resource_id), "state": state,
                 "holder": holder, **({} if spent is None else {"budget_spent": spent})},
                mode="merge", etag=claim.etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return replace(claim, state=state, holder=holder, etag=written["etag"],
                       spent=claim.spent if spent is None else spent)

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

    # -- repetitions: how often a failure that repeats happened ------------------------------
    def latest_repetition(self, failure: str) -> Repetition | None:
        """The failure's latest occurrence (one row: they sort newest first), or None."""
        rows = self.table.query_entities("PartitionKey eq @p and RowKey gt @after and RowKey lt @until",
                                         parameters={"p": REPETITION, "after": failure + " ", "until": failure + "!"},
                                         results_per_page=1)
        latest = next(iter(rows), None)
        return None if latest is None else Repetition.of(latest)

    def repetition(self, key: str) -> Repetition | None:
        """The occurrence whose record has this key, or None (not a repeating failure's record)."""
        from azure.core.exceptions import ResourceNotFoundError

        named = _REPEATED.match(key)
        if named is None:
            return None
        try:
            return Repetition.of(self.table.get_entity(REPETITION, _repetition_row(named["failure"],
                                                                                   int(named["occurrence"]))))
        except ResourceNotFoundError:
            return None

    def open_repetitions(self, operation: str) -> list[Repetition]:
        """The operation's failures not yet recovered. The service reads the whole partition (every
        occurrence ever) to answer: once per run, not per failure."""
        return [Repetition.of(e) for e in self.table.query_entities(
            "PartitionKey eq @p and operation eq @operation and open eq true",
            parameters={"p": REPETITION, "operation": operation})]

    def start_repetition(self, repetition: Repetition) -> bool:
        """Create the occurrence unless it exists (another instance started it first)."""
        from azure.core.exceptions import ResourceExistsError

        try:
            self.table.create_entity(repetition.entity())
        except ResourceExistsError:
            return False
        return True

    def update_repetition(self, repetition: Repetition) -> bool:
        """Write the occurrence as given if nobody changed it since it was read (ETag); False if somebody did."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            self.table.update_entity(repetition.entity(), mode="replace", etag=repetition.etag,
                                     match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    # -- reading for people and replay -------------------------------------------------
    def decisions(self) -> list[DecisionRecord]:
        """Every decision, in the order written."""
        entities = self.table.query_entities("PartitionKey ge 'resource ' and PartitionKey lt 'resource!'")
        return sorted((self._record(e) for e in entities), key=lambda r: r.recorded_at)

    def under(self, scope: str) -> Iterator[DecisionRecord]:
        """Every decision about the scope or anything below it (its partitions share a prefix)."""
        first = resource_partition(scope)
        query = "PartitionKey eq @p or ( PartitionKey ge @below and PartitionKey lt @after )"  # the SDK reads a name up to a space
        for entity in self.table.query_entities(query, parameters={"p": first, "below": first + "|",
                                                                   "after": first + "}"}):
            yield self._record(entity)

    def for_resource(self, resource_id: str) -> Iterator[DecisionRecord]:
        partition = resource_partition(resource_id)
        for entity in self.table.query_entities("PartitionKey eq @p", parameters={"p": partition}):
            yield self._record(entity)

    def for_day(self, day: datetime) -> Iterator[DecisionRecord]:
        partition = "day " + day.strftime("%Y-%m-%d")
        for entity in self.table.query_entities("PartitionKey eq @p", parameters={"p": partition}):
            yield self._record(entity)
