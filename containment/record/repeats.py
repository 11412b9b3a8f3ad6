"""Failures that repeat: one record, counted, until what failed works again.

A scan that fails the same way on every run (no workspace configured, a role not yet
assigned) would otherwise write and notify a `failed` record every five minutes, 288 a day
saying one thing, and bury the one that says something new. So a failure is named by what
failed within an operation (its scope: the egress scan, one account, the ledger digest) and
why (its cause: the error, its volatile parts removed, cause_of):

- its first occurrence writes a `failed` record and notifies, as any failure does;
- each repetition while it persists writes no record: it counts on the ledger's repetition
  entity (how often, first and last time). Records are immutable and chained, so the count
  lives beside the record, never in it; exports join them (exported);
- the next run that gets through the scope without failing writes one `reported` record
  saying it works again, after how many occurrences between when and when, and the
  repetition closes: the same failure after that is a new record. A different cause in the
  same scope is a failure of its own.

Two instances that see the same failure at once write one record: its key follows from the
failure and how often it started before (Repetition.key), the record's insert is
conditional, and so is the repetition's creation; whoever loses counts.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import replace
from functools import cached_property

from containment.adapters.ledger import Ledger, Repetition
from containment.adapters.runtime import Runtime
from containment.core import clock
from containment.core.records import DecisionRecord
from containment.plan.decisions import recorded, recovered
from containment.record.conclude import record_once

log = logging.getLogger("containment")
# What differs between two occurrences of one failure and says nothing of its cause: request,
# correlation and tracking IDs (GUIDs, long hex), and times (ISO 8601, HTTP dates).
_VOLATILE = (
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE),
    re.compile(r"\b[0-9a-f]{16,}\b", re.IGNORECASE),
    re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"),
    re.compile(r"\b\d{8}T\d{4,6}(?:\d*Z)?\b"),
    re.compile(r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\b"),
)
MAX_CAUSE = 1000
# Losing a race to another instance means reading again; this many in a row is contention nobody should see.
_ATTEMPTS = 20


def cause_of(failure: str) -> str:
    """The failure as its cause: the same for every occurrence of one failure."""
    for volatile in _VOLATILE:
        failure = volatile.sub("…", failure)
    return " ".join(failure.split())[:MAX_CAUSE]


class Repeats:
    """One run's failures within an operation (the egress scan, the drift sweep) and what
    works again. `namespace` starts the keys of its records (one of the app's own)."""

    def __init__(self, runtime: Runtime, operation: str, namespace: str):
        self.runtime, self.operation, self.namespace = runtime, operation, namespace
        self._started: dict[str, dict[str, Repetition]] = {}  # by scope: what this run started

    @cached_property
    def _open(self) -> dict[str, dict[str, Repetition]]:
        """By scope, the repetitions open when the run first asked: one query a run."""
        open_by_scope: dict[str, dict[str, Repetition]] = {}
        for repetition in self.runtime.ledger.open_repetitions(self.operation):
            open_by_scope.setdefault(repetition.scope, {})[repetition.key] = repetition
        return open_by_scope

    def failed(self, scope: str, record: DecisionRecord, cause: str) -> DecisionRecord | None:
        """A `failed` record (its key is set here) for the scope's failure the first time it
        happens; a count on its repetition while it repeats. The record if this call wrote it."""
        ledger, scope, cause, now = self.runtime.ledger, scope.lower(), cause_of(cause), clock.iso()
        digest = hashlib.sha256(f"{self.operation}\n{scope}\n{cause}".encode()).hexdigest()[:24]
        failure, written = f"{self.namespace}-failing-{digest}", None
        for _ in range(_ATTEMPTS):
            latest = ledger.latest_repetition(failure)
            if latest is not None and latest.open:
                if ledger.update_repetition(replace(latest, count=latest.count + 1, last_at=now)):
                    log.warning("%s failed again%s as recorded in %s (%d times since %s)", self.operation,
                                f" for {scope}" if scope else "", latest.key, latest.count + 1, latest.first_at)
                    return written
                continue
            started = Repetition(failure, latest.occurrence + 1 if latest else 1, self.operation, scope,
                                 record.resource_id, cause, 1, now, now)
            # The record first: an occurrence counted is one whose record exists.
            written = record_once(self.runtime, replace(
                record, key=started.key, reason=f"{record.reason}; until it works again, repetitions are counted "
                                                "for this record, not recorded or notified again")) or written
            if ledger.start_repetition(started):
                self._started.setdefault(scope, {})[started.key] = started
                return written
        raise RuntimeError(f"{self.operation}: the repetitions of {failure} are contended beyond {_ATTEMPTS} attempts")

    def worked(self, scope: str) -> list[DecisionRecord]:
        """The run got through the scope without failing: each of its failures still open
        closes, on a record saying it works again."""
        scope = scope.lower()
        open_here = {**self._open.pop(scope, {}), **self._started.pop(scope, {})}
        return [written for repetition in open_here.values() if (written := self._recovered(repetition))]

    def _recovered(self, repetition: Repetition) -> DecisionRecord | None:
        ledger, now, written = self.runtime.ledger, clock.iso(), None
        for _ in range(_ATTEMPTS):
            current = ledger.repetition(repetition.key)  # as counted by now, with its ETag
            if current is None or not current.open:
                return written  # another instance closed it
            record = DecisionRecord(key=f"{current.key}.recovered", resource_id=current.resource_id, outcome="",
                                    mode=self.runtime.settings.mode, reason="", operation=self.operation,
                                    decided_at=now)
            # Recorded before the repetition closes, so a crash leaves it open, to close on the next run.
            written = record_once(self.runtime, recorded(record, recovered(
                self.operation, current.scope, current.key, current.cause, current.count, current.first_at,
                current.last_at))) or written
            if ledger.update_repetition(replace(current, recovered_at=now, recovery=record.key)):
                return written
        raise RuntimeError(f"{self.operation}: closing {repetition.key} is contended beyond {_ATTEMPTS} attempts")


def exported(ledger: Ledger, records: list[DecisionRecord]) -> list[dict]:
    """The records as exports show them: a failure that repeated with how often it happened
    (`repeated`, its first time included), the last time (`last_repeated_at`) and when it
    recovered (`recovered_at`, null while it persists)."""
    rows = []
    for record in records:
        row = record.as_output()
        repetition = ledger.repetition(record.key) if record.outcome == "failed" else None
        if repetition is not None:
            row.update(repeated=repetition.count, last_repeated_at=repetition.last_at,
                       recovered_at=repetition.recovered_at)
        rows.append(row)
    return rows
