"""A failure that repeats is one record, counted beside it: whatever the instances, whatever
the request IDs and times in the error, and in what exports show. Real Azurite, the real
Table clients, the egress scan as the timer runs it."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from functools import partial

import pytest

from tests.helpers.concurrency import at_once

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def test_instances_that_see_the_same_failure_at_once_write_one_record_and_each_counts(app, emulator, moment):
    from containment.adapters.runtime import Runtime
    from containment.detect.egress_scan import run_egress_scan

    instances = [Runtime(app.runtime.settings) for _ in range(6)]  # no workspace set
    for instance in instances:
        assert instance.ledger  # opened before the race: the race is the scan's, not the table's creation
    moment(NOW)
    written = [r for run in at_once(*(partial(run_egress_scan, instance) for instance in instances)) for r in run]
    [failed] = app.records()
    assert [r.key for r in written] == [failed.key]
    assert app.runtime.ledger.repetition(failed.key).count == len(instances)
    assert [n["data"]["decision"] for n in emulator.notifications] == [failed.key]


def test_the_cause_leaves_out_request_ids_and_times(app):
    """Two real Azurite errors for the same missing entity differ in their request ID and
    time, and are one cause; another error is another cause."""
    from azure.core.exceptions import HttpResponseError

    from containment.core.records import describe_failure
    from containment.record.repeats import cause_of

    def error(call) -> str:
        with pytest.raises(HttpResponseError) as raised:
            call()
        return describe_failure(raised.value)

    table = app.runtime.ledger.table
    first, second = (error(lambda: table.get_entity("nothing", "here")) for _ in range(2))
    assert first != second and "RequestId:" in first
    assert cause_of(first) == cause_of(second)
    assert "ResourceNotFound" in cause_of(first) and "RequestId:" in cause_of(first)
    assert cause_of(error(lambda: table.create_entity({"PartitionKey": "bad", "RowKey": "a/b"}))) != cause_of(first)


def test_exports_show_how_often_a_failure_repeated_and_when_it_recovered(app, moment, capsys):
    from containment.detect.egress_scan import run_egress_scan
    from containment.operate.cli import export_command
    from containment.record.export import timestamp

    for minutes in (0, 5, 10):
        moment(NOW + timedelta(minutes=minutes))
        run_egress_scan(app.runtime)
    app.configure(CONTAINMENT_LOG_WORKSPACE_ID="4f1d3c2b-0a9e-4d8c-8b7a-6f5e4d3c2b1a")  # the emulator's logs answer
    moment(NOW + timedelta(minutes=15))
    run_egress_scan(app.runtime)
    since, until = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    assert export_command("decisions", since, until, "jsonl") == 0
    failed, works_again = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (failed["outcome"], failed["repeated"], failed["last_repeated_at"], failed["recovered_at"]) == (
        "failed", 3, timestamp(NOW + timedelta(minutes=10)), timestamp(NOW + timedelta(minutes=15)))
    assert works_again["key"] == f"{failed['key']}.recovered" and "repeated" not in works_again
    export_command("decisions", since, until, "csv")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["repeated"], r["recovered_at"]) for r in rows] == [("3", failed["recovered_at"]), ("", "")]
