"""Evidence out of the ledger, for auditors and regulators: decisions and incidents for a
time range as JSON Lines or CSV, and one incident as a self-contained HTML report."""
from __future__ import annotations

import csv
import html
import io
import json
from datetime import datetime, timedelta

from containment.adapters.ledger import Ledger
from containment.core.ids import short
from containment.core.records import DecisionRecord
from containment.record.incidents import Incident, group

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


def incidents_between(ledger: Ledger, start: datetime, end: datetime, window: timedelta) -> list[Incident]:
    return group(decisions_between(ledger, start, end), window)


def as_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, default=str) + "\n" for row in rows)


def decisions_csv(rows: list[dict]) -> str:
    """Decisions as exported (containment.record.repeats.exported), one CSV row each."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _cell(row.get(name)) for name in CSV_FIELDS})
    return out.getvalue()


def incidents_csv(summaries: list[dict]) -> str:
    fields = ("incident", "resource_id", "status", "severity", "detected_at", "contained_at", "gdpr_deadline",
              "gdpr_hours_left", "actors", "rules", "decisions")
    out = io.StringIO()
    writer = csv.DictWriter(out, fields)
    writer.writeheader()
    for summary in summaries:
        writer.writerow({name: _cell(summary.get(name)) for name in fields})
    return out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(v.get("action", json.dumps(v)) if isinstance(v, dict) else str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#1b1f24;
line-height:1.45}h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid
#d0d7de;padding-bottom:.3rem}.clock{padding:.8rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}
.clock.due{background:#ffebe9;border:1px solid #ff8182}.clock.ok{background:#fff8c5;border:1px solid #d4a72c}
table{border-collapse:collapse;width:100%;font-size:.9rem;table-layout:fixed}th,td{border:1px solid #d0d7de;
padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}th:last-child{width:32%}th{background:#f6f8fa}.outcome{font-weight:600}.contained{color:#1a7f37}
.failed,.pending-approval{color:#cf222e}.would-contain,.reported,.exempt{color:#9a6700}code,pre{font-family:
ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.8rem}pre{background:#f6f8fa;padding:.6rem;overflow:auto;
max-height:24rem}details{margin:.3rem 0}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dt{font-weight:600}footer{margin-top:2rem;color:#57606a;font-size:.8rem}
"""


def incident_html(incident: Incident, now: datetime) -> str:
    """A self-contained page: nothing loaded from anywhere, readable printed or archived."""
    summary = incident.summary(now)
    e = html.escape
    hours = summary["gdpr_hours_left"]
    clock = (f"GDPR Article 33: notify the supervisory authority by {e(summary['gdpr_deadline'])} "
             f"({'overdue by ' + str(-hours) if hours < 0 else str(hours)} hours{' left' if hours >= 0 else ''}), "
             "72 hours after detection, unless the breach is unlikely to result in a risk to individuals.")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Incident {e(incident.id)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Incident {e(incident.id)}: {e(short(incident.resource_id))}</h1>",
        f"<div class='clock {'due' if hours < 24 else 'ok'}'>{clock}</div>",
        "<dl>",
        *(f"<dt>{e(label)}</dt><dd>{e(str(value))}</dd>" for label, value in (
            ("Resource", incident.resource_id), ("Status", summary["status"]), ("Severity", summary["severity"]),
            ("Detected", summary["detected_at"]), ("Contained", summary["contained_at"] or "not contained"),
            ("Rules", ", ".join(summary["rules"])), ("People and identities involved", ", ".join(summary["actors"])),
        )),
        "</dl><h2>Timeline</h2><table><tr><th>decided at</th><th>outcome</th><th>what</th><th>actions</th>"
        "<th>who</th><th>why</th></tr>",
    ]
    for record in incident.decisions:
        who = record.actor.get("name") or record.actor.get("object_id") or ""
        held = [a["action"] for a in record.awaiting_approval]
        if record.outcome == "pending-approval":
            actions = f"{', '.join(held)} (waits for approval)"
        else:
            actions = ", ".join(record.actions) + (f" (held for approval: {', '.join(held)})" if held else "")
        parts.append(f"<tr><td>{e(record.decided_at or '')}</td><td class='outcome {e(record.outcome)}'>"
                     f"{e(record.outcome)}</td><td>{e(record.operation or '')}</td><td>{e(actions)}</td>"
                     f"<td>{e(who)}</td><td>{e(record.reason)}</td></tr>")
    parts.append("</table><h2>Findings and evidence</h2>")
    shown = set()
    for record in incident.decisions:
        for finding in record.findings:
            if (finding["rule"], finding["summary"]) in shown:
                continue  # an approval or release carries the findings it settles
            shown.add((finding["rule"], finding["summary"]))
            parts.append(f"<p><strong>{e(finding['rule'])}</strong> ({e(finding['severity'])}): "
                         f"{e(finding['summary'])}</p><details><summary>evidence</summary>"
                         f"<pre>{e(json.dumps(finding['evidence'], indent=2, default=str))}</pre></details>")
    parts.append("<h2>State before and after each action</h2>")
    for record in incident.decisions:
        for label, states in (("before", record.before), ("after", record.after)):
            for resource_id, body in states.items():
                parts.append(f"<details><summary>{e(record.key)}: {label}, {e(short(resource_id))}</summary>"
                             f"<pre>{e(json.dumps(body, indent=2, default=str))}</pre></details>")
    parts.append(f"<footer>Generated {e(now.isoformat())} from the decision ledger; every line above is a "
                 "decision record as stored.</footer></body></html>")
    return "\n".join(parts)
