"""Incidents with the GDPR clock, and the evidence exported for auditors."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone

from containment.core.records import DecisionRecord
from tests.helpers import arm_bodies as b
from tests.helpers.events import CONTAINER_WRITE, write_event

ACCOUNT = b.storage_account()
PUBLIC = b.container(ACCOUNT["id"], "training", "Container")


def decision(key, at, outcome="contained", resource=PUBLIC["id"], operation=None, **fields):
    return DecisionRecord(**{"key": key, "resource_id": resource, "outcome": outcome, "mode": "enforce", "reason": "r",
                             "decided_at": at, "event_time": at, "operation": operation, **fields})


def run_the_incident(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE, time=now))
    app.drain()


def test_the_cli_exports_decisions_and_incidents_as_json_lines_and_csv(app, emulator, capsys):
    from containment.operate.cli import export_command

    run_the_incident(app, emulator)
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    assert export_command("decisions", since, None, "jsonl") == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["outcome"] == "contained"
    export_command("decisions", since, None, "csv")
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert (row["outcome"], row["actions"], row["actor"].split("; ")[0]) == (
        "contained", "make_container_private", "object_id=8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f")
    export_command("incidents", since, None, "jsonl")
    [incident] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert incident["status"] == "contained" and 71.9 < incident["gdpr_hours_left"] <= 72
    assert export_command("decisions", since - timedelta(days=3), since, "jsonl") == 0
    assert capsys.readouterr().out == ""  # nothing outside the range


def test_the_incident_report_is_a_self_contained_page_that_escapes_what_it_shows(app, emulator, tmp_path):
    from containment.operate.cli import incident_report_command
    from containment.record.export import incidents_between

    run_the_incident(app, emulator)
    [contained] = app.records()
    hostile = decision("hostile", datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"), outcome="reported",
                       reason="<script>alert(1)</script>", incident=contained.incident)
    app.runtime.ledger.write(hostile)
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    [incident] = incidents_between(app.runtime.ledger, since, datetime.now(timezone.utc) + timedelta(minutes=1))
    assert [r.key for r in incident.decisions][-1] == "hostile"
    out = tmp_path / "incident.html"
    assert incident_report_command(incident.id, out) == 0
    page = out.read_text()
    assert "Article 33: notify the supervisory authority by" in page and "Dana Analyst" in page
    assert "make_container_private" in page.replace("<wbr>", "")
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<link" not in page and "src=" not in page  # nothing loaded from anywhere
    assert incident_report_command("inc-none", out) == 1


SECOND_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def test_every_time_an_export_shows_is_utc_to_the_second_with_z(app, emulator, capsys):
    """Records keep their times as recorded (events' seven digits, the clock's microseconds),
    incidents compute theirs (+00:00): the exports show them all in one form."""
    from containment.operate.cli import export_command

    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    event_time = datetime.now(timezone.utc) - timedelta(minutes=1)
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE, time=event_time.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")))
    app.drain()
    [record] = app.records()
    assert len(record.event_time) == len("2026-11-24T10:00:05.123456Z")  # as recorded, kept so in the ledger
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    shown = {}
    for what, fmt in (("decisions", "jsonl"), ("decisions", "csv"), ("incidents", "jsonl"), ("incidents", "csv")):
        export_command(what, since, None, fmt)
        out = capsys.readouterr().out
        [row] = [json.loads(line) for line in out.splitlines()] if fmt == "jsonl" else list(
            csv.DictReader(io.StringIO(out)))
        shown[what, fmt] = row
    for (what, fmt), row in shown.items():
        times = ("decided_at", "event_time", "contained_at") if what == "decisions" else (
            "detected_at", "contained_at", "gdpr_deadline")
        assert all(SECOND_Z.fullmatch(row[name]) for name in times), (what, fmt, row)
    assert shown["decisions", "jsonl"]["event_time"] == event_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert shown["incidents", "jsonl"]["detected_at"] == shown["decisions", "csv"]["event_time"]
    # The evidence inside a record is as ARM and the app wrote it.
    assert shown["decisions", "jsonl"]["before"] == record.before


def test_times_are_cut_to_the_second_and_nothing_else_is_taken_for_a_time():
    from containment.record.export import as_jsonl, timestamp

    assert timestamp("2026-11-24T10:00:05.9999999Z") == "2026-11-24T10:00:05Z"  # cut: --since it includes it
    assert timestamp("2026-11-24T11:00:05.5+01:00") == timestamp(datetime(2026, 11, 24, 10, 0, 5, tzinfo=timezone.utc))
    row = {"key": "egress-20261124T1400-754c", "reason": "public since 2026-11-24T10:00:05Z", "event_id": "20261124T1400",
           "decided_at": "2026-11-24T10:00:05.000000Z", "findings": [{"first_read": "2026-11-24T10:00:05.000000Z"}],
           "before": {"x": {"properties": {"creationTime": "2026-11-20T08:00:00.1234567Z"}}},
           "assessment": {"notified_at": "2026-11-24T12:00:00+00:00"}, "waiting": [{"since": "2026-11-24T10:00:05Z"}]}
    assert json.loads(as_jsonl([row])) == {**row, "decided_at": "2026-11-24T10:00:05Z",  # evidence as written
                                           "assessment": {"notified_at": "2026-11-24T12:00:00Z"}}
