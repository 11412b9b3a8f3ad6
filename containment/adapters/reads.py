"""What this instance read from ARM lately: a read that is fresh enough is not sent again.

An event is only a hint that a resource changed; what is judged is the resource as read
after the change. A read made after an event's time already shows what the event reports,
so in a storm (Event Grid redelivers, a write emits several events, hundreds of containers
of one account change at once) one read serves every later event about the resource, and
ARM's read budget per subscription (250 tokens, 25 a second:
https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling)
is spent on distinct resources, not on deliveries.

Freshness is asked for, never assumed: `reads_fresh_since(t)` around a piece of work (the
event pipeline: the event's time; the containment worker: when it started) lets `arm.read`
answer from here with a body whose request was sent at or after `t`; outside one, every
read goes to ARM (and is kept). A write forgets what it changed. Per instance and bounded
(CAPACITY entries, none older than MAX_AGE seconds), so memory stays small and instances
never share a stale view: another instance reads for itself.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

from containment.core import clock

CAPACITY = 4096  # bodies of a few KiB each: a few MiB at most
MAX_AGE = 300.0  # seconds; fresh_since decides what may be used, this only bounds what is kept
# How much later than an event's time a read must have been sent to show what the event
# reports: ARM's clock (eventTime) and the instance's may differ, and ARM may publish the
# event a moment before a read of the provider returns the new state. Two seconds is a
# judgement, unverified: no Microsoft source states either bound. Missing it costs one more
# read; the drift sweep re-reads everything regardless.
EVENT_MARGIN = 2.0

def now() -> float:
    """The app's clock (scenario replay sets it), in epoch seconds: events' times are on it too."""
    return clock.now().timestamp()


_fresh_since: ContextVar[float | None] = ContextVar("reads_fresh_since", default=None)


@dataclass(frozen=True)
class Read:
    body: str | None  # ARM's JSON, as text (whoever is given a copy may change it); None: the app deleted it
    sent_at: float  # epoch seconds when the request went out: the body is no older than this
    written: bool = False  # a write went out at sent_at: nothing read before it may be kept


class ReadCache:
    def __init__(self, capacity: int = CAPACITY, max_age: float = MAX_AGE):
        self.capacity, self.max_age = capacity, max_age
        self._reads: OrderedDict[str, Read] = OrderedDict()
        self._lock = threading.Lock()  # reads issued together (runtime.together) land from threads

    def fresh(self, key: str, since: float | None) -> Read | None:
        """The read of `key` sent at or after `since`, if one is kept; never without a `since`."""
        if since is None:
            return None
        with self._lock:
            kept = self._reads.get(key)
            if kept is None or kept.written or kept.sent_at < since or kept.sent_at < now() - self.max_age:
                return None
            self._reads.move_to_end(key)
            return kept

    def keep(self, key: str, body: str | None, sent_at: float) -> None:
        with self._lock:
            kept = self._reads.get(key)
            if kept is not None and kept.sent_at > sent_at:
                return  # a later read, or a write, went out after this read: keep the newer view
            self._reads[key] = Read(body, sent_at)
            self._reads.move_to_end(key)
            while len(self._reads) > self.capacity:
                self._reads.popitem(last=False)

    def forget(self, key: str, written_at: float | None = None) -> None:
        """What was read of `key` no longer stands: a write goes out at `written_at`, and a read
        sent before it that lands later (another thread's) is not kept either."""
        with self._lock:
            self._reads.pop(key, None)
            if written_at is not None:
                self._reads[key] = Read(None, written_at, written=True)

    def __len__(self) -> int:
        return len(self._reads)


def fresh_since() -> float | None:
    return _fresh_since.get()


@contextmanager
def reads_fresh_since(since: float | None) -> Iterator[None]:
    """Reads inside may be answered by what was read at or after `since` (epoch seconds)."""
    token = _fresh_since.set(since)
    try:
        yield
    finally:
        _fresh_since.reset(token)


def after_event(event_time: float | None) -> float | None:
    """What a read must be fresher than to show an event of this time (None: no time, no reuse)."""
    return None if event_time is None else event_time + EVENT_MARGIN
