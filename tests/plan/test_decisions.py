"""What a decision becomes (containment.plan.decisions, where every recorded outcome is
decided): exempt, held by the blast-radius budget, carried out, failed; and how a record
takes a decision. Pure: no emulator needed."""
from __future__ import annotations

from dataclasses import replace

import pytest

from containment.core.findings import Finding
from containment.core.records import DecisionRecord, PlannedAction
from containment.plan.decisions import (CONTAIN, OUTCOMES, by_person, carried_out, containment_failed, decide,
                                        exempted, held_by_budget, recorded)
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


def test_beyond_the_budget_the_plan_waits_for_a_person():
    held = held_by_budget(claimed(), 20)
    assert held.outcome == "pending-approval" and held.plan == [] and held.actions == []
    assert held.awaiting_approval == [{"action": "make_container_private", "target": CONTAINER["id"]}]
    assert "blast-radius limit of 20" in held.reason


def test_carried_out_is_contained_and_a_release_is_reported():
    done = carried_out(claimed(), {"b": 1}, {"a": 2}, changed=True, at="2026-11-24T10:00:05Z")
    assert (done.outcome, done.before, done.after, done.contained_at) == ("contained", {"b": 1}, {"a": 2},
                                                                          "2026-11-24T10:00:05Z")
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
