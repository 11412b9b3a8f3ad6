"""ARM's remaining-request signals (containment.adapters.arm_limits): noted from every answer
the app's clients receive, refilled as ARM's documented buckets refill, and a reserve of reads
kept for containment: re-reads wait (bounded, with jitter) while reads are scarce, containment
never does."""
from __future__ import annotations

import pytest

from containment.adapters import arm, arm_limits
from containment.adapters.arm_limits import CONTAINING, MAX_WAIT, RE_READING, RESERVE, Limits
from containment.core.ids import parse_resource_id
from localazure.throttling import Throttling
from tests.helpers import arm_bodies as b

ACCOUNT = b.storage_account()
SUB = b.SUBSCRIPTION


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limits():
    clock, slept = Clock(), []
    return Limits(clock=clock, sleep=slept.append, jitter=lambda: 0.25), clock, slept


def test_what_is_left_refills_at_the_documented_rate_up_to_the_bucket(limits):
    limits, clock, _ = limits
    assert limits.left(SUB) is None and not limits.scarce(SUB)  # ARM has said nothing yet
    limits.note(SUB.upper(), "reads", 10)
    assert limits.left(SUB) == 10 and limits.scarce(SUB)
    clock.now += 1.0
    assert limits.left(SUB) == 35  # 25 a second
    clock.now += 60
    assert limits.left(SUB) == 250 and not limits.scarce(SUB)
    assert limits.left(b.OTHER_SUBSCRIPTION) is None  # per subscription


def test_a_429_leaves_nothing_until_its_retry_after_has_passed(limits):
    limits, clock, _ = limits
    limits.note(SUB, "reads", retry_after=3)
    clock.now += 2.9
    assert limits.left(SUB) == 0
    clock.now += 0.1 + 1.0
    assert limits.left(SUB) == 25


def test_re_reads_wait_for_the_reserve_with_jitter_and_bounded_containment_never_waits(limits):
    limits, clock, slept = limits
    limits.note(SUB, "reads", RESERVE + 5)
    assert limits.pace(SUB, RE_READING) == 0 and slept == []  # plenty left
    limits.note(SUB, "reads", RESERVE - 25)
    assert limits.pace(SUB, CONTAINING) == 0 and slept == []
    assert limits.pace(SUB, RE_READING) == pytest.approx(1.0 + 0.25)  # 25 short: a second's refill, plus jitter
    limits.note(SUB, "reads", retry_after=60)
    assert limits.pace(SUB, RE_READING) == MAX_WAIT
    assert slept == [pytest.approx(1.25), MAX_WAIT]


def test_the_jitter_spreads_waiters_over_a_second_of_refill():
    waits = set()
    for _ in range(20):
        limits = Limits(clock=lambda: 0.0, sleep=lambda seconds: None)
        limits.note(SUB, "reads", RESERVE - 1)  # one short: a twenty-fifth of a second
        waits.add(round(limits.pace(SUB, RE_READING), 3))
    assert len(waits) > 10 and all(0.04 <= wait <= 0.04 + arm_limits.JITTER for wait in waits)


def test_the_apps_clients_note_what_arm_says_is_left_on_every_answer(app, emulator):
    emulator.arm.throttling = Throttling(reads=(250, 0.001))  # no refill to speak of: exact counts
    emulator.seed([ACCOUNT])
    clients = app.runtime.clients
    arm.read(clients, parse_resource_id(ACCOUNT["id"]))
    assert emulator.traffic[-1].response_headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
    assert 249 <= arm_limits.LIMITS.left(SUB) <= 250
    arm.read_or_none(clients, parse_resource_id(ACCOUNT["id"] + "x"))  # a 404 spent a token too, and says so
    assert 248 <= arm_limits.LIMITS.left(SUB) < 250
    list(arm.list_nsgs(clients, SUB))  # another provider: the same subscription bucket
    assert emulator.traffic[-1].response_headers["x-ms-ratelimit-remaining-subscription-reads"] == "247"


def test_a_re_read_waits_for_the_reserve_and_a_containment_read_does_not(app, emulator, monkeypatch):
    emulator.seed([ACCOUNT])
    slept = []
    monkeypatch.setattr(arm_limits.LIMITS, "sleep", slept.append)
    arm_limits.LIMITS.note(SUB, "reads", 0)
    clients, target = app.runtime.clients, parse_resource_id(ACCOUNT["id"])
    with arm_limits.containing():
        arm.read(clients, target)
    assert slept == []
    arm_limits.LIMITS.note(SUB, "reads", 0)
    arm.read(clients, target)
    assert len(slept) == 1 and RESERVE / 25 - 0.1 <= slept[0] <= RESERVE / 25 + arm_limits.JITTER


def test_retry_after_is_read_as_seconds_or_an_http_date():
    assert arm_limits.retry_after_seconds("7") == 7.0
    assert arm_limits.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # long past
    assert arm_limits.retry_after_seconds(None) == arm_limits.retry_after_seconds("soon") == 0.0
