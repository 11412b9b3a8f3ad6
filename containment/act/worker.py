"""The isolated containment worker: takes a request from the queue and carries it out.

It holds the only code path that changes customer resources. A request only names a
claimed decision (containment.core.records.ContainmentRequest); the decision itself, with
the state recorded before and the findings, is loaded from its claim in the ledger, so a
forged or truncated message can at most name a decision that exists. The worker acts once
per claim (an ETag-guarded move of the claim to `acting`), and writes the one decision
record with the state before and after. A request that keeps failing becomes a `failed`
record on its last attempt, with a loud log line, and still goes to the poison queue:
never silence.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from containment.act.carry_out import ActionResult, Judged, carry_out, would_change
from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core import clock
from containment.core.findings import exposed_since
from containment.core.ids import MalformedResourceId, parse_resource_id
from containment.core.records import (Claim, ContainmentRequest, DecisionRecord, MalformedRequest, PlannedAction,
                                      describe_failure, plan_digest)
from containment.core.settings import Settings
from containment.plan.decisions import (carried_out, containment_failed, held_by_budget, no_longer_judged,
                                        nothing_to_contain, recorded, rejected)
from containment.plan.registry import ACTIONS
from containment.record.impact import previewed
from containment.record.notifications import notify

log = logging.getLogger("containment")
# Decisions a person made (approval, break-glass) are not counted against the blast-radius limit.
PERSON_DECIDED = ("approval", "break-glass", "release")


def on_containment_request(message: Any, runtime: Runtime | None = None) -> DecisionRecord | None:
    runtime = runtime or current()
    try:
        request = ContainmentRequest.from_message(message.get_body())
    except MalformedRequest as malformed:
        # Only this app writes the queue: a malformed request is a bug or tampering, kept as evidence.
        return _reject(runtime, message, f"malformed containment request: {malformed}")
    if runtime.ledger.decided(request.resource_id, request.key):
        return None  # already contained (or failed) and recorded
    claim = runtime.ledger.get_claim(request.key, request.resource_id)
    if claim is None or claim.decision is None:
        # Detection claims before it queues: a request without a claim was not queued by
        # this app (or the ledger lost the claim), so nobody decided it should act.
        return _reject(runtime, message, f"containment request refused: no claimed decision {request.key} on "
                                         f"{request.resource_id}: not queued by this app; not acted on")
    if plan_digest(claim.decision.plan) != request.plan_sha256:
        return _reject(runtime, message, f"containment request refused: its plan is not the plan of claimed "
                                         f"decision {request.key}; not acted on")
    refused = out_of_scope(claim.decision.planned, runtime.settings)
    if refused:
        return _reject(runtime, message, f"containment request refused: {refused}")
    holder = str(message.id)
    if claim.state == "done":
        return None
    if claim.state == "acting" and claim.holder != holder:
        return None  # another delivery of this request is carrying it out
    claim = runtime.ledger.move_claim(claim, "acting", holder)
    if claim is None:
        return None  # lost the race to a concurrent delivery
    decision = claim.decision
    # The keys that leaked are those created before the exposure, not before whoever approved
    # the rotation: an approval copies the findings of the decision it settles.
    exposed = exposed_since(decision.findings) or decision.event_time or decision.decided_at or ""
    judged = Judged(exposed, _lower(decision.before), findings=tuple(decision.findings))
    if decision.operation == "release":
        released = runtime.ledger.find(decision.resource_id, decision.releases or "")
        if released is None:
            return _finish(runtime, containment_failed(decision, f"the released decision {decision.releases} is not "
                                                                 "in the ledger: nothing to go back to"), claim)
        judged = replace(judged, release={"before": _lower(released.before), "after": _lower(released.after)})
    results: list[ActionResult] = []
    retried = (message.dequeue_count or 1) > 1
    try:
        # Once per claim, whatever the retries. Spent, then marked: a crash between the two
        # counts it twice, which holds more for a person, never less.
        if decision.operation not in PERSON_DECIDED and not claim.spent:
            held = _spend_budget(runtime, decision, judged)
            if held is not None:
                return _finish(runtime, previewed(runtime, held), claim,
                               notify_it=runtime.ledger.first_hold(clock.now().timestamp()))
            claim = runtime.ledger.move_claim(claim, "acting", holder, spent=True)
            if claim is None:
                return None  # another delivery moved the claim meanwhile: it carries the decision on
        for step in decision.planned:
            results.append(carry_out(runtime.clients, step, runtime.settings, judged))
    except arm.Refused as refused:
        # Sending it again would get the same answer: fail now, on the record with ARM's code,
        # keeping what the steps before it changed.
        log.error("CONTAINMENT REFUSED for %s: %s", decision.resource_id, refused)
        before, after = _states(decision.before, results, retried)
        return _finish(runtime, containment_failed(replace(decision, before=before, after=after), str(refused)),
                       claim)
    except Exception as error:  # noqa: BLE001 - every failure must end as evidence, not silence
        if (message.dequeue_count or 1) < runtime.max_attempts:
            raise  # the host delivers the same message again; the claim stays this holder's
        log.error("CONTAINMENT FAILED for %s after %s attempts: %s", decision.resource_id,
                  message.dequeue_count, error)
        _finish(runtime, containment_failed(decision, describe_failure(error)), claim)
        raise
    before, after = _states(decision.before, results, retried)
    moot = [r.moot for r in results if r.moot]
    if decision.operation == "approval" and not any(r.changed for r in results):
        # Approved on a judgement made hours ago: what no longer holds it is on the record.
        moot += [f"{r.target} is no longer exposed" for r in results if not r.moot]
    if moot and not any(r.changed for r in results):
        return _finish(runtime, no_longer_judged(decision, moot), claim)
    missing = [r.target for r in results if r.before is None and r.after is None and not r.changed]
    if results and len(missing) == len(results) and decision.operation != "release":
        return _finish(runtime, nothing_to_contain(decision, missing), claim)
    return _finish(runtime, carried_out(decision, before, after, any(r.changed for r in results), clock.iso()), claim)


def _spend_budget(runtime: Runtime, decision: DecisionRecord, judged: Judged) -> DecisionRecord | None:
    """Spend the blast-radius budget on the steps that would change something, all or none;
    the decision held for a person (with the true reason) when they do not fit. Findings
    below high severity cannot spend the reserve CONTAINMENT_HIGH_SEVERITY_RESERVE keeps."""
    settings = runtime.settings
    needed = [step for step in decision.planned if would_change(runtime.clients, step, settings, judged)]
    if not needed:
        return None  # nothing to write: nothing to spend
    high = decision.severity in ("high", "critical")
    limit = settings.max_actions_per_hour - (0 if high else settings.high_severity_reserve)
    spent = runtime.ledger.spend_budget(len(needed), limit, clock.now().timestamp())
    if spent is None:
        return None
    log.error("BLAST-RADIUS LIMIT: %s of %s actions spent in the last hour; %s (%s actions) waits for approval",
              spent, limit, decision.resource_id, len(needed))
    return held_by_budget(decision, len(needed), spent, limit, settings, high)


def _lower(states: dict) -> dict:
    return {rid.lower(): body for rid, body in states.items()}


def _reject(runtime: Runtime, message: Any, reason: str) -> DecisionRecord | None:
    log.error("rejected containment request %s: %s", message.id, reason)
    return runtime.ledger.write(recorded(DecisionRecord(
        key=f"message-{message.id}", resource_id="", outcome="", mode=runtime.settings.mode, reason="",
        decided_at=clock.iso()), rejected(reason)))


def _states(detected: dict, results: list[ActionResult], retried: bool) -> tuple[dict, dict]:
    """Before and after, keyed by the resource the evidence is (the NSG for a rule):
    before is the state when containment began, after the state when it ended, so release
    puts back only what containment changed. A retry after a partial success finds earlier
    targets already changed; for those, the state detection read is the one before
    containment. On a first attempt a target found unchanged was not changed by the app
    (its owner fixed it first): its before is what the worker read."""
    detected = {rid.lower(): body for rid, body in detected.items()}
    before, after = {}, {}
    for result in results:
        key = (result.before or result.after or {}).get("id") or result.target
        if key not in before:
            before[key] = result.before if result.changed or not retried else detected.get(key.lower(), result.before)
        after[key] = result.after
    return before, after


def _finish(runtime: Runtime, record: DecisionRecord, claim: Claim, notify_it: bool = True) -> DecisionRecord | None:
    written = runtime.ledger.write(record)
    if written is not None:
        notify(runtime, written, quiet=not notify_it)
    runtime.ledger.move_claim(claim, "done")
    if written is not None:
        log.info("%s %s: %s", written.outcome, written.resource_id, ", ".join(written.actions))
    return written


def out_of_scope(plan: tuple[PlannedAction, ...], settings: Settings) -> str | None:
    """Why a claimed plan must not be carried out here, checked again by the function that
    acts (defence in depth: whoever can write the app's ledger must not widen its scope)."""
    for step in plan:
        if step.action not in ACTIONS:
            return f"unknown action {step.action!r}"
        try:
            target = parse_resource_id(step.target)
        except MalformedResourceId as error:
            return str(error)
        if settings.subscriptions and target.subscription not in settings.subscriptions:
            return f"{step.target} is outside CONTAINMENT_SUBSCRIPTIONS"
        if settings.is_own(target.text):
            return f"{step.target} is one of the app's own resources (CONTAINMENT_OWN_SCOPES)"
    return None
