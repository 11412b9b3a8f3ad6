"""The operator's command line over the ledger (see `python -m containment --help`)."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from containment.adapters.runtime import current
from containment.core import clock
from containment.operate import controls
from containment.record import export


def _range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or clock.now()
    return since or until - timedelta(days=7), until


def export_command(what: str, since: datetime | None, until: datetime | None, fmt: str) -> int:
    runtime = current()
    start, end = _range(since, until)
    if what == "decisions":
        records = export.decisions_between(runtime.ledger, start, end)
        sys.stdout.write(export.as_jsonl([r.as_output() for r in records]) if fmt == "jsonl"
                         else export.decisions_csv(records))
    else:
        window = timedelta(hours=runtime.settings.incident_window_hours)
        summaries = [i.summary(clock.now()) for i in export.incidents_between(runtime.ledger, start, end, window)]
        sys.stdout.write(export.as_jsonl(summaries) if fmt == "jsonl" else export.incidents_csv(summaries))
    return 0


def incident_report_command(incident_id: str, since: datetime | None, until: datetime | None, out: Path) -> int:
    runtime = current()
    start, end = _range(since, until)
    window = timedelta(hours=runtime.settings.incident_window_hours)
    found = [i for i in export.incidents_between(runtime.ledger, start, end, window) if i.id == incident_id]
    if not found:
        print(f"no incident {incident_id} between {start.isoformat()} and {end.isoformat()}", file=sys.stderr)
        return 1
    out.write_text(export.incident_html(found[0], clock.now()))
    print(f"incident report: {out}", file=sys.stderr)
    return 0


def exemptions_command() -> int:
    """List the exemptions. Changing them is the HTTP API's alone: it knows who asks."""
    _, body = controls.list_exemptions(current())
    print(json.dumps(body, indent=2))
    return 0
