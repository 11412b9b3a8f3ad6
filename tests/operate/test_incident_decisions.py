"""The Article 33 workflow through the HTTP functions: a person with Containment.Assess
assesses, closes, merges and splits incidents, each on the record; the clock stops."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from containment.core import clock
from containment.record.export import incidents_csv
from tests.helpers import arm_bodies as b
from tests.helpers.events import ACCOUNT_WRITE, ANALYST, CONTAINER_WRITE, write_event
from tests.helpers.operators import operator

DPO = operator("dpo@contoso.example", "d0d0d0d0-1111-4222-8333-444455556666", roles=("Containment.Assess",
                                                                                     "Containment.Read"))
READER = operator("reader@contoso.example", "a1a1a1a1-1111-4222-8333-444455556666", roles=("Containment.Read",))
START = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)


def http(method: str, route: str, body=None, headers=DPO):
    import function_app
    from localazure.functions_host import call_http

    response = call_http(function_app.app, method, route, body, headers)
    return response.status_code, json.loads(response.get_body())


def exposed(app, emulator, moment, account="synthtrain01", actor=ANALYST, at=START) -> str:
    owner = b.storage_account(account)
    public = b.container(owner["id"], "training", "Container")
    emulator.seed([owner, public])
    moment(at)
    app.deliver(write_event(public["id"], CONTAINER_WRITE, actor=actor, time=clock.iso(at)))
    app.drain()
    return [r for r in app.records() if r.resource_id == public["id"]][-1].incident


NOTIFIED = {"notifiable": True, "high_risk": False, "notified_at": "2026-11-25T09:00:00Z", "reference": "DPA-2026-117",
            "reason": "personal-data source, no differential-privacy guarantee"}


def test_an_assessment_stops_the_clock_and_is_on_the_record(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    incident = exposed(app, emulator, moment)
    moment(START + timedelta(hours=80))
    status, before = http("GET", f"incidents/{incident}", headers=READER)
    assert status == 200 and before["status"] == "contained" and before["gdpr_hours_left"] == -8.0  # overdue
    status, answer = http("POST", f"incidents/{incident}/assess", NOTIFIED)
    assert status == 200 and answer["status"] == "assessed"
    status, after = http("GET", f"incidents/{incident}", headers=READER)
    assert after["gdpr_hours_left"] is None and after["clock_stopped_at"].startswith("2026-11-25T09:00:00")
    assert after["assessment"]["reference"] == "DPA-2026-117" and after["operators"] == ["dpo@contoso.example"]
    [row] = csv.DictReader(io.StringIO(incidents_csv([after])))  # what an auditor's spreadsheet shows
    assert (row["notifiable"], row["reference"], row["clock_stopped_at"], row["operators"]) == (
        "True", "DPA-2026-117", "2026-11-25T09:00:00Z", "dpo@contoso.example")
    [assessed] = [r for r in app.records() if r.operation == "incident"]
    assert (assessed.incident, assessed.actor["name"], assessed.incident_update["kind"]) == (
        incident, "dpo@contoso.example", "assessment")
    assert "DPA-2026-117" in assessed.reason


@pytest.mark.parametrize("body, named", [
    ({**NOTIFIED, "notified_at": None}, "notified_at: required"),
    ({**NOTIFIED, "reference": ""}, "reference: text"),
    ({"notifiable": False, "high_risk": True, "reason": "r"}, "high_risk: a breach likely to result in a high risk"),
    ({"notifiable": False, "high_risk": False}, "reason: required"),
    ({**NOTIFIED, "notified_at": "2027-01-01T00:00:00Z"}, "is in the future"),
    ({**NOTIFIED, "notified_at": "2026-11-25T09:00:00"}, "has no time zone"),
    ({**NOTIFIED, "data_subjects_informed_at": "2026-11-25T09:00:00Z"}, "only when high_risk"),
    ({**NOTIFIED, "severity": "low"}, "unknown fields: severity"),
    ({**NOTIFIED, "notified_at": "2026-11-24T09:00:00Z"}, "is before the breach was detected"),
])
def test_an_assessment_that_does_not_hold_together_is_refused_naming_what(app, emulator, moment, body, named):
    app.configure(CONTAINMENT_MODE="enforce")
    incident = exposed(app, emulator, moment)
    moment(START + timedelta(days=2))
    status, answer = http("POST", f"incidents/{incident}/assess", {k: v for k, v in body.items() if v is not None})
    assert status == 400 and named in answer["error"]
    [refused] = [r for r in app.records() if r.operation == "operator-request"]
    assert refused.outcome == "rejected" and named in refused.reason


def test_only_the_assess_role_and_never_who_caused_it(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    incident = exposed(app, emulator, moment)
    status, answer = http("POST", f"incidents/{incident}/assess", NOTIFIED, headers=READER)
    assert status == 403 and "Containment.Assess" in answer["error"]
    culprit = operator("dana@contoso.example", ANALYST, roles=("Containment.Assess",))
    status, answer = http("POST", f"incidents/{incident}/assess", NOTIFIED, headers=culprit)
    assert status == 403 and "separation of duties" in answer["error"]
    assert not [r for r in app.records() if r.operation == "incident"]


def test_close_needs_an_assessment_and_a_closed_incident_takes_no_new_finding(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    incident = exposed(app, emulator, moment)
    status, answer = http("POST", f"incidents/{incident}/close", {"reason": "fixed"})
    assert status == 409 and "Art. 33(5)" in answer["error"]
    http("POST", f"incidents/{incident}/assess", {"notifiable": False, "high_risk": False,
                                                  "reason": "dp-epsilon 0.5 and no personal-data source"})
    status, answer = http("POST", f"incidents/{incident}/close", {"reason": "contained within minutes"})
    assert status == 200 and answer["status"] == "closed"
    again = exposed(app, emulator, moment, at=START + timedelta(hours=2))  # same account, same person
    assert again != incident
    status, _ = http("POST", f"incidents/{incident}/assess", NOTIFIED)
    assert status == 409


def test_a_weakness_only_incident_closes_without_an_assessment_by_a_person_who_did_not_cause_it(
        app, emulator, moment):
    weak = b.storage_account("synthweak01", allowSharedKeyAccess=True)  # a weakness, recorded only
    emulator.seed([weak])
    app.configure(CONTAINMENT_MODE="enforce")
    moment(START)
    app.deliver(write_event(weak["id"], ACCOUNT_WRITE, actor=ANALYST, time=clock.iso(START)))
    app.drain()
    [record] = app.records()
    status, shown = http("GET", f"incidents/{record.incident}")
    assert status == 200 and shown["status"] == "weakness" and shown["gdpr_deadline"] is None
    assert shown["gdpr_hours_left"] is None and "no GDPR Article 33 clock" in shown["no_clock_because"]
    assert shown["weaknesses"] == ["storage_shared_key_access_allowed"]
    # Still a person's decision, with the role and the separation of duties of any closure.
    culprit = operator("dana@contoso.example", ANALYST, roles=("Containment.Assess",))
    assert http("POST", f"incidents/{record.incident}/close", {"reason": "r"}, headers=culprit)[0] == 403
    assert http("POST", f"incidents/{record.incident}/close", {"reason": "r"}, headers=READER)[0] == 403
    status, answer = http("POST", f"incidents/{record.incident}/close", {"reason": "shared key off next sprint"})
    assert status == 200 and answer["status"] == "closed"
    [closure] = [r for r in app.records() if r.operation == "incident"]
    assert closure.incident_update == {"kind": "closure", "reason": "shared key off next sprint"}
    assert closure.actor["name"] == "dpo@contoso.example"


def test_the_authority_cannot_be_notified_before_the_first_exposure_a_weakness_came_before(app, emulator, moment):
    """A weakness found at 10:00, the public container at 20:00: a notification dated 15:00
    would be before anyone knew of the breach."""
    weak = b.storage_account("synthweak03", allowSharedKeyAccess=True)
    public = b.container(weak["id"], "training", "Container")
    emulator.seed([weak])
    app.configure(CONTAINMENT_MODE="enforce")
    moment(START)
    app.deliver(write_event(weak["id"], ACCOUNT_WRITE, actor=ANALYST, time=clock.iso(START)))
    emulator.seed([public])
    later = START + timedelta(hours=10)
    moment(later)
    app.deliver(write_event(public["id"], CONTAINER_WRITE, actor=ANALYST, time=clock.iso(later)))
    app.drain()
    [incident] = {r.incident for r in app.records() if r.incident}
    moment(START + timedelta(days=1))
    status, answer = http("POST", f"incidents/{incident}/assess", {**NOTIFIED, "notified_at": "2026-11-24T15:00:00Z"})
    assert status == 400 and "is before the breach was detected (2026-11-24T20:00:00" in answer["error"]
    assert http("POST", f"incidents/{incident}/assess", {**NOTIFIED, "notified_at": "2026-11-24T21:00:00Z"})[0] == 200


def test_high_risk_keeps_it_open_until_article_34_is_answered(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    incident = exposed(app, emulator, moment)
    moment(START + timedelta(days=1))
    http("POST", f"incidents/{incident}/assess", {**NOTIFIED, "high_risk": True})
    status, answer = http("POST", f"incidents/{incident}/close", {"reason": "r"})
    assert status == 409 and "Art. 34" in answer["error"]
    http("POST", f"incidents/{incident}/assess", {**NOTIFIED, "high_risk": True,
                                                  "data_subjects_informed_at": "2026-11-25T08:00:00Z"})
    assert http("POST", f"incidents/{incident}/close", {"reason": "r"})[0] == 200


def test_merge_and_split_are_recorded_and_the_views_follow(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    first = exposed(app, emulator, moment, "synthmergea", "0a0a0a0a-0000-4000-8000-00000000000a")
    second = exposed(app, emulator, moment, "synthmergeb", "0b0b0b0b-0000-4000-8000-00000000000b",
                     START + timedelta(hours=3))
    assert first != second
    status, answer = http("POST", f"incidents/{second}/merge", {"into": first, "reason": "the same leaked pipeline"})
    assert status == 200 and answer["incident"] == first
    status, merged = http("GET", f"incidents/{first}", headers=READER)
    assert len(merged["resources"]) == 2 and merged["merged"] == [second]
    status, answer = http("GET", f"incidents/{second}", headers=READER)
    assert status == 409 and answer["incident"] == first
    # A later finding by the second person joins the incident it was merged into.
    third = exposed(app, emulator, moment, "synthmergec", "0b0b0b0b-0000-4000-8000-00000000000b",
                    START + timedelta(hours=4))
    assert third == first

    moved = [r.key for r in app.records() if r.resource_id.endswith("synthmergec/blobServices/default/containers/training")
             and r.incident]
    status, answer = http("POST", f"incidents/{first}/split", {"decisions": moved, "reason": "unrelated after all"})
    assert status == 200 and answer["incident"] != first
    status, split = http("GET", f"incidents/{answer['incident']}", headers=READER)
    assert len(split["resources"]) == 1 and split["resources"][0].endswith("synthmergec/blobServices/default/containers/training")
    status, listed = http("GET", "incidents?since=2026-11-24T00:00:00Z&until=2026-11-25T00:00:00Z", headers=READER)
    assert sorted(i["incident"] for i in listed["incidents"]) == sorted([first, answer["incident"]])
    status, refused = http("GET", "incidents?since=2025-01-01T00:00:00Z&until=2026-11-25T00:00:00Z", headers=READER)
    assert status == 400 and "at most 93 days" in refused["error"]
    # What only the split-off finding had (its account) now leads to the new incident.
    again = exposed(app, emulator, moment, "synthmergec", "0c0c0c0c-0000-4000-8000-00000000000c",
                    START + timedelta(hours=5))
    assert again == answer["incident"]
    # Each incident's first exposure is marked for correlation: the split-off one's is its own finding's.
    markers = app.runtime.ledger.incident_markers([first, answer["incident"]])
    assert markers[first]["exposed_at"].startswith("2026-11-24T10:00")
    assert markers[answer["incident"]]["exposed_at"].startswith("2026-11-24T14:00")


def test_an_assessed_incident_is_neither_merged_nor_split_and_who_caused_the_target_may_not_merge(
        app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    first = exposed(app, emulator, moment, "synthassa", "0a0a0a0a-0000-4000-8000-00000000000a")
    second = exposed(app, emulator, moment, "synthassb", "0b0b0b0b-0000-4000-8000-00000000000b",
                     START + timedelta(hours=3))
    culprit = operator("ben@contoso.example", "0b0b0b0b-0000-4000-8000-00000000000b", roles=("Containment.Assess",))
    status, answer = http("POST", f"incidents/{first}/merge", {"into": second, "reason": "r"}, headers=culprit)
    assert status == 403 and second in answer["error"] and "separation of duties" in answer["error"]
    moment(START + timedelta(days=2))
    assert http("POST", f"incidents/{first}/assess", NOTIFIED)[0] == 200
    status, answer = http("POST", f"incidents/{second}/merge", {"into": first, "reason": "r"})
    assert status == 409 and "is assessed" in answer["error"]
    [finding] = [r.key for r in app.records() if r.incident == first and r.findings and r.operation != "incident"]
    status, answer = http("POST", f"incidents/{first}/split", {"decisions": [finding], "reason": "r"})
    assert status == 409 and "is assessed" in answer["error"]
    assert [r.incident_update["kind"] for r in app.records() if r.operation == "incident"] == ["assessment"]


def test_a_finding_after_a_not_notifiable_assessment_asks_for_a_new_one_and_runs_the_clock_again(
        app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    actor = "0a0a0a0a-0000-4000-8000-0000000000aa"
    incident = exposed(app, emulator, moment, "synthreassa", actor)
    moment(START + timedelta(hours=2))
    http("POST", f"incidents/{incident}/assess", {"notifiable": False, "high_risk": False,
                                                  "reason": "exposed for seconds, no read"})
    before = len(emulator.notifications)
    later = START + timedelta(hours=10)  # the same person opens another account: the same breach
    assert exposed(app, emulator, moment, "synthreassb", actor, later) == incident
    status, view = http("GET", f"incidents/{incident}", headers=READER)
    assert view["status"] == "reassess" and len(view["unassessed"]) == 1
    assert view["clock_stopped_at"] is None and view["gdpr_deadline"].startswith("2026-11-27T20:00:00")
    [notice] = emulator.notifications[before:]
    assert notice["data"]["changed"] == ["reassess"] and notice["subject"] == f"/incidents/{incident}"
    status, answer = http("POST", f"incidents/{incident}/close", {"reason": "r"})
    assert status == 409 and "findings since its assessment" in answer["error"]
    moment(later + timedelta(hours=1))
    http("POST", f"incidents/{incident}/assess", {"notifiable": False, "high_risk": False,
                                                  "reason": "both exposures closed within a minute, no read"})
    assert http("GET", f"incidents/{incident}", headers=READER)[1]["status"] == "assessed"
    assert http("POST", f"incidents/{incident}/close", {"reason": "r"})[0] == 200
