"""What the app reads from ARM, and when it reads it again: a read sent after an event's time
is reused for that event (containment.adapters.reads), never one from before it, never a
404, never past a write. Real SDK clients over HTTPS to the emulator, counted in its traffic."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from containment.adapters import arm
from containment.adapters.reads import EVENT_MARGIN, ReadCache, after_event, reads_fresh_since
from containment.core.ids import parse_resource_id
from tests.helpers import arm_bodies as b
from tests.helpers.events import CONTAINER_WRITE, write_event

ACCOUNT = b.storage_account("synthtrain01")
PUBLIC = b.container(ACCOUNT["id"], "training", "Container")


def gets(emulator, resource_id: str) -> int:
    return sum(1 for x in emulator.traffic if x.method == "GET" and x.url.split("?")[0].lower().endswith(
        resource_id.lower()))


def test_a_read_sent_after_the_events_time_serves_the_event_and_one_from_before_it_does_not(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    clients, target = app.runtime.clients, parse_resource_id(PUBLIC["id"])
    arm.read(clients, target)  # outside any freshness: read and kept
    read_at = time.time()
    with reads_fresh_since(after_event(read_at - EVENT_MARGIN - 5)):  # an event well before the read
        assert arm.read(clients, target)["name"] == "training"
    assert gets(emulator, PUBLIC["id"]) == 1
    with reads_fresh_since(after_event(read_at)):  # an event at the read: it may not show yet
        arm.read(clients, target)
    assert gets(emulator, PUBLIC["id"]) == 2


def test_outside_a_freshness_bound_every_read_goes_to_arm(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    for _ in range(3):
        arm.read(app.runtime.clients, parse_resource_id(PUBLIC["id"]))
    assert gets(emulator, PUBLIC["id"]) == 3


def test_a_404_is_never_reused_as_the_new_role_assignment_may_not_be_readable_yet(app, emulator):
    clients, target = app.runtime.clients, parse_resource_id(PUBLIC["id"])
    with reads_fresh_since(0):
        for _ in range(2):
            assert arm.read_or_none(clients, target) is None
    assert gets(emulator, PUBLIC["id"]) == 2


def test_a_write_forgets_what_was_read_of_its_target(app, emulator):
    from containment.plan.action import Write

    emulator.seed([ACCOUNT, PUBLIC])
    clients, target = app.runtime.clients, parse_resource_id(PUBLIC["id"])
    with reads_fresh_since(0):
        arm.read(clients, target)
        arm.write(clients, Write("PATCH", PUBLIC["id"], {"properties": {"publicAccess": "None"}}))
        assert arm.read(clients, target)["properties"]["publicAccess"] == "None"


def test_what_a_caller_changes_in_a_body_never_reaches_the_next_read(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    clients, target = app.runtime.clients, parse_resource_id(PUBLIC["id"])
    with reads_fresh_since(0):
        arm.read(clients, target)["properties"]["publicAccess"] = "tampered"
        assert arm.read(clients, target)["properties"]["publicAccess"] == "Container"


def test_redeliveries_of_an_event_read_the_resource_once(app, emulator):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="dry-run")
    past = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    event = write_event(PUBLIC["id"], CONTAINER_WRITE, time=past)
    for _ in range(3):
        app.deliver(event)
    assert gets(emulator, PUBLIC["id"]) == 1 and gets(emulator, ACCOUNT["id"]) == 1
    assert [r.outcome for r in app.records()] == ["would-contain"]


def test_the_cache_is_bounded_and_keeps_the_newest_view():
    cache = ReadCache(capacity=2, max_age=3600)
    now = time.time()
    cache.keep("a", "{}", now)
    cache.keep("b", "{}", now)
    cache.keep("c", "{}", now)
    assert len(cache) == 2 and cache.fresh("a", 0) is None
    cache.keep("c", '{"v": 1}', now + 1)
    cache.keep("c", '{"v": 0}', now)  # a slower read that was sent earlier lands last
    assert cache.fresh("c", 0).body == '{"v": 1}'
    assert cache.fresh("c", None) is None  # nobody asked for reuse


def test_the_clients_ignore_the_environment_after_they_are_built(app, emulator, monkeypatch):
    """use_env_settings=False: a proxy variable set later (as a Functions host's many app
    settings are read on every request otherwise) changes nothing; the call still succeeds."""
    emulator.seed([ACCOUNT, PUBLIC])
    clients = app.runtime.clients
    arm.read(clients, parse_resource_id(PUBLIC["id"]))
    app.runtime.ledger.exemptions()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert arm.read(clients, parse_resource_id(PUBLIC["id"]))["name"] == "training"
    assert app.runtime.ledger.exemptions() == []


def test_a_write_to_a_part_of_a_resource_forgets_what_holds_it(app, emulator):
    """Removing a vault's access policy is a write to `<vault>/accessPolicies/remove`: the vault
    read before it no longer stands (its read-back must show the policy gone)."""
    from containment.plan.action import Write

    vault = b.key_vault(policies=[b.access_policy("3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", keys=["unwrapKey"])])
    emulator.seed([vault])
    clients, target = app.runtime.clients, parse_resource_id(vault["id"])
    with reads_fresh_since(0):
        arm.read(clients, target)
        arm.write(clients, Write("PUT", f"{vault['id']}/accessPolicies/remove", {"properties": {
            "accessPolicies": vault["properties"]["accessPolicies"]}}))
        assert arm.read(clients, target)["properties"]["accessPolicies"] == []


def test_a_read_sent_before_a_write_that_lands_after_it_is_not_kept():
    """Two threads of one instance: one's GET is in flight when the other writes; the GET's
    answer (the state before the write) must not become what the write's read-back finds."""
    cache = ReadCache()
    before_write, write = time.time(), time.time() + 0.001
    cache.forget("nsg", write)  # the write goes out
    cache.keep("nsg", '{"before": true}', before_write)  # the earlier read lands late
    assert cache.fresh("nsg", 0) is None
    cache.keep("nsg", '{"after": true}', write)  # the write's own answer, or a read after it
    assert cache.fresh("nsg", 0).body == '{"after": true}'


def test_with_a_proxy_configured_no_proxy_still_keeps_local_endpoints_off_it(app, emulator, monkeypatch):
    """Where the environment names a proxy, it is read per call as azure-core does by default,
    so NO_PROXY applies (the managed-identity endpoint and private endpoints are local)."""
    from containment.adapters import clients as clients_module

    emulator.seed([ACCOUNT, PUBLIC])
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    clients_module.transport_options.cache_clear()
    try:
        app.configure()
        assert arm.read(app.runtime.clients, parse_resource_id(PUBLIC["id"]))["name"] == "training"
    finally:
        clients_module.transport_options.cache_clear()
