"""What people decide about an incident: the Article 33 assessment, its closure, and merging
or splitting what correlation joined (containment.record.correlation). Each is a decision
record (operation `incident`) naming the person, kept in the incident's evidence like every
other; the incident's status and clock are read back from those records
(containment.record.incidents).

Who: the app role Containment.Assess (the DPO, or whoever the controller names), never a
person who caused the incident (separation of duties, as for approvals).
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Any

from containment.adapters.runtime import Runtime
from containment.core import clock
from containment.core.records import OPERATOR_OPERATIONS, DecisionRecord, is_safe_key
from containment.operate.principal import Principal
from containment.plan.decisions import not_carried_out, recorded
from containment.record.conclude import record_once
from containment.record.correlation import detected, is_exposure, signs_of
from containment.record.export import incidents_between, read_incident
from containment.record.incidents import Incident

Answer = tuple[int, dict[str, Any]]
INCIDENT_ID = re.compile(r"^inc-\d{8}-[0-9a-f]{12}$")
TEXT = 2000  # a reason or reference: a paragraph, well inside a Table property
MAX_RANGE = timedelta(days=93)
ASSESSMENT = {"notifiable", "high_risk", "reason", "notified_at", "reference", "data_subjects_informed_at",
              "data_subjects_not_informed_because"}


def list_incidents(runtime: Runtime, since: str | None, until: str | None) -> Answer:
    try:
        end = _instant(until, "until") if until else clock.now()
        start = _instant(since, "since") if since else end - timedelta(days=7)
    except ValueError as error:
        return 400, {"error": str(error)}
    if not timedelta(0) < end - start <= MAX_RANGE:
        # A reader's request reads every incident of the range whole: bounded, as a quarter
        # covers any 72-hour clock; the command line exports longer ranges.
        return 400, {"error": f"since must be before until, at most {MAX_RANGE.days} days apart"}
    now = clock.now()
    return 200, {"incidents": [i.summary(now) for i in incidents_between(runtime.ledger, start, end)]}


def show(runtime: Runtime, incident_id: str) -> Answer:
    incident, refused = _found(runtime, incident_id)
    return refused or (200, incident.summary(clock.now()))


def decide(runtime: Runtime, incident_id: str, verb: str, body: Any, who: Principal) -> Answer:
    """Assess, close, merge or split an incident, on the record."""
    handlers = {"assess": _assess, "close": _close, "merge": _merge, "split": _split}
    if verb not in handlers:
        return 404, {"error": f"no such decision about an incident: {verb!r} (assess, close, merge or split)"}
    if not isinstance(body, dict):
        return 400, {"error": "the body must be a JSON object"}
    incident, refused = _found(runtime, incident_id)
    if refused:
        return refused
    if incident.status == "closed":
        return 409, {"error": f"incident {incident.id} is closed"}
    if who.object_id in _caused(incident):
        return 403, {"error": f"{who.name} caused incident {incident.id}: another person must {verb} it "
                              "(separation of duties)"}
    outcome = handlers[verb](runtime, incident, body, who)
    if isinstance(outcome[0], int):
        return outcome
    target, update, why = outcome
    if verb == "close":
        runtime.ledger.close_incident(incident.id)  # before the record: nothing joins it from now
    at = clock.iso()
    digest = hashlib.sha256(json.dumps([incident.id, verb, who.object_id, at, body], sort_keys=True,
                                       default=str).encode()).hexdigest()
    record = DecisionRecord(
        key=f"incident-{verb}-{digest[:40]}", resource_id=incident.resource_id, outcome="", mode=runtime.settings.mode,
        reason="", operation="incident", actor=who.as_actor(), decided_at=at, incident=target,
        incident_update=update)
    written = record_once(runtime, recorded(record, not_carried_out(f"{why} by {who.name}")))
    if verb == "merge":
        runtime.ledger.repoint_incident_signs(incident.id, target)
        exposed = runtime.ledger.incident_markers([incident.id]).get(incident.id, {}).get("exposed_at")
    elif verb == "split":
        # What only the split-off findings have (their actor, their resources) leads to the new incident.
        moved = set(update["decisions"])
        runtime.ledger.repoint_incident_signs(incident.id, target, only={
            sign for r in incident.findings if r.key in moved for sign in signs_of(r)} - {
            sign for r in incident.findings if r.key not in moved for sign in signs_of(r)})
        exposed = min((detected(r) for r in incident.findings if r.key in moved and is_exposure(r)), default=None)
    if verb in ("merge", "split") and exposed:
        runtime.ledger.mark_incident_exposed(target, exposed)  # the 72 hours of a join count from it
    after = read_incident(runtime.ledger, target)
    return 200, {"decision": (written or record).key, "incident": target,
                 "status": after.status if after else None}


def _found(runtime: Runtime, incident_id: str) -> tuple[Incident | None, Answer | None]:
    if not isinstance(incident_id, str) or not INCIDENT_ID.match(incident_id):
        return None, (400, {"error": "not an incident ID (inc-YYYYMMDD- and 12 hexadecimal digits)"})
    incident = read_incident(runtime.ledger, incident_id)
    if incident is None:
        return None, (404, {"error": f"no incident {incident_id}"})
    if incident.id != incident_id:
        return None, (409, {"error": f"incident {incident_id} was merged into {incident.id}", "incident": incident.id})
    return incident, None


def _caused(incident: Incident) -> set[str]:
    """The object IDs of whoever caused it: the events' actors and the egress callers."""
    caused = set()
    for record in incident.findings:
        if record.event_id and record.operation not in OPERATOR_OPERATIONS and record.actor.get("object_id"):
            caused.add(str(record.actor["object_id"]).lower())
        for finding in record.findings:
            caused |= {str(c.get("Caller")).lower() for c in (finding.get("evidence") or {}).get("callers") or []
                       if isinstance(c, dict)}
    return caused


def _assess(runtime: Runtime, incident: Incident, body: dict, who: Principal):
    """Art. 33: notifiable (and when the authority was notified, under which reference) or
    not notifiable (and why); Art. 34: whether the risk is high, and what the people
    concerned were told. Every part named where wrong, nothing half-recorded."""
    unknown = sorted(set(body) - ASSESSMENT)
    if unknown:
        return 400, {"error": f"unknown fields: {', '.join(unknown)} (an assessment has {', '.join(sorted(ASSESSMENT))})"}
    errors = [f"{name} must be true or false" for name in ("notifiable", "high_risk")
              if not isinstance(body.get(name), bool)]
    errors += _text(body, "reason", required=True)
    if body.get("notifiable") is True:
        # Not before its first exposure: nobody could know of the breach before it (a weakness
        # found earlier is no breach).
        errors += _text(body, "reference", required=True) + _moment(body, "notified_at", required=True,
                                                                    after=incident.exposed_at or incident.detected_at)
    elif body.get("notifiable") is False:
        errors += [f"{name}: only when notifiable" for name in ("notified_at", "reference") if name in body]
        if body.get("high_risk") is True:
            errors.append("high_risk: a breach likely to result in a high risk is notifiable (GDPR Art. 33(1))")
    if body.get("high_risk") is not True:
        errors += [f"{name}: only when high_risk (GDPR Art. 34)" for name in
                   ("data_subjects_informed_at", "data_subjects_not_informed_because") if name in body]
    errors += _moment(body, "data_subjects_informed_at") + _text(body, "data_subjects_not_informed_because")
    if errors:
        return 400, {"error": "; ".join(errors)}
    verdict = (f"notifiable: the authority notified at {body['notified_at']} (reference {body['reference']})"
               if body["notifiable"] else "not notifiable")
    return incident.id, {"kind": "assessment", **body}, f"incident {incident.id} assessed {verdict}: {body['reason']}"


def _close(runtime: Runtime, incident: Incident, body: dict, who: Principal):
    errors = _text(body, "reason", required=True) + [f"unknown field {name}" for name in sorted(set(body) - {"reason"})]
    if errors:
        return 400, {"error": "; ".join(errors)}
    if incident.assessment is None and not incident.weakness_only:  # a weakness is no breach to assess
        return 409, {"error": f"incident {incident.id} has no assessment: GDPR Art. 33(5) asks every breach to be "
                              "documented, notifiable or not, before it is closed"}
    if incident.unassessed:
        return 409, {"error": f"incident {incident.id} has findings since its assessment "
                              f"({', '.join(r.key for r in incident.unassessed[:5])}): assess it again first"}
    if incident.waiting:
        return 409, {"error": f"incident {incident.id} still has actions waiting: " + ", ".join(
            f"{w['action']} on {w['target']} ({w['decision']}, for {w['waits_for']})" for w in incident.waiting)}
    if incident.article_34 and "without undue delay" in incident.article_34:
        return 409, {"error": f"incident {incident.id} was assessed high risk and nobody recorded whether the people "
                              "concerned were informed (GDPR Art. 34): assess it again with data_subjects_informed_at "
                              "or data_subjects_not_informed_because"}
    return incident.id, {"kind": "closure", "reason": body["reason"]}, f"incident {incident.id} closed: {body['reason']}"


def _merge(runtime: Runtime, incident: Incident, body: dict, who: Principal):
    errors = _text(body, "reason", required=True) + [f"unknown field {name}" for name in
                                                     sorted(set(body) - {"reason", "into"})]
    into = body.get("into")
    if not isinstance(into, str) or not INCIDENT_ID.match(into):
        errors.append("into: the ID of the incident to merge this one into")
    elif into == incident.id:
        errors.append("into: an incident cannot be merged into itself")
    if errors:
        return 400, {"error": "; ".join(errors)}
    target, refused = _found(runtime, into)
    if refused:
        return refused[0], {"error": f"into: {refused[1]['error']}"}
    if target.status == "closed":
        return 409, {"error": f"into: incident {target.id} is closed"}
    if who.object_id in _caused(target):
        return 403, {"error": f"{who.name} caused incident {target.id}: another person must merge into it "
                              "(separation of duties)"}
    assessed = [i.id for i in (incident, target) if i.assessment is not None]
    if assessed:
        return 409, {"error": f"incident {', '.join(assessed)} is assessed: a merge would change what the assessment "
                              "covered; merge before assessing"}
    return target.id, {"kind": "merge", "from": incident.id, "reason": body["reason"]}, (
        f"incident {incident.id} merged into {target.id}: {body['reason']}")


def _split(runtime: Runtime, incident: Incident, body: dict, who: Principal):
    errors = _text(body, "reason", required=True) + [f"unknown field {name}" for name in
                                                     sorted(set(body) - {"reason", "decisions"})]
    if incident.assessment is not None:
        return 409, {"error": f"incident {incident.id} is assessed: a split would change what the assessment "
                              "covered; split before assessing"}
    keys = body.get("decisions")
    found = {r.key for r in incident.findings}
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and is_safe_key(k) for k in keys):
        errors.append("decisions: a list of the keys of the decisions that are another breach")
    elif set(keys) - found:
        errors.append(f"decisions: not findings of incident {incident.id}: {', '.join(sorted(set(keys) - found))}")
    elif set(keys) >= found:
        errors.append("decisions: that is every finding of the incident; nothing would be left to split from")
    if errors:
        return 400, {"error": "; ".join(errors)}
    moved = sorted(set(keys))
    digest = hashlib.sha256(json.dumps([incident.id, moved]).encode()).hexdigest()[:12]
    new = f"inc-{clock.now():%Y%m%d}-{digest}"
    return new, {"kind": "split", "from": incident.id, "decisions": moved, "reason": body["reason"]}, (
        f"{len(moved)} decision(s) split from incident {incident.id} into {new}: {body['reason']}")


def _text(body: dict, name: str, required: bool = False) -> list[str]:
    value = body.get(name)
    if value is None:
        return [f"{name}: required"] if required else []
    if not isinstance(value, str) or not value.strip() or len(value) > TEXT:
        return [f"{name}: text of 1 to {TEXT} characters"]
    return []


def _moment(body: dict, name: str, required: bool = False, after: datetime | None = None) -> list[str]:
    """A time a person states: with a zone, not in the future, and (`after`) not before the
    breach was detected, so a notification cannot be dated before anyone knew."""
    if body.get(name) is None:
        return [f"{name}: required (ISO 8601 with a time zone)"] if required else []
    try:
        when = _instant(body[name], name)
    except ValueError as error:
        return [str(error)]
    if when > clock.now():
        return [f"{name}: {body[name]} is in the future"]
    if after is not None and when < after:
        return [f"{name}: {body[name]} is before the breach was detected ({clock.iso(after)})"]
    return []


def _instant(text: Any, name: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: not an ISO 8601 time: {str(text)[:100]!r}") from None
    if when.tzinfo is None:
        raise ValueError(f"{name}: {str(text)[:100]} has no time zone")
    return when
