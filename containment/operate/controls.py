"""What the security team does by hand: approve or deny what waits for them, contain a
resource now (break-glass), and exempt a scope for a while. Every use is a decision record
naming the person (the platform's authenticated principal where it provides one), and so
is every request refused (`refused`: a `rejected` record).

Each function takes the parsed request and returns (HTTP status, JSON body); the HTTP
functions in function_app.py and the CLI are thin adapters over them. An answer that names
a `decision` names the record the request wrote, refusals included (an expired approval).
"""
from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from containment.adapters import arm
from containment.adapters.runtime import Runtime
from containment.core import clock
from containment.core.findings import Finding
from containment.core.ids import MalformedResourceId, parse_resource_id
from containment.operate.principal import Principal
from containment.core.records import DecisionRecord, PlannedAction, decision_key, is_safe_key, refusal_key
from containment.plan.decisions import by_person, not_carried_out, recorded, rejected
from containment.plan.registry import ACTIONS
from containment.plan.restore import RESOURCE_TYPES, plan_release
from containment.record.approvals import expires, follow_up, held_steps, parse_time, record_expiry
from containment.record.conclude import conclude, record_once

Answer = tuple[int, dict[str, Any]]
# What a refusal's record copies from the request is the caller's to choose: bounded, so a
# huge or hostile request cannot make a huge record (the key's digest covers all of it).
QUOTED = {"route": 300, "error": 1000}


def refused(runtime: Runtime, method: str, route: str, who: Principal | None, body: bytes, named: Any, status: int,
            error: str) -> DecisionRecord | None:
    """A refused operator request on the record: `rejected`, who asked, which route, and why
    not, about the resource it named if that is an ARM ID (else none)."""
    try:
        resource_id = parse_resource_id(named).text
    except MalformedResourceId:
        resource_id = ""
    at = clock.iso()
    actor = who.as_actor() if who is not None else {}
    record = DecisionRecord(
        key=refusal_key(method, route, actor.get("object_id", ""), at, body), resource_id=resource_id, outcome="",
        mode=runtime.settings.mode, reason="", operation="operator-request", actor=actor, decided_at=at)
    sent = f"; body of {len(body):,} bytes, sha256 {hashlib.sha256(body).hexdigest()}" if body else ""
    return record_once(runtime, recorded(record, rejected(
        f"{method} {_quoted(route, 'route')} refused with {status}: {_quoted(error, 'error')}{sent}")))


def _quoted(text: str, what: str) -> str:
    limit = QUOTED[what]
    return text if len(text) <= limit else f"{text[:limit]} [... {len(text) - limit:,} more characters]"


def list_pending(runtime: Runtime) -> Answer:
    expiry = timedelta(hours=runtime.settings.approval_expiry_hours)
    return 200, {"pending": [{**item, "expires_at": clock.iso(parse_time(item["decided_at"]) + expiry)}
                             for item in runtime.ledger.pending()]}


def approve(runtime: Runtime, key: str, who: Principal) -> Answer:
    return _settle(runtime, key, who, approved=True)


def deny(runtime: Runtime, key: str, who: Principal) -> Answer:
    return _settle(runtime, key, who, approved=False)


def _settle(runtime: Runtime, key: str, who: Principal, approved: bool) -> Answer:
    operator = who.name
    if not is_safe_key(key):
        return 400, {"error": "not a decision key (letters, digits and . _ : @ + = -, at most 200)"}
    pending = runtime.ledger.take_pending(key)
    if pending is None:
        return 404, {"error": f"no decision {key!r} waits for approval"}
    original = runtime.ledger.find(pending["resource_id"], key)
    steps = held_steps(original)
    if clock.now() >= expires(runtime, original):
        expired = record_expiry(runtime, original, who.as_actor())
        return 409, {"error": expired.reason, "decision": expired.key}
    settled = follow_up(runtime, original, "approved" if approved else "denied", who.as_actor())
    if not approved:
        denied = recorded(settled, not_carried_out(
            f"denied by {operator}: {', '.join(s['action'] for s in steps)} not carried out"))
        record_once(runtime, denied)
        return 200, {"decision": denied.key, "outcome": denied.outcome}
    plan = tuple(PlannedAction(**step) for step in steps)
    try:
        conclude(runtime, settled, by_person(f"approved by {operator}: decision {key}", plan, runtime.settings),
                 original.before, check_exemptions=False)
    except Exception:
        runtime.ledger.keep_pending(original)  # not lost: it still waits, and still expires
        raise
    return 202, {"decision": settled.key, "actions": [s.action for s in plan]}


def contain_now(runtime: Runtime, body: Any, who: Principal) -> Answer:
    """Break-glass: the actions asked for (or every action for the resource's type) on one
    resource, through the same queue, checks and records as automatic containment."""
    if not isinstance(body, dict):
        return 400, {"error": "the body must be a JSON object with resourceId and, optionally, actions"}
    try:
        resource = parse_resource_id(body.get("resourceId"))
    except MalformedResourceId as error:
        return 400, {"error": f"resourceId: {error}"}
    settings, operator = runtime.settings, who.name
    if settings.subscriptions and resource.subscription not in settings.subscriptions:
        return 403, {"error": f"subscription {resource.subscription} is outside CONTAINMENT_SUBSCRIPTIONS"}
    if settings.is_own(resource.text):
        return 403, {"error": "the app's own resources (CONTAINMENT_OWN_SCOPES) are never acted on"}
    applicable = [name for name, action in ACTIONS.items() if action.on_request and action.applies_to(resource)]
    wanted = body.get("actions", "everything")
    names = applicable if wanted == "everything" else wanted
    if not isinstance(names, list) or not names or any(n not in applicable for n in names):
        return 400, {"error": f"actions must be \"everything\" or a list from {', '.join(applicable) or '(none)'} "
                              f"for a {resource.type}"}
    record = DecisionRecord(
        key=decision_key(None, {"resource": resource.key, "actions": names, "at": clock.iso(), "by": who.object_id}),
        resource_id=resource.text, outcome="", mode=settings.mode, reason="", operation="break-glass",
        actor=who.as_actor(), decided_at=clock.iso(),
    )
    finding = Finding("break_glass", "critical", resource.text, f"containment requested by {operator}",
                      {"actions": names, "note": body.get("reason")})
    decision = by_person(f"break-glass by {operator}", tuple(PlannedAction(name, resource.text) for name in names),
                         settings, (finding,))
    conclude(runtime, record, decision, {}, check_exemptions=False)
    return 202, {"decision": record.key, "actions": names}


# What an exemption's reason and owner may hold: a sentence and a name, well inside a Table
# property (32K characters), so a hostile body is a 400, not a failed write.
EXEMPTION_TEXT = 1000


def add_exemption(runtime: Runtime, body: Any, who: Principal) -> Answer:
    if not isinstance(body, dict):
        return 400, {"error": "the body must be a JSON object with scope, reason, owner and expires"}
    problems = [f"{name} is required" for name in ("scope", "reason", "owner", "expires")
                if not isinstance(body.get(name), str) or not body[name].strip()]
    problems += [f"{name} is longer than {EXEMPTION_TEXT} characters" for name in ("reason", "owner")
                 if isinstance(body.get(name), str) and len(body[name]) > EXEMPTION_TEXT]
    if problems:
        return 400, {"error": "; ".join(problems)}
    try:
        parse_resource_id(body["scope"].rstrip("/"))
        until = parse_time(body["expires"])
        if until.tzinfo is None:
            raise ValueError("a time zone is needed (write Z for UTC)")
    except (MalformedResourceId, ValueError) as error:
        return 400, {"error": str(error)}
    if until <= clock.now():
        return 400, {"error": f"expires {body['expires']} is already past"}
    runtime.ledger.exempt(body["scope"].rstrip("/"), body["reason"], body["owner"], clock.iso(until), who.name,
                          clock.iso())
    return 201, {"scope": body["scope"].rstrip("/"), "expires_at": clock.iso(until)}


def list_exemptions(runtime: Runtime) -> Answer:
    return 200, {"exemptions": runtime.ledger.exemptions()}


def remove_exemption(runtime: Runtime, scope: str) -> Answer:
    try:  # an exemption's scope is an ARM ID (add_exemption): anything else cannot be a Table key either
        parse_resource_id(scope.rstrip("/"))
    except MalformedResourceId as error:
        return 400, {"error": f"scope: {error}"}
    if runtime.ledger.remove_exemption(scope.rstrip("/")):
        return 200, {"removed": scope}
    return 404, {"error": f"no exemption for {scope!r}"}


def release(runtime: Runtime, body: Any, who: Principal) -> Answer:
    """Undo what a contained decision changed, through the containment queue, and leave the
    resource released (exempt) for CONTAINMENT_RELEASE_HOURS so automatic containment does
    not take it back. Refused, naming why, when the decision cannot be undone safely
    (containment.plan.restore.plan_release); `force` lets a release go on over later
    changes, which it never reverts."""
    operator = who.name
    if not isinstance(body, dict) or not isinstance(body.get("decision"), str) or not body.get("resourceId"):
        return 400, {"error": "the body must be a JSON object with resourceId and decision (the contained one)"}
    if not is_safe_key(body["decision"]):
        return 400, {"error": "decision: not a decision key (letters, digits and . _ : @ + = -, at most 200)"}
    try:
        parse_resource_id(body["resourceId"])
    except MalformedResourceId as error:
        return 400, {"error": f"resourceId: {error}"}
    record = runtime.ledger.find(str(body["resourceId"]), body["decision"])
    if record is None:
        return 404, {"error": f"no decision {body['decision']!r} about {body['resourceId']}"}
    touched = {rid.lower(): rid for rid in (record.resource_id, *record.after)}  # as ARM spells them
    later = {r.key: r for rid in sorted(touched) for r in runtime.ledger.for_resource(rid)
             if r.recorded_at > record.recorded_at}
    now = {rid.lower(): arm.read_state(runtime.clients, parse_resource_id(rid)).body for rid in record.after
           if any(parse_resource_id(rid).is_type(kind) for kind in RESOURCE_TYPES)}
    plan = plan_release(record, now, list(later.values()), force=body.get("force") is True)
    if plan.refused:
        return 409, {"error": plan.refused, **({"changed": plan.changed_since} if plan.changed_since else {})}
    until = clock.now() + timedelta(hours=runtime.settings.release_hours)
    released = DecisionRecord(
        key=f"{record.key}.released", resource_id=record.resource_id, outcome="", mode=runtime.settings.mode,
        reason="", event_id=record.event_id, operation="release", releases=record.key, actor=who.as_actor(),
        findings=record.findings, rules=record.rules, severity=record.severity, decided_at=clock.iso(),
    )
    why = "; ".join(part for part in (
        f"released by {operator}: what decision {record.key} changed is put back as it was",
        f"released until {clock.iso(until)} (CONTAINMENT_RELEASE_HOURS): findings are recorded, not contained again",
        f"cannot be undone: {', '.join(plan.irreversible)}" if plan.irreversible else "",
        "the app grants no access: a person with the rights restores " + "; ".join(
            f"{step['url'].split('?')[0].rsplit('/', 1)[-1]} with `{step['az']}`" for step in plan.by_person)
        if plan.by_person else "",
        f"left as changed since: {_named(plan.kept)}" if plan.kept else "",
        "forced over later changes" if plan.changed_since else "") if part)
    # Exempt from automatic containment: the exposures it released, on the resources it judged
    # and acted on (a new rule opened in the same NSG is still contained).
    released_scopes = {rid.lower(): rid for rid in [f["resource_id"] for f in record.findings]
                       + [step["target"] for step in record.plan]}
    for rid in sorted(released_scopes.values()):
        _keep_released(runtime, rid, until, f"released by {operator}: decision {record.key} undone", operator,
                       record.rules)
    answer = {"decision": released.key, "restoring": list(plan.targets), "irreversible": list(plan.irreversible),
              "kept": plan.kept, "released_until": clock.iso(until), "restore_by_person": list(plan.by_person)}
    if not plan.targets:
        record_once(runtime, recorded(released, not_carried_out(why + ("" if plan.by_person else "; nothing to restore")),
                                      now))
        return 200, answer
    conclude(runtime, released, by_person(why, tuple(PlannedAction("restore_recorded_state", rid)
                                                     for rid in plan.targets), runtime.settings),
             now, check_exemptions=False)
    return 202, answer


def _named(parts: dict[str, list[str]]) -> str:
    return "; ".join(f"{rid}: {', '.join(names)}" for rid, names in parts.items())


def _keep_released(runtime: Runtime, scope: str, until, reason: str, operator: str, rules: list[str]) -> None:
    """The release period is an exemption of the released rules (one mechanism: listed,
    removable, expiring), unless an exemption of the scope already lasts longer."""
    existing = next((e for e in runtime.ledger.exemptions() if e["scope"].lower() == scope.lower()), None)
    if existing is not None and existing["expires_at"] >= clock.iso(until):
        return
    runtime.ledger.exempt(scope, reason, operator, clock.iso(until), operator, clock.iso(), rules)
