"""The end of every path that decides: record the decision once, or (to contain) claim it
and queue a containment request for the isolated worker.

Event triggers, the egress scan, the drift sweep and the operators' requests all end here,
so "one record per decision" and "one containment per claim" are kept in one place.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import timedelta

from containment.adapters.runtime import Runtime
from containment.core import clock
from containment.core.records import ContainmentRequest, DecisionRecord
from containment.plan.decisions import CONTAIN, Decision, exempting, recorded
from containment.record.correlation import assign
from containment.record.impact import previewed
from containment.record.notifications import notify

log = logging.getLogger("containment")
# A redelivery that finds the claim still `queued` this long after it was written queues its
# request again: Event Grid delivers again only after a delivery failed, at the earliest 10 s
# later (https://learn.microsoft.com/azure/event-grid/delivery-and-retry), and a detection that
# died between the claim and the queue fails its delivery; a copy that comes sooner is one
# Event Grid sent twice while the first was handled. A request queued twice is harmless.
REQUEUE_AFTER = 5.0


def conclude(runtime: Runtime, record: DecisionRecord, decision: Decision, state: dict[str, dict],
             check_exemptions: bool = True, redelivered_to_worker: bool = False) -> DecisionRecord | None:
    """Record the decision, or (to contain) claim it and queue the request; the record
    written, or None when it was already there (or is the containment worker's to write).
    What an exemption covers is held back (a person's explicit request is not). What waits
    for a person carries the preview of whom it would break (containment.record.impact).
    `redelivered_to_worker`: the decision may be a redelivery of one an earlier delivery
    claimed (an event); its record is then the worker's, whatever this delivery judged."""
    if check_exemptions:
        decision = with_exemptions(runtime, decision, str(record.actor.get("object_id") or "").lower())
    record = previewed(runtime, recorded(record, decision, state))
    if decision.outcome == CONTAIN:
        return request_containment(runtime, record)
    return record_unless_claimed(runtime, record) if redelivered_to_worker else record_once(runtime, record)


def record_unless_claimed(runtime: Runtime, record: DecisionRecord) -> DecisionRecord | None:
    """Write an event's record unless an earlier delivery of the event claimed its containment:
    that record is the worker's, whatever this delivery found (the resource it deleted reads as
    gone, the container it made private as compliant)."""
    if runtime.ledger.get_claim(record.key, record.resource_id) is not None:
        return None
    return record_once(runtime, record)


def with_exemptions(runtime: Runtime, decision: Decision, actor: str = "") -> Decision:
    """The decision as the unexpired exemptions leave it (containment.plan.decisions.exempting).
    Kept in the ledger, never in tags: whoever can tag a resource must not be able to exempt it.
    An exemption never excuses a change made by someone who decided it (`actor`: the
    change's object ID): exempting one's own account first and opening it after is contained."""
    if not decision.findings:
        return decision
    now = clock.iso()
    return exempting(decision, [e for e in runtime.ledger.exemptions(runtime.settings.controls_cache_seconds)
                                if e["expires_at"] > now and not (actor and actor in e.get("decided_by", []))])


def request_containment(runtime: Runtime, decision: DecisionRecord) -> None:
    """Claim the decision (the claim keeps it, `queued`), then queue a request that names it
    and the claim's ETag. Its incident is found when its record is written (after the write).

    A claim whose request was lost (a crash between the two) is still `queued` when Event Grid
    delivers the event again: queued again once it has waited longer than a request takes to
    be picked up. A request queued twice is harmless: the worker acts once per claim."""
    fresh, claim = runtime.ledger.claim(decision)
    if not fresh and not (claim.state == "queued" and time.time() - (claim.queued_at or 0) > REQUEUE_AFTER):
        return None
    runtime.queue.send_message(ContainmentRequest.of(claim.decision or decision, claim.etag).to_message())
    log.info("containment requested for %s (%s): %s", decision.resource_id, decision.key, ", ".join(decision.actions))
    return None


def acted_in_incident(runtime: Runtime, resource_id: str) -> list[DecisionRecord]:
    """The decisions that acted on the resource (in dry-run: would have) or still hold actions
    for a person, within the incident window (CONTAINMENT_INCIDENT_WINDOW_HOURS), earliest
    first, whichever path decided them (a key listing, the egress scan, an approval): what
    within_incident plans around. A decision a person released since is not among them (what
    follows a release is a new incident); what a person denied or let expire is held no more."""
    acted = ("contained" if runtime.settings.enforcing else "would-contain", "pending-approval")
    since = clock.iso(clock.now() - timedelta(hours=runtime.settings.incident_window_hours))
    on_resource = list(runtime.ledger.for_resource(resource_id))
    released = {r.releases for r in on_resource if r.releases}
    records = [r for r in on_resource if r.outcome in acted]
    waiting = {item["key"] for item in runtime.ledger.pending()} if any(r.awaiting_approval for r in records) else set()
    kept = (r if r.key in waiting else replace(r, awaiting_approval=[]) for r in records
            if r.key not in released and (r.decided_at or "") >= since
            and (r.outcome != "pending-approval" or r.key in waiting))
    return sorted(kept, key=lambda r: r.recorded_at)


def record_once(runtime: Runtime, record: DecisionRecord, provisional: bool = False) -> DecisionRecord | None:
    """Write the record, in its incident, unless one with its key exists (a redelivery); the record if written.
    A provisional record is replaced by the first final one (Ledger.write)."""
    written = runtime.ledger.write(assign(runtime, record), provisional)
    if written is not None:
        notify(runtime, written)
        log.info("%s %s: %s", written.outcome, written.resource_id or "(no resource)", written.reason)
    return written
