"""Incidents: the decisions about one resource that belong together, with the GDPR clock.

Derived from the ledger, never stored apart from it, so an incident can never disagree
with its evidence. Decisions about the same resource that found something, each within
CONTAINMENT_INCIDENT_WINDOW_HOURS of the previous one, form one incident. Article 33 gives
72 hours from becoming aware of a personal-data breach to notify the supervisory
authority: every view of an incident shows that deadline, counted from detection.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from containment.core.records import DecisionRecord

GDPR_NOTIFICATION = timedelta(hours=72)
# Outcomes that say something was found; compliant, ignored and rejected decisions are not incidents.
FOUND = ("contained", "would-contain", "pending-approval", "reported", "exempt", "failed")
# What people do (their records name the operator, not whoever caused the exposure).
# MINIMAL STAND-IN (branch `report`), to be reconciled with the lead's incidents.py: "assessment"
# is the lead's coming operation name, assumed here.
OPERATOR_ACTS = ("approval", "release", "exemption", "break-glass", "operator-request", "assessment")


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass
class Incident:
    id: str
    resource_id: str
    decisions: list[DecisionRecord] = field(default_factory=list)
    # MINIMAL STAND-IN (branch `report`), to be reconciled with the lead's incidents.py: the
    # latest assessment ({notifiable, notified_at, reference, reason, high_risk,
    # data_subjects_informed_at, decided_by: {id, name}, decided_at}); the lead derives it from
    # the assessment records, here the caller passes it.
    assessment: dict | None = None

    @property
    def detected_at(self) -> datetime:
        first = self.decisions[0]
        return _at(first.event_time) or _at(first.decided_at)

    @property
    def contained_at(self) -> datetime | None:
        times = [_at(r.contained_at) for r in self.decisions if r.outcome == "contained" and r.operation != "release"]
        return min((t for t in times if t), default=None)

    @property
    def gdpr_deadline(self) -> datetime:
        return self.detected_at + GDPR_NOTIFICATION

    # MINIMAL STAND-INS (branch `report`) from here to `summary`, to be reconciled with the
    # lead's incidents.py: resources, clock_stopped_at, waiting, operators; status gains
    # partly-contained and assessed; actors no longer names the operators.
    @property
    def resources(self) -> list[str]:
        seen: dict[str, str] = {}
        for record in self.decisions:
            if record.resource_id and record.resource_id.lower() not in seen:
                seen[record.resource_id.lower()] = record.resource_id
        return list(seen.values())

    @property
    def clock_stopped_at(self) -> datetime | None:
        assessment = self.assessment
        if not assessment:
            return None
        if assessment.get("notifiable"):
            return _at(assessment.get("notified_at"))
        return _at(assessment.get("decided_at"))

    @property
    def status(self) -> str:
        if self.clock_stopped_at is not None:
            return "assessed"
        last_release = max((i for i, r in enumerate(self.decisions) if r.operation == "release"), default=-1)
        contained_after = any(r.outcome == "contained" and r.operation != "release"
                              for r in self.decisions[last_release + 1:])
        if contained_after:
            return "partly-contained" if self.waiting else "contained"
        return "released" if last_release >= 0 else "open"

    @property
    def waiting(self) -> list[dict]:
        """What still waits for a person: held actions nobody approved, denied or let expire."""
        settled = {r.key.rsplit(".", 1)[0] for r in self.decisions if r.operation == "approval" and "." in r.key}
        waiting = []
        for record in self.decisions:
            if record.key in settled or record.operation in ("approval", "release"):
                continue
            second = record.key.startswith("second-")
            steps = record.awaiting_approval or (
                [{"action": record.operation or "", "target": record.resource_id}]
                if record.outcome == "pending-approval" else [])
            for step in steps:
                waiting.append({"action": step["action"], "target": step["target"],
                                "waits_for": "second operator" if second else "approval",
                                "since": record.decided_at, "decision": record.key})
        return waiting

    @property
    def actors(self) -> list[str]:
        """Who caused it: the events' actors and the egress callers."""
        names = []
        for record in self.decisions:
            if record.operation in OPERATOR_ACTS or record.key.startswith("second-"):
                continue
            candidates = [record.actor.get("name") or record.actor.get("object_id") or record.actor.get("app_id")]
            candidates += [caller.get("Caller") for finding in record.findings
                           for caller in (finding.get("evidence") or {}).get("callers") or []
                           if isinstance(caller, dict)]
            for name in candidates:
                if name and name not in names:
                    names.append(name)
        return names

    @property
    def operators(self) -> list[str]:
        """The people who approved, denied, released or assessed."""
        names = []
        actors = [r.actor for r in self.decisions if r.operation in OPERATOR_ACTS or r.key.startswith("second-")]
        for actor in actors + [(self.assessment or {}).get("decided_by") or {}]:
            name = actor.get("name") or actor.get("object_id") or actor.get("id")
            if name and name not in names:
                names.append(name)
        return names

    def summary(self, now: datetime) -> dict:
        left = self.gdpr_deadline - now
        return {
            "incident": self.id, "resource_id": self.resource_id, "status": self.status,
            "detected_at": self.detected_at.isoformat(), "contained_at": self.contained_at.isoformat()
            if self.contained_at else None, "gdpr_deadline": self.gdpr_deadline.isoformat(),
            "gdpr_hours_left": round(left.total_seconds() / 3600, 1), "actors": self.actors,
            "rules": sorted({rule for r in self.decisions for rule in r.rules}),
            "severity": max((r.severity for r in self.decisions if r.severity),
                            key=("low", "medium", "high", "critical").index, default=None),
            "decisions": [r.key for r in self.decisions],
        }


def group(records: list[DecisionRecord], window: timedelta) -> list[Incident]:
    """Incidents from decisions in the order written."""
    incidents: list[Incident] = []
    open_by_resource: dict[str, Incident] = {}
    for record in sorted(records, key=lambda r: (r.decided_at or "", r.recorded_at)):
        if record.outcome not in FOUND and record.operation not in ("approval", "release"):
            continue
        key = (record.resource_id or "").lower()
        current = open_by_resource.get(key)
        if current is not None and _at(record.decided_at) - _at(current.decisions[-1].decided_at) <= window:
            current.decisions.append(record)
            continue
        if record.operation in ("approval", "release") and current is not None:
            current.decisions.append(record)  # a person settles an incident whenever they get to it
            continue
        digest = hashlib.sha256(f"{key} {record.decided_at}".encode()).hexdigest()[:12]
        incident = Incident(f"inc-{(record.decided_at or '')[:10]}-{digest}", record.resource_id, [record])
        incidents.append(incident)
        open_by_resource[key] = incident
    return incidents
