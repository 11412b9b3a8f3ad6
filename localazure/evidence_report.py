"""The evidence reports a person reads: per scenario run, one Markdown file of what was seen,
decided and done, with the state before and after, and one HTML page per incident (the
command line's `incident-report`)."""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from containment.core.findings import is_weakness
from containment.core.ids import short
from containment.core.records import DecisionRecord
from containment.detect.drift_sweep import OPERATION as SWEEP
from containment.detect.egress_scan import OPERATION as EGRESS_SCAN
from containment.record.export import incident_html
from containment.record.impact import in_words
from containment.record.incidents import Incident
from containment.record.report import clock_line


def source(record: DecisionRecord) -> str | None:
    """What led to the decision, in words: an event, a scan, the sweep or a person (None: the
    record names none of them, as a queue message that could not be read)."""
    if record.operation == EGRESS_SCAN:
        return f"Found by the egress scan of the window ending {record.event_time or 'n/a'}"
    if record.operation == SWEEP:
        return f"Found by the drift sweep at {record.decided_at}"
    if "roles" in record.actor:  # an operator as the platform presents one (operate.principal)
        who = record.actor.get("name") or record.actor.get("object_id")
        what = record.operation if record.operation != "operator-request" else None
        if what == "incident" and record.incident_update.get("kind"):  # an assessment, a closure, a merge, a split
            what = f"incident {record.incident_update['kind']}"
        about = f", about event `{record.event_id}`" if record.event_id else ""
        return f"Operator request{f' ({what})' if what else ''} by {who}{about}"
    if record.event_id:
        return f"Event: `{record.event_id}` ({record.operation or 'n/a'}), at {record.event_time or 'n/a'}"
    return None


def render(name: str, settings: dict[str, str], records: list[DecisionRecord], final_state: dict[str, Any],
           incident_pages: list[tuple[Incident, Path]] = (), now: datetime | None = None) -> str:
    """`incident_pages`: the scenario's incidents and their reports, relative to the Markdown
    file, each said with its Article 33 clock as of `now`."""
    lines = [f"# Evidence: {name}", "",
             f"Mode: `{settings.get('CONTAINMENT_MODE', 'dry-run')}`. Settings given: "
             + (", ".join(f"`{k}={v}`" for k, v in sorted(settings.items())) or "defaults only") + ".", "",
             "| decided at | resource | outcome | rules | actions | actor |", "|---|---|---|---|---|---|"]
    for record in records:
        actor = record.actor.get("name") or record.actor.get("object_id") or record.actor.get("app_id") or ""
        lines.append(f"| {record.decided_at or ''} | {short(record.resource_id)} | **{record.outcome}** | "
                     f"{', '.join(record.rules)} | {', '.join(record.actions)} | {actor} |")
    for number, record in enumerate(records, 1):
        lines += ["", f"## {number}. {record.outcome}: {short(record.resource_id)}", "",
                  f"- Why: {record.reason}",
                  *([f"- {source(record)}"] if source(record) else []),
                  f"- Decided at {record.decided_at}" + (f", contained at {record.contained_at}" if record.contained_at else ""),
                  f"- Mode: {record.mode}"]
        for finding in record.findings:
            weakness = ", a weakness: no Article 33 clock of its own" if is_weakness(finding) else ""
            lines.append(f"- Finding `{finding['rule']}` ({finding['severity']}{weakness}): {finding['summary']}; "
                         f"evidence `{json.dumps(finding['evidence'])}`")
        lines += _impact(record.impact_preview)
        for label, state in (("before", record.before), ("after", record.after)):
            for rid, body in state.items():
                lines += ["", f"<details><summary>State {label}: {short(rid)}</summary>", "", "```json",
                          json.dumps(body, indent=2), "```", "</details>"]
    if incident_pages:
        lines += ["", "## Incidents", ""]
        lines += [f"- [{page.stem}]({page.as_posix()}): Article 33: {clock_line(incident, now)}"
                  for incident, page in incident_pages]
    lines += ["", "## Final state", ""]
    for rid, body in final_state.items():
        lines.append(f"- {short(rid)}: {'deleted' if body is None else 'present'}")
    return "\n".join(lines) + "\n"


def _impact(preview: dict) -> list[str]:
    """Who the held actions would break (containment.record.impact): each in words, then its callers."""
    if not preview:
        return []
    lines = [f"- Impact preview of the held actions (StorageBlobLogs from {preview.get('since')} to "
             f"{preview.get('until')}, {preview.get('queries')} query; {preview.get('digest')}):"]
    rows = []
    for step in preview.get("steps") or []:
        lines.append(f"  - {in_words(step)}")
        for verdict, group in (("", step), ("undetermined", step.get("undetermined") or {})):
            rows += [f"| {step['action']}{f' ({verdict})' if verdict else ''} | `{c['caller']}` | {c['address']} | "
                     f"{c['credential']} | {c['requests']:,} | {c['first_use']} | {c['last_use']} |"
                     for c in group.get("callers") or []]
    if rows:
        lines += ["", "| held action | caller | address | credential | requests | first use | last use |",
                  "|---|---|---|---|---|---|---|", *rows, ""]
    return lines


def _file_name(scenario) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(scenario.file).stem)


def write_report(directory: Path, scenario, records: list[DecisionRecord], final_state: dict[str, Any],
                 incident_pages: list[tuple[Incident, Path]] = (), now: datetime | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (_file_name(scenario) + ".md")
    path.write_text(render(scenario.name, scenario.settings, records, final_state,
                           [(incident, page.relative_to(directory)) for incident, page in incident_pages], now))
    return path


def write_incident_reports(directory: Path, scenario, incidents: list[Incident],
                           now: datetime) -> list[tuple[Incident, Path]]:
    """One HTML page per incident, as `incident-report` writes it, in incidents/<scenario>/
    (scenarios replay the same resources at the same times, so their incident IDs can
    coincide), as of `now`: the app's clock at the scenario's last step."""
    folder = directory / "incidents" / _file_name(scenario)
    pages = []
    for incident in incidents:
        folder.mkdir(parents=True, exist_ok=True)
        page = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "-", incident.id) + ".html")
        page.write_text(incident_html(incident, now))
        pages.append((incident, page))
    return pages
