"""From an ARM event to a recorded decision: the path every Event Grid trigger shares.

    parse -> in our subscriptions? -> made by us? -> assess (re-read + judge) -> decide
          -> record (dry-run, reported, compliant, ...) or claim + enqueue (enforce)

Each resource family declares its EventPath: its subscription, its `assess` step (the drift
sweep calls the same step on what it lists), what a failed read leaves to, and whether the
event itself is the exposure; everything else, the safety checks and the once-per-event
guarantee, is here once. `assess` is given the resource, the runtime and the parsed event
(None from the drift sweep, which has none): a finding about the event itself (who listed the keys, from
where, when) reads it there; one about the resource's state re-reads the resource.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from containment.adapters import arm_limits
from containment.adapters.reads import after_event, reads_fresh_since
from containment.adapters.runtime import Runtime
from containment.core import clock
from containment.core.events import ArmEvent, EventSubscription, MalformedEvent, envelope, parse_event
from containment.core.findings import Finding
from containment.core.ids import ResourceId
from containment.core.records import DecisionRecord, decision_key, describe_failure
from containment.judge.scope import Protection, protection_of
from containment.plan.decisions import decide, failed, ignored, recorded, rejected, within_incident
from containment.record.conclude import acted_in_incident, conclude, record_once, record_unless_claimed

log = logging.getLogger("containment")


@dataclass
class Assessment:
    """What re-reading the resource showed. `ignored` is the reason to stop, if any."""

    resource_id: str
    findings: list[Finding] = field(default_factory=list)
    state: dict[str, dict] = field(default_factory=dict)  # ARM ID -> body as read: the evidence kept
    ignored: str | None = None
    note: str | None = None  # why a resource with no finding is compliant, where that needs saying


Assess = Callable[[ResourceId, Runtime, ArmEvent | None], Assessment]


def in_scope(spelled: str, scope_id: ResourceId, tags: object, runtime: Runtime,
             what: str = "the account") -> Protection | Assessment:
    """What makes the resource synthetic data (its scope tag on `what`, or a protected scope
    over `scope_id`), or, where nothing does, the assessment that leaves it alone and says why."""
    protection = protection_of(scope_id, tags, runtime.settings)
    if protection.protected:
        return protection
    return Assessment(spelled, ignored=f"not synthetic data: {what} {protection.describe()}")


@dataclass(frozen=True)
class EventPath:
    """What an Event Grid function declares: the events its subscription admits, how it
    assesses one, and what the record says when the resource cannot be read on any delivery."""

    subscription: EventSubscription
    assess: Assess
    # Who judges the resource when no delivery could read it: the sweep re-reads what a write
    # changed; what only an event shows (a key listing) a person must look at.
    unread: str = "the drift sweep re-judges the resource (CONTAINMENT_SWEEP_SCHEDULE)"
    # Whether the event itself is the exposure (a key listing): a second one in the incident is
    # the same leak, so its decision plans only what earlier ones did not (within_incident). A
    # write's exposure is the state, which containment re-reads: nothing to plan around.
    exposure_is_the_event: bool = False


def handle_arm_event(event: Any, path: EventPath, runtime: Runtime) -> DecisionRecord | None:
    """Judge one delivered event, of a type and operation the path's subscription admits;
    return the record written, or None for a redelivery."""
    subscription = path.subscription
    try:
        parsed = parse_event(event, subscription.event_types)
    except MalformedEvent as malformed:
        key = decision_key(malformed.event_id, _raw(event))
        log.warning("rejected event %s: %s", key, malformed.reason)
        return record_once(runtime, recorded(DecisionRecord(
            key=key, resource_id="", outcome="", mode=runtime.settings.mode, reason="",
            event_id=malformed.event_id, decided_at=clock.iso()), rejected(malformed.reason)))
    record = DecisionRecord(
        key=decision_key(parsed.id), resource_id=parsed.resource.text, outcome="", mode=runtime.settings.mode,
        reason="", event_id=parsed.id, operation=parsed.operation, actor=parsed.actor.as_dict(),
        event_time=clock.iso(parsed.time) if parsed.time else None, decided_at=clock.iso(),
    )
    settings = runtime.settings
    if not subscription.admits(parsed.type, parsed.operation):
        # Event Grid's filter delivers only these: another is misrouted, never judged as one.
        return record_once(runtime, recorded(record, rejected(
            f"operation {parsed.operation} is not one this function's subscription admits "
            f"({', '.join(subscription.operations)}): not judged")))
    if settings.subscriptions and parsed.resource.subscription not in settings.subscriptions:
        return record_once(runtime, recorded(record, rejected(
            f"subscription {parsed.resource.subscription} is outside CONTAINMENT_SUBSCRIPTIONS: not acted on")))
    if settings.self_principal_id and settings.self_principal_id in (
            (parsed.actor.object_id or "").lower(), (parsed.actor.app_id or "").lower()):
        return record_once(runtime, recorded(record, ignored("the change was made by this app's own identity")))
    # No ledger read before ARM's: a redelivery is judged again from what this instance read
    # after the event (containment.adapters.reads), and its record or claim, written once, refuses
    # the copy (conclude); containment waits on one round trip less. Only while ARM's reads run
    # short is a redelivery looked up first, where that saves the reads it would cost.
    if arm_limits.reads_scarce(parsed.resource.subscription) and runtime.ledger.decided(record.resource_id, record.key):
        return None
    try:
        # What this instance read after the event happened already shows it: not read again.
        with reads_fresh_since(after_event(parsed.time.timestamp() if parsed.time else None)):
            assessment = path.assess(parsed.resource, runtime, parsed)
    except Exception as error:
        # Event Grid delivers the event again, and after its last attempt dead-letters it:
        # the failure goes on the record now, so the last one leaves evidence; a delivery
        # that then succeeds replaces it with the decision.
        record_once(runtime, recorded(record, failed(
            f"reading the resource failed: {describe_failure(error)}; Event Grid delivers the event again and "
            f"{path.unread}")), provisional=True)
        raise
    record = replace(record, resource_id=assessment.resource_id)
    if assessment.ignored:
        return record_unless_claimed(runtime, recorded(record, ignored(assessment.ignored)))
    decision = decide(assessment.findings, settings, assessment.note)
    if path.exposure_is_the_event:
        decision = within_incident(decision, acted_in_incident(runtime, assessment.resource_id))
    return conclude(runtime, record, decision, assessment.state, redelivered_to_worker=True)


def _raw(event: Any) -> Any:
    try:
        event_id, event_type, subject, time, data = envelope(event)
        return {"id": event_id, "type": event_type, "subject": subject, "data": data}
    except Exception:  # noqa: BLE001 - only used to key a record for an unreadable event
        return repr(event)
