"""Object replication policies end to end, through the function entry points as the host
invokes them, against the ARM emulator and Azurite: a policy copying a protected account's
blobs out of scope is contained by deleting it on the source; release hands a person the
exact request that puts it back."""
from __future__ import annotations

import json

import pytest

from tests.helpers import arm_bodies as b
from tests.helpers.events import write_event
from tests.helpers.operators import ONCALL

POLICY_WRITE = "Microsoft.Storage/storageAccounts/objectReplicationPolicies/write"
SOURCE = b.storage_account("synthtrain01")
UNPROTECTED = b.storage_account("scratch01", tags={"team": "analytics"})
PROTECTED = b.storage_account("synthreplica01")
FOREIGN = ("/subscriptions/5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a/resourceGroups/rg-elsewhere/providers/"
           "Microsoft.Storage/storageAccounts/elsewhere01")


def pair(source: dict, destination: dict) -> tuple[dict, dict]:
    """The policy on the source and its twin on the destination, as ARM keeps both."""
    return b.replication_policy(source, destination["id"]), b.replication_policy(source, destination["id"],
                                                                                  on=destination)


def written(app, emulator, resources: list[dict], policy: dict, **settings) -> list:
    """Seed the resources, then deliver the policy's write and run the containment queue, in
    enforce mode unless the settings say otherwise; the records."""
    emulator.seed(resources)
    app.configure(**{"CONTAINMENT_MODE": "enforce", **settings})
    app.deliver(write_event(policy["id"], POLICY_WRITE))
    app.drain()
    return app.records()


def test_a_policy_to_an_unprotected_account_is_removed_on_the_source_with_its_body_kept(app, emulator):
    on_source, on_destination = pair(SOURCE, UNPROTECTED)
    [record] = written(app, emulator, [SOURCE, UNPROTECTED, on_source, on_destination], on_source)
    assert (record.outcome, record.actions, record.severity) == ("contained", ["remove_replication_policy"],
                                                                 "critical")
    assert record.rules == ["storage_replication_to_unprotected_destination"]
    assert emulator.arm.get(on_source["id"]) is None
    assert emulator.arm.get(on_destination["id"]) is not None  # only the source's policy drives replication
    assert record.before[on_source["id"]] == on_source and record.after[on_source["id"]] is None
    assert record.before[UNPROTECTED["id"]]["tags"] == {"team": "analytics"}  # what the destination was
    assert record.findings[0]["evidence"]["destination"] == ("the destination account neither tagged nor under a "
                                                             "protected scope")
    assert [(w.method, w.url.split("?")[0].rsplit("/", 1)[1]) for w in app.writes()] == [
        ("DELETE", on_source["name"])]


def test_a_policy_between_two_protected_accounts_is_compliant(app, emulator):
    on_source, on_destination = pair(SOURCE, PROTECTED)
    [record] = written(app, emulator, [SOURCE, PROTECTED, on_source, on_destination], on_source)
    assert (record.outcome, record.actions) == ("compliant", [])
    assert emulator.arm.get(on_source["id"]) == on_source and app.writes() == []


def test_the_protected_destination_of_a_policy_is_not_this_finding(app, emulator):
    """The judged account receives the replica: nothing leaves it."""
    incoming = b.replication_policy(UNPROTECTED, SOURCE["id"], on=SOURCE)
    [record] = written(app, emulator, [SOURCE, UNPROTECTED, incoming], incoming)
    assert record.outcome == "compliant" and "receives this replica" in record.reason


@pytest.mark.parametrize("destination", [FOREIGN, "elsewhere01"], ids=["another-tenant", "bare-name"])
def test_a_destination_in_another_tenant_is_out_of_scope_and_names_cross_tenant_replication(app, emulator,
                                                                                          destination):
    allowing = b.storage_account("synthtrain02", allowCrossTenantReplication=True)
    policy = b.replication_policy(allowing, destination)
    [record] = written(app, emulator, [allowing, policy], policy)
    assert (record.outcome, record.actions) == ("contained", ["remove_replication_policy"])
    evidence = record.findings[0]["evidence"]
    assert evidence["allowCrossTenantReplication"] is True
    assert ("cannot be read" if destination == FOREIGN else "not by resource ID") in evidence["destination"]
    assert emulator.arm.get(policy["id"]) is None
    # With the policy gone, ARM lets the account turn cross-tenant replication off.
    accounts = app.runtime.clients.storage(b.SUBSCRIPTION).storage_accounts  # the app's role may write accounts
    accounts.update(b.RG, allowing["name"], {"properties": {"allowCrossTenantReplication": False}})


def test_a_destination_outside_the_watched_subscriptions_is_out_of_scope(app, emulator):
    elsewhere = b.storage_account("synthreplica02", subscription=b.OTHER_SUBSCRIPTION)  # tagged, but not watched
    policy = b.replication_policy(SOURCE, elsewhere["id"])
    emulator.seed([SOURCE, elsewhere, policy])
    app.configure(CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    app.deliver(write_event(policy["id"], POLICY_WRITE))
    [record] = app.records()
    assert record.outcome == "would-contain"
    assert "outside CONTAINMENT_SUBSCRIPTIONS" in record.findings[0]["evidence"]["destination"]


def test_a_policy_on_an_unprotected_account_is_ignored(app, emulator):
    policy = b.replication_policy(UNPROTECTED, SOURCE["id"])
    emulator.seed([SOURCE, UNPROTECTED, policy])
    app.deliver(write_event(policy["id"], POLICY_WRITE))
    [record] = app.records()
    assert record.outcome == "ignored" and "not synthetic data" in record.reason


def test_the_drift_sweep_lists_and_judges_the_policies_of_protected_accounts(app, emulator):
    import function_app
    from localazure.functions_host import fire_timer

    on_source, on_destination = pair(SOURCE, UNPROTECTED)
    emulator.seed([SOURCE, UNPROTECTED, on_source, on_destination])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    assert fire_timer(function_app.app, "drift_sweep").error is None
    app.drain()
    contained = [r for r in app.records() if r.outcome == "contained"]
    assert [(r.resource_id, r.actions) for r in contained] == [(on_source["id"], ["remove_replication_policy"])]
    # The unprotected account's own policy copy was never listed: its account is out of scope.
    listed = [x.url for x in emulator.traffic if x.method == "GET" and "objectReplicationPolicies?" in x.url]
    assert listed and all("synthtrain01" in url for url in listed)


def test_release_is_the_exact_request_a_person_sends_and_it_puts_the_policy_back(app, emulator, owner):
    import function_app
    from localazure.functions_host import call_http

    on_source, on_destination = pair(SOURCE, UNPROTECTED)
    [record] = written(app, emulator, [SOURCE, UNPROTECTED, on_source, on_destination], on_source)

    response = call_http(function_app.app, "POST", "release", {"resourceId": record.resource_id,
                                                               "decision": record.key}, ONCALL)
    body = json.loads(response.get_body())
    app.drain()
    assert response.status_code == 200 and emulator.arm.get(on_source["id"]) is None  # the app copies nothing back
    [step] = body["restore_by_person"]
    assert step["method"] == "PUT" and step["url"] == (f"https://management.azure.com{on_source['id']}"
                                                       "?api-version=2026-09-01")
    assert step["az"].startswith("az rest --method put --url ")
    released = next(r for r in app.records() if r.key == f"{record.key}.released")
    assert step["az"] in released.reason

    # Sent by a person with the rights, it is the policy as it was: same ID, same rules.
    owner.storage(b.SUBSCRIPTION).object_replication_policies.create_or_update(
        b.RG, SOURCE["name"], on_source["name"], step["body"])
    restored = emulator.arm.get(on_source["id"])
    kept = {k: v for k, v in on_source["properties"].items() if k != "enabledTime"}
    assert {k: v for k, v in restored["properties"].items() if k != "enabledTime"} == kept


def test_cross_tenant_replication_goes_off_once_the_cross_tenant_policy_is_gone(app, emulator, moment):
    """ARM refuses allowCrossTenantReplication=false while a cross-tenant policy stands: the
    sweep's first run removes the policy (the account's write is refused, on the record with
    ARM's code), the next turns cross-tenant replication off."""
    import function_app
    from datetime import datetime, timezone
    from localazure.functions_host import fire_timer

    allowing = b.storage_account("synthtrain02", allowCrossTenantReplication=True)
    policy = b.replication_policy(allowing, FOREIGN)
    emulator.seed([allowing, policy])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION, CONTAINMENT_AUTO_CONTAIN=(
        "storage_cross_tenant_replication_allowed,storage_replication_to_unprotected_destination"))
    moment(datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    assert fire_timer(function_app.app, "drift_sweep").error is None
    app.drain()
    first = {r.resource_id: r for r in app.records()}
    assert first[policy["id"]].outcome == "contained" and emulator.arm.get(policy["id"]) is None
    assert first[allowing["id"]].outcome == "failed" and "CrossTenantObjectReplicationPoliciesExist" in \
        first[allowing["id"]].reason

    moment(datetime(2026, 11, 24, 11, 0, tzinfo=timezone.utc))
    assert fire_timer(function_app.app, "drift_sweep").error is None
    app.drain()
    assert emulator.arm.get(allowing["id"])["properties"]["allowCrossTenantReplication"] is False
    assert [r.outcome for r in app.records() if r.resource_id == allowing["id"] and r.key != first[allowing["id"]].key
            ] == ["contained"]
