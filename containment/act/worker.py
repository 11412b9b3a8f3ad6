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

from containment.act.carry_out import ActionResult, carry_out
from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core import clock
from containment.core.ids import MalformedResourceId, parse_resource_id
from containment.core.records import Claim, ContainmentRequest, DecisionRecord, MalformedRequest, describe_failure
from containment.core.settings import Settings
from containment.plan.decisions import (carried_out, containment_failed, held_by_budget, no_longer_judged,
                                        nothing_to_contain, recorded, rejected)
from containment.plan.registry import ACTIONS
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
    refused = out_of_scope(request, runtime.settings)
    if refused:
        return _reject(runtime, message, f"containment request refused: {refused}")
    if runtime.ledger.decided(request.resource_id, request.key):
        return None  # already contained (or failed) and recorded
    claim = runtime.ledger.get_claim(request.key, request.resource_id)
    if claim is None or claim.decision is None:
        # Detection claims before it queues: a request without a claim was not queued by
        # this app (or the ledger lost the claim), so nobody decided it should act.
        return _reject(runtime, message, f"containment request refused: no claimed decision {request.key} on "
                                         f"{request.resource_id}: not queued by this app; not acted on")
    if claim.decision.planned != request.plan:
        return _reject(runtime, message, f"containment request refused: its plan is not the plan of claimed "
                                         f"decision {request.key}; not acted on")
    holder = str(message.id)
    if claim.state == "done":
        return None
    if claim.state == "acting" and claim.holder != holder:
        return None  # another delivery of this request is carrying it out
    claim = runtime.ledger.move_claim(claim, "acting", holder)
    if claim is None:
        return None  # lost the race to a concurrent delivery
    decision = claim.decision
    first_attempt = (message.dequeue_count or 1) == 1  # a retry was counted by its first attempt
    if decision.operation not in PERSON_DECIDED and first_attempt and not runtime.ledger.spend_budget(
            len(decision.plan), runtime.settings.max_actions_per_hour, clock.now().timestamp()):
        log.error("BLAST-RADIUS LIMIT: %s actions in the last hour reached; %s waits for approval",
                  runtime.settings.max_actions_per_hour, decision.resource_id)
        return _finish(runtime, held_by_budget(decision, runtime.settings.max_actions_per_hour), claim)
    restore = {rid.lower(): body for rid, body in decision.before.items()} if decision.operation == "release" else None
    results: list[ActionResult] = []
    try:
        for step in decision.planned:
            results.append(carry_out(runtime.clients, step, runtime.settings, decision.decided_at or "", restore,
                                     recorded={rid.lower(): body for rid, body in decision.before.items()}))
    except arm.Refused as refused:
        # Sending it again would get the same answer: fail now, on the record with ARM's code,
        # keeping what the steps before it changed.
        log.error("CONTAINMENT REFUSED for %s: %s", decision.resource_id, refused)
        before, after = _states(decision.before, results)
        return _finish(runtime, containment_failed(replace(decision, before=before, after=after), str(refused)),
                       claim)
    except Exception as error:  # noqa: BLE001 - every failure must end as evidence, not silence
        if (message.dequeue_count or 1) < runtime.max_attempts:
            raise  # the host delivers the same message again; the claim stays this holder's
        log.error("CONTAINMENT FAILED for %s after %s attempts: %s", decision.resource_id,
                  message.dequeue_count, error)
        _finish(runtime, containment_failed(decision, describe_failure(error)), claim)
        raise
    before, after = _states(decision.before, results)
    moot = [r.moot for r in results if r.moot]
    if moot and not any(r.changed for r in results):
        return _finish(runtime, no_longer_judged(decision, moot), claim)
    missing = [r.target for r in results if r.before is None and r.after is None and not r.changed]
    if results and len(missing) == len(results) and decision.operation != "release":
        return _finish(runtime, nothing_to_contain(decision, missing), claim)
    return _finish(runtime, carried_out(decision, before, after, any(r.changed for r in results), clock.iso()), claim)


def _reject(runtime: Runtime, message: Any, reason: str) -> DecisionRecord | None:
    log.error("rejected containment request %s: %s", message.id, reason)
    return runtime.ledger.write(recorded(DecisionRecord(
        key=f"message-{message.id}", resource_id="", outcome="", mode=runtime.settings.mode, reason="",
        decided_at=clock.iso()), rejected(reason)))


def _states(detected: dict, results: list[ActionResult]) -> tuple[dict, dict]:
    """Before and after, keyed by the resource the evidence is (the NSG for a rule):
    before is the state when containment began, after the state when it ended. A retry
    after a partial success finds earlier targets already changed; for those, the state
    detection read is the one before containment."""
    detected = {rid.lower(): body for rid, body in detected.items()}
    before, after = {}, {}
    for result in results:
        key = (result.before or result.after or {}).get("id") or result.target
        if key not in before:
            before[key] = result.before if result.changed else detected.get(key.lower(), result.before)
        after[key] = result.after
    return before, after


def _finish(runtime: Runtime, record: DecisionRecord, claim: Claim) -> DecisionRecord | None:
    written = runtime.ledger.write(record)
    if written is not None:
        notify(runtime, written)
    runtime.ledger.move_claim(claim, "done")
    if written is not None:
        log.info("%s %s: %s", written.outcome, written.resource_id, ", ".join(written.actions))
    return written


def out_of_scope(request: ContainmentRequest, settings: Settings) -> str | None:
    """Why a request must not be carried out here, checked again by the function that acts
    (defence in depth: whoever can write the app's queue must not widen its scope)."""
    for step in request.plan:
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
