"""Reliability: small event storms (bench/_harness.storm: accounts, containers, role
assignments and NSGs, each event delivered one to three times, out of order) while the
emulator injects what Azure does on its bad days, and while Azurite restarts.

Every test asserts outcomes, never timings. The invariants (`assert_invariants`):

- every distinct event ends with exactly one decision record;
- every offending resource ends contained in ARM, or has a `failed` record with a reason;
- no resource is written more than once (a write that ARM refused is not a write), and
  no compliant one at all;
- scope: nothing outside CONTAINMENT_SUBSCRIPTIONS is read or written, nothing under the
  app's own resource group (CONTAINMENT_OWN_SCOPES) is written, and nothing untagged is
  written; every ARM write belongs to an offending resource of the storm;
- the app's own exposed account and container are `reported` (at least high) and notified,
  never contained.

Each test records what it did (`record_property`: events, deliveries, faults fired,
records lost) in the JUnit XML, for the README's figures.
"""
from __future__ import annotations

import logging
from collections import Counter

import pytest

from bench._harness import STORM_SETTINGS, Storm, StormRun, run_storm, storm
from tests.helpers import arm_bodies as b
from tests.helpers.events import ACCOUNT_WRITE, CONTAINER_WRITE, write_event
from tests.helpers.traps import (FOREIGN, OWN_ACCOUNT, OWN_CONTAINER, OWN_GROUP, TRAPS, UNTAGGED,
                                 assert_scope_safe, effective_writes)

SETTINGS = {**STORM_SETTINGS, "CONTAINMENT_SUBSCRIPTIONS": b.SUBSCRIPTION, "CONTAINMENT_OWN_SCOPES": OWN_GROUP}
WRITES = ("PUT", "PATCH", "DELETE", "POST")
# Retry-After for injected errors: the SDK waits what ARM asks before its own exponential
# backoff (0, 1.6, 3.2 s), and a Retry-After of 0 counts as none; a hundredth of a second
# keeps the tests fast (ARM itself sends whole seconds: one plan below does too).
QUICK = 0.01


def trap_events() -> list[dict]:
    """One event about each trap, with fixed IDs, so a failure names them."""
    return [write_event(OWN_ACCOUNT["id"], ACCOUNT_WRITE, event_id="trap-own-account"),
            write_event(OWN_CONTAINER["id"], CONTAINER_WRITE, event_id="trap-own-container"),
            write_event(FOREIGN["id"], ACCOUNT_WRITE, event_id="trap-foreign", subscription=b.OTHER_SUBSCRIPTION),
            write_event(UNTAGGED["id"], ACCOUNT_WRITE, event_id="trap-untagged")]


def with_traps(deliveries: list[dict]) -> list[dict]:
    """The storm's deliveries with each trap event delivered twice, spread through it."""
    mixed = list(deliveries)
    for number, event in enumerate(trap_events()):
        for copy in range(2):
            mixed.insert((number * 7 + copy * 19) % (len(mixed) + 1), event)
    return mixed


def start(app, emulator, the_storm: Storm, **settings) -> None:
    emulator.seed(the_storm.resources + TRAPS)
    app.configure(**{**SETTINGS, **settings})


def drive(app, the_storm: Storm, *, drain=None, **options) -> StormRun:
    return run_storm(with_traps(the_storm.deliveries), app.deliver, drain or app.drain, **options)


def contained_in_arm(emulator, unit) -> bool:
    body = emulator.arm.get(unit.resource_id)
    if unit.family == "role":
        return body is None
    properties = body["properties"]
    if unit.family == "account":
        return properties["allowBlobPublicAccess"] is False
    if unit.family == "container":
        return properties["publicAccess"] == "None"
    rules = {r["name"]: r["properties"] for r in properties["securityRules"]}
    deny = rules.get("deny-untrusted-allow-any")
    return rules["allow-any"]["access"] == "Deny" or (
        deny is not None and deny["access"] == "Deny" and deny["priority"] < rules["allow-any"]["priority"])


def assert_invariants(app, emulator, the_storm: Storm, *, lost: frozenset[str] = frozenset(),
                      traps: bool = True) -> list:
    """The module docstring's invariants; `lost`: event IDs whose records a test knows
    were lost (Azurite's memory). Returns the records."""
    records = app.records()
    events = the_storm.events + (trap_events() if traps else [])
    per_event = Counter(r.event_id for r in records if r.event_id)
    expected = {e["id"] for e in events} - lost
    assert {key for key, count in per_event.items() if count != 1} == set(), "an event with more than one record"
    assert expected - set(per_event) == set(), "events without a decision record"
    assert set(per_event) - {e["id"] for e in events} == set(), "records for events nobody sent"

    failed = {r.resource_id.lower(): r for r in records if r.outcome == "failed"}
    assert all(r.reason for r in failed.values()), "a failed record without a reason"
    writes = effective_writes(emulator)
    for unit in the_storm.units:
        mine = [w for w in writes if unit.owns_write(w[1])]
        if not unit.offending:
            assert mine == [], f"a compliant resource was written: {mine}"
        elif unit.resource_id.lower() in failed:
            assert len(mine) <= 1, f"{unit.resource_id} written {len(mine)} times: {mine}"
        else:
            assert contained_in_arm(emulator, unit), f"{unit.family} {unit.resource_id} is still exposed"
            assert len(mine) == 1, f"{unit.resource_id} written {len(mine)} times: {mine}"
    assert_scope_safe(emulator, the_storm.units)
    if traps:
        outcomes = {r.event_id: (r.outcome, r.reason) for r in records if r.event_id and r.event_id.startswith("trap-")}
        own = [r for r in records if r.event_id in ("trap-own-account", "trap-own-container")]
        assert [(r.outcome, r.own_deployment, r.severity) for r in own] == [("reported", True, "high")] * 2
        assert all("CONTAINMENT_OWN_SCOPES" in r.reason and r.plan == [] for r in own)
        notified = {n["data"]["decision"] for n in emulator.notifications if n["data"]["outcome"] == "reported"}
        assert {r.key for r in own} <= notified, "an exposure of the app's own deployment was not notified"
        assert outcomes["trap-foreign"][0] == "rejected" and "CONTAINMENT_SUBSCRIPTIONS" in outcomes["trap-foreign"][1]
        assert outcomes["trap-untagged"][0] == "ignored"
        assert emulator.arm.get(OWN_ACCOUNT["id"])["properties"]["allowBlobPublicAccess"] is True  # untouched
        assert emulator.arm.get(FOREIGN["id"])["properties"]["allowBlobPublicAccess"] is True
    return records


def tally(record_property, the_storm: Storm, run: StormRun, faults=(), lost: int = 0) -> None:
    record_property("events", len(the_storm.events) + len(TRAPS))
    record_property("deliveries", run.deliveries)
    record_property("faults_injected", sum(f.fired for f in faults))
    record_property("records_lost", lost)


# -- a storm on a good day ------------------------------------------------------------------------
def test_a_storm_keeps_every_invariant(app, emulator, record_property):
    the_storm = storm(20, 48, seed=1)
    start(app, emulator, the_storm)
    run = drive(app, the_storm, drain_every=6)
    assert run.failed_deliveries == run.failed_contain_invocations == 0
    records = assert_invariants(app, emulator, the_storm)
    assert {"contained", "compliant", "ignored", "rejected"} <= {r.outcome for r in records}
    tally(record_property, the_storm, run)


# -- a storm within ARM's budget -------------------------------------------------------------------
def noting(emulator, call, into: list):
    """`call`, with the ARM exchanges it caused added to `into`."""
    def run(*args):
        before = len(emulator.traffic)
        try:
            return call(*args)
        finally:
            into.extend(emulator.traffic[before:])
    return run


def path_of(exchange) -> str:
    return exchange.url.split("?")[0].split("/subscriptions/", 1)[-1].lower()


def test_a_storm_reads_each_resource_once_and_each_accounts_containers_from_one_listing(app, emulator):
    """An event about a resource this instance read after the event's time is answered by that
    read: whatever the deliveries, redeliveries and order, the Event Grid functions read each
    account and NSG of the storm at most once, and a host account's many containers from one
    listing (after at most one container's own read, which showed the storm)."""
    the_storm = storm(40, 120, seed=3)
    start(app, emulator, the_storm)
    detection: list = []
    run = run_storm(with_traps(the_storm.deliveries), noting(emulator, app.deliver, detection), app.drain,
                    drain_every=6)
    assert run.failed_deliveries == run.failed_contain_invocations == 0
    assert_invariants(app, emulator, the_storm)
    reads = Counter(path_of(x) for x in detection if x.method == "GET")
    hosts = {unit.resource_id.split("/blobServices/")[0] for unit in the_storm.units if unit.family == "container"}
    for unit in the_storm.units:
        if unit.family in ("account", "nsg"):
            assert reads[path_of_id(unit.resource_id)] == 1, unit.resource_id
    container_reads = sum(reads[path_of_id(u.resource_id)] for u in the_storm.units if u.family == "container")
    assert container_reads <= len(hosts)  # one per host account at most: the read that showed the storm
    for host in hosts:
        assert reads[path_of_id(host) + "/blobservices/default/containers"] == 1, host
        assert reads[path_of_id(host)] == 1, host


def path_of_id(resource_id: str) -> str:
    return resource_id.split("/subscriptions/", 1)[1].lower()


def test_under_arms_throttling_re_reads_wait_for_the_reserve_and_containment_does_not(app, emulator, monkeypatch):
    """With ARM's read bucket running low, detection's reads wait until it refills to the
    reserve kept for containment (containment.adapters.arm_limits) instead of spending it and
    being answered 429; containment's reads (the worker marks them) never wait. ARM's buckets
    and the reserve are scaled down alike, so a small storm reaches them."""
    import time

    from containment.adapters import arm_limits
    from localazure.throttling import Throttling

    scaled = {"reads": (10, 10.0), "writes": (200, 10.0), "deletes": (200, 10.0)}
    monkeypatch.setattr(arm_limits, "BUCKETS", scaled)
    monkeypatch.setattr(arm_limits, "RESERVE", 5)
    monkeypatch.setattr(arm_limits, "JITTER", 0.05)
    waits: list = []
    monkeypatch.setattr(arm_limits.LIMITS, "sleep", lambda seconds: (waits.append(arm_limits.priority()),
                                                                       time.sleep(seconds)))
    the_storm = storm(20, 48, seed=4)
    start(app, emulator, the_storm)
    emulator.arm.throttling = Throttling(**scaled)
    detection: list = []
    run = run_storm(the_storm.deliveries, noting(emulator, app.deliver, detection),
                    app.drain, drain_every=5)  # the worker marks its own reads (containment.act.worker)
    assert run.failed_deliveries == run.failed_contain_invocations == 0
    assert_invariants(app, emulator, the_storm, traps=False)
    assert waits and set(waits) == {arm_limits.RE_READING}  # the reserve was reached; only re-reads waited
    assert [x for x in detection if x.status == 429] == []  # they waited instead of being throttled


def test_while_arms_reads_run_short_a_redelivery_already_decided_reads_nothing_from_arm(app, emulator, monkeypatch):
    """Detection reads ARM before the ledger (one round trip less to contain), but while ARM's
    reads are below the reserve, a redelivery is looked up in the ledger first: one already
    decided costs no read at all. Timed now, so no earlier read of this instance answers it."""
    from containment.adapters import arm_limits
    from tests.helpers.events import happened_now

    from localazure.throttling import Throttling

    monkeypatch.setattr(arm_limits, "RESERVE", 10_000)  # whatever ARM says is left is short of it
    monkeypatch.setattr(arm_limits.LIMITS, "sleep", lambda seconds: None)
    public = b.container(b.storage_account()["id"], "burst", "Container")
    emulator.seed([b.storage_account(), public])
    emulator.arm.throttling = Throttling()  # ARM's answers say what is left
    app.configure(**SETTINGS)
    event = happened_now(write_event(public["id"], CONTAINER_WRITE))
    app.deliver(event)
    app.drain()
    emulator.clear_traffic()
    app.deliver(event)
    assert emulator.traffic == [] and [r.outcome for r in app.records()] == ["contained"]


def test_the_polls_of_containments_long_running_writes_never_wait_for_the_read_reserve(app, emulator, monkeypatch):
    """An NSG rule's PUT is long-running: azure-core polls its status from a thread of its own,
    which does not carry the worker's mark; the polls are known by their path and never wait."""
    from containment.adapters import arm_limits
    from localazure.throttling import Throttling

    monkeypatch.setattr(arm_limits, "RESERVE", 10_000)  # whatever ARM says is left is short of it
    waits: list = []
    monkeypatch.setattr(arm_limits.LIMITS, "sleep", lambda seconds: waits.append(seconds))
    nsg = b.nsg(rules=[b.security_rule("allow-any", 200, source="*")])
    emulator.seed([nsg])
    app.configure(**SETTINGS)
    emulator.arm.throttling = Throttling()  # ARM's answers say what is left
    app.deliver(write_event(nsg["id"], "Microsoft.Network/networkSecurityGroups/write"))
    waits.clear()  # detection's re-reads may wait; containment's never
    app.drain()
    assert [r.outcome for r in app.records()] == ["contained"]
    assert any("operation" in x.url.lower() for x in emulator.traffic) or emulator.polls  # it was long-running
    assert waits == []


# -- ARM's bad days -----------------------------------------------------------------------------------
# Each fault fires a bounded number of times: enough to outlast the SDK's own retries
# (4 attempts a call) somewhere, so the host's retries (Event Grid redelivery, the queue's
# dequeue count) are exercised too, never so many that the retry budget runs out.
FAULT_PLANS = {
    "429 with Retry-After on reads": [
        dict(kind="status", path=r"/storageAccounts/[^/]+$", method="GET", status=429, retry_after=1, skip=3, times=2),
        dict(kind="status", path=r"/roleAssignments/[^/]+$", method="GET", status=429, retry_after=QUICK, times=6)],
    "500 and 503 on writes": [
        dict(kind="status", path=r"/containers/[^/]+$", method="PATCH", status=500, retry_after=QUICK, times=5),
        dict(kind="status", path=r"/roleAssignments/[^/]+$", method="DELETE", status=503, retry_after=QUICK, times=5),
        dict(kind="status", path=r"/storageAccounts/[^/]+$", method="PATCH", status=500, retry_after=QUICK, times=2)],
    "dropped connections": [
        dict(kind="drop", path=r"/networkSecurityGroups/[^/]+$", method="GET", times=2),
        dict(kind="drop", path=r"/storageAccounts/[^/]+$", method="PATCH", times=2),
        dict(kind="drop", path=r"/roleAssignments/[^/]+$", method="DELETE", times=1)],
    "slow answers": [
        dict(kind="slow", path=r"/roleAssignments/", delay=0.2, times=6),
        dict(kind="slow", path=r"/containers/[^/]+$", method="PATCH", delay=0.3, times=3)],
    "ETag conflicts": [
        dict(kind="etag-conflict", path=r"/securityRules/", method="PUT", times=4),
        dict(kind="etag-conflict", path=r"/containers/[^/]+$", method="PATCH", times=3)],
}
# ARM carried the write out, then the caller saw a server error or lost the answer: a
# retry must read the resource first, never write it a second time.
FAULT_PLANS["applied, then lost"] = [
    dict(kind="status", path=r"/containers/[^/]+$", method="PATCH", status=504, after=True, times=4),
    dict(kind="drop", path=r"/roleAssignments/[^/]+$", method="DELETE", after=True, times=3),
    dict(kind="status", path=r"/securityRules/", method="PUT", status=500, after=True, times=3),
    dict(kind="drop", path=r"/storageAccounts/[^/]+$", method="PATCH", after=True, times=2)]
FAULT_PLANS["all of them at once"] = [fault for plan in FAULT_PLANS.values() for fault in plan] + [
    dict(kind="status", path=r"/containers/[^/]+$", method="GET", status=500, retry_after=QUICK, skip=2, times=4)]


@pytest.mark.parametrize("plan", list(FAULT_PLANS))
def test_a_storm_under_arm_faults_keeps_every_invariant(app, emulator, record_property, plan):
    the_storm = storm(20, 48, seed=2)
    start(app, emulator, the_storm)
    faults = [emulator.faults.add(**fault) for fault in FAULT_PLANS[plan]]
    run = drive(app, the_storm, drain_every=5)
    assert all(fault.fired for fault in faults), [(f.kind, f.path, f.fired) for f in faults]  # none vacuous
    records = assert_invariants(app, emulator, the_storm)
    assert "failed" not in {r.outcome for r in records}  # every fault was outlasted by the retries
    assert run.undelivered == 0
    if plan == "all of them at once":  # beyond the SDK's retries: the host's retries were needed too
        assert run.failed_deliveries and run.failed_contain_invocations
    tally(record_property, the_storm, run, faults)


def test_an_etag_conflict_is_re_read_and_re_judged_never_overwritten(app, emulator):
    nsg = b.nsg("nsg-contended", [b.security_rule("allow-any", 300, source="Internet", port="*")])
    emulator.seed([nsg])
    app.configure(**SETTINGS)
    conflict = emulator.faults.add("etag-conflict", path=r"/securityRules/", method="PUT", times=2)
    app.deliver(write_event(nsg["id"], "Microsoft.Network/networkSecurityGroups/write"))
    app.drain()
    puts = [x for x in emulator.traffic if x.method == "PUT"]
    assert conflict.fired == 2 and [x.status for x in puts] == [412, 412, 201]
    assert all(x.request_headers.get("if-match") for x in puts)  # every write is conditional
    gets = [x for x in emulator.traffic if x.method == "GET" and x.url.split("?")[0].endswith("nsg-contended")]
    assert len(gets) >= 1 + 3  # detection's read, then a fresh read before each of the three writes
    [record] = app.records()
    assert record.outcome == "contained"


@pytest.mark.parametrize("kind", ["status", "drop"])
def test_a_write_whose_answer_is_lost_is_read_back_never_sent_twice(app, emulator, kind):
    """ARM made the change, then answered 504 (or the connection died on the way back):
    the SDK does not resend the PATCH (containment.adapters.arm_retry); containment reads the
    container, sees its write took effect, and records it as the change it made."""
    account = b.storage_account()
    public = b.container(account["id"], "lost-answer", "Container")
    emulator.seed([account, public])
    app.configure(**SETTINGS)
    lost = emulator.faults.add(kind, path=r"/containers/[^/]+$", method="PATCH", status=504, after=True, times=1)
    app.deliver(write_event(public["id"], CONTAINER_WRITE))
    app.drain()
    assert lost.fired == 1 and [w[0] for w in effective_writes(emulator)] == ["PATCH"]
    [record] = app.records()
    assert record.outcome == "contained" and "already contained" not in record.reason
    before, [after] = record.before[public["id"]], record.after.values()
    assert (before["properties"]["publicAccess"], after["properties"]["publicAccess"]) == ("Container", "None")


# -- the poison message, inside a storm --------------------------------------------------------------
def test_a_resource_that_can_never_be_contained_ends_failed_once_per_event_and_the_storm_flows_on(
        app, emulator, caplog, record_property):
    """Extends tests/test_storage_exposure.py's single poison message: inside a storm, with
    the host.json retry budget (5 deliveries), one container's PATCH always fails."""
    the_storm = storm(20, 48, seed=3)
    doomed = next(u for u in the_storm.units if u.family == "container" and u.offending)
    start(app, emulator, the_storm)
    broken = emulator.faults.add("status", path=doomed.resource_id.split("/", 3)[3] + "$", method="PATCH",
                                 status=500, retry_after=QUICK, times=None)
    with caplog.at_level(logging.ERROR, logger="containment"):
        run = drive(app, the_storm, drain_every=5)
    records = assert_invariants(app, emulator, the_storm)
    failed = [r for r in records if r.outcome == "failed"]
    assert failed and {r.resource_id for r in failed} == {doomed.resource_id}
    assert all("500" in r.reason and r.actions == ["make_container_private"] for r in failed)
    assert emulator.arm.get(doomed.resource_id)["properties"]["publicAccess"] == "Container"  # not contained, said so
    # Each failed request was tried the whole budget, then poisoned; one record and one ERROR line each.
    attempts = app.runtime.max_attempts
    assert attempts == 5 and run.failed_contain_invocations == attempts * len(failed)
    poison = app.runtime.clients.queue(app.runtime.settings.containment_queue + "-poison")
    assert poison.get_queue_properties().approximate_message_count == len(failed)
    assert sum("CONTAINMENT FAILED" in m for m in caplog.messages) == len(failed)
    assert {n["data"]["outcome"] for n in emulator.notifications if n["data"]["resource_id"] == doomed.resource_id} \
        == {"failed"}
    # Every other offending resource was contained (assert_invariants), however many failures went by.
    tally(record_property, the_storm, run, [broken])


# -- Event Grid gives up --------------------------------------------------------------------------------
def reading(container) -> str:
    """The paths that read a container: its own GET, and its account's container listing (a
    redelivery finds the account read already, and lists: containment.detect.storage.storm_on)."""
    containers, name = container.resource_id.split("/", 3)[3].rsplit("/", 1)
    return f"{containers}(/{name})?$"


def test_an_event_whose_every_delivery_fails_leaves_a_failed_record_and_the_sweep_contains_it(app, emulator):
    """Reading the resource fails for all of Event Grid's 30 attempts: the event is
    dead-lettered by Event Grid, and its one record says `failed` and why. The hourly
    sweep is the backstop: it finds and contains the resource."""
    import function_app
    from localazure.functions_host import fire_timer

    the_storm = storm(4, 4, seed=4, compliant_every=0)
    container = next(u for u in the_storm.units if u.family == "container")
    start(app, emulator, the_storm)
    outage = emulator.faults.add("status", path=reading(container), method="GET", status=500, retry_after=QUICK,
                                 times=None)
    event = write_event(container.resource_id, CONTAINER_WRITE)
    run = run_storm([event], app.deliver, app.drain, max_attempts=30)
    assert run.undelivered == 1 and run.failed_deliveries == 30
    [failed] = app.records()
    assert (failed.event_id, failed.outcome) == (event["id"], "failed")
    assert "reading the resource failed" in failed.reason and "500" in failed.reason
    assert [n["data"]["outcome"] for n in emulator.notifications] == ["failed"]  # once, not 30 times
    emulator.faults.clear()
    assert fire_timer(function_app.app, "drift_sweep").error is None
    app.drain()
    assert contained_in_arm(emulator, container) and outage.fired >= 30
    assert_scope_safe(emulator, the_storm.units)


def test_a_read_that_fails_then_succeeds_replaces_the_failed_record_with_the_decision(app, emulator):
    """The failure is on the record from the first failed delivery; the delivery that gets
    through replaces it (one record per event), in the by-day index too."""
    from datetime import datetime

    the_storm = storm(4, 4, seed=4, compliant_every=0)
    container = next(u for u in the_storm.units if u.family == "container")
    start(app, emulator, the_storm)
    emulator.faults.add("status", path=reading(container), method="GET", status=500, retry_after=QUICK,
                        times=4 * 2)  # two deliveries' worth of SDK attempts
    event = write_event(container.resource_id, CONTAINER_WRITE)
    run = run_storm([event], app.deliver, app.drain, max_attempts=30)
    assert run.failed_deliveries == 2 and run.undelivered == 0
    [record] = app.records()
    assert (record.event_id, record.outcome) == (event["id"], "contained") and contained_in_arm(emulator, container)
    day = datetime.fromisoformat(record.decided_at.replace("Z", "+00:00"))
    assert [r.outcome for r in app.runtime.ledger.for_day(day)] == ["contained"]
    notified = [(n["id"], n["data"]["outcome"]) for n in emulator.notifications]
    assert notified == [(f"{event['id']}.failed", "failed"), (f"{record.incident}.detected", "contained")]
    assert len(effective_writes(emulator)) == 1


# -- Azurite restarts mid-storm ------------------------------------------------------------------------
def _tolerant(drain):
    """The host's queue listener: a queue that does not exist (yet) is an empty one."""
    def run():
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return drain()
        except ResourceNotFoundError:
            return []
    return run


def test_after_azurite_restarts_the_instance_recovers_and_the_sweep_finds_what_was_lost(
        app, emulator, azurite, record_property):
    """Azurite is in memory: its restart loses the whole ledger (every record written
    before it, claims, the checkpoint) and every queued containment request. That is
    this emulator's outage, not Azure Storage's (which keeps its data). What the app must
    show: the same instance, not recycled, re-creates its table and queue, records every
    event delivered after the restart exactly once, contains what those events find, and
    the drift sweep contains what the lost requests would have."""
    import function_app
    from localazure.functions_host import fire_timer

    the_storm = storm(20, 48, seed=5)
    start(app, emulator, the_storm)
    deliveries = with_traps(the_storm.deliveries)
    restart_at = len(deliveries) // 2
    before: set[str] = set()

    def outage(delivered: int) -> None:
        if delivered == restart_at:
            before.update(r.event_id for r in app.records())  # what the restart is about to lose
            azurite.restart()

    run = run_storm(deliveries, app.deliver, _tolerant(app.drain), drain_every=5, before_delivery=outage)
    after = {e["id"] for e in deliveries[restart_at:]}
    # Events delivered only before the restart: their record, or their queued request, is gone.
    lost = frozenset({e["id"] for e in deliveries[:restart_at]} - after)
    lost_records, lost_requests = len(lost & before), len(lost - before)
    assert run.undelivered == 0 and lost_records and lost_requests  # the restart did lose both
    assert fire_timer(function_app.app, "drift_sweep").error is None
    app.drain()
    records = app.records()
    sweep = [r for r in records if r.operation == "drift_sweep"]
    event_records = [r for r in records if r.operation != "drift_sweep"]
    per_event = Counter(r.event_id for r in event_records)
    assert set(per_event.values()) == {1} and set(per_event) == ({e["id"] for e in the_storm.events + trap_events()}
                                                                  - lost)
    # Exactly one write per offending resource, before or after the restart, by event or by sweep.
    assert_scope_safe(emulator, the_storm.units)
    for unit in the_storm.units:
        mine = [w for w in effective_writes(emulator) if unit.owns_write(w[1])]
        assert len(mine) == (1 if unit.offending else 0), (unit, mine)
        assert not unit.offending or contained_in_arm(emulator, unit)
    assert all(r.outcome in ("contained", "reported") for r in sweep)
    record_property("events", len(the_storm.events) + len(TRAPS))
    record_property("deliveries", run.deliveries)
    record_property("faults_injected", 1)
    record_property("records_lost_with_azurite_memory", lost_records)
    record_property("requests_lost_with_azurite_memory", lost_requests)
    record_property("records_lost", 0)


def test_after_azurite_restarts_the_same_instance_recovers_for_later_events(app, emulator, azurite):
    the_storm = storm(8, 16, seed=6)
    start(app, emulator, the_storm)
    run_storm(the_storm.deliveries[:8], app.deliver, app.drain, drain_every=4)
    azurite.restart()
    later = [e for e in the_storm.events if e not in the_storm.deliveries[:8]]
    run = run_storm(later, app.deliver, _tolerant(app.drain), max_attempts=3)
    assert run.failed_deliveries == 0
    assert {r.event_id for r in app.records()} >= {e["id"] for e in later}


# -- the blast-radius budget under a storm ---------------------------------------------------------------
def test_a_high_blast_radius_limit_keeps_counting_past_1700_actions_an_hour(app, emulator):
    from containment.core import clock

    publics = [b.container(b.storage_account()["id"], f"burst{n}", "Container") for n in range(12)]
    emulator.seed([b.storage_account(), *publics])
    app.configure(**{**SETTINGS, "CONTAINMENT_MAX_ACTIONS_PER_HOUR": "5000"})
    assert app.runtime.ledger.spend_budget(1720, 5000, clock.now().timestamp()) is None  # a busy hour: 1,720 spent
    run = run_storm([write_event(p["id"], CONTAINER_WRITE) for p in publics], app.deliver, app.drain)
    assert run.failed_contain_invocations == 0
    # Every action of the hour is still counted: exactly what is left of the limit fits.
    left = 5000 - 1720 - len(publics)
    assert app.runtime.ledger.spend_budget(left + 1, 5000, clock.now().timestamp()) == 5000 - left
    assert app.runtime.ledger.spend_budget(left, 5000, clock.now().timestamp()) is None
