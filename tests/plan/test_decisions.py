"""What a decision becomes (containment.plan.decisions, where every recorded outcome is
decided): exempt, held by the blast-radius budget, carried out, failed; and how a record
takes a decision. Pure: no emulator needed."""
from __future__ import annotations

from dataclasses import replace

import pytest

from containment.core.findings import Finding
from containment.core.records import DecisionRecord, PlannedAction
from containment.plan.decisions import (CONTAIN, OUTCOMES, by_person, carried_out, containment_failed, decide,
                                        exempted, held_by_budget, recorded, within_incident)
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

ACCOUNT = b.storage_account()
CONTAINER = b.container(ACCOUNT["id"], "training", "Container")
FINDING = Finding("storage_container_public_access", "high", CONTAINER["id"], "public", {"publicAccess": "Container"})
ENFORCE = load_settings({"CONTAINMENT_MODE": "enforce"})
UNDECIDED = DecisionRecord(key="e1", resource_id=CONTAINER["id"], outcome="", mode="enforce", reason="",
                           decided_at="2026-11-24T10:00:00.000000Z")


def claimed() -> DecisionRecord:
    return recorded(UNDECIDED, decide([FINDING], ENFORCE), {CONTAINER["id"]: CONTAINER})


def test_a_record_takes_the_decisions_outcome_findings_plan_and_state():
    record = claimed()
    assert record.outcome == CONTAIN and record.reason == "contain storage_container_public_access"
    assert record.rules == ["storage_container_public_access"] and record.severity == "high"
    assert record.plan == [{"action": "make_container_private", "target": CONTAINER["id"]}]
    assert record.actions == ["make_container_private"] and record.before == {CONTAINER["id"]: CONTAINER}
    assert UNDECIDED.outcome == ""  # records are values: the undecided one is unchanged


def test_an_exemption_keeps_the_findings_and_drops_the_plan():
    decision = exempted(decide([FINDING], ENFORCE), {"expires_at": "2026-12-01T00:00:00Z", "scope": ACCOUNT["id"],
                                                     "reason": "migration", "owner": "dana"})
    assert decision.outcome == "exempt" and decision.plan == () and decision.findings == (FINDING,)
    assert decision.reason.endswith("would have: contain storage_container_public_access")


def test_beyond_the_budget_the_plan_waits_for_a_person_with_the_true_reason():
    held = held_by_budget(claimed(), 1, 20, 20, ENFORCE, high=True)
    assert held.outcome == "pending-approval" and held.plan == [] and held.actions == []
    assert held.awaiting_approval == [{"action": "make_container_private", "target": CONTAINER["id"]}]
    assert "it needs 1 containment action(s), and 20 of the 20 an hour allows are spent" in held.reason
    low = held_by_budget(claimed(), 2, 14, 15, ENFORCE, high=False)
    assert "14 of the 15 an hour allows (the last 5 of CONTAINMENT_MAX_ACTIONS_PER_HOUR=20 are kept" in low.reason


def test_twenty_public_containers_are_contained_by_one_account_write():
    containers = [b.container(ACCOUNT["id"], f"shard{n:02}", "Container") for n in range(20)]
    findings = [replace(FINDING, resource_id=c["id"]) for c in containers]
    account = Finding("storage_blob_public_access_allowed", "high", ACCOUNT["id"], "allowed", {})
    decision = decide([account, *findings], ENFORCE)
    assert decision.plan == (PlannedAction("disable_blob_public_access", ACCOUNT["id"]),)
    assert "20 make_container_private contained by one disable_blob_public_access" in decision.reason
    # Without the account's own finding the account write still contains them all, in one action.
    assert decide(findings, ENFORCE).plan == decision.plan
    # One container alone is the narrowest write.
    assert [step.action for step in decide(findings[:1], ENFORCE).plan] == ["make_container_private"]


def test_within_one_incident_what_was_done_is_not_done_again():
    egress = Finding("egress_volume_anomaly", "high", ACCOUNT["id"], "2 GiB", {})
    first = recorded(replace(UNDECIDED, key="w1", resource_id=ACCOUNT["id"]), decide([egress], ENFORCE))
    assert first.actions == ["lock_account_network", "revoke_user_delegation_keys"]
    again = within_incident(decide([egress], ENFORCE), [first])
    assert again.outcome == "reported" and again.plan == ()
    assert again.reason.startswith("already contained in this incident by decision w1: nothing changed")
    worse = within_incident(decide([replace(egress, rule="egress_anonymous_read", severity="critical")], ENFORCE),
                            [first])
    assert [s.action for s in worse.plan] == ["disable_blob_public_access"]  # keys revoked once, not twice
    assert [s.action for s in worse.awaiting] == ["rotate_account_keys"]
    assert "already done in this incident by decision w1: lock_account_network, revoke_user_delegation_keys" \
        in worse.reason


def test_carried_out_is_contained_and_a_release_is_reported():
    detected = replace(claimed(), before={"a": 0, "account": 9})  # as detection read them
    done = carried_out(detected, {"a": 1}, {"a": 2}, changed=True, at="2026-11-24T10:00:05Z")
    # The worker's reads of its targets win; what detection read beside them stays.
    assert (done.outcome, done.before, done.after, done.contained_at) == (
        "contained", {"a": 1, "account": 9}, {"a": 2}, "2026-11-24T10:00:05Z")
    already = carried_out(claimed(), {}, {}, changed=False, at="t")
    assert already.reason.endswith("(already contained when the request ran)")
    release = replace(claimed(), operation="release")
    assert carried_out(release, {}, {}, changed=True, at="t").outcome == "reported"


def test_a_failure_keeps_what_was_decided():
    failed = containment_failed(claimed(), "HttpResponseError: boom")
    assert failed.outcome == "failed" and failed.plan == claimed().plan and failed.reason == "HttpResponseError: boom"


def test_what_a_person_asks_for_is_carried_out_in_enforce_and_recorded_in_dry_run():
    plan = (PlannedAction("make_container_private", CONTAINER["id"]),)
    assert by_person("break-glass by dana", plan, ENFORCE).outcome == CONTAIN
    assert by_person("break-glass by dana", plan, load_settings({})).outcome == "would-contain"


def test_every_outcome_the_contract_names_is_one_this_module_can_decide():
    assert set(OUTCOMES) == {"contained", "would-contain", "pending-approval", "reported", "compliant", "exempt",
                             "ignored", "failed", "rejected"}


OWN_GROUP = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-containment"
OWN_ACCOUNT = b.storage_account("containmentapp01", group="rg-containment")["id"]


@pytest.mark.parametrize("mode", ["enforce", "dry-run"])
def test_a_finding_on_the_apps_own_deployment_is_reported_at_least_high_and_never_planned(mode):
    settings = load_settings({"CONTAINMENT_MODE": mode, "CONTAINMENT_OWN_SCOPES": OWN_GROUP})
    mild = Finding("storage_shared_key_access_allowed", "medium", OWN_ACCOUNT, "shared key", {})
    public = Finding("storage_blob_public_access_allowed", "high", OWN_ACCOUNT, "public", {})
    decision = decide([mild, public], settings)
    assert (decision.outcome, decision.own_deployment, decision.plan, decision.awaiting) == ("reported", True, (), ())
    assert decision.reason.startswith("the app's own deployment (CONTAINMENT_OWN_SCOPES): reported, not acted on")
    assert "; would have: contain storage_blob_public_access_allowed" in decision.reason
    record = recorded(replace(UNDECIDED, resource_id=OWN_ACCOUNT), decide([mild], settings))
    assert (record.outcome, record.severity, record.own_deployment) == ("reported", "high", True)
    critical = Finding("egress_anonymous_read", "critical", OWN_ACCOUNT, "anonymous", {})
    assert recorded(UNDECIDED, decide([critical], settings)).severity == "critical"


def test_the_apps_own_deployment_compliant_is_compliant_and_elsewhere_nothing_changes():
    settings = load_settings({"CONTAINMENT_MODE": "enforce", "CONTAINMENT_OWN_SCOPES": OWN_GROUP})
    assert decide([], settings).outcome == "compliant" and not decide([], settings).own_deployment
    assert decide([FINDING], settings) == decide([FINDING], ENFORCE)  # FINDING is outside the own scopes
    assert recorded(UNDECIDED, decide([FINDING], settings)).own_deployment is False
