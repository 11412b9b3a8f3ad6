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
import json
from datetime import timedelta
from typing import Any

from containment.adapters import arm
from containment.adapters.runtime import Runtime
from containment.core import clock
from containment.core.findings import Finding
from containment.core.ids import MalformedResourceId, parse_resource_id
from containment.core.records import DecisionRecord, PlannedAction, decision_key, is_safe_key, refusal_key
from containment.judge.registry import RULES
from containment.judge.scope import protection_of
from containment.operate import principal
from containment.operate.principal import Principal
from containment.plan.decisions import by_person, not_carried_out, recorded, rejected, waits_for_second
from containment.plan.roles import scope_level
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
    """What waits for a person, with when it expires; for a request waiting for a second
    operator, what it asks and who asked, so nobody confirms blind; for held actions, the
    impact preview: who they would break (containment.record.impact)."""
    expiry = timedelta(hours=runtime.settings.approval_expiry_hours)
    listed = []
    for item in runtime.ledger.pending():
        entry = {**item, "expires_at": clock.iso(parse_time(item["decided_at"]) + expiry)}
        waiting = runtime.ledger.find(item["resource_id"], item["key"])
        if waiting is not None and waiting.awaiting_approval:
            entry.update(awaiting_approval=waiting.awaiting_approval, impact_preview=waiting.impact_preview)
        request = _second_operator_request(waiting) if waiting and item["key"].startswith("second-") else None
        if request:
            entry.update(operation=request.get("operation"), request=request.get("request"),
                         asked_by=waiting.actor.get("name"), role=request.get("role"))
        listed.append(entry)
    return 200, {"pending": listed}


def approve(runtime: Runtime, key: str, who: Principal) -> Answer:
    return _settle(runtime, key, who, approved=True)


def deny(runtime: Runtime, key: str, who: Principal) -> Answer:
    return _settle(runtime, key, who, approved=False)


def _settle(runtime: Runtime, key: str, who: Principal, approved: bool) -> Answer:
    operator = who.name
    if not is_safe_key(key):
        return 400, {"error": "not a decision key (letters, digits and . _ : @ + = -, at most 200)"}
    listed = next((item for item in runtime.ledger.pending() if item["key"] == key), None)
    original = runtime.ledger.find(listed["resource_id"], key) if listed else None
    if original is None:
        return 404, {"error": f"no decision {key!r} waits for approval"}
    request = _second_operator_request(original)
    role = request["role"] if request else principal.APPROVE
    if not who.holds(role):
        return 403, {"error": f"{operator} does not hold the app role {role}, which settling {key} needs"}
    if (_same(original.actor, who) if request else _caused_by(runtime, original, who)):
        return 403, {"error": f"{operator} {'asked for' if request else 'caused the finding of'} decision {key}: "
                              "another operator must settle it (separation of duties)"}
    if request and not runtime.ledger.as_chained(original.resource_id, key):
        # Someone who can write the ledger must not swap what the first operator asked for.
        return 409, {"error": f"decision {key} is not as its evidence chain holds it (changed since it was asked): "
                              "not carried out"}
    conflict = _second_may_not(runtime, request, who) if request else None
    if conflict:
        return 403, {"error": f"{operator} {conflict}: another operator must confirm it (separation of duties)"}
    if runtime.ledger.take_pending(key) is None:
        return 404, {"error": f"no decision {key!r} waits for approval"}  # another person settled it meanwhile
    steps = held_steps(original)
    if clock.now() >= expires(runtime, original):
        expired = record_expiry(runtime, original, who.as_actor())
        return 409, {"error": expired.reason, "decision": expired.key}
    settled = follow_up(runtime, original, "approved" if approved else "denied", who.as_actor())
    if request is not None:
        return _second_operator(runtime, original, request, settled, who, approved)
    if not approved:
        denied = recorded(settled, not_carried_out(
            f"denied by {operator}: {', '.join(s['action'] for s in steps)} not carried out"))
        record_once(runtime, denied)
        return 200, {"decision": denied.key, "outcome": denied.outcome}
    plan = tuple(PlannedAction.of(step) for step in steps)
    try:
        conclude(runtime, settled, by_person(f"approved by {operator}: decision {key}", plan, runtime.settings),
                 original.before, check_exemptions=False)
    except Exception:
        runtime.ledger.keep_pending(original)  # not lost: it still waits, and still expires
        raise
    # What the approver was shown of whom it breaks, said back with what was approved.
    return 202, {"decision": settled.key, "actions": [s.action for s in plan],
                 **({"impact_preview": original.impact_preview} if original.impact_preview else {})}


def _caused_by(runtime: Runtime, record: DecisionRecord, who: Principal) -> bool:
    """Whether the person made the change the record is about: the event's actor, found on
    the decision the event led to (an approval's record names the approver, not the culprit)."""
    while record is not None and record.operation == "approval" and "." in record.key:
        record = runtime.ledger.find(record.resource_id, record.key.rsplit(".", 1)[0])
    return record is not None and bool(record.event_id) and _same(record.actor, who)


def _second_may_not(runtime: Runtime, request: dict, second: Principal) -> str | None:
    """Why this second operator may not confirm the request: their own change is what it
    would release or exempt."""
    body = request.get("request") or {}
    if request.get("operation") == "release":
        record = runtime.ledger.find(str(body.get("resourceId")), str(body.get("decision")))
        if record is not None and _caused_by(runtime, record, second):
            return f"caused the finding of decision {record.key}"
    if request.get("operation") == "exemption":
        own = _caused_in(runtime, parse_resource_id(str(body.get("scope")).rstrip("/")), second)
        if own is not None:
            return f"caused decision {own} under the scope"
    return None


def _same(actor: dict, who: Principal) -> bool:
    return str(actor.get("object_id") or "").lower() == who.object_id


SECOND_OPERATOR = "second_operator_required"


def _second_operator_request(record: DecisionRecord) -> dict | None:
    """The request a record holds for a second operator, if it is one."""
    finding = next((f for f in record.findings if f["rule"] == SECOND_OPERATOR), None)
    return finding["evidence"] if finding else None


def _wait_for_second(runtime: Runtime, operation: str, body: dict, who: Principal, role: str, resource_id: str,
                     why: str) -> Answer:
    """Two people for what is destructive or broad: the request waits, recorded and notified,
    until another operator with the same role makes the same request or approves it (or
    someone denies it, or it expires)."""
    asked = hashlib.sha256(json.dumps([operation, body], sort_keys=True).encode()).hexdigest()
    for item in runtime.ledger.pending():
        waiting = runtime.ledger.find(item["resource_id"], item["key"]) if item["key"].startswith("second-") else None
        request = _second_operator_request(waiting) if waiting else None
        if request and request.get("request_sha256") == asked:
            if _same(waiting.actor, who):
                return 409, {"error": f"{who.name} asked for this already: decision {waiting.key} waits for a "
                                      "second operator"}
            return _settle(runtime, waiting.key, who, approved=True)  # the same request from another person
    at = clock.iso()
    digest = hashlib.sha256(json.dumps([asked, who.object_id, at]).encode()).hexdigest()
    record = DecisionRecord(key=f"second-{digest[:40]}", resource_id=resource_id, outcome="",
                            mode=runtime.settings.mode, reason="", operation=operation, actor=who.as_actor(),
                            decided_at=at)
    finding = Finding(SECOND_OPERATOR, "high", resource_id, why, {"operation": operation, "request": body,
                                                                   "request_sha256": asked, "role": role})
    record_once(runtime, recorded(record, waits_for_second(f"{why}: {operation} asked by {who.name} waits for a "
                                                            f"second operator with {role}", finding)))
    return 202, {"decision": record.key, "waiting_for": f"a second operator with {role}, not {who.name}"}


def _second_operator(runtime: Runtime, original: DecisionRecord, request: dict, settled: DecisionRecord,
                     second: Principal, approved: bool) -> Answer:
    """A second operator settles a request: denied, it is recorded; approved, the request
    runs as its first operator asked it, confirmed by the second."""
    if not approved:
        denied = recorded(settled, not_carried_out(f"denied by {second.name}: {original.operation} asked by "
                                                   f"{original.actor.get('name')} not carried out"))
        record_once(runtime, denied)
        return 200, {"decision": denied.key, "outcome": denied.outcome}
    first = Principal(str(original.actor.get("object_id")), str(original.actor.get("name")),
                      frozenset(original.actor.get("roles") or ()), str(original.actor.get("identity_provider")))
    act = {"release": release, "exemption": add_exemption, "break-glass": contain_now}[original.operation]
    try:
        status, answer = act(runtime, request["request"], first, second=second)
    except Exception:
        runtime.ledger.keep_pending(original)  # not lost: it still waits for a second operator, and expires
        raise
    record_once(runtime, recorded(settled, not_carried_out(
        f"confirmed by {second.name}: {original.operation} asked by {first.name} -> {status}"
        + (f" ({answer['error']})" if "error" in answer else f", decision {answer.get('decision', '')}"))))
    return status, {**answer, "confirms": original.key}


# Break-glass actions that two people decide: they break every client of the keys, or take a
# person's access away.
DESTRUCTIVE = ("rotate_account_keys", "delete_role_assignment")


def contain_now(runtime: Runtime, body: Any, who: Principal, second: Principal | None = None) -> Answer:
    """Break-glass: the actions asked for (or every action for the resource's type) on one
    resource, through the same queue, checks and records as automatic containment. Two
    people for destructive actions or a resource outside the protected data; a budget of
    its own (CONTAINMENT_BREAK_GLASS_PER_HOUR)."""
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
    if not isinstance(body.get("reason", ""), str) or len(body.get("reason", "")) > EXEMPTION_TEXT:
        return 400, {"error": f"reason: at most {EXEMPTION_TEXT} characters of text"}
    if second is None:
        destructive = sorted(set(names) & set(DESTRUCTIVE))
        unprotected = not _protected(runtime, resource)
        if destructive or unprotected:
            return _wait_for_second(runtime, "break-glass", {**body, "actions": names}, who, principal.BREAK_GLASS,
                                    resource.text, f"break-glass {', '.join(destructive)} needs two people"
                                    if destructive else f"{resource.text} is not protected synthetic data")
    spent = runtime.ledger.spend_budget(len(names), settings.break_glass_per_hour, clock.now().timestamp(),
                                        pool="break-glass")
    if spent is not None:
        return 429, {"error": f"the break-glass budget is spent: {spent} of {settings.break_glass_per_hour} actions "
                              "in the last hour (CONTAINMENT_BREAK_GLASS_PER_HOUR)"}
    record = DecisionRecord(
        key=decision_key(None, {"resource": resource.key, "actions": names, "at": clock.iso(), "by": who.object_id}),
        resource_id=resource.text, outcome="", mode=settings.mode, reason="", operation="break-glass",
        actor=who.as_actor(), decided_at=clock.iso(),
    )
    finding = Finding("break_glass", "critical", resource.text, f"containment requested by {operator}",
                      {"actions": names, "note": body.get("reason")})
    confirmed = f", confirmed by {second.name}" if second else ""
    decision = by_person(f"break-glass by {operator}{confirmed}",
                         tuple(PlannedAction(name, resource.text) for name in names), settings, (finding,))
    conclude(runtime, record, decision, {}, check_exemptions=False)
    return 202, {"decision": record.key, "actions": names}


# What an exemption's reason and owner may hold: a sentence and a name, well inside a Table
# property (32K characters), so a hostile body is a 400, not a failed write.
EXEMPTION_TEXT = 1000


def add_exemption(runtime: Runtime, body: Any, who: Principal, second: Principal | None = None) -> Answer:
    """Exempt a scope until a time: bounded (CONTAINMENT_EXEMPTION_MAX_DAYS), inside the
    watched subscriptions and over protected data, never by the person whose change it
    would excuse; a resource group or wider needs a second person."""
    if not isinstance(body, dict):
        return 400, {"error": "the body must be a JSON object with scope, reason, owner and expires"}
    refused, scope, until = _bounded_request(runtime, body, ("scope", "reason", "owner", "expires"),
                                             runtime.settings.exemption_max_days, "CONTAINMENT_EXEMPTION_MAX_DAYS")
    if refused:
        return refused
    if not _covers_protected_data(runtime, scope):
        return 400, {"error": f"scope: {scope.text} covers no protected synthetic data the app knows of"}
    own = _caused_in(runtime, scope, who)
    if own is not None:
        return 403, {"error": f"{who.name} caused decision {own} under {scope.text}: another operator must exempt it "
                              "(separation of duties)"}
    if second is None and scope_level(scope.text) != "resource":
        return _wait_for_second(runtime, "exemption", body, who, principal.EXEMPT, scope.text,
                                f"an exemption of a whole {scope_level(scope.text)} needs two people")
    runtime.ledger.exempt(scope.text, body["reason"], body["owner"], clock.iso(until), who.name, clock.iso(),
                          decided_by=[who.object_id] + ([second.object_id] if second else []))
    confirmed = f", confirmed by {second.name}" if second else ""
    written = _operator_record(runtime, "exemption", scope.text, who, f"exempted by {who.name}{confirmed} until "
                               f"{clock.iso(until)}: {body['reason']} (owner {body['owner']})")
    return 201, {"scope": scope.text, "expires_at": clock.iso(until), "decision": written}


def _bounded_request(runtime: Runtime, body: dict, required: tuple[str, ...], max_days: float, setting: str):
    """(a refusal, or None; the scope; the expiry) of an exemption or a mute: its texts given
    and bounded, its scope an ARM ID in a watched subscription, its expiry ahead and within
    `max_days`."""
    problems = [f"{name} is required" for name in required
                if not isinstance(body.get(name), str) or not body[name].strip()]
    problems += [f"{name} is longer than {EXEMPTION_TEXT} characters" for name in ("reason", "owner")
                 if isinstance(body.get(name), str) and len(body[name]) > EXEMPTION_TEXT]
    if problems:
        return (400, {"error": "; ".join(problems)}), None, None
    try:
        scope = parse_resource_id(body["scope"].rstrip("/"))
        until = parse_time(body["expires"])
        if until.tzinfo is None:
            raise ValueError("a time zone is needed (write Z for UTC)")
    except (MalformedResourceId, ValueError) as error:
        return (400, {"error": str(error)}), None, None
    if until <= clock.now():
        return (400, {"error": f"expires {body['expires']} is already past"}), None, None
    longest = clock.now() + timedelta(days=max_days)
    if until > longest:
        return (400, {"error": f"expires {body['expires']} is later than {clock.iso(longest)} "
                               f"({setting}={max_days:g})"}), None, None
    watched = runtime.settings.subscriptions or frozenset(arm.list_subscriptions(runtime.clients))
    if scope.subscription not in watched:
        return (400, {"error": f"scope: subscription {scope.subscription} is not one the app watches"}), None, None
    return None, scope, until


def _covers_protected_data(runtime: Runtime, scope) -> bool:
    """Whether a scope holds protected data: a protected scope above, at or below it, a
    decision with findings under it, or a storage account or NSG it names that is protected."""
    key = scope.key
    if any(key == p.lower() or key.startswith(p.lower() + "/") or p.lower().startswith(key + "/")
           for p in runtime.settings.protected_scopes):
        return True
    if any(record.findings for record in runtime.ledger.under(scope.text)):
        return True
    if not scope.types:  # a resource group or a subscription: the storage accounts in it
        accounts = arm.list_accounts(runtime.clients, scope.subscription, scope.resource_group)
        return any(protection_of(parse_resource_id(a["id"]), a.get("tags"), runtime.settings).protected
                   for a in accounts)
    return _protected(runtime, scope)


def _protected(runtime: Runtime, resource) -> bool:
    """Whether ARM shows the resource (a storage account, container, NSG or rule) as
    synthetic data, by its account's or NSG's tag or a protected scope."""
    from containment.core.ids import BLOB_CONTAINER, NSG, SECURITY_RULE, STORAGE_ACCOUNT

    holder = resource.ancestor(2) if resource.is_type(BLOB_CONTAINER) else \
        resource.ancestor(1) if resource.is_type(SECURITY_RULE) else resource
    if not (holder.is_type(STORAGE_ACCOUNT) or holder.is_type(NSG)):
        return False
    try:
        tags = arm.read(runtime.clients, holder).get("tags")
    except arm.ResourceGone:
        return False
    return protection_of(resource, tags, runtime.settings).protected


def _caused_in(runtime: Runtime, scope, who: Principal) -> str | None:
    """A decision with findings under the scope caused by this person, within the longest
    exemption: the key of the first, if any."""
    since = clock.iso(clock.now() - timedelta(days=runtime.settings.exemption_max_days))
    return next((r.key for r in runtime.ledger.under(scope.text)
                 if r.findings and _caused_by(runtime, r, who) and (r.decided_at or "") >= since), None)


def _operator_record(runtime: Runtime, operation: str, resource_id: str, who: Principal, why: str) -> str:
    """An operator's act on the record (and notified): what exemptions change is evidence too."""
    at = clock.iso()
    digest = hashlib.sha256(json.dumps([operation, resource_id, who.object_id, at, why]).encode()).hexdigest()
    record = DecisionRecord(key=f"{operation}-{digest[:40]}", resource_id=resource_id, outcome="",
                            mode=runtime.settings.mode, reason="", operation=operation, actor=who.as_actor(),
                            decided_at=at)
    record_once(runtime, recorded(record, not_carried_out(why)))
    return record.key


def add_mute(runtime: Runtime, body: Any, who: Principal) -> Answer:
    """Mute the notifications of one rule's findings on one scope (a resource, a resource
    group or a subscription) until a time, with a reason and an owner: bounded
    (CONTAINMENT_MUTE_MAX_DAYS), on the record, never by the person whose change it would
    silence. Notifications only: detection, containment and the records are unchanged, and
    the hourly digest counts what each mute held back. A rule whose findings are critical
    cannot be muted, and a critical finding is notified whatever mute covers it
    (containment.record.notifications.muting)."""
    if not isinstance(body, dict):
        return 400, {"error": "the body must be a JSON object with rule, scope, reason, owner and expires"}
    rule = body.get("rule")
    if not isinstance(rule, str) or rule not in RULES:
        return 400, {"error": f"rule: one of {', '.join(sorted(RULES))}"}
    if RULES[rule].severity == "critical":
        return 400, {"error": f"rule: {rule}'s findings are critical, and critical findings are always notified"}
    refused, scope, until = _bounded_request(runtime, body, ("scope", "reason", "owner", "expires"),
                                             runtime.settings.mute_max_days, "CONTAINMENT_MUTE_MAX_DAYS")
    if refused:
        return refused
    own = _caused_in(runtime, scope, who)  # a scope is a resource, resource group or subscription (parse_resource_id)
    if own is not None:
        return 403, {"error": f"{who.name} caused decision {own} under {scope.text}: another operator must mute it "
                              "(separation of duties)"}
    written = _operator_record(runtime, "mute", scope.text, who, f"notifications of {rule} under {scope.text} muted "
                               f"by {who.name} until {clock.iso(until)}: {body['reason']} (owner {body['owner']})")
    runtime.ledger.mute(rule, scope.text, body["reason"], body["owner"], clock.iso(until), who.name, clock.iso(),
                        written, who.object_id)
    return 201, {"rule": rule, "scope": scope.text, "expires_at": clock.iso(until), "decision": written}


def list_mutes(runtime: Runtime) -> Answer:
    now = clock.iso()
    return 200, {"mutes": [{**mute, "active": mute["expires_at"] > now} for mute in runtime.ledger.mutes()]}


def remove_mute(runtime: Runtime, rule: str, scope: str, who: Principal) -> Answer:
    try:
        resource = parse_resource_id(scope.rstrip("/"))
    except MalformedResourceId as error:
        return 400, {"error": f"scope: {error}"}
    if rule not in RULES:
        return 400, {"error": f"rule: one of {', '.join(sorted(RULES))}"}
    if not runtime.ledger.remove_mute(rule, resource.text):
        return 404, {"error": f"no mute of {rule} on {scope!r}"}
    written = _operator_record(runtime, "mute", resource.text, who,
                               f"mute of {rule} under {resource.text} removed by {who.name}")
    return 200, {"removed": {"rule": rule, "scope": resource.text}, "decision": written}


def list_exemptions(runtime: Runtime) -> Answer:
    return 200, {"exemptions": runtime.ledger.exemptions()}


def remove_exemption(runtime: Runtime, scope: str, who: Principal) -> Answer:
    try:  # an exemption's scope is an ARM ID (add_exemption): anything else cannot be a Table key either
        parse_resource_id(scope.rstrip("/"))
    except MalformedResourceId as error:
        return 400, {"error": f"scope: {error}"}
    if runtime.ledger.remove_exemption(scope.rstrip("/")):
        written = _operator_record(runtime, "exemption", parse_resource_id(scope.rstrip("/")).text, who,
                                   f"exemption of {scope.rstrip('/')} removed by {who.name}")
        return 200, {"removed": scope, "decision": written}
    return 404, {"error": f"no exemption for {scope!r}"}


def release(runtime: Runtime, body: Any, who: Principal, second: Principal | None = None) -> Answer:
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
    if _caused_by(runtime, record, who):
        return 403, {"error": f"{operator} caused the finding of decision {record.key}: another operator must "
                              "release it (separation of duties)"}
    if second is None and "delete_role_assignment" in record.actions:
        return _wait_for_second(runtime, "release", body, who, principal.RELEASE, record.resource_id,
                                f"releasing decision {record.key}, a role deletion, needs two people")
    until = clock.now() + timedelta(hours=runtime.settings.release_hours)
    released = DecisionRecord(
        key=f"{record.key}.released", resource_id=record.resource_id, outcome="", mode=runtime.settings.mode,
        reason="", event_id=record.event_id, operation="release", releases=record.key, actor=who.as_actor(),
        findings=record.findings, rules=record.rules, severity=record.severity, decided_at=clock.iso(),
        incident=record.incident,
    )
    why = "; ".join(part for part in (
        f"released by {operator}{f', confirmed by {second.name}' if second else ''}: what decision {record.key} "
        "changed is put back as it was",
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
