"""Notifications: CloudEvents on an Event Grid custom topic (CONTAINMENT_NOTIFY_TOPIC_ENDPOINT)
for Logic Apps, Sentinel or a chat channel; few of them, because alert fatigue delays the
response to the leaks that matter.

- **One thread per incident** (subject `/incidents/<id>`): a notice when the incident is
  first detected, contained, when an approval is held in it, when a containment in it fails,
  when its Article 33 assessment is due within 24 hours and when the deadline passed
  unassessed (the hourly timer: run_hourly), and when a person assesses, closes, merges or
  splits it. Later findings in the incident update it without a notice: every notice says
  where the incident stands. What one record brings about at once is one notice (`changed`
  lists it all; its type is the first). Each notice is sent once: a ledger entity keyed by
  incident and kind is created first (a conditional insert), and only the instance that
  created it sends it. Only an exposure starts the Article 33 watch: a weakness (a weakened
  control, containment.judge.rule) is no breach, so an incident of weaknesses only has no
  clock and no `due` or `overdue` until an exposure joins it, and is `detected` by that one.
- **Findings recorded `reported`** (the settings do not contain them), and in dry-run
  `would-contain`, wait for the hourly digest: one notification with all of them, never one
  each; none when there are none. So do records whose findings are all weaknesses, whatever
  their outcome, unless they wait for a person or failed (as mutes never silence those).
- **What people do** (approvals, releases, exemptions, mutes, break-glass, refused requests)
  and failures that belong to no incident are notified one by one, as decisions.
- **Mutes** (a rule on a scope, with an owner and an expiry: containment.operate.controls)
  hold back an incident's notice when they cover every finding of the record that would
  send it; the digest counts what each held back. A critical finding, a hold for a person
  and a failed containment are never muted.

Publishing never blocks or undoes containment: a failure is logged loudly and kept in the
ledger, and the notice is sent by its next occasion (the claim is given back).
"""
from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import datetime, timedelta

from containment.adapters.runtime import Runtime, current
from containment.core import clock
from containment.core.records import OPERATOR_OPERATIONS, DecisionRecord
from containment.record import impact
from containment.record.correlation import new_incident_id
from containment.record.export import read_incident
from containment.record.incidents import GDPR_NOTIFICATION, SEVERITIES, Incident, shows_exposure, weaknesses_only

log = logging.getLogger("containment")
SOURCE = "/synthetic-data-containment"
TYPE = "SyntheticDataContainment"
# What an incident's notice needs: containment, a hold for a person, a failure, or a finding on
# the app's own deployment (which only a person will act on).
NOTIFIED = ("contained", "pending-approval", "failed")
# Findings nobody acts on now: recorded only by the settings, or what dry-run would have
# contained (a team rehearsing in dry-run still hears what it would have done, once an hour).
DIGESTED = ("reported", "would-contain")
DUE_WITHIN = timedelta(hours=24)
UPDATES = {"assessment": "assessed", "closure": "closed", "merge": "merged", "split": "split"}
WATCHED = "watched"  # an incident's Article 33 watch, claimed by its first exposure
# What an incident has once; every other kind can come again (contained after a release,
# another hold, a failure on another resource, another assessment), so its ID names the
# decision that brought it: an ID is unique per notification, as consumers may drop a
# repeated source + id (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md#id).
ONCE = ("detected", "due", "overdue", "closed")
# Lists in a notice are bounded: an event is at most 1 MB and charged per 64 KB
# (https://learn.microsoft.com/azure/event-grid/event-schema).
LISTED = 20


def notify(runtime: Runtime, record: DecisionRecord, quiet: bool = False) -> None:
    """What the record changes, notified if it is worth it: called once per record written.
    `quiet`: not on its own (a hold by the blast-radius limit after the hour's first): to the
    digest. Whatever is sent, an incident's first exposure starts the watch on its Article 33
    clock, so an incident only digested still hears when its assessment falls due."""
    if runtime.settings.notify_topic_endpoint is None:
        return
    try:
        if record.operation == "incident":
            _incident_decided(runtime, record)
        elif record.operation in OPERATOR_OPERATIONS:
            _operator_act(runtime, record)
        elif record.incident is None:
            if record.outcome == "failed":  # a scan or sweep that cannot run: nobody else will say so
                _publish(runtime, _decision_event(record), record.key, record.resource_id)
        else:
            _finding(runtime, record, quiet)
    except Exception:  # a notification must never stop containment
        log.exception("NOTIFICATION FAILED for decision %s", record.key)


def _finding(runtime: Runtime, record: DecisionRecord, quiet: bool) -> None:
    """A finding in an incident: the notice of what it brings about that was not notified yet,
    or the digest; and where it is the incident's first exposure, the watch on its clock."""
    reached: list[str] = []
    overridden: list[dict] = []
    if quiet or (record.outcome in DIGESTED and not record.own_deployment) or (
            weaknesses_only(record) and not _for_a_person(record) and not record.own_deployment):
        runtime.ledger.keep_for_digest(record, [])
    elif record.outcome in NOTIFIED or record.awaiting_approval or record.own_deployment:
        silencing, overridden = muting(record, runtime.ledger.mutes(runtime.settings.controls_cache_seconds),
                                       clock.iso())
        if _for_a_person(record):
            # What waits for a person, or a containment that failed, reaches a person whatever mutes it:
            # muted, the approval would expire unseen and the exposure stay open.
            silencing, overridden = [], overridden + silencing
        if silencing:
            runtime.ledger.keep_for_digest(record, [{name: m[name] for name in (
                "decision", "rule", "scope", "owner", "expires_at")} for m in silencing])
            log.info("notification of %s muted by %s", record.key, ", ".join(m["decision"] for m in silencing))
        else:
            # An incident is `detected` by its first exposure: a weakness that waits for a person or
            # failed says that alone, and the exposure that joins later still opens the breach's thread.
            # On the app's own deployment a weakness is `detected` too: the app never acts there, a person must.
            reached = ([] if weaknesses_only(record) and not record.own_deployment else ["detected"]) + (
                ["contained"] if record.outcome == "contained" else []) + (
                ["held"] if record.outcome == "pending-approval" or record.awaiting_approval else []) + (
                ["failed"] if record.outcome == "failed" else [])
    rows = {kind: _row(record, kind) for kind in reached}
    if shows_exposure(record):  # whatever was sent, the incident's first exposure starts its watch
        rows[WATCHED] = _row(record, WATCHED)
    claimed, known = _claim(runtime, record, rows)
    claimed = [kind for kind in claimed if kind != WATCHED]
    if not reached:
        return
    if not claimed:
        # The incident knows: this finding updates it, no notice; unless it came after the
        # incident's assessment (one `reassess` per assessment, whoever finds it first). An
        # incident is read only when a notice is to be sent: a burst of hundreds of findings
        # in one incident must not read it hundreds of times. (What was claimed already was
        # read, `known`, when the claim did not hold.)
        assessed = known.get(f"{record.incident} assessment")
        rows["reassess"] = f"{record.incident} reassess {assessed['decision']}" if assessed else ""
        if not assessed or not runtime.ledger.claim_notice(rows["reassess"], decision=record.key):
            return
        incident = read_incident(runtime.ledger, record.incident, record)
        if incident is None or incident.status != "reassess":  # decided before the assessment, written after
            runtime.ledger.forget_notice(rows["reassess"])
            return
        claimed = ["reassess"]
    else:
        incident = read_incident(runtime.ledger, record.incident, record)
    event = _incident_event(incident, claimed, record)
    if overridden:
        event["data"]["mutes_not_applied"] = {"mutes": [m["decision"] for m in overridden],
                                              "why": "critical findings, holds for a person and failed containments "
                                                     "are always notified, whatever mutes them"}
    if not _publish(runtime, event, record.key, record.resource_id):
        for kind in claimed:
            runtime.ledger.forget_notice(rows[kind])
    elif "reassess" in claimed and incident.clock_running:  # its clock runs again
        runtime.ledger.keep_clock(incident.id, clock.iso(incident.gdpr_deadline - DUE_WITHIN))


def _for_a_person(record: DecisionRecord) -> bool:
    """What reaches a person whatever mutes or digests it: a hold for their approval, or a failed containment."""
    return record.outcome in ("failed", "pending-approval") or bool(record.awaiting_approval)


def _claim(runtime: Runtime, record: DecisionRecord, rows: dict[str, str]) -> tuple[list[str], dict | None]:
    """Claim the record's notices (kind: row) in one transaction, with its incident's watch the
    clock (due 24 hours before 72 hours from this detection, the incident's first exposure):
    (the kinds this call claimed, the incident's notices where they were read, else None).

    An incident this record opened has no notices yet: they are claimed at once. One it joined
    has most of them already: which it has is read first (one query). A claim that does not
    hold (another instance claimed one of them meanwhile) reads them again and claims the rest,
    so each notice still has one sender."""
    if not rows:
        return [], None
    detected = datetime.fromisoformat((record.event_time or record.decided_at).replace("Z", "+00:00"))
    due = clock.iso(detected + GDPR_NOTIFICATION - DUE_WITHIN)
    known = None if record.incident == new_incident_id(record) else runtime.ledger.notices(record.incident)
    for _ in range(len(rows) + 1):
        wanted = [kind for kind, row in rows.items() if known is None or row not in known]
        if not wanted:
            return [], known
        watch = (record.incident, due) if WATCHED in wanted else None
        if runtime.ledger.claim_notices([rows[kind] for kind in wanted], watch, decision=record.key):
            return wanted, known
        known = runtime.ledger.notices(record.incident)
    raise RuntimeError(f"the notices of incident {record.incident} kept changing under decision {record.key}")


def _row(record: DecisionRecord, kind: str) -> str:
    """The notice's ledger key: one per incident and kind, and for failures one per resource too."""
    if kind == "failed":
        return f"{record.incident} failed {hashlib.sha256(record.resource_id.lower().encode()).hexdigest()[:24]}"
    return f"{record.incident} {kind}"


def muting(record: DecisionRecord, mutes: list[dict], now: str) -> tuple[list[dict], list[dict]]:
    """(the mutes that silence the record's notice: each finding covered by an unexpired mute of
    its rule on a scope at or above its resource, and none critical; the mutes that would have
    but for a critical finding). Critical findings are always notified."""
    covering = []
    # A mute never silences a change by whoever muted it: mute first, change after, unseen otherwise.
    caused_by = str(record.actor.get("object_id") or "").lower() if record.event_id else ""
    for finding in record.findings:
        resource = str(finding.get("resource_id") or record.resource_id).lower()
        covering.append([m for m in mutes if m["expires_at"] > now and m["rule"] == finding["rule"] and (
            resource == m["scope"].lower() or resource.startswith(m["scope"].lower() + "/"))
            and not (caused_by and caused_by == m.get("created_by_id"))])
    critical = [found for finding, found in zip(record.findings, covering) if finding["severity"] == "critical"]
    if covering and all(covering) and not critical:
        return list({m["decision"]: m for found in covering for m in found}.values()), []
    return [], list({m["decision"]: m for found in critical for m in found}.values())


def _operator_act(runtime: Runtime, record: DecisionRecord) -> None:
    """What a person did, notified as a decision. A release ends the incident's containment
    and a settlement that leaves nothing waiting ends its hold: the next containment or hold
    is notified again."""
    if record.incident and record.operation == "release":
        runtime.ledger.forget_notice(f"{record.incident} contained")
    settled = record.incident and record.operation == "approval"
    if settled and not read_incident(runtime.ledger, record.incident, record).waiting:
        runtime.ledger.forget_notice(f"{record.incident} held")
    _publish(runtime, _decision_event(record), record.key, record.resource_id)


def _incident_decided(runtime: Runtime, record: DecisionRecord) -> None:
    """A person assessed, closed, merged or split an incident: in its thread. A merge or a
    split changes which clock runs: the incident that results is watched from its own deadline."""
    kind = UPDATES[record.incident_update["kind"]]
    if kind == "assessed":  # what a finding after it checks first (_finding)
        runtime.ledger.keep_notice(f"{record.incident} assessment", decision=record.key)
    incident = read_incident(runtime.ledger, record.incident, record)
    event = _incident_event(incident, [kind], record, decided_by=record.actor.get("name"),
                            **({"from": record.incident_update["from"]} if "from" in record.incident_update else {}))
    if _publish(runtime, event, record.key, record.resource_id) and kind in ("merged", "split") \
            and incident.clock_running:
        runtime.ledger.keep_clock(incident.id, clock.iso(incident.gdpr_deadline - DUE_WITHIN))


# Each notice's line for people (a chat message's text), filled from its data.
SUMMARIES = {
    "detected": "{severity} finding(s) on {resource_count} resource(s), {status}",
    "contained": "contained, {status}",
    "held": "an action waits for a person's approval, {status}",
    "failed": "a containment failed on {resource_id}, {status}",
    "due": "the Article 33 assessment is due by {gdpr_deadline} ({gdpr_hours_left} h left)",
    "overdue": "the Article 33 deadline passed at {gdpr_deadline} and the incident is not assessed",
    "assessed": "assessed by {decided_by}",
    "reassess": "a finding since its assessment, which did not weigh it: assess it again",
    "closed": "closed by {decided_by}",
    "merged": "incident {from} merged into it by {decided_by}",
    "split": "split from incident {from} by {decided_by}",
}


def _incident_event(incident: Incident, changed: list[str], record: DecisionRecord | None, **extra) -> dict:
    """An incident's notice: where it stands (as GET /api/incidents/{id} answers, lists
    bounded), what changed, the decision that changed it, and a line for people."""
    summary = incident.summary(clock.now())
    data = {**_bounded({name: value for name, value in summary.items() if name != "decisions"}),
            "resource_count": len(summary["resources"]), "decision_count": len(summary["decisions"]),
            "changed": changed, **extra}
    if record is not None:
        data.update({"decision": record.key, "outcome": record.outcome, "resource_id": record.resource_id,
                     "actions": record.actions, "own_deployment": record.own_deployment, "reason": record.reason,
                     "mode": record.mode})
    kind = changed[0]
    data["summary"] = f"incident {incident.id}: " + SUMMARIES[kind].format_map(data)
    if "held" in changed and record is not None and record.impact_preview:
        # Who the held actions would break, so the approver sees it where they are asked.
        data["impact_preview"] = impact.compact(record.impact_preview)
        data["summary"] += "; " + "; ".join(step["summary"] for step in data["impact_preview"]["steps"])
    about = "" if kind in ONCE or record is None else f".{record.key}"
    return {"source": SOURCE, "type": f"{TYPE}.Incident.{kind}", "subject": f"/incidents/{incident.id}",
            "id": f"{incident.id}.{kind}{about}", "data": data}


def _bounded(data: dict) -> dict:
    """Lists cut at LISTED items; `<name>_total` says how many there were where more."""
    bounded = {}
    for name, value in data.items():
        bounded[name] = value[:LISTED] if isinstance(value, list) else value
        if isinstance(value, list) and len(value) > LISTED:
            bounded[f"{name}_total"] = len(value)
    return bounded


def _decision_event(record: DecisionRecord) -> dict:
    kind = {"release": "released", "exemption": "exemption", "mute": "mute", "operator-request": "refused"}.get(
        record.operation, record.outcome)
    return {
        # Unique per notification (consumers may drop a repeated source + id): a decision's
        # provisional failure and the decision that replaces it share the key, not the outcome.
        "source": SOURCE, "type": f"{TYPE}.Decision.{kind}", "subject": record.resource_id or "(none)",
        "id": record.key if record.key.endswith(f".{kind}") else f"{record.key}.{kind}", "data": {
            "decision": record.key, "outcome": record.outcome, "resource_id": record.resource_id,
            "incident": record.incident, "severity": record.severity, "rules": record.rules,
            "actions": record.actions, "own_deployment": record.own_deployment,
            "awaiting_approval": [step["action"] for step in record.awaiting_approval],
            "reason": record.reason, "mode": record.mode, "decided_at": record.decided_at,
            "contained_at": record.contained_at, "actor": record.actor,
        }}


def _publish(runtime: Runtime, event: dict, decision: str, resource_id: str) -> bool:
    """Publish one notification; False, logged and kept in the ledger, when the topic refused it."""
    try:
        runtime.clients.publish([event])
    except Exception as error:  # noqa: BLE001 - a notification must never stop containment
        log.error("NOTIFICATION FAILED: %s (decision %s): %s", event["id"], decision or "none", error)
        runtime.ledger.notification_failed(event["id"], decision, resource_id, f"{type(error).__name__}: {error}")
        return False
    return True


# -- the hourly timer: Article 33 clocks and the digest -----------------------------------------
def run_hourly(runtime: Runtime | None = None) -> list[dict]:
    """The notices that fall due (an assessment due within 24 hours, a deadline passed) and
    the digest of what waited for it; the notifications sent."""
    runtime = runtime or current()
    if runtime.settings.notify_topic_endpoint is None:
        return []
    return _clock_notices(runtime, clock.now()) + _digest(runtime, clock.now())


def _clock_notices(runtime: Runtime, now: datetime) -> list[dict]:
    """Each notified incident's clock, from 24 hours before its deadline: `due` once, then
    `overdue` once at the deadline, unless an assessment stopped the clock first. An
    incident merged into another hands its watch to that one."""
    sent = []
    for watched in runtime.ledger.clocks_due(clock.iso(now)):
        incident = read_incident(runtime.ledger, watched)
        if incident is None:  # its records are gone (deleted by hand: verify names them): nothing left to watch
            log.error("NOTIFICATION CLOCK: incident %s has no records; its Article 33 notices stop", watched)
            runtime.ledger.drop_clock(watched)
            continue
        if incident.id != watched:  # merged into another since: that one's clock runs
            runtime.ledger.drop_clock(watched)
        if not incident.clock_running:  # stopped, or none runs (a split left weaknesses only)
            runtime.ledger.drop_clock(incident.id)
            continue
        kind = "overdue" if now >= incident.gdpr_deadline else "due"
        # A clock that runs again (findings after a not-notifiable assessment) has notices of its own.
        again = f" {incident.gdpr_deadline:%Y%m%dT%H%M%S}" if incident.unassessed else ""
        row = f"{incident.id} {kind}{again}"
        if runtime.ledger.claim_notice(row):
            event = _incident_event(incident, [kind], None)
            event["id"] += again.replace(" ", ".")
            if not _publish(runtime, event, "", incident.resource_id):
                runtime.ledger.forget_notice(row)
                continue  # the next hour tries again
            sent.append(event)
        if kind == "overdue":
            runtime.ledger.drop_clock(incident.id)
        else:
            runtime.ledger.keep_clock(incident.id, clock.iso(incident.gdpr_deadline))
    return sent


def _digest(runtime: Runtime, now: datetime) -> list[dict]:
    """One notification with every finding recorded `reported` since the last digest, and
    what mutes held back; at most one an hour, none when there is nothing."""
    entries = runtime.ledger.digest_entries()
    hour = f"{now:%Y-%m-%dT%H}"
    if not entries or not runtime.ledger.claim_notice(f"digest {hour}"):
        return []
    event = _digest_event(entries, hour, clock.iso(now))
    if not _publish(runtime, event, "", ""):
        runtime.ledger.forget_notice(f"digest {hour}")
        return []  # kept for the next one
    runtime.ledger.drop_digest_entries([entry["row"] for entry in entries])
    return [event]


def _digest_event(entries: list[dict], hour: str, until: str) -> dict:
    reported = [entry for entry in entries if not entry["muted"]]
    incidents: dict[str, list[dict]] = {}
    for entry in reported:
        incidents.setdefault(entry["incident"], []).append(entry)

    def worst(group: list[dict]) -> int:
        return max((SEVERITIES.index(e["severity"]) for e in group if e["severity"] in SEVERITIES), default=-1)

    listed = [{"incident": incident or None, "severity": SEVERITIES[worst(group)] if worst(group) >= 0 else None,
               "findings": len(group), "rules": sorted({rule for e in group for rule in e["rules"]}),
               **_bounded({"resources": list(dict.fromkeys(e["resource_id"] for e in group)),
                           "decisions": [e["key"] for e in group]})}
              for incident, group in sorted(incidents.items(), key=lambda item: -worst(item[1]))]
    muted: dict[str, dict] = {}
    for entry in entries:
        for mute in entry["muted"]:
            held = muted.setdefault(mute["decision"], {**mute, "held_back": 0})
            held["held_back"] += 1
    data = {
        "since": min(entry["decided_at"] for entry in entries), "until": until,
        "counts": {"findings": len(reported), "incidents": len(incidents),
                   "resources": len({e["resource_id"].lower() for e in reported}),
                   "muted": len([entry for entry in entries if entry["muted"]])},
        "by_severity": dict(Counter(e["severity"] or "none" for e in reported)),
        "by_rule": dict(Counter(rule for e in reported for rule in e["rules"])),
        **_bounded({"incidents": listed}), "muted": list(muted.values()),
    }
    return {"source": SOURCE, "type": f"{TYPE}.Digest.reported", "subject": "/digests/reported",
            "id": f"digest-{hour}", "data": data}
