"""ARM's request throttling as its documented token buckets: off unless a test or the storm
benchmark turns it on (`ArmState.throttling = Throttling()`).

Source: https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling
- Per subscription (per service principal and region), a bucket per kind of request: reads
  hold 250 tokens and refill 25 a second; writes 200 and 10; deletes 200 and 10. One bucket
  for every resource provider's requests: "the subscription limits apply per subscription,
  per service principal, and per operation type".
- Every answer says what is left: `x-ms-ratelimit-remaining-subscription-reads` on reads
  (`-writes`, `-deletes` on those), whatever the status: a read answered 404 spent its token.
- An empty bucket is a 429 with `Retry-After`; the SDKs wait that long and send again.

Resource providers throttle too, after ARM, with limits of their own: most are unpublished,
and the Storage provider's (800 reads and 100 lists per 5 minutes, 10 writes a second:
https://learn.microsoft.com/azure/storage/common/scalability-targets-resource-provider) are
not modelled here, where they would stretch a benchmark to Azure's minutes; bench/storm.py
states the storm's time under them as a model. Whether a 404 or 429 answer carries a
remaining count in Azure, and the error code of a throttled request
(`SubscriptionRequestsThrottled`) under the token-bucket model, are unverified.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from localazure.refusals import Refused

KINDS = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}  # anything else writes


@dataclass
class Bucket:
    size: float
    refill: float  # tokens a second
    tokens: float
    updated: float

    def take(self, now: float) -> float | None:
        """The tokens left after taking one, or None when none is there."""
        self.tokens = min(self.size, self.tokens + (now - self.updated) * self.refill)
        self.updated = now
        if self.tokens < 1:
            return None
        self.tokens -= 1
        return self.tokens


@dataclass
class Throttling:
    reads: tuple[float, float] = (250, 25.0)
    writes: tuple[float, float] = (200, 10.0)
    deletes: tuple[float, float] = (200, 10.0)
    clock: Callable[[], float] = time.monotonic
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    throttled: int = 0  # 429s answered, for the benchmark's report

    def take(self, subscription: str, method: str) -> tuple[str, int]:
        """(kind, tokens left) for one request; Refused(429) with Retry-After when spent."""
        kind = KINDS.get(method, "writes")
        size, refill = getattr(self, kind)
        key = (subscription, kind)
        now = self.clock()
        bucket = self.buckets.setdefault(key, Bucket(size, refill, size, now))
        left = bucket.take(now)
        if left is None:
            self.throttled += 1
            wait = max(1, math.ceil((1 - bucket.tokens) / refill))
            raise Refused(429, "SubscriptionRequestsThrottled",
                          f"Number of '{kind[:-1]}' requests for subscription '{subscription}' exceeded. Please try "
                          f"again after '{wait}' seconds after additional tokens are available. Refer to "
                          "https://aka.ms/arm-throttling", headers={"Retry-After": str(wait)})
        return kind, int(left)
