"""Notifications per incident, not per record: one thread per incident (its first detection,
containment, a held approval, a failure, the Article 33 clock, people's decisions about it);
`reported` findings in an hourly digest; mutes of a rule on a scope, never of a critical
finding; a topic that fails never stops containment, and the failure is kept."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import partial

import pytest

from containment.core import clock
from containment.core.records import DecisionRecord
from tests.helpers import arm_bodies as b
from tests.helpers.concurrency import at_once
from tests.helpers.events import ACCOUNT_WRITE, CONTAINER_WRITE, write_event
from tests.helpers.operators import ONCALL, ONCALL_ID, operator

ACCOUNT = b.storage_account()
PUBLIC = b.container(ACCOUNT["id"], "training", "Container")
START = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
INCIDENT = "SyntheticDataContainment.Incident."
DPO = operator("dpo@contoso.example", "d0d0d0d0-1111-4222-8333-444455556666",
               roles=("Containment.Assess", "Containment.Read"))
WORKSPACE = "4f1d3c2b-0a9e-4d8c-8b7a-6f5e4d3c2b1a"


def http(method: str, route: str, body=None, headers=ONCALL):
    import function_app
    from localazure.functions_host import call_http

    response = call_http(function_app.app, method, route, body, headers)
    return response.status_code, json.loads(response.get_body())


def hourly(emulator, moment, at: datetime) -> list[dict]:
    """Run the notification timer at `at`; what it published."""
    import function_app
    from localazure.functions_host import fire_timer

    moment(at)
    before = len(emulator.notifications)
    assert fire_timer(function_app.app, "notifications").error is None
    return emulator.notifications[before:]


def deliver(app, moment, resource_id: str, operation: str = CONTAINER_WRITE, at: datetime = START,
            actor: str = "0a0a0a0a-0000-4000-8000-000000000001") -> None:
    moment(at)
    app.deliver(write_event(resource_id, operation, actor=actor, time=clock.iso(at)))
    app.drain()


def kinds(emulator) -> list[str]:
    return [n["type"].removeprefix(INCIDENT) for n in emulator.notifications]


# -- one thread per incident ------------------------------------------------------------------------------
def test_an_incident_is_one_thread_and_its_first_notice_says_all_that_happened_at_once(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, PUBLIC["id"])
    [record] = app.records()
    [event] = emulator.notifications
    assert event["type"] == "SyntheticDataContainment.Incident.detected"
    assert event["source"] == "/synthetic-data-containment" and event["subject"] == f"/incidents/{record.incident}"
    assert event["id"] == f"{record.incident}.detected"
    data = event["data"]
    assert data["changed"] == ["detected", "contained"] and data["status"] == "contained"
    assert data["incident"] == record.incident and data["resources"] == [PUBLIC["id"]]
    assert (data["decision"], data["outcome"], data["actions"]) == (record.key, "contained", ["make_container_private"])
    assert data["gdpr_deadline"] == (START + timedelta(hours=72)).isoformat()
    assert data["summary"] == f"incident {record.incident}: high finding(s) on 1 resource(s), contained"


def three_containments_in_one_incident(app, emulator, moment) -> dict:
    """Three public containers of one account contained a minute apart: one incident. The
    same person's subscription-wide Contributor grant is seeded, not yet delivered: returned."""
    others = [b.container(ACCOUNT["id"], name, "Container") for name in ("validation", "holdout")]
    grant = b.role_assignment(f"/subscriptions/{b.SUBSCRIPTION}", "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
                              b.CONTRIBUTOR, name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e05")
    emulator.seed([ACCOUNT, PUBLIC, *others, grant])
    app.configure(CONTAINMENT_MODE="enforce")
    for minute, container in enumerate([PUBLIC, *others]):
        deliver(app, moment, container["id"], at=START + timedelta(minutes=minute))
    return grant


def test_later_findings_update_the_incident_without_a_notice_and_a_hold_is_one(app, emulator, moment):
    grant = three_containments_in_one_incident(app, emulator, moment)
    assert kinds(emulator) == ["detected"]  # three containments, one incident, one notice
    # The same person's subscription-wide grant: its deletion waits for a person, in the same incident.
    deliver(app, moment, grant["id"], "Microsoft.Authorization/roleAssignments/write", START + timedelta(minutes=5))
    records = app.records()
    assert len({r.incident for r in records}) == 1
    assert kinds(emulator) == ["detected", "held"]
    held = emulator.notifications[1]
    assert held["id"] == f"{records[0].incident}.held.{records[-1].key}"
    assert held["data"]["status"] == "partly-contained" and held["data"]["resource_count"] == 4
    assert [w["action"] for w in held["data"]["waiting"]] == ["delete_role_assignment"]


def test_once_what_was_held_is_settled_the_next_hold_is_notified_again(app, emulator, moment):
    grants = [b.role_assignment(f"/subscriptions/{b.SUBSCRIPTION}", "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
                                b.CONTRIBUTOR, name=f"0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e0{n}") for n in (5, 6)]
    emulator.seed([ACCOUNT, *grants])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, grants[0]["id"], "Microsoft.Authorization/roleAssignments/write")
    [first] = app.records()
    moment(START + timedelta(minutes=10))
    assert http("POST", f"decisions/{first.key}/approve")[0] == 202
    app.drain()
    deliver(app, moment, grants[1]["id"], "Microsoft.Authorization/roleAssignments/write", START + timedelta(hours=1))
    second = app.records()[-1]
    assert second.incident == first.incident and second.outcome == "pending-approval"
    incident = [n for n in emulator.notifications if n["type"].startswith(INCIDENT)]
    assert [(n["type"].removeprefix(INCIDENT), n["data"]["changed"]) for n in incident] == [
        ("detected", ["detected", "held"]), ("held", ["held"])]
    assert incident[1]["id"] == f"{first.incident}.held.{second.key}"
    # The approval itself is a person's act, notified as a decision.
    assert f"{first.key}.approved.contained" in [n["id"] for n in emulator.notifications]


def test_after_a_release_the_next_containment_in_the_incident_is_notified(app, emulator, moment):
    allowing = b.storage_account(allowBlobPublicAccess=True)
    second = b.container(allowing["id"], "validation", "Container")
    emulator.seed([allowing, PUBLIC, second])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, PUBLIC["id"])
    [contained] = app.records()
    moment(START + timedelta(minutes=30))
    assert http("POST", "release", {"resourceId": PUBLIC["id"], "decision": contained.key})[0] == 202
    app.drain()
    deliver(app, moment, second["id"], at=START + timedelta(hours=1))
    again = app.records()[-1]
    assert again.outcome == "contained" and again.incident == contained.incident
    assert [n["id"] for n in emulator.notifications] == [
        f"{contained.incident}.detected", f"{contained.key}.released", f"{contained.incident}.contained.{again.key}"]


def test_records_of_one_incident_arriving_at_once_make_one_detected_notice(app, emulator, moment):
    """Two instances record findings of one incident at the same moment (the app's own
    deployment: reported, so each is recorded and notified by the instance that judged it)."""
    group = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-containment"
    own = b.storage_account("containmentapp01", group="rg-containment")
    containers = [b.container(own["id"], name, "Container") for name in ("exports", "reports")]
    emulator.seed([own, *containers])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_OWN_SCOPES=group)
    moment(START)
    events = [write_event(c["id"], CONTAINER_WRITE, time=clock.iso(START)) for c in containers]
    app.runtime  # noqa: B018 - one runtime for both threads, as one process's worker threads share it
    invocations = at_once(*(partial(app.deliver, event) for event in events))
    assert [i.error for run in invocations for i in run if i.error] == []
    records = app.records()
    assert [r.outcome for r in records] == ["reported", "reported"] and len({r.incident for r in records}) == 1
    assert kinds(emulator) == ["detected"]


# -- what one record claims: one transaction, each notice once ----------------------------------------------
class NoticeCalls:
    """A ledger's table, noting the calls about the `notice` partition (its notices and clocks)."""

    def __init__(self, table):
        self._table, self.calls = table, []

    def __getattr__(self, name):
        attribute = getattr(self._table, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            if "'notice'" in repr((args, kwargs)):
                self.calls.append(name)
            return attribute(*args, **kwargs)
        return call


def test_a_first_exposure_claims_its_watch_its_clock_and_its_notice_in_one_call(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    ledger = app.runtime.ledger
    counted = ledger.table = NoticeCalls(ledger.table)
    deliver(app, moment, PUBLIC["id"])
    [record] = app.records()
    assert counted.calls == ["submit_transaction"]
    assert set(ledger.notices(record.incident)) == {f"{record.incident} {kind}"
                                                    for kind in ("watched", "detected", "contained")}
    assert ledger.clocks_due(clock.iso(START + timedelta(hours=48))) == [record.incident]


def test_a_later_finding_in_the_incident_reads_its_notices_once_and_claims_none(app, emulator, moment):
    other = b.container(ACCOUNT["id"], "validation", "Container")
    emulator.seed([ACCOUNT, PUBLIC, other])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, PUBLIC["id"])
    ledger = app.runtime.ledger
    counted = ledger.table = NoticeCalls(ledger.table)
    deliver(app, moment, other["id"], at=START + timedelta(minutes=1))
    first, later = app.records()
    assert later.incident == first.incident and kinds(emulator) == ["detected"]
    assert counted.calls == ["query_entities"]  # which notices it has (and its assessment): all there


def test_a_notice_lists_its_incident_in_one_query_and_reads_only_the_records_not_in_hand(app, emulator, moment):
    grant = three_containments_in_one_incident(app, emulator, moment)
    ledger = app.runtime.ledger
    listed, read = [], []
    ledger.incident_pointers = lambda incident, listing=ledger.incident_pointers: listed.append(incident) or listing(
        incident)
    ledger.find = lambda resource_id, key, finding=ledger.find: read.append(key) or finding(resource_id, key)
    deliver(app, moment, grant["id"], "Microsoft.Authorization/roleAssignments/write", START + timedelta(minutes=5))
    *contained, held = app.records()
    assert kinds(emulator) == ["detected", "held"] and emulator.notifications[-1]["data"]["resource_count"] == 4
    assert listed == [held.incident]
    assert sorted(read) == sorted(r.key for r in contained)  # the held record itself was in hand


class ClaimsMeanwhile:
    """One instance's ledger, on which another instance claims notices just before this one's first claim."""

    def __init__(self, ledger, meanwhile):
        self._ledger, self._meanwhile, self.claims = ledger, meanwhile, 0

    def __getattr__(self, name):
        return getattr(self._ledger, name)

    def claim_notices(self, *args, **kwargs):
        self.claims += 1
        if self.claims == 1:
            self._meanwhile()
        return self._ledger.claim_notices(*args, **kwargs)


def test_a_claim_that_loses_a_notice_to_another_instance_claims_the_rest_and_each_is_sent_once(app, emulator):
    from containment.adapters.runtime import Runtime
    from containment.record.notifications import notify

    app.configure(CONTAINMENT_MODE="enforce")
    incident = "inc-20261124-0123456789ab"  # opened by neither record: both read its notices first
    finding = {"rule": "storage_container_public_access", "severity": "high", "summary": "public",
               "resource_id": PUBLIC["id"], "evidence": {}}

    def write(key: str, **fields):
        return app.runtime.ledger.write(DecisionRecord(
            key=key, resource_id=PUBLIC["id"], mode="enforce", reason="test", decided_at=clock.iso(START),
            event_time=clock.iso(START), incident=incident, findings=[finding], rules=[finding["rule"]],
            severity="high", **fields))

    contained = write("evt-contained", outcome="contained", actions=["make_container_private"])
    held = write("evt-held", outcome="pending-approval",
                 awaiting_approval=[{"action": "make_container_private", "target": PUBLIC["id"]}])
    other = Runtime(app.runtime.settings)
    raced = app.runtime.__dict__["ledger"] = ClaimsMeanwhile(app.runtime.ledger, lambda: notify(other, held))
    notify(app.runtime, contained)
    assert raced.claims == 2  # its first claim found `watched` and `detected` taken, its second claimed the rest
    assert [(n["id"], n["data"]["changed"]) for n in emulator.notifications] == [
        (f"{incident}.detected", ["detected", "held"]), (f"{incident}.contained.evt-contained", ["contained"])]
    assert set(app.runtime.ledger.notices(incident)) == {f"{incident} {kind}"
                                                          for kind in ("watched", "detected", "held", "contained")}


def test_a_clock_kept_before_clocks_moved_beside_the_notices_still_brings_its_notices(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, PUBLIC["id"])
    incident = app.records()[0].incident
    ledger = app.runtime.ledger
    # As an older version kept it: in a partition of its own, keyed by the incident.
    ledger.drop_clock(incident)
    ledger.table.upsert_entity({"PartitionKey": "notice-clock", "RowKey": incident,
                                "due_at": clock.iso(START + timedelta(hours=48))})
    [due] = hourly(emulator, moment, START + timedelta(hours=48, minutes=5))
    assert due["id"] == f"{incident}.due"
    assert list(ledger.table.query_entities("PartitionKey eq 'notice-clock'")) == []
    [overdue] = hourly(emulator, moment, START + timedelta(hours=72, minutes=5))
    assert overdue["id"] == f"{incident}.overdue"


# -- the Article 33 clock, from the hourly timer ------------------------------------------------------------
def test_the_assessment_due_and_the_deadline_passed_are_each_notified_once(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, PUBLIC["id"])
    incident = app.records()[0].incident
    assert hourly(emulator, moment, START + timedelta(hours=1, minutes=5)) == []
    [due] = hourly(emulator, moment, START + timedelta(hours=48, minutes=5))
    assert due["type"] == f"{INCIDENT}due" and due["id"] == f"{incident}.due"
    assert due["subject"] == f"/incidents/{incident}" and due["data"]["gdpr_hours_left"] == 23.9
    assert "the Article 33 assessment is due by 2026-11-27T10:00:00+00:00" in due["data"]["summary"]
    assert hourly(emulator, moment, START + timedelta(hours=49, minutes=5)) == []
    [overdue] = hourly(emulator, moment, START + timedelta(hours=72, minutes=5))
    assert overdue["id"] == f"{incident}.overdue" and overdue["data"]["gdpr_hours_left"] == -0.1
    assert hourly(emulator, moment, START + timedelta(hours=96)) == []


def test_an_assessment_stops_the_clock_notices_and_the_workflow_is_in_the_thread(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, PUBLIC["id"])
    incident = app.records()[0].incident
    moment(START + timedelta(hours=5))
    assessment = {"notifiable": False, "high_risk": False, "reason": "dp-epsilon 0.5, no personal-data source"}
    assert http("POST", f"incidents/{incident}/assess", assessment, headers=DPO)[0] == 200
    assert http("POST", f"incidents/{incident}/close", {"reason": "contained in minutes"}, headers=DPO)[0] == 200
    assert hourly(emulator, moment, START + timedelta(hours=48, minutes=5)) == []
    assert hourly(emulator, moment, START + timedelta(hours=72, minutes=5)) == []
    assert kinds(emulator) == ["detected", "assessed", "closed"]
    assessed, closed = emulator.notifications[1:]
    assert {assessed["subject"], closed["subject"]} == {f"/incidents/{incident}"}
    assert assessed["data"]["status"] == "assessed" and assessed["data"]["decided_by"] == "dpo@contoso.example"
    assert assessed["data"]["assessment"]["reason"] == assessment["reason"] and closed["id"] == f"{incident}.closed"


def test_after_a_merge_and_a_split_each_incident_left_has_one_clock(app, emulator, moment):
    second_account = b.storage_account("synthother01")
    split_off = b.container(ACCOUNT["id"], "validation", "Container")
    theirs = b.container(second_account["id"], "training", "Container")
    emulator.seed([ACCOUNT, PUBLIC, split_off, second_account, theirs])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, PUBLIC["id"])
    deliver(app, moment, split_off["id"], at=START + timedelta(minutes=1))
    deliver(app, moment, theirs["id"], at=START + timedelta(hours=1), actor="0b0b0b0b-0000-4000-8000-00000000000b")
    first, moved, other = app.records()
    assert first.incident == moved.incident != other.incident
    moment(START + timedelta(hours=2))
    merge = {"into": first.incident, "reason": "one pipeline"}
    assert http("POST", f"incidents/{other.incident}/merge", merge, headers=DPO)[0] == 200
    status, split = http("POST", f"incidents/{first.incident}/split", {"decisions": [moved.key], "reason": "unrelated"},
                         headers=DPO)
    assert status == 200
    thread = [(n["type"].removeprefix(INCIDENT), n["subject"], n["data"].get("from")) for n in emulator.notifications]
    assert thread[2:] == [("merged", f"/incidents/{first.incident}", other.incident),
                          ("split", f"/incidents/{split['incident']}", first.incident)]
    due = hourly(emulator, moment, START + timedelta(hours=49, minutes=5))
    assert sorted(n["subject"] for n in due) == sorted(f"/incidents/{i}" for i in (first.incident, split["incident"]))
    overdue = hourly(emulator, moment, START + timedelta(hours=73, minutes=5))
    assert sorted(n["id"] for n in overdue) == sorted(f"{i}.overdue" for i in (first.incident, split["incident"]))
    assert hourly(emulator, moment, START + timedelta(hours=74)) == []


# -- reported findings: the hourly digest ---------------------------------------------------------------
def test_a_digest_carries_the_reported_findings_of_the_last_hour_and_not_those_already_digested(
        app, emulator, moment):
    shared_key = b.storage_account("synthshared01", allowSharedKeyAccess=True)
    old_tls = b.storage_account("synthtls01", minimumTlsVersion="TLS1_0")
    emulator.seed([shared_key, old_tls])
    app.configure(CONTAINMENT_MODE="enforce")
    assert hourly(emulator, moment, START - timedelta(minutes=55)) == []  # nothing to digest: nothing sent
    deliver(app, moment, shared_key["id"], ACCOUNT_WRITE)
    [first] = app.records()
    assert first.outcome == "reported" and emulator.notifications == []  # never one per record
    [digest] = hourly(emulator, moment, START + timedelta(minutes=5))
    assert digest["type"] == "SyntheticDataContainment.Digest.reported" and digest["id"] == "digest-2026-11-24T10"
    data = digest["data"]
    assert data["counts"] == {"findings": 1, "incidents": 1, "resources": 1, "muted": 0}
    assert data["by_rule"] == {"storage_shared_key_access_allowed": 1} and data["by_severity"] == {"medium": 1}
    assert [(i["incident"], i["resources"], i["decisions"]) for i in data["incidents"]] == [
        (first.incident, [shared_key["id"]], [first.key])]

    deliver(app, moment, old_tls["id"], ACCOUNT_WRITE, at=START + timedelta(minutes=30),
            actor="0b0b0b0b-0000-4000-8000-00000000000b")
    second = app.records()[-1]
    assert hourly(emulator, moment, START + timedelta(minutes=50)) == []  # one digest an hour
    [digest] = hourly(emulator, moment, START + timedelta(hours=1, minutes=5))
    assert [i["decisions"] for i in digest["data"]["incidents"]] == [[second.key]]
    assert digest["data"]["since"] == second.decided_at
    assert hourly(emulator, moment, START + timedelta(hours=2, minutes=5)) == []


def test_an_incident_only_digested_still_hears_when_its_assessment_falls_due(app, emulator, moment):
    # An exposure recorded only (its rule is not contained automatically here). It was a shared-key
    # account before that rule was classed a weakness, which now starts no clock (the test below).
    account = b.storage_account("synthduedigest")
    public = b.container(account["id"], "training", "Container")
    emulator.seed([account, public])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_AUTO_CONTAIN="role_assignment_grants_data_access")
    deliver(app, moment, public["id"])
    [reported] = app.records()
    assert reported.outcome == "reported"
    [digest] = hourly(emulator, moment, START + timedelta(minutes=5))
    assert digest["type"].endswith("Digest.reported")
    assert hourly(emulator, moment, START + timedelta(hours=47)) == []
    [due] = hourly(emulator, moment, START + timedelta(hours=48, minutes=5))
    assert (due["type"], due["subject"]) == (f"{INCIDENT}due", f"/incidents/{reported.incident}")


def test_a_weakness_only_incident_is_digested_never_due_and_an_exposure_joining_starts_the_watch(app, emulator, moment):
    account = b.storage_account("synthweak01", allowSharedKeyAccess=True, minimumTlsVersion="TLS1_0")
    public = b.container(account["id"], "training", "Container")
    emulator.seed([account])
    app.configure(CONTAINMENT_MODE="enforce",
                  CONTAINMENT_AUTO_CONTAIN="storage_tls_below_1_2,storage_container_public_access")
    deliver(app, moment, account["id"], ACCOUNT_WRITE)
    [weak] = app.records()
    assert weak.outcome == "contained" and weak.incident  # TLS contained, shared key reported: weaknesses both
    assert emulator.notifications == []  # contained or not, a weakness waits for the digest
    [digest] = hourly(emulator, moment, START + timedelta(minutes=5))
    assert digest["data"]["incidents"][0]["incident"] == weak.incident
    assert hourly(emulator, moment, START + timedelta(hours=9)) == []  # nothing watched, nothing due

    # A public container on the same account, ten hours on: the same incident, its first exposure.
    emulator.seed([public])
    deliver(app, moment, public["id"], at=START + timedelta(hours=10))
    exposed = app.records()[-1]
    assert exposed.incident == weak.incident
    [detected] = emulator.notifications[-1:]
    assert detected["id"] == f"{weak.incident}.detected" and detected["data"]["gdpr_deadline"] == (
        START + timedelta(hours=82)).isoformat()
    assert hourly(emulator, moment, START + timedelta(hours=48, minutes=5)) == []  # 48 h from the weakness: nothing
    [due] = hourly(emulator, moment, START + timedelta(hours=58, minutes=5))  # 48 h from the exposure
    assert (due["type"], due["subject"]) == (f"{INCIDENT}due", f"/incidents/{weak.incident}")


def test_a_weakness_held_for_a_person_is_notified_as_held_never_as_detected(app, emulator, moment):
    account = b.storage_account("synthweak02", minimumTlsVersion="TLS1_0")
    emulator.seed([account])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_AUTO_CONTAIN="storage_tls_below_1_2",
                  CONTAINMENT_APPROVAL_ACTIONS="require_tls_1_2")
    deliver(app, moment, account["id"], ACCOUNT_WRITE)
    [held] = app.records()
    assert held.outcome == "pending-approval"
    [event] = emulator.notifications  # a hold reaches a person, weakness or not (an approval must not expire unseen)
    assert event["id"] == f"{held.incident}.held.{held.key}" and event["data"]["changed"] == ["held"]
    assert event["data"]["status"] == "weakness" and event["data"]["gdpr_deadline"] is None
    assert hourly(emulator, moment, START + timedelta(hours=48, minutes=5)) == []  # and no clock


def test_a_weakness_on_the_apps_own_deployment_is_notified_at_once_not_digested(app, emulator, moment):
    """The app never acts on its own resources: a person must, so a person hears of it now,
    weakness or not (the ledger's account allowing public blob access, say)."""
    own = b.storage_account("synthledger01", allowBlobPublicAccess=True)
    emulator.seed([own])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_OWN_SCOPES=own["id"])
    deliver(app, moment, own["id"], ACCOUNT_WRITE)
    [record] = app.records()
    assert record.outcome == "reported" and record.own_deployment
    assert all(f.get("weakness") for f in record.findings)
    assert [n["id"] for n in emulator.notifications] == [f"{record.incident}.detected"]


def test_in_dry_run_what_would_have_been_contained_is_in_the_digest_not_notified_one_by_one(app, emulator, moment):
    account = b.storage_account("synthrehearse01")
    public = b.container(account["id"], "training", "Container")
    emulator.seed([account, public])
    app.configure(CONTAINMENT_MODE="dry-run")
    deliver(app, moment, public["id"], CONTAINER_WRITE)
    [would] = app.records()
    assert would.outcome == "would-contain" and emulator.notifications == []
    [digest] = hourly(emulator, moment, START + timedelta(minutes=5))
    assert [i["decisions"] for i in digest["data"]["incidents"]] == [[would.key]]


# -- mutes ------------------------------------------------------------------------------------------------
def mute_body(**fields) -> dict:
    return {"rule": "storage_container_public_access", "scope": b.RG_ID, "reason": "the benchmark team's rehearsal",
            "owner": "ml-platform", "expires": clock.iso(START + timedelta(days=2)), **fields}


def test_a_mute_silences_a_rule_on_a_scope_and_only_its_notifications(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    moment(START - timedelta(hours=1))
    status, answer = http("POST", "mutes", mute_body())
    assert status == 201 and answer["expires_at"] == "2026-11-26T10:00:00.000000Z"
    [muted] = app.records()
    assert (muted.operation, muted.resource_id, muted.key) == ("mute", b.RG_ID, answer["decision"])
    assert "storage_container_public_access" in muted.reason and "owner ml-platform" in muted.reason
    assert [n["type"] for n in emulator.notifications] == ["SyntheticDataContainment.Decision.mute"]

    deliver(app, moment, PUBLIC["id"])
    contained = app.records()[-1]
    assert contained.outcome == "contained" and contained.actions == ["make_container_private"]  # unchanged
    assert len(emulator.notifications) == 1  # no incident notice
    [digest] = hourly(emulator, moment, START + timedelta(minutes=5))
    assert digest["data"]["counts"]["muted"] == 1 and digest["data"]["incidents"] == []
    [held_back] = digest["data"]["muted"]
    assert (held_back["decision"], held_back["rule"], held_back["held_back"]) == (
        answer["decision"], "storage_container_public_access", 1)

    status, listed = http("GET", "mutes")
    assert status == 200 and [(m["rule"], m["scope"], m["active"]) for m in listed["mutes"]] == [
        ("storage_container_public_access", b.RG_ID, True)]
    status, removed = http("DELETE", f"mutes?rule=storage_container_public_access&scope={b.RG_ID}")
    assert status == 200 and app.records()[-1].key == removed["decision"]
    assert http("GET", "mutes")[1] == {"mutes": []}
    other = b.container(ACCOUNT["id"], "validation", "Container")
    emulator.seed([other])
    deliver(app, moment, other["id"], at=START + timedelta(minutes=20))
    assert emulator.notifications[-1]["id"] == f"{contained.incident}.detected"  # the incident, now notified


def test_a_mute_never_silences_a_change_by_whoever_muted_it(app, emulator, moment):
    """Mute first, open the container after: the mute was not there for that."""
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    moment(START - timedelta(hours=1))
    assert http("POST", "mutes", mute_body())[0] == 201
    deliver(app, moment, PUBLIC["id"], actor=ONCALL_ID)  # the person who muted it makes the change
    assert kinds(emulator)[-1:] == ["detected"]


def test_an_expired_mute_or_one_of_another_rule_or_scope_silences_nothing(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    moment(START - timedelta(hours=2))
    elsewhere = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-other"
    assert http("POST", "mutes", mute_body(expires=clock.iso(START - timedelta(hours=1))))[0] == 201
    assert http("POST", "mutes", mute_body(scope=elsewhere))[0] == 201
    assert http("POST", "mutes", mute_body(rule="storage_tls_below_1_2", scope=ACCOUNT["id"]))[0] == 201
    deliver(app, moment, PUBLIC["id"])
    assert kinds(emulator)[-1] == "detected"


@pytest.mark.parametrize("body, status, named", [
    (mute_body(rule="egress_anonymous_read"), 400, "critical findings are always notified"),
    (mute_body(rule="storage_everything"), 400, "rule: one of"),
    (mute_body(expires="2026-12-24T10:00:00Z"), 400, "(CONTAINMENT_MUTE_MAX_DAYS=14)"),
    (mute_body(owner=""), 400, "owner is required"),
    (mute_body(scope=f"/subscriptions/{b.OTHER_SUBSCRIPTION}"), 400, "is not one the app watches"),
])
def test_a_mute_that_cannot_be_is_refused_on_the_record(app, emulator, moment, body, status, named):
    emulator.seed([ACCOUNT])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    moment(START)
    answer = http("POST", "mutes", body)
    assert answer[0] == status and named in answer[1]["error"]
    [refused] = app.records()
    assert refused.outcome == "rejected" and named in refused.reason
    assert http("GET", "mutes")[1] == {"mutes": []}


def test_muting_takes_the_mute_role_and_is_never_by_whoever_caused_what_it_silences(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    app.configure(CONTAINMENT_MODE="enforce")
    reader = operator("reader@contoso.example", "a1a1a1a1-1111-4222-8333-444455556666", roles=("Containment.Read",))
    moment(START)
    status, answer = http("POST", "mutes", mute_body(), headers=reader)
    assert status == 403 and "Containment.Mute" in answer["error"]
    culprit = "0a0a0a0a-0000-4000-8000-000000000001"
    deliver(app, moment, PUBLIC["id"], actor=culprit)
    status, answer = http("POST", "mutes", mute_body(), headers=operator("dana@contoso.example", culprit))
    assert status == 403 and "separation of duties" in answer["error"]
    assert http("GET", "mutes")[1] == {"mutes": []}


def test_a_critical_finding_is_notified_whatever_mute_covers_it(app, emulator, moment):
    """A mute kept from before its rule was critical: the notice goes out, and says why."""
    import function_app
    from localazure.functions_host import fire_timer

    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_LOG_WORKSPACE_ID=WORKSPACE)
    app.runtime.ledger.mute("egress_anonymous_read", ACCOUNT["id"], "old", "ml-platform",
                            "2026-12-01T00:00:00.000000Z", "someone", "2026-11-20T00:00:00.000000Z", "mute-old")
    read = START + timedelta(minutes=46)  # the scan at 12:00 covers [11:45, 11:50)
    emulator.seed([ACCOUNT], {"StorageBlobLogs": [{
        "TimeGenerated": clock.iso(read.replace(hour=11)), "AccountName": ACCOUNT["name"],
        "_ResourceId": ACCOUNT["id"].lower(), "Category": "StorageRead", "OperationName": "GetBlob",
        "StatusCode": "200", "AuthenticationType": "Anonymous", "RequesterObjectId": None,
        "CallerIpAddress": "198.51.100.20:52311", "ResponseBodySize": 1024, "ObjectKey": "/synthtrain01/train/part-0",
        "Uri": "https://synthtrain01.blob.core.windows.net/train/part-0"}]})
    moment(START.replace(hour=12))
    assert fire_timer(function_app.app, "egress_scan").error is None
    app.drain()
    [record] = app.records()
    assert record.severity == "critical"
    [notice] = emulator.notifications
    assert notice["type"] == f"{INCIDENT}detected"
    assert notice["data"]["mutes_not_applied"]["mutes"] == ["mute-old"]
    assert notice["data"]["mutes_not_applied"]["why"].startswith("critical findings, holds for a person")


def test_a_hold_for_a_person_is_notified_whatever_mute_covers_it(app, emulator, moment):
    """Muted, a deletion waiting for approval would expire unseen and the grant stay."""
    grant = b.role_assignment(f"/subscriptions/{b.SUBSCRIPTION}", "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
                              b.CONTRIBUTOR, name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e09")
    emulator.seed([ACCOUNT, grant])
    app.configure(CONTAINMENT_MODE="enforce")
    app.runtime.ledger.mute("role_assignment_grants_data_access", f"/subscriptions/{b.SUBSCRIPTION}", "noisy",
                            "platform", "2026-12-01T00:00:00.000000Z", "someone", "2026-11-20T00:00:00.000000Z",
                            "mute-grants")
    deliver(app, moment, grant["id"], "Microsoft.Authorization/roleAssignments/write")
    [record] = app.records()
    assert record.outcome == "pending-approval"
    [notice] = emulator.notifications
    assert "held" in notice["data"]["changed"] and notice["data"]["mutes_not_applied"]["mutes"] == ["mute-grants"]


# -- what is notified one by one, and a topic that fails ------------------------------------------------
def test_dry_run_findings_are_not_published_but_a_held_decision_is(app, emulator, moment):
    emulator.seed([ACCOUNT, PUBLIC])
    deliver(app, moment, PUBLIC["id"])
    assert app.records()[0].outcome == "would-contain" and emulator.notifications == []
    grant = b.role_assignment(f"/subscriptions/{b.SUBSCRIPTION}", "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
                              b.CONTRIBUTOR, name="0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e05")
    emulator.seed([grant])
    app.configure(CONTAINMENT_MODE="enforce")
    deliver(app, moment, grant["id"], "Microsoft.Authorization/roleAssignments/write", START + timedelta(minutes=5))
    [held] = emulator.notifications
    assert held["type"] == f"{INCIDENT}detected" and held["data"]["changed"] == ["detected", "held"]


def test_a_failing_topic_never_stops_containment_and_the_notice_goes_with_the_next_record(app, emulator, moment):
    other = b.container(ACCOUNT["id"], "validation", "Container")
    emulator.seed([ACCOUNT, PUBLIC, other])
    app.configure(CONTAINMENT_MODE="enforce")
    emulator.faults.add("status", path="^/api/events$", status=500, retry_after=0, times=None)
    deliver(app, moment, PUBLIC["id"])
    [record] = app.records()
    assert record.outcome == "contained" and emulator.arm.get(PUBLIC["id"])["properties"]["publicAccess"] == "None"
    [failure] = app.runtime.ledger.notification_failures()
    assert (failure["notice"], failure["decision"]) == (f"{record.incident}.detected", record.key)
    assert "500" in failure["reason"] and emulator.notifications == []
    emulator.faults.clear()
    deliver(app, moment, other["id"], at=START + timedelta(minutes=3))
    [event] = emulator.notifications
    assert event["id"] == f"{record.incident}.detected" and event["data"]["resource_count"] == 2



def test_a_failure_kept_before_notices_had_ids_still_names_its_decision(app):
    app.runtime.ledger.table.upsert_entity({"PartitionKey": "notification-failure", "RowKey": "evt-1",
                                            "resource_id": PUBLIC["id"], "reason": "HttpResponseError: 500"})
    assert app.runtime.ledger.notification_failures() == [
        {"notice": "evt-1", "decision": "evt-1", "resource_id": PUBLIC["id"], "reason": "HttpResponseError: 500"}]
