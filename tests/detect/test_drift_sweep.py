"""The drift sweep finds what no event reported, through the timer function."""
from __future__ import annotations

from tests.helpers import arm_bodies as b

ACCOUNT = b.storage_account()


def sweep(app, **settings):
    import function_app
    from localazure.functions_host import fire_timer

    app.configure(**{"CONTAINMENT_MODE": "enforce", "CONTAINMENT_SUBSCRIPTIONS": b.SUBSCRIPTION,
                     "CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16", **settings})
    invocation = fire_timer(function_app.app, "drift_sweep")
    assert invocation.error is None, invocation.error
    app.drain()
    return app.records()


def test_the_sweep_finds_and_contains_what_no_event_reported(app, emulator):
    public = b.container(ACCOUNT["id"], "training", "Container")
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet")])
    grant = b.role_assignment(ACCOUNT["id"], "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", b.STORAGE_BLOB_DATA_READER,
                              name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e01")
    quiet = b.storage_account("quiet01", allowBlobPublicAccess=False)  # protected and compliant
    untagged = b.storage_account("scratch01", tags={}, allowBlobPublicAccess=True)  # exposed but not ours
    emulator.seed([ACCOUNT, public, nsg, grant, quiet, untagged])
    records = sweep(app)
    assert sorted((r.resource_id.rsplit("/", 1)[1], r.outcome) for r in records) == [
        ("0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e01", "contained"), ("nsg-synthetic-data", "contained"),
        ("synthtrain01", "contained")]
    assert all(r.operation == "drift_sweep" and r.reason.startswith("found by the drift sweep") for r in records)
    assert emulator.arm.get(public["id"])["properties"]["publicAccess"] == "None"
    assert emulator.arm.get(grant["id"]) is None


def test_a_reported_exposure_is_recorded_once_a_day_not_every_sweep(app, emulator):
    emulator.seed([b.storage_account(allowSharedKeyAccess=True, allowBlobPublicAccess=False)])
    assert [r.outcome for r in sweep(app)] == ["reported"]
    assert [r.outcome for r in sweep(app)] == ["reported"]


def test_the_sweep_reports_the_apps_own_deployment_once_a_day_and_never_acts_on_it(app, emulator):
    own_group = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-containment"
    own = b.storage_account("containmentapp01", group="rg-containment", allowBlobPublicAccess=True)
    own_nsg = b.nsg("nsg-containment", [b.security_rule("allow-https", 300, source="Internet")],
                    group="rg-containment")
    grant = b.role_assignment(own["id"], "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", b.STORAGE_BLOB_DATA_READER,
                              name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e0c")
    emulator.seed([own, b.container(own["id"], "ledger-export", "Container"), own_nsg, grant])
    records = sweep(app, CONTAINMENT_OWN_SCOPES=own_group)
    assert sorted((r.resource_id, r.outcome, r.own_deployment, r.severity) for r in records) == sorted([
        (own["id"], "reported", True, "high"), (own_nsg["id"], "reported", True, "high"),
        (grant["id"], "reported", True, "high")])
    assert all(r.plan == [] and "found by the drift sweep: the app's own deployment" in r.reason for r in records)
    assert app.writes() == []
    # One notice per incident: the grant on the account is the account's incident (one dataset).
    incidents = {r.incident for r in records}
    assert len(incidents) == 2
    assert sorted(n["subject"] for n in emulator.notifications) == sorted(f"/incidents/{i}" for i in incidents)
    assert sweep(app, CONTAINMENT_OWN_SCOPES=own_group) == records  # the next sweep of the day adds nothing
    assert len(emulator.notifications) == 2 and app.writes() == []


def test_without_subscriptions_set_the_sweep_lists_those_the_identity_can_see(app, emulator):
    other = b.storage_account("synthother01", subscription=b.OTHER_SUBSCRIPTION, allowSharedKeyAccess=True)
    emulator.seed([b.storage_account(allowSharedKeyAccess=True), other])
    records = sweep(app, CONTAINMENT_SUBSCRIPTIONS="")
    assert sorted(r.resource_id.split("/")[2] for r in records) == sorted([b.SUBSCRIPTION, b.OTHER_SUBSCRIPTION])


def test_a_sweep_that_sees_no_subscription_says_so_once_and_when_it_sees_one_again(app, emulator):
    emulator.arm.listed_subscriptions = set()
    for _ in range(3):
        [failed] = sweep(app, CONTAINMENT_SUBSCRIPTIONS="")
    assert failed.outcome == "failed" and "sees no subscription" in failed.reason
    assert app.runtime.ledger.repetition(failed.key).count == 3 and len(emulator.notifications) == 1
    emulator.arm.listed_subscriptions = {b.SUBSCRIPTION}  # its role is assigned
    [_, works_again] = sweep(app, CONTAINMENT_SUBSCRIPTIONS="")
    assert (works_again.outcome, works_again.key) == ("reported", f"{failed.key}.recovered")
    assert works_again.reason.startswith("the drift sweep works again: ") and "3 times" in works_again.reason


MANAGEMENT_GROUP = "/providers/Microsoft.Management/managementGroups/research"


def inherited(scope: str, name: str, principal: str = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d", role=None) -> dict:
    body = b.role_assignment(scope or "/", principal, role or b.STORAGE_BLOB_DATA_READER, name=name)
    body["id"] = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    body["properties"]["scope"] = scope or "/"
    return body


def test_an_assignment_inherited_from_a_management_group_is_reported_with_who_must_act(app, emulator):
    grant = inherited(MANAGEMENT_GROUP, "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d")
    root_reader = inherited("", "2b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d", role=b.READER)
    emulator.seed([b.storage_account(allowBlobPublicAccess=False), grant, root_reader])
    [record] = sweep(app)
    assert (record.outcome, record.rules) == ("reported", ["role_assignment_inherited_grants_data_access"])
    assert record.resource_id == grant["id"] and record.actions == []
    [finding] = record.findings
    assert finding["evidence"]["must_act"] == f"an owner or User Access Administrator of {MANAGEMENT_GROUP}"
    assert "above this app's reach" in finding["summary"]
    assert emulator.arm.get(grant["id"]) is not None  # nothing the app may not touch was touched
    assert not [w for w in app.writes() if "managementGroups" in w.url]


def test_one_item_that_cannot_be_judged_is_a_failed_record_and_the_sweep_goes_on(app, emulator):
    broken = b.role_assignment(ACCOUNT["id"], "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", "0000dead-0000-4000-8000-00000000beef",
                               name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e09")  # its role definition does not exist
    public = b.container(ACCOUNT["id"], "training", "Container")
    emulator.seed([ACCOUNT, public, broken])
    records = {r.resource_id.rsplit("/", 1)[1]: r for r in sweep(app)}
    assert records["0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e09"].outcome == "failed"
    assert "RoleDefinitionDoesNotExist" in records["0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e09"].reason
    assert records["synthtrain01"].outcome == "contained"  # the sweep went on past it


def test_a_list_that_fails_is_that_collections_failed_record_and_the_sweep_goes_on(app, emulator):
    grant = b.role_assignment(ACCOUNT["id"], "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", b.STORAGE_BLOB_DATA_READER,
                              name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e0a")
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet")])
    emulator.seed([b.storage_account(allowBlobPublicAccess=False), nsg, grant])
    # Every attempt the SDK makes (four) fails: the NSG list cannot be had this sweep.
    broken = emulator.faults.add("status", path=r"/networkSecurityGroups$", method="GET", status=500, retry_after=0.01,
                                 times=4)
    records = {r.resource_id: r for r in sweep(app)}
    assert broken.fired == 4
    nsgs = f"/subscriptions/{b.SUBSCRIPTION}/providers/Microsoft.Network/networkSecurityGroups"
    assert records[nsgs].outcome == "failed" and "500" in records[nsgs].reason
    assert records[grant["id"]].outcome == "contained"  # the collections after it were swept
    assert emulator.arm.get(nsg["id"])["properties"]["securityRules"][0]["properties"]["access"] == "Allow"


def test_an_item_that_fails_sweep_after_sweep_is_one_record_until_it_is_judged(app, emulator):
    broken = b.role_assignment(ACCOUNT["id"], "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", "0000dead-0000-4000-8000-00000000beef",
                               name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e09")
    emulator.seed([ACCOUNT, broken])
    sweep(app)
    [failed] = sweep(app)
    assert app.runtime.ledger.repetition(failed.key).count == 2 and failed.resource_id == broken["id"]
    emulator.seed([b.role_assignment(ACCOUNT["id"], "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", b.READER,
                                     name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e09")])  # a role that exists, no data access
    [_, works_again] = sweep(app)
    assert (works_again.key, works_again.resource_id) == (f"{failed.key}.recovered", broken["id"])
    assert app.runtime.ledger.repetition(failed.key).recovery == works_again.key


def test_the_recorded_subscription_list_with_inherited_assignments_is_swept_to_the_end(app, emulator, shared):
    """Custodian's recorded list (recorded live): 74 assignments, five of them from the root
    and management groups. Every one is judged or on the record; none stops the sweep."""
    import json

    recorded = json.loads((shared / "recorded-arm" / "custodian-role-assignments.json").read_text())
    subscription = recorded["value"][0]["id"].split("/")[2]
    account = b.storage_account("synthrecorded", subscription=subscription)
    emulator.seed([recorded, account])
    records = sweep(app, CONTAINMENT_SUBSCRIPTIONS=subscription, CONTAINMENT_MODE="dry-run")
    inherited_ids = [a["id"] for a in recorded["value"] if not a["id"].startswith("/subscriptions/")]
    assert len(inherited_ids) == 5
    judged = {r.resource_id for r in records}
    # The emulator knows the built-in roles that matter here, not all of them: an assignment of
    # another built-in role is a failed record naming it, and the sweep goes on to the end.
    assert all("RoleDefinitionDoesNotExist" in r.reason for r in records if r.outcome == "failed")
    assert {r.outcome for r in records} - {"failed"} <= {"would-contain", "reported", "pending-approval"}
    assert any(i in judged for i in inherited_ids)  # inherited ones reach the ledger too
    assert any(r.rules == ["role_assignment_inherited_grants_data_access"] for r in records)


def test_what_the_sweep_contained_and_a_person_released_is_contained_again_when_the_release_ends(app, emulator):
    import json
    from datetime import datetime, timedelta, timezone

    import function_app
    from containment.core import clock
    from localazure.functions_host import call_http
    from tests.helpers.operators import ONCALL

    opened = b.storage_account(allowBlobPublicAccess=True)
    emulator.seed([opened])
    start = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)

    def at(hours: float):
        clock.set_source(lambda: start + timedelta(hours=hours))

    try:
        at(0)
        [contained] = sweep(app, CONTAINMENT_RELEASE_HOURS="2")
        at(0.2)
        answer = call_http(function_app.app, "POST", "release", {"resourceId": opened["id"], "decision": contained.key},
                           ONCALL)
        assert answer.status_code == 202, json.loads(answer.get_body())
        app.drain()
        at(1)
        during = [r for r in sweep(app, CONTAINMENT_RELEASE_HOURS="2") if r.decided_at.startswith("2026-11-24T09")]
        assert [r.outcome for r in during] == ["exempt"]
        assert emulator.arm.get(opened["id"])["properties"]["allowBlobPublicAccess"] is True
        at(3)
        sweep(app, CONTAINMENT_RELEASE_HOURS="2")
    finally:
        clock.set_source(None)
    assert emulator.arm.get(opened["id"])["properties"]["allowBlobPublicAccess"] is False
    assert [r.outcome for r in app.records() if r.operation == "drift_sweep"] == ["contained", "exempt", "contained"]
