"""ARM's token buckets (localazure/throttling.py): remaining counts on every answer, a 429
with Retry-After when a bucket is spent, refilled with time; the app rides through it."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from containment.adapters import arm_limits
from localazure.throttling import Throttling
from tests.helpers import arm_bodies as b
from tests.helpers.events import CONTAINER_WRITE, write_event

ACCOUNT = b.storage_account()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_answer_says_what_is_left_and_a_spent_bucket_is_a_429_until_it_refills(emulator, owner):
    from azure.mgmt.storage import StorageManagementClient

    from tests.conftest import OwnerCredential

    clock = Clock()
    emulator.arm.throttling = Throttling(reads=(2, 1.0), clock=clock)
    emulator.seed([ACCOUNT])
    impatient = StorageManagementClient(OwnerCredential(), b.SUBSCRIPTION, base_url=emulator.endpoint,
                                        connection_verify=str(emulator.ca_bundle), retry_total=0)
    accounts = impatient.storage_accounts
    accounts.get_properties(b.RG, ACCOUNT["name"])
    assert emulator.traffic[-1].response_headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"
    accounts.get_properties(b.RG, ACCOUNT["name"])
    with pytest.raises(HttpResponseError) as throttled:
        accounts.get_properties(b.RG, ACCOUNT["name"])
    assert (throttled.value.status_code, throttled.value.error.code) == (429, "SubscriptionRequestsThrottled")
    assert throttled.value.response.headers["Retry-After"] == "1"
    clock.now += 1
    assert accounts.get_properties(b.RG, ACCOUNT["name"]).name == ACCOUNT["name"]
    # Writes have a bucket of their own.
    accounts.update(b.RG, ACCOUNT["name"], {"properties": {"minimumTlsVersion": "TLS1_2"}})
    assert emulator.traffic[-1].response_headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"


def test_the_app_rides_through_throttling_by_waiting_what_arm_asks(app, emulator):
    emulator.arm.throttling = Throttling(reads=(2, 2.0), writes=(1, 2.0))
    public = b.container(ACCOUNT["id"], "training", "Container")
    emulator.seed([ACCOUNT, public])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(public["id"], CONTAINER_WRITE))
    with arm_limits.containing():  # as the worker marks its reads: they never wait for the reserve
        app.drain()
    [record] = app.records()
    assert record.outcome == "contained"
    assert emulator.arm.throttling.throttled > 0  # it was throttled, and waited instead of failing
    assert emulator.arm.get(public["id"])["properties"]["publicAccess"] == "None"
