"""People stay in charge: approval, the blast-radius limit, break-glass and exemptions,
through the HTTP functions as the host invokes them."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from containment.core import clock
from tests.helpers import arm_bodies as b
from tests.helpers.events import CONTAINER_WRITE, write_event

ACCOUNT = b.storage_account()
OPERATOR = {"x-ms-client-principal-name": "sec-oncall@contoso.example"}


def http(method: str, route: str, body=None, headers=OPERATOR):
    import function_app
    from localazure.functions_host import call_http

    response = call_http(function_app.app, method, route, body, headers)
    return response.status_code, json.loads(response.get_body())


def role_grant(scope: str, name: str) -> dict:
    return b.role_assignment(scope, "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", b.CONTRIBUTOR, name=name)


@pytest.fixture
def held(app, emulator):
    """A subscription-scope grant: its deletion waits for a person."""
    grant = role_grant(f"/subscriptions/{b.SUBSCRIPTION}", "0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e05")
    emulator.seed([ACCOUNT, grant])
    app.configure(CONTAINMENT_MODE="enforce")
    event = write_event(grant["id"], "Microsoft.Authorization/roleAssignments/write")
    app.deliver(event)
    return grant, event["id"]


def test_pending_decisions_are_listed_with_their_expiry(held, app):
    status, body = http("GET", "decisions/pending")
    assert status == 200
    [pending] = body["pending"]
    assert pending["key"] == held[1] and pending["expires_at"] > pending["decided_at"]


def test_approval_runs_the_held_action_through_the_queue_and_names_the_approver(held, app, emulator):
    grant, key = held
    status, body = http("POST", f"decisions/{key}/approve")
    assert (status, body["actions"]) == (202, ["delete_role_assignment"])
    app.drain()
    assert emulator.arm.get(grant["id"]) is None
    outcomes = {r.key: r for r in app.records()}
    assert outcomes[key].outcome == "pending-approval"  # the original stays as it was: an audit trail
    approved = outcomes[f"{key}.approved"]
    assert approved.outcome == "contained" and approved.actor == {"name": "sec-oncall@contoso.example"}
    assert http("GET", "decisions/pending")[1]["pending"] == []
    assert http("POST", f"decisions/{key}/approve")[0] == 404  # once only


def test_a_denial_is_recorded_and_nothing_is_done(held, app, emulator):
    grant, key = held
    status, _ = http("POST", f"decisions/{key}/deny")
    app.drain()
    assert status == 200 and emulator.arm.get(grant["id"]) is not None
    denied = next(r for r in app.records() if r.key == f"{key}.denied")
    assert denied.outcome == "reported" and "denied by sec-oncall@contoso.example" in denied.reason


def test_an_approval_after_the_grant_was_replaced_under_its_id_deletes_nothing_and_says_why(held, app, emulator):
    """Approved later, the ID holds another grant (an allowlisted pipeline's Reader): the
    approval is moot, recorded with why, and what nobody judged is left alone."""
    grant, key = held
    replacement = b.role_assignment(f"/subscriptions/{b.SUBSCRIPTION}", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                                    "acdd72a7-3385-48ef-bd42-f606fba81ae7", name=grant["name"])
    emulator.arm.resources[grant["id"].lower()] = replacement
    assert http("POST", f"decisions/{key}/approve")[0] == 202
    app.drain()
    assert emulator.arm.get(grant["id"]) == replacement
    approved = {r.key: r for r in app.records()}[f"{key}.approved"]
    assert approved.outcome == "reported" and "moot, nothing done" in approved.reason
    assert "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d" in approved.reason
    assert not [w for w in app.writes() if w.method == "DELETE"]


def test_an_expired_approval_is_refused(held, app, emulator):
    grant, key = held
    clock.set_source(lambda: datetime.now(timezone.utc) + timedelta(hours=25))
    try:
        status, body = http("POST", f"decisions/{key}/approve")
    finally:
        clock.set_source(None)
    app.drain()
    assert status == 409 and "approval expired" in body["error"]
    assert emulator.arm.get(grant["id"]) is not None


def test_the_hourly_sweep_closes_an_approval_nobody_gave_before_it_expired(held, app, emulator):
    import function_app
    from localazure.functions_host import fire_timer

    grant, key = held
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    assert fire_timer(function_app.app, "drift_sweep").error is None  # within the expiry: still waiting
    assert key in [p["key"] for p in http("GET", "decisions/pending")[1]["pending"]]
    clock.set_source(lambda: datetime.now(timezone.utc) + timedelta(hours=25))
    try:
        assert fire_timer(function_app.app, "drift_sweep").error is None
        assert fire_timer(function_app.app, "drift_sweep").error is None  # closed once
    finally:
        clock.set_source(None)
    expired = [r for r in app.records() if r.key == f"{key}.expired"]
    assert [(r.outcome, r.actor) for r in expired] == [("reported", {"name": "the approval expiry (drift_sweep)"})]
    assert "approval expired" in expired[0].reason and "delete_role_assignment not carried out" in expired[0].reason
    assert key not in [p["key"] for p in http("GET", "decisions/pending")[1]["pending"]]
    assert http("POST", f"decisions/{key}/approve")[0] == 404
    assert emulator.arm.get(grant["id"]) is not None  # the sweep found the grant again: a new decision waits


def test_without_an_authenticated_principal_the_key_holder_is_recorded(held, app):
    http("POST", f"decisions/{held[1]}/deny", headers={})
    denied = next(r for r in app.records() if r.key.endswith(".denied"))
    assert "function-key holder" in denied.reason


def test_the_blast_radius_limit_holds_what_is_beyond_it(app, emulator):
    containers = [b.container(ACCOUNT["id"], f"shard{i}", "Container") for i in range(4)]
    emulator.seed([ACCOUNT, *containers])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_MAX_ACTIONS_PER_HOUR="2")
    for container in containers:  # a storm of findings
        app.deliver(write_event(container["id"], CONTAINER_WRITE))
    app.drain()
    outcomes = sorted(r.outcome for r in app.records())
    assert outcomes == ["contained", "contained", "pending-approval", "pending-approval"]
    held = [r for r in app.records() if r.outcome == "pending-approval"]
    assert all("blast-radius limit" in r.reason and r.awaiting_approval for r in held)
    private = [emulator.arm.get(c["id"])["properties"]["publicAccess"] for c in containers]
    assert private.count("None") == 2
    # A person approves one anyway: approvals are not counted against the limit.
    assert http("POST", f"decisions/{held[0].key}/approve")[0] == 202
    app.drain()
    assert [emulator.arm.get(c["id"])["properties"]["publicAccess"] for c in containers].count("None") == 3


def test_break_glass_contains_everything_the_type_supports_and_records_who_asked(app, emulator):
    opened = b.storage_account(allowBlobPublicAccess=True, allowSharedKeyAccess=True)
    emulator.seed([opened])
    app.configure(CONTAINMENT_MODE="enforce")
    status, body = http("POST", "contain", {"resourceId": opened["id"], "reason": "suspected key leak"})
    app.drain()
    assert status == 202 and "rotate_account_keys" in body["actions"]
    [record] = app.records()
    assert (record.outcome, record.operation, record.actor) == ("contained", "break-glass",
                                                                {"name": "sec-oncall@contoso.example"})
    account = emulator.arm.get(opened["id"])["properties"]
    assert account["allowBlobPublicAccess"] is False and account["allowSharedKeyAccess"] is False
    assert set(account["keyCreationTime"]) == {"key1", "key2"}  # rotated: the person asked for everything


def test_break_glass_refuses_what_it_cannot_do(app, emulator):
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    assert http("POST", "contain", {"resourceId": "/subscriptions/../etc"})[0] == 400
    foreign = b.storage_account(subscription=b.OTHER_SUBSCRIPTION)
    assert http("POST", "contain", {"resourceId": foreign["id"]})[0] == 403
    assert http("POST", "contain", {"resourceId": ACCOUNT["id"], "actions": ["delete_role_assignment"]})[0] == 400
    assert app.records() == []


def test_break_glass_on_a_resource_that_does_not_exist_is_not_recorded_contained(app, emulator):
    grant = role_grant(ACCOUNT["id"], "0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e0b")  # never seeded
    emulator.seed([ACCOUNT])
    app.configure(CONTAINMENT_MODE="enforce")
    assert http("POST", "contain", {"resourceId": grant["id"]})[0] == 202
    app.drain()
    [record] = app.records()
    assert record.outcome == "reported" and f"nothing to contain: {grant['id']} does not exist" in record.reason


@pytest.mark.parametrize("body", [{"resourceId": ACCOUNT["id"], "decision": "a/b"},
                                  {"resourceId": ACCOUNT["id"], "decision": "x#y"},
                                  {"resourceId": "not an id", "decision": "k"}], ids=["slash", "hash", "bad id"])
def test_a_release_naming_a_key_tables_cannot_hold_is_a_400(app, body):
    app.configure(CONTAINMENT_MODE="enforce")
    assert http("POST", "release", body)[0] == 400


def test_an_approval_of_a_key_tables_cannot_hold_is_a_400(app):
    app.configure(CONTAINMENT_MODE="enforce")
    assert http("POST", "decisions/a%2Fb/approve")[0] == 400
    assert http("POST", "decisions/a b/deny")[0] == 400


def test_an_exemption_makes_findings_exempt_until_it_expires(app, emulator):
    public = b.container(ACCOUNT["id"], "training", "Container")
    emulator.seed([ACCOUNT, public])
    app.configure(CONTAINMENT_MODE="enforce")
    expires = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    status, _ = http("POST", "exemptions", {"scope": ACCOUNT["id"], "reason": "public benchmark subset",
                                            "owner": "ml-platform", "expires": expires})
    assert status == 201
    app.deliver(write_event(public["id"], CONTAINER_WRITE))
    app.drain()
    [record] = app.records()
    assert record.outcome == "exempt" and "public benchmark subset" in record.reason and record.actions == []
    assert emulator.arm.get(public["id"])["properties"]["publicAccess"] == "Container"
    [listed] = http("GET", "exemptions")[1]["exemptions"]
    assert listed["created_by"] == "sec-oncall@contoso.example"

    clock.set_source(lambda: datetime.now(timezone.utc) + timedelta(days=3))
    try:
        app.deliver(write_event(public["id"], CONTAINER_WRITE))
        app.drain()
    finally:
        clock.set_source(None)
    assert sorted(r.outcome for r in app.records()) == ["contained", "exempt"]


def test_exemptions_are_validated_and_removable(app):
    assert http("POST", "exemptions", {"scope": ACCOUNT["id"]})[0] == 400
    past = {"scope": ACCOUNT["id"], "reason": "r", "owner": "o", "expires": "2020-01-01T00:00:00Z"}
    assert http("POST", "exemptions", past)[0] == 400
    ok = {**past, "expires": "2099-01-01T00:00:00Z"}
    assert http("POST", "exemptions", ok)[0] == 201
    assert http("DELETE", f"exemptions?scope={ACCOUNT['id']}")[0] == 200
    assert http("GET", "exemptions")[1]["exemptions"] == []


# -- release ----------------------------------------------------------------------------------

def contained(app, emulator, resources, event_resource, operation, **settings):
    emulator.seed(resources)
    app.configure(CONTAINMENT_MODE="enforce", **settings)
    app.deliver(write_event(event_resource, operation))
    app.drain()
    [record] = [r for r in app.records() if r.outcome == "contained"]
    return record


def test_release_puts_a_container_back_as_it_was(app, emulator):
    allowing = b.storage_account(allowBlobPublicAccess=True)
    public = b.container(allowing["id"], "training", "Container")
    record = contained(app, emulator, [allowing, public], public["id"], CONTAINER_WRITE)
    status, body = http("POST", "release", {"resourceId": record.resource_id, "decision": record.key})
    app.drain()
    assert status == 202 and body["irreversible"] == []
    assert emulator.arm.get(public["id"])["properties"]["publicAccess"] == "Container"
    released = next(r for r in app.records() if r.key == f"{record.key}.released")
    assert (released.outcome, released.operation) == ("reported", "release")
    assert "released by sec-oncall@contoso.example" in released.reason
    ids = [n["id"] for n in emulator.notifications if n["type"].endswith(".released")]
    assert ids == [f"{record.key}.released"]  # not ".released.released"


def test_releasing_a_container_the_account_no_longer_lets_be_public_fails_with_arms_code(app, emulator):
    """The account disallows public access (a container keeps its level, but no anonymous
    read succeeds): ARM refuses to set it back (409 PublicAccessNotPermitted), and the
    release is on the record as failed, with that code, not as restored."""
    public = b.container(ACCOUNT["id"], "training", "Container")
    record = contained(app, emulator, [ACCOUNT, public], public["id"], CONTAINER_WRITE)
    status, _ = http("POST", "release", {"resourceId": record.resource_id, "decision": record.key})
    app.drain()
    assert status == 202
    assert emulator.arm.get(public["id"])["properties"]["publicAccess"] == "None"
    released = next(r for r in app.records() if r.key == f"{record.key}.released")
    assert released.outcome == "failed" and "409 PublicAccessNotPermitted" in released.reason


def test_release_recreates_a_deleted_role_assignment_exactly(app, emulator):
    grant = role_grant(ACCOUNT["id"], "0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e01")
    record = contained(app, emulator, [ACCOUNT, grant], grant["id"], "Microsoft.Authorization/roleAssignments/write")
    assert emulator.arm.get(grant["id"]) is None
    assert http("POST", "release", {"resourceId": record.resource_id, "decision": record.key})[0] == 202
    app.drain()
    restored = emulator.arm.get(grant["id"])["properties"]
    for field in ("principalId", "roleDefinitionId", "scope"):
        assert restored[field].lower() == grant["properties"][field].lower()


def test_release_removes_the_deny_the_app_added(app, emulator):
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet")])
    record = contained(app, emulator, [nsg], nsg["id"], "Microsoft.Network/networkSecurityGroups/write",
                       CONTAINMENT_ALLOWED_CIDRS="10.20.0.0/16")
    assert http("POST", "release", {"resourceId": record.resource_id, "decision": record.key})[0] == 202
    app.drain()
    assert [r["name"] for r in emulator.arm.get(nsg["id"])["properties"]["securityRules"]] == ["allow-https"]


def test_an_nsg_of_a_thousand_rules_is_contained_and_released_from_its_record_read_back_whole(app, emulator):
    """Its body before and after is far more than a ledger entity holds: the record keeps it in
    its evidence blob, and release reads it back whole from there."""
    from containment.adapters.ledger import resource_partition
    from tests.helpers.table_limits import every_entity_fits

    training = [b.security_rule(f"allow-training-{n:03d}", 1000 + n, source=f"10.20.{n // 250}.{n % 250}/32")
                for n in range(998)]
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet"), *training])
    record = contained(app, emulator, [nsg], nsg["id"], "Microsoft.Network/networkSecurityGroups/write",
                       CONTAINMENT_ALLOWED_CIDRS="10.20.0.0/16")
    assert len(record.before[nsg["id"]]["properties"]["securityRules"]) == 999
    assert len(record.after[nsg["id"]]["properties"]["securityRules"]) == 1000  # with the Deny the app added
    entity = app.runtime.ledger.table.get_entity(resource_partition(nsg["id"]), record.key)
    assert {"before", "after"}.isdisjoint(entity) and entity["evidence_blob"].startswith(f"{record.key}/")
    every_entity_fits(app.runtime.ledger.table)
    assert http("POST", "release", {"resourceId": record.resource_id, "decision": record.key})[0] == 202
    app.drain()
    rules = emulator.arm.get(nsg["id"])["properties"]["securityRules"]
    assert len(rules) == 999 and "deny-untrusted-allow-https" not in {r["name"] for r in rules}


def test_release_is_refused_when_the_resource_changed_since_unless_forced(app, emulator):
    allowing = b.storage_account(allowBlobPublicAccess=True)
    public = b.container(allowing["id"], "training", "Container")
    record = contained(app, emulator, [allowing, public], public["id"], CONTAINER_WRITE)
    emulator.arm.resources[public["id"].lower()]["properties"]["publicAccess"] = "Blob"  # someone's later change
    status, body = http("POST", "release", {"resourceId": record.resource_id, "decision": record.key})
    assert status == 409 and body["changed"] == {public["id"]: ["publicAccess"]}
    assert http("POST", "release", {"resourceId": record.resource_id, "decision": record.key, "force": True})[0] == 202
    app.drain()
    assert emulator.arm.get(public["id"])["properties"]["publicAccess"] == "Container"


def test_release_says_what_cannot_be_undone(app, emulator):
    emulator.seed([ACCOUNT])
    app.configure(CONTAINMENT_MODE="enforce")
    http("POST", "contain", {"resourceId": ACCOUNT["id"], "actions": ["lock_account_network", "rotate_account_keys"]})
    app.drain()
    [record] = app.records()
    status, body = http("POST", "release", {"resourceId": record.resource_id, "decision": record.key})
    assert body["irreversible"] == ["rotate_account_keys"]
    assert http("POST", "release", {"resourceId": ACCOUNT["id"], "decision": "nope"})[0] == 404


def test_the_operator_flows_calls_conform_to_the_specs(app, emulator, shared, tmp_path):
    """Release recreates a role assignment (PUT) and removes the app's Deny (DELETE rule);
    break-glass rotates keys and revokes user-delegation keys: all checked by oav."""
    from localazure.conformance import validate_traffic

    grant = role_grant(ACCOUNT["id"], "0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e01")
    record = contained(app, emulator, [ACCOUNT, grant], grant["id"], "Microsoft.Authorization/roleAssignments/write")
    http("POST", "release", {"resourceId": record.resource_id, "decision": record.key})
    nsg = b.nsg(rules=[b.security_rule("allow-https", 300, source="Internet")])
    emulator.seed([nsg])
    app.deliver(write_event(nsg["id"], "Microsoft.Network/networkSecurityGroups/write"))
    app.drain()
    nsg_record = next(r for r in app.records() if r.resource_id == nsg["id"])
    http("POST", "release", {"resourceId": nsg["id"], "decision": nsg_record.key})
    http("POST", "contain", {"resourceId": ACCOUNT["id"], "actions": ["revoke_user_delegation_keys",
                                                                      "rotate_account_keys"]})
    app.drain()
    assert emulator.arm.get(grant["id"]) is not None and len(emulator.arm.get(nsg["id"])["properties"]["securityRules"]) == 1
    emulator.write_traffic(tmp_path)
    report = validate_traffic(tmp_path)
    assert report.ok, str(report)
    covered = {op.lower() for op in report.operations_covered}
    assert {"roleassignments_create", "securityrules_delete", "storageaccounts_regeneratekey",
            "storageaccounts_revokeuserdelegationkeys"} <= covered, covered


def test_a_body_nested_deeper_than_can_be_read_is_a_400_not_a_crash(app):
    import azure.functions as func

    import function_app
    from localazure.functions_host import user_function

    app.configure(CONTAINMENT_MODE="enforce")
    deep = b"[" * 100_000 + b"]" * 100_000
    request = func.HttpRequest(method="POST", url="http://localhost:7071/api/contain", headers=OPERATOR, params={},
                               route_params={}, body=deep)
    response = user_function(function_app.app, "break_glass")(request)
    assert response.status_code == 400 and "not JSON" in response.get_body().decode()
