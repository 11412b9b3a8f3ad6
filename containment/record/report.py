"""One incident as a self-contained HTML page for the person who assesses it (a data
protection officer) and for the file: what leaked first, in words, then the dataset's
privacy context with the risk questions pre-filled, the assessment and its deadline, what
waits for whom, the timeline (who caused, who decided: apart), the evidence as tables with
the raw JSON behind them, and each resource's state before and after.

Nothing is loaded from anywhere (no script, no link, no image, no font), every value from a
record is HTML-escaped, and the page is ASCII (other characters as references), so it reads
the same opened from a mail, an archive or a printout. Printed (A4), the raw JSON and the
states are left out with a note saying where they are.
"""
from __future__ import annotations

import html
import json
from datetime import datetime, timezone

from containment.core.ids import short
from containment.core.records import OPERATOR_OPERATIONS
from containment.record import dataset_context, impact
from containment.record import leak as leaks
from containment.record.leak import human_size

SEVERITIES = ("low", "medium", "high", "critical")
TOP_ROWS = 25  # callers or objects in an evidence table; the rest are in the raw JSON
STATUS = {
    "open": "open: found, not contained",
    "partly-contained": "partly contained: something still waits for a person",
    "contained": "contained",
    "released": "released: a person undid the containment",
    "assessed": "assessed: the Article 33 decision is recorded",
    "reassess": "to assess again: findings came after the assessment",
    "closed": "closed",
    "weakness": "a weakened control; no personal data shown exposed",
}


def e(value) -> str:
    """Any value as escaped text (None as empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def render(incident, now: datetime) -> str:
    leak = leaks.describe(incident)
    found = dataset_context.contexts(incident, leak["datasets"])
    filled = dataset_context.prefill(found, leak)
    title = _title(incident, leak)
    parts = [
        "<!doctype html>",
        "<html lang='en'><head><meta charset='utf-8'><meta name='color-scheme' content='light'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Incident {e(incident.id)}: {e(title)}</title><style>{STYLE}</style></head><body>",
        _header(incident, title, now),
        "<p class='print-only note'>Printed copy: the raw JSON and the resources' states before and after are left "
        "out. They are in the HTML file this was printed from, and in <code>python -m containment export "
        "decisions</code>.</p>",
        _section("leak", "What was found" if incident.weakness_only else "What leaked", _leak(leak)),
        _section("context", "The dataset's privacy context", _context(found, filled, incident.weakness_only)),
        _section("assessment", "Assessment and deadline", _assessment(incident, now)),
        _section("waiting", "What waits for whom", _waiting(incident)),
        _section("timeline", "Timeline", _timeline(incident)),
        _section("evidence", "Evidence", _evidence(incident)),
        _section("states", "State before and after", _states(incident)),
        f"<footer>Generated {e(_stamp(now))} from the decision ledger. Every line above comes from the decision "
        "records of this incident, as stored; what they cannot say is said where it matters.</footer>",
        "</body></html>",
    ]
    page = "\n".join(parts)
    return page.encode("ascii", "xmlcharrefreplace").decode("ascii")


# ---------------------------------------------------------------------------- header


def _title(incident, leak: dict) -> str:
    datasets = [f"{d['account']}/{d['container']}" if d["container"] else d["account"] for d in leak["datasets"]]
    if datasets:
        return ", ".join(datasets[:3]) + (f" and {len(datasets) - 3} more" if len(datasets) > 3 else "")
    resources = list(getattr(incident, "resources", []) or [])
    return short(resources[0]) if resources else "no resource"


def _header(incident, title: str, now: datetime) -> str:
    severity = max((r.severity for r in incident.decisions if r.severity in SEVERITIES),
                   key=SEVERITIES.index, default=None)
    resources = list(incident.resources)
    facts = [
        ("Status", STATUS.get(incident.status, incident.status)),
        ("Severity", severity or "none recorded"),
        ("Detected", _stamp(incident.detected_at)),
        ("Contained", _stamp(incident.contained_at) if incident.contained_at else "not contained"),
        ("Article 33", clock_line(incident, now)),
        ("Caused by", _some(incident.actors) or "not known from the records"),
        ("Decided by", _some(incident.operators) or "the app alone (no person has acted)"),
    ]
    rows = "".join(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>" for label, value in facts)
    listed = "".join(f"<li><code title='{e(r)}'>{e(short(r))}</code></li>" for r in resources)
    kicker = ("Weakened-control record: no personal-data breach shown" if incident.weakness_only else
              "Personal-data breach record (GDPR Art. 33(5))")
    return (f"<header><p class='kicker'>{e(kicker)}</p>"
            f"<h1>Incident <code>{e(incident.id)}</code></h1><p class='subtitle'>{e(title)}</p>"
            f"<dl class='facts'>{rows}<dt>Resources</dt><dd><ul class='plain'>{listed}</ul></dd></dl></header>")


def _some(names: list[str], shown: int = 5) -> str:
    names = list(names)
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def clock_line(incident, now: datetime) -> str:
    """The Article 33 clock in one line: none, stopped, or its deadline and the hours left."""
    if incident.weakness_only:
        return "no clock: only weakened controls were found, no personal data shown exposed (see Assessment)"
    if incident.clock_stopped_at is not None:
        return f"clock stopped {_stamp(incident.clock_stopped_at)} (see Assessment)"
    left = (incident.gdpr_deadline - now).total_seconds() / 3600
    state = f"overdue by {_hours(-left)}" if left < 0 else f"{_hours(left)} left"
    return f"deadline {_stamp(incident.gdpr_deadline)}, {state}"


def _section(anchor: str, heading: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{e(heading)}</h2>{body}</section>"


# ---------------------------------------------------------------------------- what leaked


def _leak(leak: dict) -> str:
    parts = ["<div class='lede'>", *(f"<p>{e(s)}</p>" for s in leak["sentences"]), "</div>"]
    if leak["datasets"]:
        parts.append("<h3>Datasets</h3>")
        parts.append(_table(("Account", "Container", "Path prefix", "Known from"), [
            (_c(d["account"]), _c(d["container"] or "(whole account)"), _c(d["prefix"]) if d["prefix"] else "",
             e(", ".join(d["basis"]))) for d in leak["datasets"]], widths=(22, 22, 22, 34)))
    reads = leak["reads"]
    if reads:
        parts.append("<h3>Reads</h3>")
        parts.append(f"<p class='totals'>{e(_totals(reads))}</p>")
        rows = [(_caller_cell(c["caller"], c["addresses"], c["identity"]["kind"]), e(c["credential"]["text"]),
                 _n(c["blobs"]), e(human_size(c["bytes"])), _n(c["requests"]), _time(c["first_read"]),
                 _time(c["last_read"])) for c in reads["callers"][:TOP_ROWS]]
        parts.append(_table(("Caller", "Credential", "Blobs", "Bytes", "Requests", "First read", "Last read"), rows,
                            widths=(17, 27, 7, 10, 11, 14, 14), numeric=(2, 3, 4)))
        parts.append(_more(len(reads["callers"]), "callers"))
        if reads["sampled_objects"]:
            parts.append(_keep(
                "<h3>Objects read (sampled)</h3><p class='note'>The logs keep a few URIs per caller and scan window: "
                "these names are a sample; the counts above are the logs' own.</p>" +
                _table(("Object", "Callers that read it"), [
                    (_c(o["object"]), _n(o["callers"])) for o in reads["sampled_objects"][:TOP_ROWS]],
                    widths=(80, 20), numeric=(1,)), len(reads["sampled_objects"])))
            parts.append(_more(len(reads["sampled_objects"]), "objects"))
    for heading, weakness in (("Exposures", False), ("Weakened controls (no one shown able to reach the data)", True)):
        listed = [x for x in leak["exposures"] if x["weakness"] is weakness]
        if listed:
            parts.append(_keep(f"<h3>{e(heading)}</h3>" + _table(("What", "Resource", "From", "Until", "Caused by"), [
                (e(x["kind"]), _resource(x["resource_id"]),
                 _time(x["since"]) if x["since"] else "found " + _time(x["found_at"]), _until(x),
                 e(x["caused_by"] or "not known")) for x in listed], widths=(12, 32, 15, 26, 15)), len(listed)))
    after = leak["after_containment"]
    if after is not None and after["callers"]:
        parts.append(_keep("<h3>Reads after containment</h3>" + _table(("Caller", "Requests", "Bytes", "Last read"), [
            (_c(c["caller"]), _n(c["requests"]) if c["requests"] is not None else "",
             e(human_size(c["bytes"])) if c["bytes"] is not None else "", _time(c["last_read"]))
            for c in after["callers"]], widths=(40, 15, 15, 30), numeric=(1, 2)), len(after["callers"])))
    return "".join(parts)


def _totals(reads: dict) -> str:
    blobs = (f"{reads['blobs']:,} blobs" if reads["blobs_at_least"] >= reads["blobs"] else
             f"{reads['blobs_at_least']:,} to {reads['blobs']:,} distinct blobs")
    complete = "" if reads["complete"] else " (the record keeps only the top callers: these count those)"
    return (f"In all: {reads['caller_count']:,} caller{'s' if reads['caller_count'] != 1 else ''}, {blobs}, "
            f"{human_size(reads['bytes'])} ({reads['bytes']:,} bytes) in {reads['requests']:,} requests, from "
            f"{_stamp(reads['first_read'])} to {_stamp(reads['last_read'])}{complete}.")


def _until(exposure: dict) -> str:
    """Markup: when and how the exposure ended, or that it did not."""
    if exposure["released_at"]:
        return f"released {_time(exposure['released_at'])} by {e(exposure['released_by'] or 'a person')}"
    if exposure["contained_at"]:
        return f"{_time(exposure['contained_at'])} ({_code_words(exposure['contained_by'])})"
    if exposure["held_since"]:
        return f"<strong>still open</strong>: waits for a person since {_time(exposure['held_since'])}"
    return "<strong>not contained</strong>"


# ---------------------------------------------------------------------------- privacy context


def _context(found: list[dict], filled: dict, weakness_only: bool) -> str:
    parts = []
    if not found:
        parts.append("<p>The records name no storage account or container, so there are no tags to read.</p>")
    for context in found:
        label = f"{context['account']}/{context['container']}" if context["container"] else context["account"]
        parts.append(f"<h3>{e(label)}</h3>")
        if context["tagged"]:
            rows = [(_c(f["name"]), e(_shown(f)), e(f["source"] or ""), e(f["problem"] or f["status"]))
                    for f in context["fields"].values() if f["status"] != "absent"]
            absent = [f["name"] for f in context["fields"].values() if f["status"] == "absent"]
            parts.append(_table(("Tag", "Value", "From", "Reading"), rows, widths=(22, 30, 18, 30),
                                marked=[i for i, f in enumerate(f for f in context["fields"].values()
                                                                if f["status"] != "absent") if f["problem"]]))
            if absent:
                parts.append(f"<p class='note'>Not tagged: {e(', '.join(absent))}.</p>")
        else:
            parts.append("<p>No privacy tags found.</p>")
        for line in context["missing"]:
            parts.append(f"<p class='note'>{e(line[0].upper() + line[1:])}.</p>")
        if context["sources"]:
            read = "; ".join(f"{s['what']} as recorded by decision {s['decision']} ({s['state']})"
                             for s in context["sources"])
            parts.append(f"<p class='note'>Read from {e(read)}.</p>")
    if weakness_only:
        parts.append("<h3>Risk assessment</h3><p>None is asked: only weakened controls were found, and no personal "
                     "data is shown exposed. Should a finding that shows the data exposed join this incident, the risk "
                     "questions are pre-filled here from these tags.</p>")
    else:  # long (a page's height in print): its rows are not cut, and its heading stays with them
        parts.append("<h3>Risk assessment, pre-filled</h3>" + f"<p class='decides'>{e(filled['note'])}</p>" +
                     _table(("Question", "Suggested answer", "Why"), [
                         (e(q["question"]), f"<strong>{e(q['answer'])}</strong>",
                          "<ul class='why'>" + "".join(f"<li>{e(w)}</li>" for w in q["why"]) + "</ul>")
                         for q in filled["questions"]], widths=(30, 27, 43)))
    parts.append("<p class='note'>The tags are documented in the README (Dataset privacy tags). A manifest blob "
                 "inside the container is not read: the app holds no data-plane role.</p>")
    return "".join(parts)


def _shown(field: dict) -> str:
    value = field["value"]
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "unknown" if field["status"] == "valid" else str(field["raw"])
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------- assessment and clock


def _clock(incident, now: datetime) -> str:
    if incident.weakness_only:
        return ("<div class='clock none'><strong>No Article 33 clock runs.</strong> Every finding of this incident is "
                f"a weakened control ({e(', '.join(incident.weaknesses))}): none shows personal data reachable by "
                "anyone who should not reach it, so no personal-data breach is shown and nothing is to be notified "
                "under GDPR Art. 33(1), which runs from becoming aware of a breach. Should a finding that shows the "
                "data exposed join this incident, the 72 hours run from its detection.</div>")
    deadline = incident.gdpr_deadline
    stopped = incident.clock_stopped_at
    assessment = incident.assessment or {}
    if stopped is not None:
        late = (stopped - deadline).total_seconds() / 3600
        timing = (f"{_hours(-late)} before the deadline" if late <= 0 else f"{_hours(late)} after the deadline")
        if assessment.get("notifiable"):
            what = (f"the supervisory authority was notified at {_stamp(stopped)}"
                    + (f" (reference {assessment['reference']})" if assessment.get("reference") else ""))
        else:
            who = (assessment.get("decided_by") or {}).get("name") or "a person"
            what = f"assessed not notifiable by {who} at {_stamp(stopped)}"
        return (f"<div class='clock stopped'><strong>Article 33 clock stopped:</strong> {e(what)}, {e(timing)} "
                f"({e(_stamp(deadline))}).</div>")
    left = (deadline - now).total_seconds() / 3600
    since = ("detection" if incident.exposed_at == incident.detected_at else
             f"the first finding that shows the data exposed ({_stamp(incident.exposed_at)}; the weakened controls "
             "found before it start no clock)")
    if left < 0:
        return (f"<div class='clock overdue'><strong>Article 33: overdue by {e(_hours(-left))}.</strong> The 72 "
                f"hours from {e(since)} ended {e(_stamp(deadline))}. Notify the supervisory authority, or record why "
                "the breach is unlikely to result in a risk to people; either way, document it (Art. 33(5)).</div>")
    urgency = "due" if left < 24 else "running"
    return (f"<div class='clock {urgency}'><strong>Article 33: notify the supervisory authority by "
            f"{e(_stamp(deadline))}</strong> ({e(_hours(left))} left), 72 hours after {e(since)}, unless the breach "
            "is unlikely to result in a risk to people. Either way, document it (Art. 33(5)).</div>")


def _assessment(incident, now: datetime) -> str:
    assessment = incident.assessment
    parts = [_clock(incident, now)]
    if not assessment and incident.weakness_only:
        parts.append("<p>No assessment is needed: a weakness is no breach. Closing the incident is still a person's "
                     f"decision on the record (<code>POST /api/incidents/{e(incident.id)}/close</code>, app role "
                     "Containment.Assess, not the person who caused it).</p>")
        return "".join(parts)
    if not assessment:
        parts.append("<p>No assessment is recorded yet. The person who assesses records it (notifiable: when the "
                     "authority was notified and its reference; or not notifiable: why), and the clock stops.</p>")
        return "".join(parts)
    decided_by = assessment.get("decided_by") or {}
    rows = [("Notifiable", "yes" if assessment.get("notifiable") else "no")]
    if assessment.get("notifiable"):
        rows += [("Notified at", _stamp(assessment.get("notified_at")) if assessment.get("notified_at")
                  else "not yet"), ("Reference", assessment.get("reference") or "none recorded")]
    rows += [("Reason", assessment.get("reason") or "none recorded"),
             ("High risk (Art. 34)", "yes" if assessment.get("high_risk") else "no"),
             ("Decided by", " ".join(filter(None, (decided_by.get("name"),
                                                   f"({decided_by['id']})" if decided_by.get("id") else None)))
              or "not recorded"),
             ("Decided at", _stamp(assessment.get("decided_at")))]
    parts.append("<dl class='facts'>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows) + "</dl>")
    if incident.unassessed:
        parts.append(f"<div class='clock due'><strong>Assess again:</strong> {len(incident.unassessed)} finding(s) "
                     "came after this assessment, which did not weigh them: "
                     f"{e(', '.join(r.key for r in incident.unassessed[:10]))}.</div>")
    if assessment.get("high_risk"):
        informed = assessment.get("data_subjects_informed_at")
        line = (f"the people concerned were informed at {_stamp(informed)}." if informed else
                "no record yet that the people concerned were informed.")
        parts.append(f"<div class='clock {'stopped' if informed else 'due'}'><strong>Article 34: high risk.</strong> "
                     f"The people concerned must be informed without undue delay: {e(line)}</div>")
    return "".join(parts)


def _hours(hours: float) -> str:
    return f"{hours:.1f} h"


# ---------------------------------------------------------------------------- waiting, timeline


def _waiting(incident) -> str:
    waiting = list(incident.waiting)
    if not waiting:
        return "<p>Nothing waits for a person.</p>"
    return _table(("Action", "On", "Waits for", "Since", "Decision"), [
        (_c(w.get("action")), _resource(w.get("target") or ""), f"<strong>{e(w.get('waits_for'))}</strong>",
         _time(w.get("since")), _c(w.get("decision"))) for w in waiting], widths=(18, 28, 14, 14, 26)) + "".join(
        _impact(record) for record in incident.decisions
        if record.impact_preview and record.key in {w.get("decision") for w in waiting})


def _marked(caller: dict) -> str:
    """Which of the callers a held action breaks is the leak, and which the allowed networks."""
    if caller.get("named_by_finding"):
        return "<br><strong class='note'>the caller the finding names</strong>"
    return "<br><span class='note'>inside CONTAINMENT_ALLOWED_CIDRS</span>" if caller.get("allowed_network") else ""


def _impact(record) -> str:
    """Who the held actions of a decision would break, as its impact preview found them in the logs."""
    preview = record.impact_preview
    parts = [f"<h3>Who it would break: decision <code>{_breaks(record.key)}</code></h3>"
             f"<p class='note'>Impact preview from StorageBlobLogs, {e(_stamp(preview.get('since')))} to "
             f"{e(_stamp(preview.get('until')))} ({e(preview.get('days'))} days), computed when the actions were "
             f"held; {e(preview.get('digest'))}.</p>"]
    for step in preview.get("steps") or []:
        said = step.get("uses") if step.get("uses") else impact.in_words(step).removeprefix(f"{step.get('action')}: ")
        parts.append(f"<p><code>{_breaks(step.get('action'))}</code> on {_resource(step.get('target') or '')}: "
                     f"{e(said)}</p>")
        for label, group in (("Refused" if step.get("action") == "lock_account_network" else "Breaks", step),
                             ("Undetermined", step.get("undetermined") or {})):
            callers = group.get("callers") or []
            if not callers:
                continue
            requests = group.get("requests", 0)
            total = (f"{label}: {group.get('caller_count', 0):,} caller(s), {requests:,} blob request"
                     f"{'' if requests == 1 else 's'}, last {_stamp(group.get('last_use'))}")
            rows = [(_caller_cell(c.get("caller"), [c.get("address")], "") + _marked(c),
                     e(c.get("credential")), e(", ".join(c.get("user_agents") or [])), _n(c.get("requests")),
                     _time(c.get("first_use")), _time(c.get("last_use"))) for c in callers]
            parts.append(_keep(f"<p class='note'>{e(total)}</p>" + _table(
                ("Caller", "Credential", "Client", "Requests", "First use", "Last use"), rows,
                widths=(20, 24, 16, 10, 15, 15), numeric=(3,)), len(rows)))
        if step.get("status") == "previewed" and step.get("rules") is not None:
            parts.append(_table(("Source container", "Destination container", "Prefixes"), [
                (_c(r.get("source_container")), _c(r.get("destination_container")),
                 e(", ".join(r.get("prefix_match") or []) or "every blob")) for r in step["rules"]],
                widths=(35, 35, 30)))
        if step.get("status") == "previewed" and not step.get("caller_count") and step.get("rules") is None:
            parts.append("<p class='note'>No caller used it in the blob requests logged in these days.</p>")
        if step.get("status") == "previewed" and step.get("note"):
            parts.append(f"<p class='note'>{e(step['note'])}</p>")
    return "".join(parts)


def _timeline(incident) -> str:
    rows = []
    for record in incident.decisions:
        operator = record.operation in OPERATOR_OPERATIONS or record.key.startswith("second-")
        who = record.actor.get("name") or record.actor.get("object_id") or record.actor.get("app_id")
        held = [a["action"] for a in record.awaiting_approval]
        actions = ", ".join(record.actions) if record.outcome != "pending-approval" else ""
        if held:
            actions += f"{'; ' if actions else ''}held for a person: {', '.join(held)}"
        what = (f"{e(_what(record))}: <span class='outcome {e(record.outcome)}'>{e(record.outcome)}</span>"
                f"<br>{_resource(record.resource_id)}")
        rows.append((_time(record.decided_at), what, _code_words(actions),
                     _breaks("" if operator else (who or _callers(record) or "not known")),
                     _breaks(who if operator else "the app"), e(record.reason)))
    return (_table(("Decided at", "What, outcome, resource", "Actions", "Caused by", "Decided by", "Why"), rows,
                   widths=(11, 20, 15, 13, 14, 27)) +
            "<p class='note'>Caused by: who made the change or read the data. Decided by: the person who approved, "
            "denied, released or assessed, or the app when it decided alone.</p>")


def _what(record) -> str:
    operation = record.operation or ""
    if operation == "approval" and "." in record.key:
        return record.key.rsplit(".", 1)[1]  # approved, denied, expired
    if operation == "egress_scan":
        return "egress scan"
    if "/" in operation:
        return "change: " + "/".join(operation.split("/")[-2:])
    return operation or "decision"


def _callers(record) -> str:
    names = [c.get("Caller") for f in record.findings for c in (f.get("evidence") or {}).get("callers") or []
             if isinstance(c, dict) and c.get("Caller")]
    unique = list(dict.fromkeys(str(n) for n in names))
    return ", ".join(unique[:3]) + (f" and {len(unique) - 3} more" if len(unique) > 3 else "")


# ---------------------------------------------------------------------------- evidence, states


def _evidence(incident) -> str:
    parts, shown = [], set()
    for record in incident.decisions:
        for finding in record.findings:
            key = (finding.get("rule"), finding.get("summary"))
            if key in shown:
                continue  # an approval or release carries the findings it settles
            shown.add(key)
            evidence = finding.get("evidence") or {}
            full = (record.full_evidence or {}).get(evidence.get("digest") or "")
            severity = e(finding.get("severity"))
            parts.append(f"<article class='finding{_keep_class(evidence, full)}'><h3><code>"
                         f"{_breaks(finding.get('rule'))}</code> <span class='severity {severity}'>{severity}</span>"
                         f"</h3><p>{_breaks(finding.get('summary'))}</p><p class='note'>Decision "
                         f"<code>{e(record.key)}</code>, {e(_stamp(record.decided_at))}</p>")
            parts.append(_evidence_tables(evidence, full))
            parts.append(_raw("Raw evidence (JSON)", evidence))
            if full:
                parts.append(_raw(f"Full evidence (JSON, {evidence.get('digest')})", full))
            parts.append("</article>")
    return "".join(parts) or "<p>No findings.</p>"


def _keep_class(evidence: dict, full: dict | None) -> str:
    """A finding with a short evidence table is kept on one printed page."""
    callers = (full or {}).get("callers") or evidence.get("callers") or []
    return " keep" if isinstance(callers, list) and len(callers) <= 12 else ""


def _evidence_tables(evidence: dict, full: dict | None) -> str:
    callers = (full or {}).get("callers") if isinstance((full or {}).get("callers"), list) else evidence.get("callers")
    if isinstance(callers, list) and callers and all(isinstance(c, dict) for c in callers):
        parts = [_window_line(evidence)]
        ranked = sorted(callers, key=lambda c: (-(_num(c.get("Bytes"))), -(_num(c.get("Requests")))))
        parts.append(_table(("Caller", "Authentication", "Blobs", "Bytes", "Requests", "First read", "Last read"), [
            (_caller_cell(c.get("Caller"), c.get("Addresses") or [], ""),
             e(", ".join(map(str, c.get("AuthenticationTypes") or []))), _n(c.get("Blobs")),
             e(human_size(_num(c.get("Bytes")))) if c.get("Bytes") is not None else "", _n(c.get("Requests")),
             _time(c.get("FirstRead")), _time(c.get("LastRead"))) for c in ranked[:TOP_ROWS]],
            widths=(18, 17, 8, 11, 11, 17.5, 17.5), numeric=(2, 3, 4)))
        parts.append(_more(len(callers), "callers"))
        objects = evidence.get("sampled_objects")
        if isinstance(objects, list) and objects:
            parts.append(_table(("Sampled object", "Callers"), [
                (_c(o.get("object")), _n(o.get("callers"))) for o in objects if isinstance(o, dict)],
                widths=(85, 15), numeric=(1,)))
        return "".join(parts)
    return _pairs(evidence) if evidence else ""


def _window_line(evidence: dict) -> str:
    """An egress finding's counts and window in one line (the callers table follows)."""
    bits = []
    if evidence.get("start") or evidence.get("end"):
        bits.append(f"scan window {_stamp(evidence.get('start'))} to {_stamp(evidence.get('end'))}")
    for name, label in (("caller_count", "caller"), ("requests", "request")):
        if isinstance(evidence.get(name), (int, float)):
            bits.append(f"{evidence[name]:,} {label}{'' if evidence[name] == 1 else 's'}")
    if isinstance(evidence.get("bytes"), (int, float)):
        bits.append(f"{human_size(evidence['bytes'])} ({evidence['bytes']:,} bytes)")
    if evidence.get("digest"):
        bits.append(f"full evidence {evidence['digest']}")
    others = {k: v for k, v in evidence.items() if k not in ("callers", "sampled_objects", "start", "end",
                                                             "caller_count", "requests", "bytes", "digest")}
    return f"<p class='note'>{e('; '.join(bits))}.</p>" + (_pairs(others) if others else "")


def _pairs(values: dict) -> str:
    return _table(("Field", "Value"), [(_c(k), e(_flat(v))) for k, v in values.items()], widths=(28, 72))


def _flat(value) -> str:
    if isinstance(value, list) and all(not isinstance(v, (list, dict)) for v in value):
        return ", ".join(map(str, value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def _raw(label: str, value) -> str:
    return (f"<details class='raw'><summary>{e(label)}</summary><pre>"
            f"{e(json.dumps(value, indent=2, default=str))}</pre></details>")


def _states(incident) -> str:
    parts = []
    for record in incident.decisions:
        for label, states in (("before", record.before), ("after", record.after)):
            for resource_id, body in (states or {}).items():
                shown = "(deleted)" if body is None else json.dumps(body, indent=2, default=str)
                parts.append(f"<details class='raw state'><summary><code>{e(record.key)}</code>: {e(label)}, "
                             f"<code>{e(short(resource_id))}</code></summary><pre>{e(shown)}</pre></details>")
    return "".join(parts) or "<p>No states recorded.</p>"


# ---------------------------------------------------------------------------- small parts


def _table(headers, rows, widths=None, numeric=(), marked=()) -> str:
    """A table with a header that repeats on each printed page. Cells are markup the caller
    escaped; headers are escaped here."""
    cols = "".join(f"<col style='width:{w}%'>" for w in widths) if widths else ""
    head = "".join(f"<th{' class=num' if i in numeric else ''}>{e(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        f"<tr{' class=marked' if r in marked else ''}>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for r, row in enumerate(rows))
    return f"<table><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _more(count: int, what: str) -> str:
    if count <= TOP_ROWS:
        return ""
    return f"<p class='note'>The first {TOP_ROWS} of {count:,} {e(what)}; all of them are in the raw evidence.</p>"


def _keep(markup: str, rows: int) -> str:
    """A heading, its note and a short table kept on one printed page."""
    return f"<div class='keep'>{markup}</div>" if rows <= 12 else markup


def _breaks(value) -> str:
    """Escaped, with line-break opportunities after _ / . - : so identifiers wrap at their joints."""
    text = e(value)
    for joint in ("_", "/", ".", "-", ":"):
        text = text.replace(joint, joint + "<wbr>")
    return text


def _code_words(text) -> str:
    return f"<span class='ids'>{_breaks(text)}</span>" if text else ""


def _resource(resource_id: str) -> str:
    return f"<code title='{e(resource_id)}'>{_breaks(short(resource_id))}</code>" if resource_id else ""


def _caller_cell(caller, addresses: list, kind: str) -> str:
    """A caller, with the addresses it came from where they are not the caller itself."""
    other = [str(a) for a in addresses if str(a) != str(caller)]
    label = "object ID " if kind == "object id" else ""
    cell = f"{e(label)}<code>{_breaks(caller)}</code>"
    if other:
        cell += f"<br><span class='note'>from {e(', '.join(other))}</span>"
    return cell


def _time(value) -> str:
    """A time cell: the date and the time each kept whole."""
    stamp = _stamp(value)
    if " " not in stamp:
        return e(stamp)
    day, clock = stamp.split(" ", 1)
    return f"<span class='nw'>{e(day)}</span> <span class='nw'>{e(clock)}</span>"


def _c(value) -> str:
    return f"<code>{_breaks(value)}</code>" if value not in (None, "") else ""


def _n(value) -> str:
    return e(f"{value:,}") if isinstance(value, (int, float)) and not isinstance(value, bool) else e(value)


def _num(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _stamp(value) -> str:
    """One time format for the whole page: 2026-11-24 14:15:00 UTC."""
    when = leaks.moment(value)
    if when is None:
        return "" if value is None else str(value)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


STYLE = """
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--soft:#f6f8fa}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1120px;
padding:0 1.2rem;color:var(--ink);line-height:1.45;font-size:15px}
h1{font-size:1.45rem;margin:.1rem 0}h1 code{font-size:1.2rem}
h2{font-size:1.2rem;margin:2.2rem 0 .6rem;border-bottom:2px solid var(--ink);padding-bottom:.25rem}
h3{font-size:1rem;margin:1.3rem 0 .4rem}
.kicker{text-transform:uppercase;letter-spacing:.06em;font-size:.75rem;color:var(--muted);margin:0}
.subtitle{font-size:1.1rem;margin:.1rem 0 .8rem;color:var(--muted)}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1.2rem;margin:.6rem 0}
.facts dt{font-weight:600}.facts dd{margin:0}
ul.plain{list-style:none;margin:0;padding:0}
.lede{border-left:4px solid var(--ink);padding:.2rem 0 .2rem 1rem;margin:.6rem 0 1rem;font-size:1.05rem}
.lede p{margin:.45rem 0}
.clock{padding:.7rem 1rem;border-radius:6px;margin:1rem 0;border:1px solid}
.clock.overdue,.clock.due{background:#ffebe9;border-color:#cf222e}
.clock.running{background:#fff8c5;border-color:#bf8700}
.clock.stopped{background:#dafbe1;border-color:#1a7f37}
.clock.none{background:var(--soft);border-color:var(--muted)}
.decides{background:var(--soft);border:1px dashed var(--muted);padding:.5rem .8rem;border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:.88em;table-layout:fixed;margin:.4rem 0 .8rem}
th,td{border:1px solid var(--line);padding:.3rem .45rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.marked td{background:#fff1e5}
ul.why{margin:0;padding-left:1.1rem}
.totals{font-weight:600}
.note{color:var(--muted);font-size:.88em;margin:.3rem 0}
.outcome{font-weight:600}.contained{color:#1a7f37}.failed,.pending-approval{color:#cf222e}
.would-contain,.reported,.exempt{color:#9a6700}
.severity{font-size:.75rem;text-transform:uppercase;border:1px solid;border-radius:4px;padding:0 .3rem;
margin-left:.4rem;vertical-align:middle}
.severity.critical,.severity.high{color:#cf222e}.severity.medium{color:#9a6700}
.finding{border-top:1px solid var(--line);padding-top:.3rem}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.82em}
pre{background:var(--soft);padding:.6rem;overflow:auto;max-height:26rem;white-space:pre-wrap;overflow-wrap:anywhere}
details{margin:.3rem 0}summary{cursor:pointer;color:var(--muted)}
footer{margin-top:2.5rem;color:var(--muted);font-size:.8rem;border-top:1px solid var(--line);padding-top:.5rem}
.print-only{display:none}
.nw{white-space:nowrap}
.keep{break-inside:avoid;page-break-inside:avoid}
@page{size:A4;margin:14mm 12mm 16mm}
@media print{
body{max-width:none;margin:0;padding:0;font-size:9.5pt;line-height:1.35}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
h1{font-size:15pt}h2{font-size:12pt;margin-top:1.2rem}h3{font-size:10.5pt}
h2,h3,.decides{break-after:avoid;page-break-after:avoid}
footer{margin-top:1rem}
table{font-size:8pt;break-inside:auto}
thead{display:table-header-group}
tr,.clock,.lede p,.decides,.facts{break-inside:avoid;page-break-inside:avoid}
details.raw,#states details{display:none}
#states::after{content:"Left out of the printed copy: open the HTML file.";color:#57606a;font-size:8.5pt}
.print-only{display:block}
.lede{font-size:10.5pt}
}
"""
