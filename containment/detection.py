"""From an ARM event to a recorded decision: the path every Event Grid trigger shares.

    parse -> in our subscriptions? -> made by us? -> assess (re-read + judge) -> decide
          -> record (dry-run, reported, compliant, ...) or claim + enqueue (enforce)

Each resource family supplies only its `assess` step; everything else, the safety checks
and the once-per-event guarantee, is here once.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from containment import clock
from containment.decisions import CONTAIN, Decision, decide
from containment.events import ArmEvent, MalformedEvent, envelope, parse_event
from containment.findings import SEVERITIES, Finding
from containment.ledger import DecisionRecord, decision_key, describe_failure
from containment.runtime import Runtime

log = logging.getLogger("containment")
MAX_REQUEST = 45 * 1024


@dataclass
class Assessment:
    """What re-reading the resource showed. `ignored` is the reason to stop, if any."""

    resource_id: str
    findings: list[Finding] = field(default_factory=list)
    state: dict[str, dict] = field(default_factory=dict)  # ARM ID -> body as read: the evidence kept
    ignored: str | None = None
    note: str | None = None  # why a resource with no finding is compliant, where that needs saying


Assess = Callable[[ArmEvent, Runtime], Assessment]


def handle_arm_event(event: Any, assess: Assess, runtime: Runtime) -> DecisionRecord | None:
    """Judge one delivered event; return the record written, or None for a redelivery."""
    try:
        parsed = parse_event(event)
    except MalformedEvent as malformed:
        key = decision_key(malformed.event_id, _raw(event))
        log.warning("rejected event %s: %s", key, malformed.reason)
        return record_once(runtime, DecisionRecord(key=key, resource_id="", outcome="rejected",
                                               mode=runtime.settings.mode, reason=malformed.reason,
                                               event_id=malformed.event_id, decided_at=clock.iso()))
    record = DecisionRecord(
        key=decision_key(parsed.id), resource_id=parsed.resource.text, outcome="", mode=runtime.settings.mode,
        reason="", event_id=parsed.id, operation=parsed.operation, actor=parsed.actor.as_dict(),
        event_time=clock.iso(parsed.time) if parsed.time else None, decided_at=clock.iso(),
    )
    settings = runtime.settings
    if settings.subscriptions and parsed.resource.subscription not in settings.subscriptions:
        return record_once(runtime, _with(record, "rejected", f"subscription {parsed.resource.subscription} is "
                                      "outside CONTAINMENT_SUBSCRIPTIONS: not acted on"))
    if settings.is_own(parsed.resource.text):
        return record_once(runtime, _with(record, "ignored", "the app's own resources (CONTAINMENT_OWN_SCOPES) are "
                                                          "never acted on"))
    if settings.self_principal_id and settings.self_principal_id in (
            (parsed.actor.object_id or "").lower(), (parsed.actor.app_id or "").lower()):
        return record_once(runtime, _with(record, "ignored", "the change was made by this app's own identity"))
    if runtime.ledger.decided(record.resource_id, record.key):
        return None  # a redelivery of an event already decided: nothing to read or do
    try:
        assessment = assess(parsed, runtime)
    except Exception as error:
        # Event Grid delivers the event again, and after its last attempt dead-letters it:
        # the failure goes on the record now, so the last one leaves evidence; a delivery
        # that then succeeds replaces it with the decision.
        record_once(runtime, _with(record, "failed", f"reading the resource failed: {describe_failure(error)}; "
                                   "Event Grid delivers the event again and the drift sweep re-judges the resource "
                                   "(CONTAINMENT_SWEEP_SCHEDULE)"), provisional=True)
        raise
    record.resource_id = assessment.resource_id
    if assessment.ignored:
        return record_once(runtime, _with(record, "ignored", assessment.ignored))
    decision = decide(assessment.findings, settings)
    if decision.outcome == "compliant" and assessment.note:
        decision = replace(decision, reason=assessment.note)
    return conclude(runtime, record, decision, assessment.state)


def conclude(runtime: Runtime, record: DecisionRecord, decision: Decision, state: dict[str, dict],
             check_exemptions: bool = True):
    """Record the decision, or (to contain) claim it and queue the request; the record
    written, or None when it was already there (or is the containment function's to write).
    A finding on an exempt scope is recorded `exempt` (a person's explicit request is not)."""
    exemption = exemption_for(runtime, record.resource_id) if check_exemptions and decision.findings else None
    if exemption is not None:
        decision = replace(decision, outcome="exempt", plan=(), awaiting=(), reason=(
            f"exempt until {exemption['expires_at']} ({exemption['scope']}): {exemption['reason']}, owner "
            f"{exemption['owner']}; would have: {decision.reason}"))
    record.findings = [finding.as_dict() for finding in decision.findings]
    record.rules = sorted({finding.rule for finding in decision.findings})
    record.severity = max((f.severity for f in decision.findings), key=SEVERITIES.index, default=None)
    record.plan = [step.as_dict() for step in decision.plan]
    record.actions = [step.action for step in decision.plan]
    record.awaiting_approval = [step.as_dict() for step in decision.awaiting]
    record.reason = decision.reason
    record.before = state
    if decision.outcome == CONTAIN:
        return _request_containment(runtime, record)
    return record_once(runtime, _with(record, decision.outcome, decision.reason))


def exemption_for(runtime: Runtime, resource_id: str) -> dict | None:
    """The unexpired exemption covering the resource (itself or a scope above it), if any.
    Kept in the ledger, never in tags: whoever can tag a resource must not be able to exempt it."""
    now = clock.iso()
    key = resource_id.lower()
    for exemption in runtime.ledger.exemptions():
        scope = exemption["scope"].lower()
        if (key == scope or key.startswith(scope + "/")) and exemption["expires_at"] > now:
            return exemption
    return None


def _request_containment(runtime: Runtime, record: DecisionRecord) -> None:
    """Claim the event, then queue the request for the isolated containment function.

    A claim left un-queued by a crash is queued by the next delivery; a request queued
    twice is harmless, as the containment function acts once per claim."""
    fresh, claim = runtime.ledger.claim(record.key, record.resource_id)
    if not fresh and claim.state != "new":
        return None
    request = json.dumps(asdict(record))
    if len(request) > MAX_REQUEST:
        # A queue message holds 64 KiB (48 KiB of text once base64-encoded). The state read
        # at detection is only a fallback: the containment function reads its own before-state.
        request = json.dumps({**asdict(record), "before": {}})
    runtime.queue.send_message(request)
    runtime.ledger.move_claim(claim, "queued")
    log.info("containment requested for %s (%s): %s", record.resource_id, record.key, ", ".join(record.actions))
    return None


def _with(record: DecisionRecord, outcome: str, reason: str) -> DecisionRecord:
    record.outcome, record.reason = outcome, reason
    return record


def record_once(runtime: Runtime, record: DecisionRecord, provisional: bool = False) -> DecisionRecord | None:
    """Write the record unless one with its key exists (a redelivery); the record if written.
    A provisional record is replaced by the first final one (Ledger.write)."""
    from containment.notifications import notify

    if runtime.ledger.write(record, provisional):
        notify(runtime, record)
        log.info("%s %s: %s", record.outcome, record.resource_id or "(no resource)", record.reason)
        return record
    return None


def _raw(event: Any) -> Any:
    try:
        event_id, event_type, subject, time, data = envelope(event)
        return {"id": event_id, "type": event_type, "subject": subject, "data": data}
    except Exception:  # noqa: BLE001 - only used to key a record for an unreadable event
        return repr(event)
