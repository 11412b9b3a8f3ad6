"""One breach, one incident: findings correlated across resources by who caused them, what
they are about and when; the Article 33 clock and the workflow read back from the records."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from containment.core import clock
from containment.core.records import DecisionRecord
from containment.adapters.ledger import FILTER_ROWS, SIGNS, row_filter
from containment.record.correlation import CREDENTIAL_SIGNS, assign, joins, new_incident_id, signs_of
from containment.record.incidents import group
from tests.helpers import arm_bodies as b
from tests.helpers.events import CONTAINER_WRITE, write_event

FINDING = {"rule": "storage_container_public", "severity": "high", "resource_id": "", "summary": "s", "evidence": {}}


def record(key, at, incident="inc-1", outcome="contained", operation=None, **fields):
    return DecisionRecord(**{"key": key, "resource_id": b.storage_account()["id"], "outcome": outcome,
                             "mode": "enforce", "reason": "r", "decided_at": at, "event_time": at,
                             "operation": operation, "incident": incident, "findings": [FINDING],
                             "recorded_at": at, **fields})


def update(key, at, kind, incident="inc-1", **fields):
    return record(key, at, incident, outcome="reported", operation="incident", findings=[],
                  actor={"object_id": "dpo-1", "name": "Dee P. O."}, incident_update={"kind": kind, **fields})


def at(hours: float) -> str:
    return (datetime(2026, 11, 24, 10, tzinfo=timezone.utc) + timedelta(hours=hours)).isoformat()


# -- the incident as its records leave it ------------------------------------------------------
def test_the_clock_runs_from_detection_and_stops_at_an_assessment():
    contained = record("a", at(0), contained_at=at(0.01), actor={"object_id": "x", "name": "Dana"}, event_id="e1")
    [incident] = group([contained])
    assert incident.status == "contained" and incident.actors == ["Dana"] and incident.operators == []
    assert incident.gdpr_deadline == datetime(2026, 11, 27, 10, tzinfo=timezone.utc)
    assert incident.hours_left(datetime(2026, 11, 28, 10, tzinfo=timezone.utc)) == -24.0  # overdue

    notified = update("a.assessed", at(30), "assessment", notifiable=True, notified_at=at(29), reference="DPA-7",
                      reason="personal-data source, no DP guarantee", high_risk=False)
    [incident] = group([contained, notified])
    assert incident.status == "assessed" and incident.clock_stopped_at == datetime.fromisoformat(at(29))
    assert incident.hours_left(datetime(2026, 12, 9, tzinfo=timezone.utc)) is None  # stopped: never overdue again
    assert incident.operators == ["Dee P. O."] and incident.assessment["reference"] == "DPA-7"

    not_notifiable = update("a.assessed-2", at(31), "assessment", notifiable=False, high_risk=False,
                            reason="epsilon 0.5, no personal-data source")
    [incident] = group([contained, notified, not_notifiable])
    assert incident.assessment["notifiable"] is False and incident.clock_stopped_at == datetime.fromisoformat(at(31))
    [incident] = group([contained, not_notifiable, update("a.closed", at(40), "closure", reason="done")])
    assert incident.status == "closed"


WEAKNESS = {"rule": "storage_sas_expiry_policy_missing", "severity": "medium", "resource_id": "", "summary": "s",
            "evidence": {}, "weakness": True}


def test_weaknesses_only_run_no_clock_and_the_first_exposure_starts_it_from_its_own_detection():
    weak = record("w", at(0), outcome="reported", findings=[WEAKNESS])
    daily = record("w2", at(24), outcome="reported", findings=[WEAKNESS])
    [incident] = group([weak, daily])
    summary = incident.summary(datetime(2026, 12, 9, tzinfo=timezone.utc))  # long after 72 hours: never overdue
    assert incident.status == "weakness" and incident.weakness_only and incident.exposed_at is None
    assert incident.gdpr_deadline is None and incident.hours_left(datetime(2026, 12, 9, tzinfo=timezone.utc)) is None
    assert summary["gdpr_deadline"] is None and summary["gdpr_hours_left"] is None and summary["exposed_at"] is None
    assert "no GDPR Article 33 clock runs" in summary["no_clock_because"]
    assert summary["weaknesses"] == ["storage_sas_expiry_policy_missing"]
    assert summary["detected_at"] == datetime.fromisoformat(at(0)).isoformat()  # the incident's own detection stays

    # A public container joins 50 hours later: 72 hours from it, not from the weakness (22 h left then).
    exposed = record("x", at(50), contained_at=at(50.01))
    [incident] = group([weak, daily, exposed])
    assert incident.status == "contained" and not incident.weakness_only
    assert incident.exposed_at == datetime.fromisoformat(at(50))
    assert incident.gdpr_deadline == datetime.fromisoformat(at(122))
    assert incident.summary(datetime.fromisoformat(at(51)))["no_clock_because"] is None

    # One record with both: the exposure in it makes it one; a weakness found after an assessment asks no new one.
    mixed = record("m", at(0), findings=[WEAKNESS, FINDING])
    assessed = update("m.assessed", at(5), "assessment", notifiable=False, high_risk=False, reason="no personal data")
    [incident] = group([mixed, assessed, record("w3", at(10), outcome="reported", findings=[WEAKNESS])])
    assert incident.exposed_at == datetime.fromisoformat(at(0)) and incident.unassessed == []
    assert incident.status == "assessed" and incident.clock_stopped_at == datetime.fromisoformat(at(5))


def test_a_weakness_only_incident_assessed_anyway_has_no_clock_to_stop_and_closes():
    weak = record("w", at(0), outcome="reported", findings=[WEAKNESS])
    assessed = update("w.assessed", at(5), "assessment", notifiable=False, high_risk=False, reason="a posture gap")
    [incident] = group([weak, assessed])
    assert incident.status == "weakness" and incident.clock_stopped_at is None and incident.hours_left(
        datetime.fromisoformat(at(100))) is None
    [incident] = group([weak, update("w.closed", at(6), "closure", reason="policy set")])
    assert incident.status == "closed"


def test_high_risk_asks_article_34_until_the_people_are_informed():
    contained = record("a", at(0), contained_at=at(0.01))
    high = update("a.assessed", at(2), "assessment", notifiable=True, notified_at=at(1), reference="r", reason="r",
                  high_risk=True)
    [incident] = group([contained, high])
    assert "Art. 34(1)" in incident.article_34
    informed = update("a.assessed-2", at(3), "assessment", notifiable=True, notified_at=at(1), reference="r",
                      reason="r", high_risk=True, data_subjects_informed_at=at(3))
    [incident] = group([contained, high, informed])
    assert incident.article_34 == f"the people concerned were informed at {at(3)}"


def test_contained_while_a_key_rotation_waits_is_partly_contained_and_says_for_whom():
    locked = record("egress-1", at(0), contained_at=at(0.01), awaiting_approval=[
        {"action": "rotate_account_keys", "target": b.storage_account()["id"]}])
    [incident] = group([locked])
    assert incident.status == "partly-contained"
    assert [(w["action"], w["waits_for"]) for w in incident.waiting] == [("rotate_account_keys", "approval")]
    approved = record("egress-1.approved", at(1), operation="approval", contained_at=at(1.01),
                      actor={"name": "sec-oncall"})
    [incident] = group([locked, approved])
    assert incident.status == "contained" and incident.waiting == [] and incident.operators == ["sec-oncall"]


def test_a_release_after_containment_marks_the_incident_released():
    [incident] = group([record("a", at(0), contained_at=at(0.01)),
                        record("a.released", at(5), outcome="reported", operation="release",
                               actor={"name": "sec-oncall"})])
    assert incident.status == "released" and incident.operators == ["sec-oncall"]


def test_merge_and_split_are_people_s_decisions_the_grouping_follows():
    a, c = record("a", at(0)), record("c", at(1), incident="inc-2")
    merge = update("m", at(2), "merge", incident="inc-1", **{"from": "inc-2"})
    [incident] = group([a, c, merge])
    assert incident.id == "inc-1" and [r.key for r in incident.decisions] == ["a", "c", "m"]
    assert incident.merged == ["inc-2"]
    split = update("s", at(3), "split", incident="inc-3", decisions=["c"], **{"from": "inc-1"})
    first, second = group([a, c, merge, split])
    assert (first.id, [r.key for r in first.decisions]) == ("inc-1", ["a", "m"])
    assert (second.id, [r.key for r in second.decisions]) == ("inc-3", ["c", "s"])


def test_a_finding_joins_only_within_the_window_and_the_72_hours():
    sign = {"incident": "inc-1", "opened_at": at(0), "last_at": at(60)}
    window = timedelta(hours=24)
    assert joins(sign, at(0), datetime.fromisoformat(at(71)), window)
    assert not joins(sign, at(0), datetime.fromisoformat(at(73)), window)  # its clock ran out: a new incident
    assert not joins({**sign, "last_at": at(0)}, at(0), datetime.fromisoformat(at(25)), window)
    assert joins(sign, None, datetime.fromisoformat(at(73)), window)  # weaknesses only: no clock, the window alone


def test_the_operator_is_never_a_sign_only_the_cause_is():
    by_person = record("bg", at(0), operation="break-glass", event_id=None, actor={"object_id": "OnCall"})
    assert not any(s.startswith("identity") for s in signs_of(by_person))
    caused = record("e", at(0), event_id="e", actor={"object_id": "Dana-OID"})
    account = b.storage_account()["id"].lower()
    assert signs_of(caused) == ["identity dana-oid", f"resource {account}", f"dataset {account}"]
    egress = record("w", at(0), operation="egress", findings=[{**FINDING, "evidence": {"callers": [
        {"Caller": "203.0.113.7"}, {"Caller": "A1B2"}]}}])
    assert signs_of(egress)[:2] == ["identity 203.0.113.7", "identity a1b2"]


def test_the_credential_a_finding_names_is_a_sign_qualified_by_its_account_and_bounded():
    account = b.storage_account()["id"]
    sas = [f"{n:064X}" for n in range(30)]
    leaked = record("w", at(0), operation="egress", findings=[
        {**FINDING, "resource_id": account, "evidence": {"keys": ["key1"], "sas_signatures": sas[:1]}},
        {**FINDING, "resource_id": account, "evidence": {"keys": ["key1"], "sas_signatures": sas}}])
    credentials = [s for s in signs_of(leaked) if s.startswith("credential ")]
    assert credentials[:2] == [f"credential {account.lower()} key1", f"credential {account.lower()} sas {sas[0].lower()}"]
    assert len(credentials) == CREDENTIAL_SIGNS  # one key and eleven of the thirty hashes: the signs stay few
    other = b.storage_account("synthother")["id"]
    elsewhere = record("x", at(0), operation="egress", resource_id=other, findings=[
        {**FINDING, "resource_id": other, "evidence": {"keys": ["key1"]}}])
    assert f"credential {other.lower()} key1" in signs_of(elsewhere)  # key1 of another account: another sign


def test_two_findings_that_used_the_same_leaked_sas_join_one_incident_by_it(app, moment):
    """The reads with a leaked SAS and, later, a finding recorded about another resource that
    names the same SAS (here a role assignment's decision, which has no dataset sign of the
    account): one breach, joined by the credential alone."""
    app.configure(CONTAINMENT_MODE="enforce")
    moment(datetime(2026, 11, 24, 10, tzinfo=timezone.utc))
    account = b.storage_account()["id"]
    sas = {"keys": ["key1"], "sas_signatures": ["04D64C2B3A704145C9F1664F201123467A74D72DA72751A9137DDAA732FA03CF"]}
    reads = assign(app.runtime, record("w1", at(0), incident=None, operation="egress",
                                       findings=[{**FINDING, "resource_id": account, "evidence": sas}]))
    scope = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-other/providers/Microsoft.Authorization/roleAssignments/r1"
    later = record("e2", at(1), incident=None, event_id="e2", actor={"object_id": "someone-else"}, resource_id=scope,
                   findings=[{**FINDING, "resource_id": account, "evidence": {"sas_signatures": sas["sas_signatures"]}}])
    assert assign(app.runtime, later).incident == reads.incident
    unrelated = record("e3", at(1), incident=None, event_id="e3", actor={"object_id": "a-third-person"},
                       resource_id=scope.replace("r1", "r2"), findings=[FINDING])
    assert assign(app.runtime, unrelated).incident != reads.incident


# -- correlation as the app does it, in the ledger ----------------------------------------------
def expose(app, emulator, account: str, actor: str, when: datetime, moment, container="training"):
    owner = b.storage_account(account)
    public = b.container(owner["id"], container, "Container")
    emulator.seed([owner, public])
    moment(when)
    app.deliver(write_event(public["id"], CONTAINER_WRITE, actor=actor, time=clock.iso(when)))
    app.drain()


def test_one_actor_opening_three_accounts_in_minutes_is_one_incident(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    start = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    for n, account in enumerate(("synthburst01", "synthburst02", "synthburst03")):
        expose(app, emulator, account, "0a0a0a0a-0000-4000-8000-000000000001", start + timedelta(minutes=2 * n), moment)
    records = app.records()
    assert [r.outcome for r in records] == ["contained"] * 3
    assert len({r.incident for r in records}) == 1
    [incident] = group(records)
    assert len(incident.resources) == 3 and incident.detected_at == start


def test_two_unrelated_exposures_hours_apart_by_different_people_are_two_incidents(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    start = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    expose(app, emulator, "synthteama", "0a0a0a0a-0000-4000-8000-00000000000a", start, moment)
    expose(app, emulator, "synthteamb", "0b0b0b0b-0000-4000-8000-00000000000b", start + timedelta(hours=3), moment)
    first, second = group(app.records())
    assert first.id != second.id and first.resources != second.resources


def test_the_same_dataset_again_within_the_window_is_the_same_breach(app, emulator, moment):
    """A second container of the same account opened by someone else an hour later."""
    app.configure(CONTAINMENT_MODE="enforce")
    start = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    expose(app, emulator, "synthshared", "0a0a0a0a-0000-4000-8000-00000000000a", start, moment)
    expose(app, emulator, "synthshared", "0b0b0b0b-0000-4000-8000-00000000000b", start + timedelta(hours=1), moment,
           container="validation")
    assert len({r.incident for r in app.records()}) == 1


def test_a_finding_after_72_hours_opens_a_new_incident_with_a_clock_of_its_own(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    start = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    actor = "0a0a0a0a-0000-4000-8000-00000000000a"
    for hours in (0, 20, 40, 60, 80):  # each within 24 hours of the last, the last past the first's 72
        expose(app, emulator, f"synthlong{hours:02d}", actor, start + timedelta(hours=hours), moment)
    incidents = [r.incident for r in app.records()]
    assert incidents[:4] == [incidents[0]] * 4 and incidents[4] != incidents[0]


def test_what_finds_nothing_has_no_incident(app, emulator, moment):
    app.configure(CONTAINMENT_MODE="enforce")
    owner = b.storage_account("synthquiet")
    private = b.container(owner["id"], "training", "None")
    emulator.seed([owner, private])
    moment(datetime(2026, 11, 24, 10, tzinfo=timezone.utc))
    app.deliver(write_event(private["id"], CONTAINER_WRITE))
    [compliant] = app.records()
    assert compliant.outcome == "compliant" and compliant.incident is None


def test_a_redelivered_first_finding_names_the_same_incident(app, emulator, moment):
    """The incident is named by the finding that opened it, so a redelivery (a new instance,
    the signs already written) lands in it and opens none."""
    app.configure(CONTAINMENT_MODE="dry-run")
    owner = b.storage_account("synthredeliver")
    public = b.container(owner["id"], "training", "Container")
    emulator.seed([owner, public])
    moment(datetime(2026, 11, 24, 10, tzinfo=timezone.utc))
    event = write_event(public["id"], CONTAINER_WRITE)
    app.deliver(event)
    app.deliver(event)
    [record] = app.records()
    assert record.incident == new_incident_id(record)
    signs = app.runtime.ledger.incident_signs(signs_of(record))
    assert {entry["incident"] for entry in signs.values()} == {record.incident}


def test_more_signs_than_one_table_filter_holds_are_all_read(app, moment):
    """Table storage allows 15 comparisons in a filter (Azurite allows more): the signs of a
    window with 40 callers are read 14 at a time, and the last of them still correlates."""
    app.configure(CONTAINMENT_MODE="enforce")
    moment(datetime(2026, 11, 24, 10, tzinfo=timezone.utc))
    callers = [{"Caller": f"203.0.113.{n}"} for n in range(40)]
    window = record("w1", at(0), incident=None, operation="egress", resource_id=b.storage_account("synthwide")["id"],
                    findings=[{**FINDING, "evidence": {"callers": callers}}])
    first = assign(app.runtime, window)
    later = record("w2", at(1), incident=None, operation="egress", resource_id=b.storage_account("synthother")["id"],
                   findings=[{**FINDING, "evidence": {"callers": callers[-1:]}}])
    assert assign(app.runtime, later).incident == first.incident
    query, _ = row_filter(SIGNS, [f"r{n}" for n in range(FILTER_ROWS)])
    assert query.count(" eq ") <= 15
    with pytest.raises(ValueError):
        row_filter(SIGNS, [f"r{n}" for n in range(FILTER_ROWS + 1)])


def test_nothing_joins_a_closed_incident_even_a_sign_written_after_it_closed(app, moment):
    """A finding that read the signs just before the incident closed may write them after:
    the closed marker keeps the next finding out of it all the same."""
    app.configure(CONTAINMENT_MODE="enforce")
    moment(datetime(2026, 11, 24, 10, tzinfo=timezone.utc))
    first = assign(app.runtime, record("c1", at(0), incident=None, event_id="c1", actor={"object_id": "x-1"}))
    app.runtime.ledger.close_incident(first.incident)
    signs = signs_of(first)
    assert app.runtime.ledger.incident_signs(signs) == {}
    app.runtime.ledger.mark_incident_signs(signs, {}, first.incident, at(0), at(0))  # the racing write
    later = assign(app.runtime, record("c2", at(1), incident=None, event_id="c2", actor={"object_id": "x-1"}))
    assert later.incident != first.incident


def test_the_72_hours_of_a_join_count_from_the_first_exposure_not_a_weakness_before_it(app, moment):
    """A weakness seen daily keeps its incident alive with no clock; the leak that joins it on
    day 4 starts the 72 hours, and a second exposure two days later still joins it."""
    app.configure(CONTAINMENT_MODE="enforce")
    moment(datetime(2026, 11, 24, 10, tzinfo=timezone.utc))
    posture = [assign(app.runtime, record(f"p{day}", at(24 * day), incident=None, outcome="reported",
                                          findings=[WEAKNESS])) for day in range(4)]
    assert len({r.incident for r in posture}) == 1
    leak = assign(app.runtime, record("leak", at(80), incident=None, outcome="reported", findings=[FINDING]))
    later = [assign(app.runtime, record(f"r{hour}", at(hour), incident=None, outcome="reported", findings=[FINDING]))
             for hour in (100, 120, 140)]  # each within the 24-hour window of the one before
    assert {leak.incident, *(r.incident for r in later)} == {posture[0].incident}  # 140 h after the first weakness
    late = assign(app.runtime, record("late", at(155), incident=None, outcome="reported", findings=[FINDING]))
    assert late.incident != leak.incident  # 75 h after the first exposure: its clock has run out


def test_a_weakness_sign_seen_daily_never_lets_an_exposure_join_past_the_first_exposures_72_hours(app, moment):
    """The review's case: a daily posture weakness on the account, a public container in it at
    10 h, the same weakness every day after; an exposure at 180 h opens an incident of its own,
    whichever sign (the weakness's own included) it shares with the old one."""
    app.configure(CONTAINMENT_MODE="enforce")
    moment(datetime(2026, 11, 24, 10, tzinfo=timezone.utc))
    first = assign(app.runtime, record("p0", at(0), incident=None, outcome="reported", findings=[WEAKNESS]))
    opened = assign(app.runtime, record("c", at(10), incident=None, findings=[FINDING],
                                        resource_id=b.storage_account()["id"] + "/blobServices/default/containers/t"))
    daily = [assign(app.runtime, record(f"p{h}", at(h), incident=None, outcome="reported", findings=[WEAKNESS]))
             for h in (24, 48, 72, 96, 120, 144, 168)]
    assert {first.incident, opened.incident} | {r.incident for r in daily[:3]} == {first.incident}
    # 96 h and after are more than 72 h past the exposure at 10 h: a weakness starts an incident of its own.
    later = assign(app.runtime, record("x", at(180), incident=None, findings=[FINDING]))
    assert later.incident != first.incident
