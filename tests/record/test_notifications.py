"""Every containment, pending approval, failure and release is published as a CloudEvent;
a topic that fails never stops containment, and the failure is kept."""
from __future__ import annotations

from tests.helpers import arm_bodies as b
from tests.helpers.events import CONTAINER_WRITE, write_event

ACCOUNT = b.storage_account()
PUBLIC = b.container(ACCOUNT["id"], "training", "Container")


def test_a_containment_is_published_as_a_cloudevent(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    app.drain()
    [event] = emulator.notifications
    assert event["type"] == "SyntheticDataContainment.Decision.contained"
    assert event["source"] == "/synthetic-data-containment" and event["subject"] == PUBLIC["id"]
    assert event["data"]["actions"] == ["make_container_private"] and event["id"] == app.records()[0].key + ".contained"


def test_dry_run_findings_are_not_published_but_a_held_decision_is(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    assert emulator.notifications == []
    grant = b.role_assignment(f"/subscriptions/{b.SUBSCRIPTION}", "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
                              b.CONTRIBUTOR, name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e05")
    emulator.seed([grant])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(grant["id"], "Microsoft.Authorization/roleAssignments/write"))
    assert [e["type"] for e in emulator.notifications] == ["SyntheticDataContainment.Decision.pending-approval"]


def test_a_failing_topic_never_stops_containment_and_the_failure_is_kept(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    emulator.faults.add("status", path="^/api/events$", status=500, retry_after=0, times=None)
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    app.drain()
    [record] = app.records()
    assert record.outcome == "contained" and emulator.arm.get(PUBLIC["id"])["properties"]["publicAccess"] == "None"
    [failure] = app.runtime.ledger.notification_failures()
    assert failure["decision"] == record.key and "500" in failure["reason"]
