"""Storage exposure end to end, through the function entry points as the host invokes them,
against the ARM emulator and Azurite."""
from __future__ import annotations

from functools import partial

import pytest

from tests.helpers import arm_bodies as b
from tests.helpers.concurrency import at_once
from tests.helpers.events import ACCOUNT_WRITE, CONTAINER_WRITE, SELF, write_event

ACCOUNT = b.storage_account()
PUBLIC = b.container(ACCOUNT["id"], "training", "Container")
PRIVATE = b.container(ACCOUNT["id"], "eval")


def container_access(emulator, container=PUBLIC) -> str:
    return emulator.arm.get(container["id"])["properties"]["publicAccess"]


def test_enforce_makes_a_public_container_private_and_records_the_evidence(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC, PRIVATE])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    event = write_event(PUBLIC["id"], CONTAINER_WRITE)

    app.deliver(event)
    assert container_access(emulator) == "Container"  # detection never writes: only the queue function does
    app.drain()

    assert container_access(emulator) == "None"
    [record] = app.records()
    assert record.outcome == "contained"
    assert record.event_id == event["id"]
    assert record.resource_id == PUBLIC["id"]  # as ARM spells it, not the event's 'resourcegroups'
    assert record.actions == ["make_container_private"]
    assert record.rules == ["storage_container_public_access"] and record.severity == "high"
    assert record.actor["object_id"] == "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f"
    assert record.before[PUBLIC["id"]]["properties"]["publicAccess"] == "Container"
    assert record.before[ACCOUNT["id"]]["tags"] == ACCOUNT["tags"]  # whose data: the incident's privacy context
    assert record.after[PUBLIC["id"]]["properties"]["publicAccess"] == "None"
    assert record.event_time.startswith("2026-11-24T10:00:00.123456") and record.decided_at and record.contained_at
    assert [(w.method, w.url.split("?")[0].rsplit("/", 1)[1]) for w in app.writes()] == [("PATCH", "training")]


def test_dry_run_records_would_contain_and_changes_nothing(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="dry-run")
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    app.drain()

    [record] = app.records()
    assert (record.outcome, record.mode, record.actions) == ("would-contain", "dry-run", ["make_container_private"])
    assert container_access(emulator) == "Container"
    assert app.writes() == []


def test_dry_run_is_the_default_mode(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    assert [r.outcome for r in app.records()] == ["would-contain"]


def test_a_redelivered_event_leads_to_one_record_and_one_write(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    event = write_event(PUBLIC["id"], CONTAINER_WRITE)
    for _ in range(3):
        app.deliver(event)
        app.drain()
    assert [r.outcome for r in app.records()] == ["contained"]
    assert len(app.writes()) == 1


def test_two_concurrent_deliveries_act_once(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    event = write_event(PUBLIC["id"], CONTAINER_WRITE)
    runtime = app.runtime  # one process, two invocations at once, as two worker threads would
    invocations = at_once(partial(app.deliver, event), partial(app.deliver, event))
    assert [i.error for run in invocations for i in run if i.error] == [] and runtime is app.runtime
    app.drain()
    assert [r.outcome for r in app.records()] == ["contained"]
    assert len(app.writes()) == 1


def test_the_apps_own_change_is_ignored_without_reading_anything(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SELF_PRINCIPAL_ID=SELF)
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE, actor=SELF))
    app.drain()
    [record] = app.records()
    assert record.outcome == "ignored" and "own identity" in record.reason
    assert emulator.traffic == []


def test_a_foreign_subscription_is_rejected_and_never_read(app, emulator):
    foreign = b.storage_account("synthforeign", subscription=b.OTHER_SUBSCRIPTION, allowBlobPublicAccess=True)
    emulator.seed([foreign])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    app.deliver(write_event(foreign["id"], ACCOUNT_WRITE, subscription=b.OTHER_SUBSCRIPTION))
    app.drain()
    [record] = app.records()
    assert record.outcome == "rejected" and "CONTAINMENT_SUBSCRIPTIONS" in record.reason
    assert emulator.traffic == []
    assert emulator.arm.get(foreign["id"])["properties"]["allowBlobPublicAccess"] is True


def test_a_malformed_event_is_rejected_and_the_good_ones_around_it_are_handled(app, emulator):
    other_public = b.container(ACCOUNT["id"], "eval", "Blob")
    emulator.seed([ACCOUNT, PUBLIC, other_public])
    app.configure(CONTAINMENT_MODE="enforce")
    bad = write_event(PUBLIC["id"], CONTAINER_WRITE)
    bad["subject"] = bad["data"]["resourceUri"] = "/subscriptions/../../etc/passwd"
    wrong_type = write_event(PUBLIC["id"], CONTAINER_WRITE)
    wrong_type["data"]["resourceUri"] = wrong_type["subject"] = 42
    for event in (write_event(PUBLIC["id"], CONTAINER_WRITE), bad, wrong_type,
                  write_event(other_public["id"], CONTAINER_WRITE)):
        assert all(i.error is None for i in app.deliver(event))
        app.drain()
    outcomes = {(r.event_id, r.outcome) for r in app.records()}
    assert (bad["id"], "rejected") in outcomes and (wrong_type["id"], "rejected") in outcomes
    assert [r.outcome for r in app.records()].count("contained") == 2
    rejected = next(r for r in app.records() if r.event_id == bad["id"])
    assert "not a well-formed ARM resource ID" in rejected.reason
    assert container_access(emulator, other_public) == "None"


def test_a_cloudevent_is_accepted_like_an_event_grid_event(app, emulator):
    import json

    import azure.functions as func
    from azure.functions.eventgrid import EventGridEventInConverter

    from containment.detect.storage import on_storage_write

    emulator.seed([ACCOUNT, PUBLIC])
    event = write_event(PUBLIC["id"], CONTAINER_WRITE)
    cloud = {"specversion": "1.0", "id": event["id"], "source": event["topic"], "subject": event["subject"],
             "type": event["eventType"], "time": event["eventTime"], "data": event["data"]}
    decoded = EventGridEventInConverter.decode(func.meta.Datum(json.dumps(cloud), "json"), trigger_metadata={})
    assert isinstance(decoded, func.CloudEvent)
    on_storage_write(decoded)
    assert [r.outcome for r in app.records()] == ["would-contain"]


def test_a_protected_account_that_loses_its_tag_is_a_finding(app, emulator):
    untagged = b.storage_account(tags={"team": "ml"}, allowBlobPublicAccess=False)
    emulator.seed([untagged])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_PROTECTED_SCOPES=b.RG_ID)
    app.deliver(write_event(untagged["id"], ACCOUNT_WRITE))
    [record] = app.records()
    assert record.outcome == "reported"
    assert record.rules == ["storage_scope_tag_removed"]


def test_an_untagged_account_outside_protected_scopes_is_ignored(app, emulator):
    scratch = b.storage_account("scratch01", tags={}, allowBlobPublicAccess=True)
    emulator.seed([scratch])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(scratch["id"], ACCOUNT_WRITE))
    app.drain()
    [record] = app.records()
    assert record.outcome == "ignored" and "not synthetic data" in record.reason
    assert app.writes() == []


def test_a_resource_that_no_longer_exists_is_ignored(app, emulator):
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    [record] = app.records()
    assert record.outcome == "ignored" and "no longer exists" in record.reason


def test_an_account_write_judges_the_account_and_its_containers(app, emulator):
    opened = b.storage_account(allowBlobPublicAccess=True, allowSharedKeyAccess=True)
    emulator.seed([opened, b.container(opened["id"], "training", "Container"), PRIVATE])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(opened["id"], ACCOUNT_WRITE))
    app.drain()
    [record] = app.records()
    assert record.outcome == "contained"
    # The container too, through the one account write (fewest actions).
    assert record.actions == ["disable_blob_public_access"] and "storage_container_public_access" in record.rules
    assert "storage_shared_key_access_allowed" in record.rules  # found, reported, not contained by default
    assert "recorded only" in record.reason
    account = emulator.arm.get(opened["id"])["properties"]
    assert account["allowBlobPublicAccess"] is False and account["allowSharedKeyAccess"] is True


def test_ledger_answers_the_auditors_questions(app, emulator):
    from datetime import datetime

    emulator.seed([ACCOUNT, PUBLIC, PRIVATE])
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))
    app.deliver(write_event(PRIVATE["id"], CONTAINER_WRITE))
    ledger = app.runtime.ledger
    assert [r.outcome for r in ledger.for_resource(PUBLIC["id"].upper())] == ["would-contain"]
    today = datetime.fromisoformat(app.records()[0].decided_at.replace("Z", "+00:00"))
    assert sorted(r.outcome for r in ledger.for_day(today)) == ["compliant", "would-contain"]


def test_a_ledger_table_and_queue_deleted_by_hand_are_re_created_by_the_running_instance(app, emulator):
    """Someone deletes the table and the queue while the instance runs: it reads the lost
    table as empty, and its next writes re-create both (nothing waits for a recycle)."""
    emulator.seed([ACCOUNT, PUBLIC, PRIVATE])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(PRIVATE["id"], CONTAINER_WRITE))
    assert app.runtime.queue.get_queue_properties().approximate_message_count == 0  # the instance holds both
    settings, clients = app.runtime.settings, app.runtime.clients
    clients.table_service().delete_table(settings.ledger_table)
    clients.queue(settings.containment_queue).delete_queue()
    assert app.records() == [] and app.runtime.ledger.exemptions() == []
    app.deliver(write_event(PUBLIC["id"], CONTAINER_WRITE))  # claim, queue and record: all re-created
    app.drain()
    assert [(r.resource_id, r.outcome) for r in app.records()] == [(PUBLIC["id"], "contained")]


OWN_GROUP = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-containment"
OWN = b.storage_account("containmentapp01", group="rg-containment", allowBlobPublicAccess=True)
OWN_PUBLIC = b.container(OWN["id"], "ledger-export", "Container")


@pytest.mark.parametrize("mode", ["enforce", "dry-run"])
def test_an_exposure_of_the_apps_own_deployment_is_reported_and_notified_and_never_acted_on(app, emulator, mode):
    emulator.seed([OWN, OWN_PUBLIC])
    app.configure(CONTAINMENT_MODE=mode, CONTAINMENT_OWN_SCOPES=OWN_GROUP)
    event = write_event(OWN["id"], ACCOUNT_WRITE)
    app.deliver(event)
    assert app.runtime.ledger.get_claim(event["id"], OWN["id"]) is None  # nothing claimed...
    assert app.runtime.queue.get_queue_properties().approximate_message_count == 0  # ...nothing queued
    app.drain()
    [record] = app.records()
    assert (record.outcome, record.own_deployment, record.severity) == ("reported", True, "high")
    assert record.rules == ["storage_blob_public_access_allowed", "storage_container_public_access"]
    assert record.plan == record.actions == record.awaiting_approval == []
    assert record.reason.startswith("the app's own deployment (CONTAINMENT_OWN_SCOPES): reported, not acted on")
    assert "ledger and queue" in record.reason and "would have: " in record.reason
    assert app.writes() == []  # read to be judged, never written
    assert container_access(emulator, OWN_PUBLIC) == "Container"
    [notified] = emulator.notifications  # only a person will act on it: notified, not kept for the digest
    assert notified["type"] == "SyntheticDataContainment.Incident.detected"
    assert notified["subject"] == f"/incidents/{record.incident}" and notified["data"]["resource_id"] == OWN["id"]
    assert notified["data"]["own_deployment"] is True and notified["data"]["severity"] == "high"


def test_a_mild_finding_on_the_apps_own_deployment_is_still_high(app, emulator):
    own = b.storage_account("containmentapp01", group="rg-containment", allowSharedKeyAccess=True)
    emulator.seed([own])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_OWN_SCOPES=OWN_GROUP)
    app.deliver(write_event(own["id"], ACCOUNT_WRITE))
    [record] = app.records()
    assert (record.outcome, record.rules, record.severity) == ("reported", ["storage_shared_key_access_allowed"], "high")
    assert [f["severity"] for f in record.findings] == ["medium"]  # the finding itself says what the rule says


def test_the_apps_own_change_to_its_own_deployment_stays_ignored(app, emulator):
    emulator.seed([OWN, OWN_PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_OWN_SCOPES=OWN_GROUP, CONTAINMENT_SELF_PRINCIPAL_ID=SELF)
    app.deliver(write_event(OWN["id"], ACCOUNT_WRITE, actor=SELF))
    [record] = app.records()
    assert record.outcome == "ignored" and "own identity" in record.reason
    assert emulator.traffic == [] and emulator.notifications == []


def test_a_redelivery_while_the_containment_is_queued_leaves_the_record_to_the_worker(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    event = write_event(PUBLIC["id"], CONTAINER_WRITE)
    app.deliver(event)
    emulator.arm.resources[PUBLIC["id"].lower()]["properties"]["publicAccess"] = "None"  # as if the worker ran
    app.deliver(event)  # Event Grid delivers it again before the worker wrote its record
    assert app.records() == []
    app.drain()
    [record] = app.records()
    assert record.outcome == "contained" and record.reason.endswith("(already contained when the request ran)")


def test_an_account_opened_with_20_public_containers_is_contained_by_one_write(app, emulator):
    """The issue's account: 21 findings, within a limit of 20 actions an hour. One account
    write contains them all, so the budget is not the reason it stays open."""
    opened = b.storage_account(allowBlobPublicAccess=True)
    containers = [b.container(opened["id"], f"shard{n:02}", "Container") for n in range(20)]
    emulator.seed([opened, *containers])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(opened["id"], ACCOUNT_WRITE))
    app.drain()
    [record] = app.records()
    assert record.outcome == "contained" and len(record.findings) == 21
    assert record.actions == ["disable_blob_public_access"]
    assert [(w.method, w.url.split("?")[0].rsplit("/", 1)[1]) for w in app.writes()] == [("PATCH", "synthtrain01")]
    assert emulator.arm.get(opened["id"])["properties"]["allowBlobPublicAccess"] is False


def arm_reads(emulator) -> list[str]:
    """The ARM reads sent so far, by path (a list is its collection's path)."""
    return [x.url.split("?")[0].split("/subscriptions/", 1)[1].lower() for x in emulator.traffic if x.method == "GET"]


def test_a_storm_on_one_accounts_containers_is_judged_from_one_listing(app, emulator):
    """The first container event reads its container; the next, finding the account read
    already (after its event), lists the account's containers once; every later event is
    answered by what was listed. Each container is still judged and contained by itself."""
    containers = [b.container(ACCOUNT["id"], f"shard{n:02}", "Container") for n in range(8)]
    emulator.seed([ACCOUNT, *containers])
    app.configure(CONTAINMENT_MODE="enforce")
    for container in containers:
        app.deliver(write_event(container["id"], CONTAINER_WRITE))
    reads = arm_reads(emulator)
    listing = ACCOUNT["id"].split("/subscriptions/", 1)[1].lower() + "/blobservices/default/containers"
    assert reads.count(listing) == 1
    assert [read for read in reads if read.startswith(listing + "/")] == [
        containers[0]["id"].split("/subscriptions/", 1)[1].lower()]
    assert len(reads) == 3  # the account, the first container, the listing
    app.drain()
    assert {r.outcome for r in app.records()} == {"contained"} and len(app.records()) == 8
    assert all(container_access(emulator, container) == "None" for container in containers)


def test_a_lone_container_event_reads_its_container_and_an_event_newer_than_the_listing_reads_again(app, emulator):
    import time

    from containment.core import clock

    containers = [b.container(ACCOUNT["id"], f"shard{n:02}", "Container") for n in range(3)]
    emulator.seed([ACCOUNT, *containers])
    app.deliver(write_event(containers[0]["id"], CONTAINER_WRITE))
    assert sum(1 for read in arm_reads(emulator) if read.endswith("/containers")) == 0  # no listing for one event
    app.deliver(write_event(containers[1]["id"], CONTAINER_WRITE))
    assert sum(1 for read in arm_reads(emulator) if read.endswith("/containers")) == 1
    # An event that happened after the listing was sent: what it reports may not show in it.
    later = clock.iso(clock.now()).replace("+00:00", "Z")
    time.sleep(0.01)
    app.deliver(write_event(containers[2]["id"], CONTAINER_WRITE, time=later))
    account, container = (read.rsplit("/", 1)[1] for read in sorted(arm_reads(emulator)[-2:]))
    assert (account, container) == ("synthtrain01", "shard02")  # read again, not listed again (no storm seen)
    assert sum(1 for read in arm_reads(emulator) if read.endswith("/containers")) == 1
    assert len(app.records()) == 3


def test_an_accounts_events_list_its_containers_once_and_its_container_events_need_no_call(app, emulator):
    opened = b.storage_account(allowBlobPublicAccess=True)
    containers = [b.container(opened["id"], f"shard{n:02}", "Container") for n in range(3)]
    emulator.seed([opened, *containers])
    app.configure(CONTAINMENT_MODE="dry-run")
    for _ in range(3):
        app.deliver(write_event(opened["id"], ACCOUNT_WRITE))
    for container in containers:
        app.deliver(write_event(container["id"], CONTAINER_WRITE))
    assert [read.rsplit("/", 1)[1] for read in arm_reads(emulator)] == ["synthtrain01", "containers"]
    assert len(app.records()) == 6 and {r.outcome for r in app.records()} == {"would-contain"}
