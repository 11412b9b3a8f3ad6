"""The isolated containment worker: takes a request from the queue and carries it out.

It holds the only code path that changes customer resources. A request only names a
claimed decision (containment.core.records.ContainmentRequest); the decision itself, with
the state recorded before and the findings, is loaded from its claim in the ledger, so a
forged or truncated message can at most name a decision that exists. The worker acts once
per claim (an ETag-guarded move of the claim to `acting`), and writes the one decision
record with the state before and after. A request that keeps failing becomes a `failed`
record on its last attempt, with a loud log line, and still goes to the poison queue:
never silence.

One round trip before the write: the claim read, the claim taken under the ETag the request
carries, the budget spent and the resource read, together; what does not hold is undone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from containment.act.carry_out import ActionResult, Judged, carry_out
from containment.adapters import arm, arm_limits, reads
from containment.adapters.runtime import Runtime, current, together
from containment.core import clock
from containment.core.findings import exposed_since
from containment.core.ids import MalformedResourceId, parse_resource_id
from containment.core.records import (Claim, ContainmentRequest, DecisionRecord, MalformedRequest, PlannedAction,
                                      budgeted, describe_failure, plan_digest)
from containment.core.settings import Settings
from containment.plan.decisions import (carried_out, containment_failed, held_by_budget, no_longer_judged,
                                        nothing_to_contain, recorded, rejected)
from containment.plan.registry import ACTIONS
from containment.record.correlation import assign
from containment.record.impact import previewed
from containment.record.notifications import notify

log = logging.getLogger("containment")


@dataclass
class Spending:
    """What this delivery spent of the blast-radius budget: how many actions, when (the minute
    it counts in), and how many the hour had spent where it could not (the decision is held)."""

    actions: int = 0
    at: float = 0.0
    refused: int | None = None


def on_containment_request(message: Any, runtime: Runtime | None = None) -> DecisionRecord | None:
    runtime = runtime or current()
    started = reads.now()  # what is read from here on shows the resource as containment finds it
    try:
        request = ContainmentRequest.from_message(message.get_body())
    except MalformedRequest as malformed:
        # Only this app writes the queue: a malformed request is a bug or tampering, kept as evidence.
        return _reject(runtime, message, f"malformed containment request: {malformed}")
    holder = str(message.id)
    # Its reads never wait for ARM's read reserve: they are what the reserve is kept for.
    with reads.reads_fresh_since(started), arm_limits.containing():
        if (message.dequeue_count or 1) <= 1:
            taken = _take_at_once(runtime, request, holder)
        else:  # a retry: the claim may be this request's already, the budget spent on it
            taken = _take(runtime, request, holder, runtime.ledger.get_claim(request.key, request.resource_id))
        if isinstance(taken, Refusal):
            return _reject(runtime, message, taken.reason)
        if taken is None:
            return None
        return _contain(runtime, message, *taken)


@dataclass(frozen=True)
class Refusal:
    reason: str


def _take_at_once(runtime: Runtime, request: ContainmentRequest, holder: str):
    """The first delivery: in one round trip, read the claim, move it to `acting` under the
    ETag the request carries (so only a claim unchanged since detection queued it), spend the
    budget the request names, and read the resource; everything checked after. What does not
    hold is undone: the budget given back, the claim put back `queued`."""
    ledger = runtime.ledger
    named = Claim(request.key, request.resource_id, "queued", "", request.claim_etag)
    settings = runtime.settings
    low_limit = settings.max_actions_per_hour - settings.high_severity_reserve
    # The claim is marked spent only once the spending is done (_contain): a retry of a
    # delivery that failed before then spends again, which holds more for a person, never less.
    claim, moved, spending, _ = together(
        lambda: ledger.get_claim(request.key, request.resource_id),
        lambda: ledger.move_claim(named, "acting", holder),
        lambda: _spend(runtime, request.spend, low_limit),
        lambda: _read_ahead(runtime, request.resource_id))
    if moved is None:  # the claim moved since the request was queued: take it as a retry does
        _refund(runtime, spending)
        return _take(runtime, request, holder, claim)
    refused = _refused(runtime, request, claim)
    if refused is not None:
        _refund(runtime, spending)
        ledger.move_claim(moved, "queued", "", spent=False)  # the request it belongs to may still come
        return refused
    moved = replace(moved, decision=claim.decision)
    if spending.refused is not None and _high(moved.decision):  # the reserve is for high and critical
        spending = _spend(runtime, request.spend, settings.max_actions_per_hour)
    return moved, spending


def _take(runtime: Runtime, request: ContainmentRequest, holder: str, claim: Claim | None):
    """Take the claim as it is now: (claim, spending), None where another delivery has it or it
    is done, or a Refusal."""
    refused = _refused(runtime, request, claim)
    if refused is not None:
        return refused
    if claim.state == "done" or (claim.state == "acting" and claim.holder != holder):
        return None  # carried out, or being carried out by another delivery of this request
    claim = runtime.ledger.move_claim(claim, "acting", holder)
    if claim is None:
        return None  # lost the race to a concurrent delivery
    spending = Spending()
    if request.spend and not claim.spent:
        # Spent, then marked: a crash between the two counts it twice, which holds more for a
        # person, never less.
        high = _high(claim.decision)
        settings = runtime.settings
        spending = _spend(runtime, request.spend, settings.max_actions_per_hour
                          - (0 if high else settings.high_severity_reserve))
        if spending.refused is None:
            claim = runtime.ledger.move_claim(claim, "acting", holder, spent=True)
            if claim is None:
                return None  # another delivery moved the claim meanwhile: it carries the decision on
    return claim, spending


def _refused(runtime: Runtime, request: ContainmentRequest, claim: Claim | None) -> Refusal | None:
    """Why the request must not be carried out on this claim, or None."""
    if claim is None or claim.decision is None:
        # Detection claims before it queues: a request without a claim was not queued by
        # this app (or the ledger lost the claim), so nobody decided it should act.
        return Refusal(f"containment request refused: no claimed decision {request.key} on "
                       f"{request.resource_id}: not queued by this app; not acted on")
    if plan_digest(claim.decision.plan) != request.plan_sha256 or budgeted(claim.decision) != request.spend:
        return Refusal(f"containment request refused: its plan is not the plan of claimed decision {request.key}; "
                       "not acted on")
    refused = out_of_scope(claim.decision.planned, runtime.settings)
    return Refusal(f"containment request refused: {refused}") if refused else None


def _contain(runtime: Runtime, message: Any, claim: Claim, spending: Spending) -> DecisionRecord | None:
    decision = claim.decision
    if spending.refused is not None:
        held = _held(runtime, decision, spending.refused)
        return _finish(runtime, previewed(runtime, held), claim,
                       notify_it=runtime.ledger.first_hold(clock.now().timestamp()))
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
    retried = (message.dequeue_count or 1) > 1
    results: list[ActionResult] = []

    def act() -> Exception | None:
        try:
            for step in decision.planned:
                results.append(carry_out(runtime.clients, step, runtime.settings, judged))
        except Exception as error:  # noqa: BLE001 - judged below, with what the steps before it did
            return error
        return None

    if spending.actions and not claim.spent:
        # Spent, then marked, while the writes go out: a retry after a failed write does not
        # spend again; a crash before the mark counts it twice, never less.
        marked, failure = together(lambda: runtime.ledger.move_claim(claim, "acting", claim.holder, spent=True), act)
        claim = marked or claim
    else:
        failure = act()
    try:
        if failure is not None:
            raise failure
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
    # Only writes that changed something count against the limit: what was no longer exposed
    # when containment read it is given back.
    _refund(runtime, replace(spending, actions=min(spending.actions, sum(not r.changed for r in results))))
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


def _high(decision: DecisionRecord) -> bool:
    return decision.severity in ("high", "critical")


def _spend(runtime: Runtime, actions: int, limit: int) -> Spending:
    """Spend the blast-radius budget on a decision's actions, all or none, against `limit`
    (findings below high severity cannot spend the reserve CONTAINMENT_HIGH_SEVERITY_RESERVE keeps)."""
    if not actions:
        return Spending()
    at = clock.now().timestamp()
    refused = runtime.ledger.spend_budget(actions, limit, at)
    return Spending(0, at, refused) if refused is not None else Spending(actions, at)


def _refund(runtime: Runtime, spending: Spending) -> None:
    if spending.actions:
        runtime.ledger.refund_budget(spending.actions, spending.at)


def _held(runtime: Runtime, decision: DecisionRecord, spent: int) -> DecisionRecord:
    """The decision held for a person, with the true reason: its actions do not fit the limit."""
    settings = runtime.settings
    high = _high(decision)
    limit = settings.max_actions_per_hour - (0 if high else settings.high_severity_reserve)
    log.error("BLAST-RADIUS LIMIT: %s of %s actions spent in the last hour; %s (%s actions) waits for approval",
              spent, limit, decision.resource_id, budgeted(decision))
    return held_by_budget(decision, budgeted(decision), spent, limit, settings, high)


def _read_ahead(runtime: Runtime, resource_id: str) -> None:
    """Read the resource the request names beside taking the claim, so that carrying it out
    finds it read (containment.adapters.reads); a resource outside the app's subscriptions is
    not read (the claimed plan is checked before anything acts), and any failure is left to
    carrying out, which reads again."""
    try:
        target = parse_resource_id(resource_id)
        settings = runtime.settings
        if not settings.subscriptions or target.subscription in settings.subscriptions:
            arm.read_state(runtime.clients, target)
    except Exception:  # noqa: BLE001 - only a head start: carry_out reads and reports what fails
        pass


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
    written = runtime.ledger.write(assign(runtime, record))
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
