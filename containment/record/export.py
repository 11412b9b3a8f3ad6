"""Evidence out of the ledger, for auditors and regulators: decisions and incidents for a
time range as JSON Lines or CSV, and one incident as a self-contained HTML report."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from functools import partial

from containment.adapters.ledger import Ledger
from containment.adapters.runtime import together
from containment.core.records import DecisionRecord
from containment.record import report
from containment.record.incidents import Incident, effective_incidents, group

CSV_FIELDS = ("key", "decided_at", "resource_id", "outcome", "mode", "severity", "rules", "actions",
              "awaiting_approval", "actor", "operation", "event_id", "event_time", "contained_at", "reason",
              "repeated", "last_repeated_at", "recovered_at")


def decisions_between(ledger: Ledger, start: datetime, end: datetime) -> list[DecisionRecord]:
    """Every decision made in [start, end), read through the by-day index."""
    records, day = [], start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        records += [r for r in ledger.for_day(day)
                    if start.isoformat() <= _iso(r.decided_at) < end.isoformat()]
        day += timedelta(days=1)
    return sorted(records, key=lambda r: (r.decided_at or "", r.recorded_at))


def _iso(text: str | None) -> str:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat() if text else ""


def incidents_between(ledger: Ledger, start: datetime, end: datetime) -> list[Incident]:
    """Every incident with a record in [start, end), each whole (its records outside the range too)."""
    merged_into, split_to = effective_incidents(records := decisions_between(ledger, start, end))
    named = dict.fromkeys(split_to.get(r.key, r.incident) for r in records if r.incident)
    found: dict[str, Incident] = {}
    for incident_id in named:
        incident = read_incident(ledger, incident_id)
        if incident is not None:
            found.setdefault(incident.id, incident)
    return sorted(found.values(), key=lambda i: (i.detected_at, i.id))


def read_incident(ledger: Ledger, incident_id: str, known: DecisionRecord | None = None) -> Incident | None:
    """One incident, whole: its records, and those of the incidents merged into it or split
    from it (the ledger keeps a merge or split record in both); the incident it was merged
    into, where it was. `known`: a record of it in hand (the one just written), not read again.
    Each incident's records are listed by one query and read together."""
    records: dict[tuple[str, str], DecisionRecord] = {}
    if known is not None:
        records[_located(known.resource_id, known.key)] = known
    todo, seen = [incident_id], set()
    while todo:
        current = todo.pop()
        if not current or current in seen:
            continue
        seen.add(current)
        pointers = {_located(*pointer): pointer for pointer in ledger.incident_pointers(current)}
        unread = [where for where in pointers if where not in records]
        read = together(*(partial(ledger.find, *pointers[where]) for where in unread))
        records.update((where, record) for where, record in zip(unread, read) if record is not None)
        for where in pointers:
            record = records.get(where)  # None: a pointer whose record was never written
            if record is not None and record.operation == "incident":
                todo += [record.incident_update.get("from"), record.incident]
    incidents = group(list(records.values()))
    return next((i for i in incidents if i.id == incident_id), None) or next(
        (i for i in incidents if incident_id in i.merged), None)


def _located(resource_id: str | None, key: str) -> tuple[str, str]:
    return (resource_id or "").lower(), key


# An instant as records and incidents hold one: events' times (up to seven fractional digits),
# the app's clock (microseconds and Z), computed ones (+00:00, whole seconds or not).
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def timestamp(moment: datetime | str) -> str:
    """A time as every export shows it: ISO 8601 in UTC with Z, to the second (cut, never
    rounded up, so that --since a shown time includes it). The ledger keeps what was recorded."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# A record's evidence: ARM bodies and what the rules found, exported as ARM and the app wrote them.
_EVIDENCE = ("before", "after", "findings", "full_evidence")


def _exported(row: dict) -> dict:
    """A decision or incident with its own times in the one form, nested ones too (an incident's
    assessment, what waits since when); its evidence as written."""
    return {name: value if name in _EVIDENCE else _times(value) for name, value in row.items()}


def _times(value):
    if isinstance(value, dict):
        return {name: _times(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_times(item) for item in value]
    if isinstance(value, datetime) or (isinstance(value, str) and _INSTANT.fullmatch(value)):
        return timestamp(value)
    return value


def as_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(_exported(row), default=str) + "\n" for row in rows)


def decisions_csv(rows: list[dict]) -> str:
    """Decisions as exported (containment.record.repeats.exported), one CSV row each."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS)
    writer.writeheader()
    for row in map(_exported, rows):
        writer.writerow({name: _cell(row.get(name)) for name in CSV_FIELDS})
    return out.getvalue()


def incidents_csv(summaries: list[dict]) -> str:
    fields = ("incident", "resource_id", "resources", "status", "severity", "detected_at", "exposed_at",
              "contained_at", "gdpr_deadline", "gdpr_hours_left", "clock_stopped_at", "notifiable", "reference",
              "actors", "operators", "rules", "weaknesses", "decisions")
    out = io.StringIO()
    writer = csv.DictWriter(out, fields)
    writer.writeheader()
    for summary in map(_exported, summaries):
        assessment = summary.get("assessment") or {}
        row = {**summary, "notifiable": assessment.get("notifiable"), "reference": assessment.get("reference")}
        writer.writerow({name: _cell(row.get(name)) for name in fields})
    return out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(v.get("action", json.dumps(v)) if isinstance(v, dict) else str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def incident_html(incident: Incident, now: datetime) -> str:
    """A self-contained page: nothing loaded from anywhere, readable printed or archived
    (containment.record.report)."""
    return report.render(incident, now)
