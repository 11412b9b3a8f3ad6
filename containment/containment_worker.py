"""The isolated containment function: takes a request from the queue and carries it out.

It holds the only code path that changes customer resources. Each request is the
decision record detection made; the worker acts once per claim (an ETag-guarded move of
the claim to `acting`), and writes the one decision record with the state before and
after. A request that keeps failing becomes a `failed` record on its last attempt, with a
loud log line, and still goes to the poison queue: never silence.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from containment import clock
from containment.contain import ActionResult, carry_out
from containment.decisions import PlannedAction
from containment.ledger import Claim, DecisionRecord, describe_failure
from containment.notifications import notify
from containment.runtime import Runtime, current

log = logging.getLogger("containment")
# Decisions a person made (approval, break-glass) are not counted against the blast-radius limit.
PERSON_DECIDED = ("approval", "break-glass", "release")


class MalformedRequest(ValueError):
    pass


def on_containment_request(message: Any, runtime: Runtime | None = None) -> DecisionRecord | None:
    runtime = runtime or current()
    try:
        record = _parse(message.get_body())
    except MalformedRequest as malformed:
        # Only this app writes the queue: a malformed request is a bug or tampering, kept as evidence.
        return _reject(runtime, message, f"malformed containment request: {malformed}")
    refused = out_of_scope(record, runtime.settings)
    if refused:
        return _reject(runtime, message, f"containment request refused: {refused}")
    if runtime.ledger.decided(record.resource_id, record.key):
        return None  # already contained (or failed) and recorded
    claim = runtime.ledger.get_claim(record.key, record.resource_id)
    if claim is None:
        # Detection claims before it queues: a request without a claim was not queued by
        # this app (or the ledger lost the claim), so nobody decided it should act.
        return _reject(runtime, message, f"containment request refused: no claim for event {record.key} on "
                                         f"{record.resource_id}: not queued by detection; not acted on")
    holder = str(message.id)
    if claim.state == "done":
        return None
    if claim.state == "acting" and claim.holder != holder:
        return None  # another delivery of this request is carrying it out
    claim = runtime.ledger.move_claim(claim, "acting", holder)
    if claim is None:
        return None  # lost the race to a concurrent delivery
    first_attempt = (message.dequeue_count or 1) == 1  # a retry was counted by its first attempt
    if record.operation not in PERSON_DECIDED and first_attempt and not runtime.ledger.spend_budget(
            len(record.plan), runtime.settings.max_actions_per_hour, clock.now().timestamp()):
        # A bad threshold must not lock down the whole estate: beyond the limit, a person decides.
        log.error("BLAST-RADIUS LIMIT: %s actions in the last hour reached; %s waits for approval",
                  runtime.settings.max_actions_per_hour, record.resource_id)
        record.outcome = "pending-approval"
        record.reason += (f"; held: the blast-radius limit of {runtime.settings.max_actions_per_hour} containment "
                          "actions per hour is reached (CONTAINMENT_MAX_ACTIONS_PER_HOUR)")
        record.awaiting_approval, record.actions = record.awaiting_approval + record.plan, []
        record.plan = []
        return _finish(runtime, record, claim)
    try:
        restore = {rid.lower(): body for rid, body in record.before.items()} if record.operation == "release" else None
        results = [carry_out(runtime.clients, PlannedAction(**step), runtime.settings, record.decided_at or "", restore)
                   for step in record.plan]
    except Exception as error:  # noqa: BLE001 - every failure must end as evidence, not silence
        if (message.dequeue_count or 1) < runtime.max_attempts:
            raise  # the host delivers the same message again; the claim stays this holder's
        log.error("CONTAINMENT FAILED for %s after %s attempts: %s", record.resource_id,
                  message.dequeue_count, error)
        record.outcome, record.reason = "failed", describe_failure(error)
        _finish(runtime, record, claim)
        raise
    # The contract's outcomes have no "released": a release is recorded as a report of what
    # was restored (its operation says release).
    record.outcome = "reported" if record.operation == "release" else "contained"
    record.before, record.after = _states(record.before, results)
    changed = [r.action for r in results if r.changed]
    record.reason += "" if changed else " (already contained when the request ran)"
    record.contained_at = clock.iso()
    return _finish(runtime, record, claim)


def _reject(runtime: Runtime, message: Any, reason: str) -> DecisionRecord | None:
    log.error("rejected containment request %s: %s", message.id, reason)
    rejected = DecisionRecord(key=f"message-{message.id}", resource_id="", outcome="rejected",
                              mode=runtime.settings.mode, reason=reason, decided_at=clock.iso())
    return rejected if runtime.ledger.write(rejected) else None


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
    if written:
        notify(runtime, record)
    runtime.ledger.move_claim(claim, "done")
    if written:
        log.info("%s %s: %s", record.outcome, record.resource_id, ", ".join(record.actions))
    return record if written else None


def _parse(body: bytes) -> DecisionRecord:
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedRequest(f"not JSON: {error}") from None
    if not isinstance(request, dict):
        raise MalformedRequest("not a JSON object")
    try:
        record = DecisionRecord(**request)
    except TypeError as error:
        raise MalformedRequest(str(error)) from None
    plan = record.plan if isinstance(record.plan, list) else None
    if not plan or not all(isinstance(s, dict) and set(s) == {"action", "target"} for s in plan):
        raise MalformedRequest("plan must be a non-empty list of {action, target}")
    text_fields = ("key", "resource_id", "outcome", "mode", "reason")
    wrong = [name for name in text_fields if not isinstance(getattr(record, name), str)]
    wrong += [name for name in ("before", "actor") if not isinstance(getattr(record, name), dict)]
    wrong += [name for name in ("actions", "awaiting_approval", "findings", "rules")
              if not isinstance(getattr(record, name), list)]
    if wrong or not all(isinstance(step["action"], str) and isinstance(step["target"], str) for step in plan):
        raise MalformedRequest(f"fields of the wrong type: {', '.join(wrong) or 'plan'}")
    return record


def out_of_scope(record: DecisionRecord, settings) -> str | None:
    """Why a request must not be carried out here, checked again by the function that acts
    (defence in depth: whoever can write the app's queue must not widen its scope)."""
    from containment.catalogue import ACTIONS
    from containment.resource_ids import MalformedResourceId, parse_resource_id

    for step in record.plan:
        if step["action"] not in ACTIONS:
            return f"unknown action {step['action']!r}"
        try:
            target = parse_resource_id(step["target"])
        except MalformedResourceId as error:
            return str(error)
        if settings.subscriptions and target.subscription not in settings.subscriptions:
            return f"{step['target']} is outside CONTAINMENT_SUBSCRIPTIONS"
        if settings.is_own(target.text):
            return f"{step['target']} is one of the app's own resources (CONTAINMENT_OWN_SCOPES)"
    return None
