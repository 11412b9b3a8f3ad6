"""What ARM says is left of its request budget, read off every answer, and the pacing built on it.

ARM throttles each subscription's requests per service principal and kind with token
buckets: reads hold 250 tokens and refill 25 a second, writes and deletes 200 and 10
(https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling,
"Regional throttling and token bucket algorithm"). Every answer says what is left:
`x-ms-ratelimit-remaining-subscription-reads` on reads, `-writes` on writes, `-deletes` on
deletes (the same page, "Remaining requests"); an empty bucket answers 429 with `Retry-After`,
the seconds to wait before sending again ("Error code").

The app's ARM clients carry `Signals` (containment.adapters.clients), which notes those
figures per subscription, and a 429's Retry-After as none left until then. The budget is the
app's own (the bucket is per service principal, and every instance of the app is one
principal), so a reserve of it is kept for containment: while fewer than RESERVE reads are
left, a detection re-read or a sweep list waits (`pace`), a bounded time with jitter so that
waiting threads and instances do not wake together; a read made while containing
(`containing()`, which the containment worker enters) never waits: a containment's re-read
before its write has priority over re-reading what an event reports. Waiting is best effort:
after MAX_WAIT the request goes out, and a 429 is then waited out by the SDK's retry policy,
which honours Retry-After (containment.adapters.arm_retry).

Per process, not per Runtime: the figures are ARM's, for the one identity every client here
uses. Monotonic time: buckets refill in real time, whatever clock the app judges by.
"""
from __future__ import annotations

import random
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator

# The documented subscription buckets (above): what a kind of request has at most, and refills.
BUCKETS = {"reads": (250, 25.0), "writes": (200, 10.0), "deletes": (200, 10.0)}
# Reads kept for containment: two seconds of refill, a fifth of the bucket. Enough for the
# re-reads of the containments ARM's write bucket lets through in that time (10 a second)
# with room to spare; a judgement, since Microsoft states no reserve.
RESERVE = 50
MAX_WAIT = 5.0  # seconds one request waits at most: an Event Grid delivery must end in 30 s
JITTER = 1.0  # seconds: spread over a second's refill rather than woken together

CONTAINING, RE_READING = "containing", "re-reading"
_priority: ContextVar[str] = ContextVar("arm_priority", default=RE_READING)


def kind_of(method: str) -> str:
    """ARM's kind of request: GET (and HEAD) read, DELETE deletes, anything else writes."""
    method = method.upper()
    return "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"


@dataclass(frozen=True)
class Seen:
    left: int  # what ARM said remained
    at: float  # when (monotonic seconds)
    until: float = 0.0  # after a 429: nothing is left before this moment (its Retry-After)


class Limits:
    """What ARM last said of each subscription's buckets, and what is left by now."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, jitter: Callable[[], float] | None = None):
        self.clock, self.sleep = clock, sleep
        self.jitter = jitter or (lambda: random.uniform(0, JITTER))
        self._seen: dict[tuple[str, str], Seen] = {}
        self._lock = threading.Lock()

    def note(self, subscription: str, kind: str, left: int | None = None, retry_after: float | None = None) -> None:
        """A remaining count from an answer's header, or a 429 and its Retry-After."""
        now = self.clock()
        with self._lock:
            if retry_after is not None:
                self._seen[subscription.lower(), kind] = Seen(0, now, now + retry_after)
            elif left is not None:
                self._seen[subscription.lower(), kind] = Seen(left, now)

    def left(self, subscription: str, kind: str = "reads") -> float | None:
        """What is left by now: the last figure plus the bucket's refill since, at most its
        size; None where ARM has said nothing yet."""
        with self._lock:
            seen = self._seen.get((subscription.lower(), kind))
        if seen is None:
            return None
        size, refill = BUCKETS[kind]
        now = self.clock()
        if now < seen.until:
            return 0.0
        return min(size, seen.left + (now - max(seen.at, seen.until)) * refill)

    def scarce(self, subscription: str) -> bool:
        left = self.left(subscription)
        return left is not None and left < RESERVE

    def pace(self, subscription: str, priority: str) -> float:
        """Wait, while the subscription's reads are below the reserve, until the refill brings
        them back (at most MAX_WAIT, plus jitter); never while containing. The seconds waited."""
        if priority == CONTAINING:
            return 0.0
        left = self.left(subscription)
        if left is None or left >= RESERVE:
            return 0.0
        with self._lock:
            seen = self._seen.get((subscription.lower(), "reads"))
        blocked = max(0.0, seen.until - self.clock()) if seen else 0.0
        wait = min(MAX_WAIT, blocked + (RESERVE - left) / BUCKETS["reads"][1] + self.jitter())
        self.sleep(wait)
        return wait

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()


LIMITS = Limits()


def reads_scarce(subscription: str) -> bool:
    """Whether fewer than RESERVE of the subscription's ARM reads are left (as ARM last said,
    refilled since): a read this can save (a redelivery the ledger already decided) is worth
    a ledger lookup first."""
    return LIMITS.scarce(subscription)


def pace(subscription: str, priority: str) -> float:
    return LIMITS.pace(subscription, priority)


def priority() -> str:
    return _priority.get()


@contextmanager
def containing() -> Iterator[None]:
    """ARM reads inside are containment's: they never wait for the reserve (they are what it is for)."""
    token = _priority.set(CONTAINING)
    try:
        yield
    finally:
        _priority.reset(token)


def subscription_of(url: str) -> str | None:
    """The subscription a request is counted against: the ID after /subscriptions/ in its
    path; None for a tenant-level request (listing the subscriptions)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url).path.strip("/").split("/")
    return parts[1].lower() if len(parts) > 1 and parts[0].lower() == "subscriptions" and parts[1] else None


def following_a_write() -> bool:
    """Whether this request is azure-core polling a long-running write (its status, then the
    resource it wrote: https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
    Only the worker writes, so it is containment's; the poller runs in a thread of its own
    (azure.core.polling.LROPoller names it `LROPoller(<uuid>)`), which does not carry
    `containing()`, so it is known by that thread."""
    return threading.current_thread().name.startswith("LROPoller(")


class Signals:
    """On the app's ARM clients, after the retry policy, so it sees every attempt: a read
    waits for the reserve before its first attempt (`pace`; a retry has waited Retry-After
    already), and every answer's remaining count, or a 429's Retry-After, is noted.

    An azure-core HTTP policy by its shape (`send`, and `next`, which the pipeline sets), not
    by subclassing HTTPPolicy: detection imports this module at cold start, and no SDK is
    imported before its first use."""

    next = None

    def send(self, request):
        http_request = request.http_request
        subscription = subscription_of(http_request.url)
        kind = kind_of(http_request.method)
        if subscription and kind == "reads" and not request.context.get("retry_count") and not following_a_write():
            pace(subscription, priority())
        response = self.next.send(request)
        if subscription:
            _note(subscription, kind, response.http_response)
        return response


def _note(subscription: str, kind: str, answer) -> None:
    headers = answer.headers
    if answer.status_code == 429:
        LIMITS.note(subscription, kind, retry_after=retry_after_seconds(headers.get("Retry-After")))
        return
    for each in BUCKETS:
        left = headers.get(f"x-ms-ratelimit-remaining-subscription-{each}")
        if left is not None and left.strip().isdigit():
            LIMITS.note(subscription, each, int(left))


def retry_after_seconds(value: str | None) -> float:
    """Retry-After as seconds: a number of seconds or an HTTP date (RFC 9110, 10.2.3); 0 when
    absent or unreadable."""
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return 0.0
