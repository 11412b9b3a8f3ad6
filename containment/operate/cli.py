"""The operator's command line over the ledger (see `python -m containment --help`)."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from containment.adapters.runtime import Runtime, current
from containment.core import clock
from containment.operate import controls
from containment.record import export, repeats
from containment.record.verify import verify

# The ledgers a command reads, by name: in the demo ledger (`make demo`) one per scenario, by
# scenario; otherwise (None) the one the settings name.
Ledgers = dict[str, Runtime]


def _read(ledgers: Ledgers | None) -> Ledgers:
    return ledgers if ledgers is not None else {"": current()}


def _range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or clock.now()
    return since or until - timedelta(days=7), until


def export_command(what: str, since: datetime | None, until: datetime | None, fmt: str,
                   ledgers: Ledgers | None = None) -> int:
    runtimes = _read(ledgers).values()
    start, end = _range(since, until)
    if what == "decisions":
        rows = [row for runtime in runtimes
                for row in repeats.exported(runtime.ledger, export.decisions_between(runtime.ledger, start, end))]
        sys.stdout.write(export.as_jsonl(rows) if fmt == "jsonl" else export.decisions_csv(rows))
    else:
        summaries = [i.summary(clock.now()) for runtime in runtimes
                     for i in export.incidents_between(runtime.ledger, start, end)]
        sys.stdout.write(export.as_jsonl(summaries) if fmt == "jsonl" else export.incidents_csv(summaries))
    return 0


def incident_report_command(incident_id: str, out: Path, ledgers: Ledgers | None = None) -> int:
    found = {name: incident for name, runtime in _read(ledgers).items()
             if (incident := export.read_incident(runtime.ledger, incident_id)) is not None}
    if not found:
        print(f"no incident {incident_id} in the ledger", file=sys.stderr)
        return 1
    if len(found) > 1:  # scenarios of the demo ledger that replay one incident in different ways
        print(f"incident {incident_id} is in the ledgers of {len(found)} scenarios: name one with --scenario "
              f"({', '.join(found)})", file=sys.stderr)
        return 2
    [incident] = found.values()
    out.write_text(export.incident_html(incident, clock.now()))
    merged = f" (merged into {incident.id})" if incident.id != incident_id else ""
    print(f"incident report{merged}: {out}", file=sys.stderr)
    return 0


CANARY_RULE = "egress_canary_read"


def canaries_command(since: datetime | None, until: datetime | None, ledgers: Ledgers | None = None) -> int:
    """Each canary of CONTAINMENT_CANARY_BLOBS, and whether and when it was last read, per
    the ledger's egress_canary_read findings decided in [since, until) (default: 90 days).
    Read-only. JSON Lines on standard output, one line per canary (per scenario in the demo ledger)."""
    until = until or clock.now()
    since = since or until - timedelta(days=90)
    lines = []
    for name, runtime in _read(ledgers).items():
        planted = runtime.settings.canary_blobs
        reads: dict[str, list[tuple[dict, str]]] = {canary: [] for canary in planted}
        for record in export.decisions_between(runtime.ledger, since, until) if planted else []:
            for finding in record.findings:
                if finding.get("rule") != CANARY_RULE:
                    continue
                evidence = finding.get("evidence") or {}
                full = (record.full_evidence or {}).get(evidence.get("digest") or "") or {}
                for read in full.get("reads") or evidence.get("reads") or []:
                    if isinstance(read, dict) and read.get("Canary") in reads:
                        reads[read["Canary"]].append((read, record.key))
        for canary in planted:
            found = sorted(reads[canary], key=lambda item: str(item[0].get("LastRead")))
            last, key = found[-1] if found else ({}, None)
            line = {"canary": canary, "read": bool(found), "last_read": last.get("LastRead"),
                    "last_caller": last.get("Caller"), "last_address": last.get("Address"),
                    "last_authentication": last.get("AuthenticationType"), "last_decision": key,
                    "decisions": len({k for _, k in found}), "since": clock.iso(since), "until": clock.iso(until)}
            lines.append({"scenario": name, **line} if name else line)
    sys.stdout.write("".join(json.dumps(line) + "\n" for line in lines))
    unread = sum(1 for line in lines if not line["read"])
    print(f"{len(lines)} canaries, {len(lines) - unread} read and {unread} not read from {clock.iso(since)} to "
          f"{clock.iso(until)}" if lines else "no canaries: CONTAINMENT_CANARY_BLOBS is empty", file=sys.stderr)
    return 0


def _one(ledgers: Ledgers | None) -> Runtime:
    [runtime] = _read(ledgers).values()  # of the demo ledger, the command line names one scenario for these
    return runtime


def exemptions_command(ledgers: Ledgers | None = None) -> int:
    """List the exemptions. Changing them is the HTTP API's alone: it knows who asks."""
    _, body = controls.list_exemptions(_one(ledgers))
    print(json.dumps(body, indent=2))
    return 0


def verify_command(first: datetime | None, last: datetime | None, ledgers: Ledgers | None = None) -> int:
    """Verify the days from `first` to `last` (UTC, both included): the report as JSON on
    standard output, the verdict on standard error; 1 when anything does not match."""
    last = last or clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    first = first or last - timedelta(days=6)
    if first > last:
        print(f"--from {first:%Y-%m-%d} is after --to {last:%Y-%m-%d}", file=sys.stderr)
        return 2
    result = verify(_one(ledgers).ledger, first, last + timedelta(days=1))
    print(json.dumps(result.as_dict(), indent=2))
    span = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    if result.mismatches:
        print(f"LEDGER DOES NOT VERIFY ({span}): {len(result.mismatches)} mismatches; the first: "
              f"{result.ordered()[0].sentence()}", file=sys.stderr)
        return 1
    print(f"ledger verified ({span}): {result.records} records in their chains, {len(result.digests)} digests"
          + (f"; not yet bounded by a digest: {', '.join(result.unbounded)}" if result.unbounded else ""),
          file=sys.stderr)
    return 0
