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
