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


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass
class Incident:
    id: str
    resource_id: str
    decisions: list[DecisionRecord] = field(default_factory=list)

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

    @property
    def status(self) -> str:
        last_release = max((i for i, r in enumerate(self.decisions) if r.operation == "release"), default=-1)
        contained_after = any(r.outcome == "contained" and r.operation != "release"
                              for r in self.decisions[last_release + 1:])
        if contained_after:
            return "contained"
        return "released" if last_release >= 0 else "open"

    @property
    def actors(self) -> list[str]:
        names = []
        for record in self.decisions:
            name = record.actor.get("name") or record.actor.get("object_id") or record.actor.get("app_id")
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
