"""What the app writes down: decision records, the claims that make one containment run per
decision, and the containment request that travels on the queue.

Records are values: code that learns more builds a new one (`dataclasses.replace`), so a
record read from the ledger is never changed behind the ledger's back. How they are kept
in Table Storage is the ledger's business (containment.adapters.ledger).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

_SAFE_KEY = re.compile(r"^[A-Za-z0-9._:@+=-]{1,200}$")
# Keys the app makes itself (egress windows, the sweep, rejected messages, refused operator
# requests, failures): an event ID the sender chose must never land on one of them and
# pre-empt that decision.
_INTERNAL = re.compile(r"^(egress-|sweep-|message-|refused-|second-|exemption-|mute-|incident-|sha256-)",
                       re.IGNORECASE)
# What people do, accepted or refused: approvals, denials and expiries, releases, exemptions,
# mutes, break-glass, refused requests, and their decisions about incidents. The actor of such
# a record is the operator, never the cause of what it is about.
# Decisions a person made: not counted against the blast-radius limit (their own controls apply).
PERSON_DECIDED = ("approval", "break-glass", "release")
OPERATOR_OPERATIONS = ("approval", "release", "exemption", "mute", "break-glass", "operator-request", "incident")
# "A few KiB": a queue message holds 64 KiB, and nothing the worker acts on travels in it.
MAX_REQUEST_BYTES = 4 * 1024
# Bounds a request's `spend`: a plan has an action per rule at most, and an NSG holds at most
# 1,000 rules (https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#azure-networking-limits).
MAX_PLANNED = 10_000


def decision_key(event_id: str | None, raw: Any = None) -> str:
    """A RowKey for an event: its ID where that is safe, else a digest of what arrived."""
    if isinstance(event_id, str) and _SAFE_KEY.match(event_id) and not _INTERNAL.match(event_id):
        return event_id
    material = event_id if isinstance(event_id, str) else json.dumps(raw, sort_keys=True, default=str)
    return "sha256-" + hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()


def refusal_key(method: str, route: str, operator: str, at: str, body: bytes) -> str:
    """The key of a refused operator request's record: a digest of who asked what, when, with
    which body, so each refused request has a record of its own (a byte-identical request in
    the same microsecond is the same request)."""
    material = json.dumps([method, route, operator, at, hashlib.sha256(body).hexdigest()])
    return "refused-" + hashlib.sha256(material.encode("utf-8", "replace")).hexdigest()


def is_safe_key(text: object) -> bool:
    """Whether a key a person names (a decision to approve or release) can be a Table key."""
    return isinstance(text, str) and bool(_SAFE_KEY.match(text))


def describe_failure(error: BaseException) -> str:
    """An exception as a record's reason: bounded, since an SDK error can carry a whole response."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 2000 else text[:2000] + " [...]"


@dataclass(frozen=True)
class PlannedAction:
    action: str
    target: str  # ARM ID of the resource the action changes
    # rotate_account_keys: the account keys still to rotate, where an earlier decision of the
    # incident took some of those the findings name; None: what the findings name (both, for
    # a break-glass). Part of the plan: its digest, the claim, the approval carry it.
    keys: tuple[str, ...] | None = None

    def as_dict(self) -> dict:
        step: dict = {"action": self.action, "target": self.target}
        return step if self.keys is None else {**step, "keys": list(self.keys)}

    @classmethod
    def of(cls, step: dict) -> PlannedAction:
        """A step as a record keeps it (as_dict)."""
        keys = step.get("keys")
        return cls(step["action"], step["target"], None if keys is None else tuple(keys))


@dataclass(frozen=True)
class DecisionRecord:
    key: str
    resource_id: str
    outcome: str
    mode: str
    reason: str
    event_id: str | None = None
    operation: str | None = None
    releases: str | None = None  # for a release: the key of the decision it undoes
    actions: list[str] = field(default_factory=list)
    plan: list[dict] = field(default_factory=list)
    awaiting_approval: list[dict] = field(default_factory=list)
    # Who the held actions would break, from the logs of the last days, computed once when they
    # were held (containment.record.impact); empty where nothing is held.
    impact_preview: dict = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    severity: str | None = None
    # Found on the app's own deployment (CONTAINMENT_OWN_SCOPES): reported for a person, never acted on.
    own_deployment: bool = False
    findings: list[dict] = field(default_factory=list)
    # The full evidence of findings whose evidence is bounded, by its digest ("sha256:...").
    full_evidence: dict = field(default_factory=dict)
    actor: dict = field(default_factory=dict)
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    event_time: str | None = None
    decided_at: str | None = None
    contained_at: str | None = None
    # The breach this decision belongs to (containment.record.correlation): the same ID on every
    # record of it, across resources; None where nothing was found.
    incident: str | None = None
    # What a person decided about an incident itself (operation "incident"): an Article 33
    # assessment, its closure, or a merge or split (containment.operate.incidents).
    incident_update: dict = field(default_factory=dict)
    recorded_at: str = ""  # ns since the epoch, zero-padded, when written: orders the ledger

    @property
    def planned(self) -> tuple[PlannedAction, ...]:
        return tuple(PlannedAction.of(step) for step in self.plan)

    def as_output(self) -> dict[str, Any]:
        """The record as the replay contract prints it (SCENARIOS.md)."""
        record = asdict(self)
        record.pop("recorded_at")
        return record


@dataclass(frozen=True)
class Claim:
    """Who carries out a decision's containment of one resource: queued -> acting (holder)
    -> done. It carries the decision it claims, as detection made it: the containment worker
    acts on that, never on what a queue message says. Written `queued` at once, with the
    decision: the request names its ETag, so the worker takes it without reading it first."""

    key: str
    resource_id: str
    state: str
    holder: str
    etag: str
    decision: DecisionRecord | None = None
    spent: bool = False  # the blast-radius budget was spent on it (by whichever delivery got that far)
    queued_at: float | None = None  # epoch seconds (the writer's clock) when detection claimed and queued it


class MalformedRequest(ValueError):
    pass


def plan_digest(plan: list[dict] | tuple[PlannedAction, ...]) -> str:
    """SHA-256 of a plan as canonical JSON: what a request names of the plan it expects."""
    steps = [(step if isinstance(step, PlannedAction) else PlannedAction.of(step)).as_dict() for step in plan]
    return hashlib.sha256(json.dumps(steps, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class ContainmentRequest:
    """The queue message: which claimed decision to carry out, never the decision itself.
    The worker loads the decision from its claim; a forged or truncated message can at most
    name a decision that exists, and one whose plan digest differs from the claim's plan is
    refused. A digest, not the plan: a plan of any length (an NSG with a hundred open rules)
    fits one message. `claim_etag` is the claim's ETag as detection wrote it, so the worker
    moves the claim to `acting` at once (a claim moved since refuses it, 412); `spend` is
    how many actions the blast-radius budget is to be spent on (0 for a person's decision),
    checked against the claimed decision before anything is written."""

    key: str
    resource_id: str
    plan_sha256: str
    claim_etag: str
    spend: int

    @classmethod
    def of(cls, record: DecisionRecord, claim_etag: str) -> ContainmentRequest:
        return cls(record.key, record.resource_id, plan_digest(record.plan), claim_etag, budgeted(record))

    def to_message(self) -> str:
        text = json.dumps({"key": self.key, "resource_id": self.resource_id, "plan_sha256": self.plan_sha256,
                           "claim_etag": self.claim_etag, "spend": self.spend}, separators=(",", ":"))
        if len(text.encode()) > MAX_REQUEST_BYTES:
            raise ValueError(f"containment request for {self.key} is {len(text.encode())} bytes; at most "
                             f"{MAX_REQUEST_BYTES} travel on the queue")
        return text

    @classmethod
    def from_message(cls, body: bytes | str) -> ContainmentRequest:
        if len(body) > MAX_REQUEST_BYTES:
            raise MalformedRequest(f"{len(body)} bytes; a containment request is at most {MAX_REQUEST_BYTES}")
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise MalformedRequest(f"not JSON: {error}") from None
        if not isinstance(request, dict):
            raise MalformedRequest("not a JSON object")
        fields = {"key", "resource_id", "plan_sha256", "claim_etag", "spend"}
        if set(request) != fields:
            missing, unknown = sorted(fields - set(request)), sorted(set(request) - fields)
            raise MalformedRequest("; ".join(part for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown fields {', '.join(unknown)}" if unknown else "") if part))
        text = fields - {"spend"}
        wrong = [name for name in text if not isinstance(request[name], str) or not request[name]]
        if wrong:
            raise MalformedRequest(f"{', '.join(sorted(wrong))} must be non-empty strings")
        if not re.fullmatch(r"[0-9a-f]{64}", request["plan_sha256"]):
            raise MalformedRequest("plan_sha256 must be 64 lower-case hexadecimal digits")
        spend = request["spend"]
        if type(spend) is not int or not 0 <= spend <= MAX_PLANNED:
            raise MalformedRequest(f"spend must be a whole number from 0 to {MAX_PLANNED}")
        return cls(request["key"], request["resource_id"], request["plan_sha256"], request["claim_etag"], spend)


def budgeted(record: DecisionRecord) -> int:
    """How many actions a decision spends of the blast-radius budget: each planned action the
    app decided on its own; none for what a person decided (an approval, break-glass, a release)."""
    return 0 if record.operation in PERSON_DECIDED else len(record.plan)