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
    quiet = b.storage_account("quiet01")  # protected and compliant
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
    emulator.seed([b.storage_account(allowSharedKeyAccess=True)])
    assert [r.outcome for r in sweep(app)] == ["reported"]
    assert [r.outcome for r in sweep(app)] == ["reported"]


def test_the_sweep_needs_the_subscriptions_it_may_list(app, emulator):
    [failed] = sweep(app, CONTAINMENT_SUBSCRIPTIONS="")
    assert failed.outcome == "failed" and "CONTAINMENT_SUBSCRIPTIONS is empty" in failed.reason
