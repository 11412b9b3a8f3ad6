"""A failure that repeats is one record, counted beside it: whatever the instances, whatever
the request IDs and times in the error. Real Azurite, the real
Table clients, the egress scan as the timer runs it."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from containment.core import clock

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def at(app):
    """Set the app's clock (and put it back afterwards)."""
    yield lambda moment: clock.set_source(lambda: moment)
    clock.set_source(None)


def test_instances_that_see_the_same_failure_at_once_write_one_record_and_each_counts(app, emulator, at):
    from containment.adapters.runtime import Runtime
    from containment.detect.egress_scan import run_egress_scan

    instances = [Runtime(app.runtime.settings) for _ in range(6)]  # no workspace set
    for instance in instances:
        assert instance.ledger  # opened before the race: the race is the scan's, not the table's creation
    at(NOW)
    start, written, errors = threading.Barrier(len(instances)), [], []

    def scan(runtime):
        start.wait()
        try:
            written.extend(run_egress_scan(runtime))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=scan, args=(instance,)) for instance in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
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

