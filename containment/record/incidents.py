"""Incidents: one breach each, the records that belong to it, and its Article 33 clock.

Which incident a finding belongs to is decided once, when it is recorded
(containment.record.correlation), and kept on the record (`incident`). What an incident is
now (its resources, status, assessment, what still waits for whom) is derived here from its
records, never stored apart from them, so an incident can never disagree with its evidence.

GDPR Art. 33(1): notify the supervisory authority within 72 hours of becoming aware of a
personal-data breach, unless it is unlikely to result in a risk to people; Art. 33(5):
document every breach either way. The clock runs from the detection of the first finding
that shows the data exposed, and stops when the assessment records the authority notified,
or the breach assessed not notifiable. A weakness (containment.judge.rule: a weakened
control that shows no one able to reach the data who should not) is no breach: an incident
whose findings are all weaknesses has no clock (status `weakness`) and closes without an
assessment; an exposure that joins it later starts the clock from its own detection.
Art. 34(1): where the breach is likely to result in a high risk, the people concerned are
informed without undue delay, so a high-risk assessment asks that too.

Status: open (found, nothing contained) -> partly-contained (contained, something still
waits for a person) -> contained -> assessed -> closed; `released` where a person undid the
containment and nothing contained it again; `reassess` where exposures came after the
latest assessment (it did not weigh them: a new assessment is needed before closing, and
after a not-notifiable one the clock runs again from the first of them); `weakness`, until
closed, where every finding is a weakness (what is contained or waits is in `waiting`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from containment.core.findings import is_weakness
from containment.core.records import OPERATOR_OPERATIONS, DecisionRecord

GDPR_NOTIFICATION = timedelta(hours=72)
NO_CLOCK = ("every finding is a weakened control (a weakness), and none shows personal data reachable by anyone "
            "who should not reach it: no personal-data breach is shown, so no GDPR Article 33 clock runs")
SETTLED = (".approved", ".denied", ".expired")
SEVERITIES = ("low", "medium", "high", "critical")


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def shows_exposure(record: DecisionRecord) -> bool:
    """Whether a record found anything that is not a weakness: what can make a breach."""
    return any(not is_weakness(finding) for finding in record.findings)


def weaknesses_only(record: DecisionRecord) -> bool:
    """Whether a record found something, and all of it weaknesses."""
    return bool(record.findings) and not shows_exposure(record)


def _who(actor: dict) -> str:
    return str(actor.get("name") or actor.get("object_id") or actor.get("app_id") or "")


@dataclass
class Incident:
    id: str
    decisions: list[DecisionRecord] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)  # incidents merged into this one

    # -- what it is about ------------------------------------------------------------------
    @property
    def findings(self) -> list[DecisionRecord]:
        """The records that found something (not a person's update of the incident)."""
        return [r for r in self.decisions if r.findings and r.operation != "incident"]

    @property
    def resources(self) -> list[str]:
        seen: dict[str, str] = {}
        for record in self.findings:
            for rid in [record.resource_id] + [f.get("resource_id") or "" for f in record.findings]:
                if rid and rid.lower() not in seen:
                    seen[rid.lower()] = rid
        return list(seen.values())

    @property
    def resource_id(self) -> str:
        """The first resource found: what the incident is named after."""
        return (self.resources or [""])[0]

    @property
    def actors(self) -> list[str]:
        """Who caused it: the identities whose changes events reported, and egress callers."""
        names: list[str] = []
        for record in self.findings:
            if record.event_id and record.operation not in OPERATOR_OPERATIONS and _who(record.actor):
                names.append(_who(record.actor))
            for finding in record.findings:
                names += [str(c["Caller"]) for c in (finding.get("evidence") or {}).get("callers") or []
                          if isinstance(c, dict) and c.get("Caller")]
        return list(dict.fromkeys(names))

    @property
    def operators(self) -> list[str]:
        """Who decided: the people who approved, released, contained by hand or assessed."""
        return list(dict.fromkeys(_who(r.actor) for r in self.decisions
                                  if r.operation in OPERATOR_OPERATIONS and _who(r.actor)))

    @property
    def severity(self) -> str | None:
        return max((r.severity for r in self.findings if r.severity), key=SEVERITIES.index, default=None)

    # -- the clock -------------------------------------------------------------------------
    @property
    def detected_at(self) -> datetime:
        first = (self.findings or self.decisions)[0]
        return min(_detected(r) for r in (self.findings or [first]))

    @property
    def exposures(self) -> list[DecisionRecord]:
        """The findings that can make a breach: the app's records with a finding that is not a
        weakness. Where only people's requests found something (a break-glass), those, as before
        weaknesses were told apart (fail closed: a clock runs)."""
        found = [r for r in self.findings if r.operation not in OPERATOR_OPERATIONS]
        return [r for r in found if shows_exposure(r)] if found else self.findings

    @property
    def weakness_only(self) -> bool:
        return bool(self.findings) and not self.exposures

    @property
    def weaknesses(self) -> list[str]:
        """The rules of its findings that are weaknesses: what an auditor reads beside `rules`."""
        return sorted({f["rule"] for r in self.findings for f in r.findings if is_weakness(f)})

    @property
    def exposed_at(self) -> datetime | None:
        """When the first exposure was detected: becoming aware of the breach, where the Article
        33 clock starts; None for a weakness-only incident."""
        return min((_detected(r) for r in self.exposures), default=None)

    @property
    def gdpr_deadline(self) -> datetime | None:
        """72 hours from the first exposure; where exposures came after a not-notifiable
        assessment, 72 hours from the first of them, the facts that assessment did not weigh.
        None where no clock runs (a weakness-only incident)."""
        if self.exposed_at is None:
            return None
        later = self.unassessed
        if later and not self.assessment.get("notifiable"):
            return min(_detected(r) for r in later) + GDPR_NOTIFICATION
        return self.exposed_at + GDPR_NOTIFICATION

    @property
    def unassessed(self) -> list[DecisionRecord]:
        """Exposures decided after the latest assessment: what it did not weigh (new reads of
        an account assessed as exposed only, say). They ask for a new assessment; a weakness
        found since (the drift sweep's posture findings, once a day) changes no breach: it does not."""
        assessment = self.assessment
        if assessment is None:
            return []
        assessed_at = parse_time(assessment["decided_at"])
        return [r for r in self.exposures if r.operation not in OPERATOR_OPERATIONS
                and parse_time(r.decided_at) is not None and parse_time(r.decided_at) > assessed_at]

    def _updates(self, kind: str) -> list[DecisionRecord]:
        return [r for r in self.decisions if r.operation == "incident" and r.incident_update.get("kind") == kind]

    @property
    def assessment(self) -> dict | None:
        """The latest assessment, with who made it and when."""
        latest = (self._updates("assessment") or [None])[-1]
        if latest is None:
            return None
        return {**{k: v for k, v in latest.incident_update.items() if k != "kind"},
                "decided_by": {"id": latest.actor.get("object_id"), "name": latest.actor.get("name")},
                "decided_at": latest.decided_at, "decision": latest.key}

    @property
    def clock_stopped_at(self) -> datetime | None:
        """When the authority was notified (what is found later is supplementary information,
        Art. 33(4), with no clock of its own), or the breach assessed not notifiable (until a
        finding comes after that assessment: its clock runs again)."""
        assessment = self.assessment
        if assessment is None or self.exposed_at is None:  # no assessment yet, or no clock to stop
            return None
        if assessment.get("notifiable"):
            return parse_time(assessment.get("notified_at"))
        return None if self.unassessed else parse_time(assessment["decided_at"])

    @property
    def clock_running(self) -> bool:
        """Whether an Article 33 clock runs now: there is one, and nothing stopped it."""
        return self.gdpr_deadline is not None and self.clock_stopped_at is None

    def hours_left(self, now: datetime) -> float | None:
        """Hours to the Art. 33 deadline (negative: overdue); None once the clock stopped, or where none runs."""
        if not self.clock_running:
            return None
        return round((self.gdpr_deadline - now).total_seconds() / 3600, 1)

    @property
    def article_34(self) -> str | None:
        """What Art. 34 asks, where the assessment says high risk: None where it asks nothing."""
        assessment = self.assessment
        if not assessment or not assessment.get("high_risk"):
            return None
        if assessment.get("data_subjects_informed_at"):
            return f"the people concerned were informed at {assessment['data_subjects_informed_at']}"
        if assessment.get("data_subjects_not_informed_because"):
            return f"the people concerned are not informed: {assessment['data_subjects_not_informed_because']}"
        return "high risk: inform the people concerned without undue delay (GDPR Art. 34(1))"

    # -- where it stands ---------------------------------------------------------------------
    @property
    def waiting(self) -> list[dict]:
        """What waits for a person, and for whom: held actions nobody approved, denied or let expire."""
        keys = {r.key for r in self.decisions}
        waiting = []
        for record in self.decisions:
            steps = record.awaiting_approval if record.outcome == "pending-approval" or record.awaiting_approval else []
            if not steps or any(record.key + suffix in keys for suffix in SETTLED):
                continue
            for step in steps:
                waiting.append({"action": step["action"], "target": step["target"], "decision": record.key,
                                "waits_for": "second operator" if record.key.startswith("second-") else "approval",
                                "since": record.decided_at})
        return waiting

    @property
    def contained_at(self) -> datetime | None:
        times = [parse_time(r.contained_at) for r in self.decisions if r.outcome == "contained" and r.operation != "release"]
        return min((t for t in times if t), default=None)

    @property
    def status(self) -> str:
        if self._updates("closure"):
            return "closed"
        if self.weakness_only:
            return "weakness"
        if self.assessment is not None:
            return "reassess" if self.unassessed else "assessed"
        last_release = max((i for i, r in enumerate(self.decisions) if r.operation == "release"), default=-1)
        contained = any(r.outcome == "contained" and r.operation != "release" for r in self.decisions[last_release + 1:])
        if contained:
            return "partly-contained" if self.waiting else "contained"
        return "released" if last_release >= 0 else "open"

    def summary(self, now: datetime) -> dict:
        left = self.hours_left(now)
        stopped, exposed, deadline = self.clock_stopped_at, self.exposed_at, self.gdpr_deadline
        return {
            "incident": self.id, "resource_id": self.resource_id, "resources": self.resources, "status": self.status,
            "severity": self.severity, "detected_at": self.detected_at.isoformat(),
            "exposed_at": exposed.isoformat() if exposed else None,
            "contained_at": self.contained_at.isoformat() if self.contained_at else None,
            "gdpr_deadline": deadline.isoformat() if deadline else None, "gdpr_hours_left": left,
            "clock_stopped_at": stopped.isoformat() if stopped else None,
            "no_clock_because": NO_CLOCK if self.weakness_only else None,
            "assessment": self.assessment, "unassessed": [r.key for r in self.unassessed],
            "article_34": self.article_34, "waiting": self.waiting,
            "actors": self.actors, "operators": self.operators, "merged": self.merged,
            "rules": sorted({rule for r in self.findings for rule in r.rules}),
            "weaknesses": self.weaknesses,
            "decisions": [r.key for r in self.decisions],
        }


def _detected(record: DecisionRecord) -> datetime:
    return parse_time(record.event_time) or parse_time(record.decided_at)


def effective_incidents(records: list[DecisionRecord]) -> tuple[dict[str, str], dict[str, str]]:
    """(merged incident -> the one it went into, decision key -> incident it was split into),
    from the people's merge and split records."""
    merged_into, split_to = {}, {}
    for record in sorted(records, key=lambda r: r.recorded_at):
        update = record.incident_update
        if record.operation != "incident" or not record.incident:
            continue
        if update.get("kind") == "merge" and update.get("from"):
            merged_into[update["from"]] = record.incident
        elif update.get("kind") == "split":
            for key in update.get("decisions", []):
                split_to[key] = record.incident
    return merged_into, split_to


def group(records: list[DecisionRecord]) -> list[Incident]:
    """The incidents these records belong to, as the people's merges and splits leave them,
    each with its records in the order written; earliest first."""
    merged_into, split_to = effective_incidents(records)

    def resolve(incident: str) -> str:
        seen = set()
        while incident in merged_into and incident not in seen:  # a merge cycle stops where it closes
            seen.add(incident)
            incident = merged_into[incident]
        return incident

    incidents: dict[str, Incident] = {}
    for record in sorted(records, key=lambda r: r.recorded_at):
        named = split_to.get(record.key, record.incident) if record.operation != "incident" else record.incident
        if not named:
            continue
        incident = incidents.setdefault(resolve(named), Incident(resolve(named)))
        incident.decisions.append(record)
    for source, target in merged_into.items():
        if resolve(target) in incidents and source not in incidents[resolve(target)].merged:
            incidents[resolve(target)].merged.append(source)
    return sorted(incidents.values(), key=lambda i: (i.detected_at, i.id))
