"""What becomes of a decision that waited for a person: the follow-up record of an approval,
a denial or an expiry, and the hourly close of approvals nobody answered in time
(CONTAINMENT_APPROVAL_EXPIRY_HOURS)."""
from __future__ import annotations

from datetime import datetime, timedelta

from containment.adapters.runtime import Runtime
from containment.core import clock
from containment.core.records import DecisionRecord
from containment.plan.decisions import not_carried_out, recorded
from containment.record.conclude import record_once


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expires(runtime: Runtime, original: DecisionRecord) -> datetime:
    return parse_time(original.decided_at) + timedelta(hours=runtime.settings.approval_expiry_hours)


def held_steps(original: DecisionRecord) -> list[dict]:
    return original.awaiting_approval or original.plan


def follow_up(runtime: Runtime, original: DecisionRecord, suffix: str, actor: dict) -> DecisionRecord:
    """The record of what became of a decision that waited for a person."""
    return DecisionRecord(
        key=f"{original.key}.{suffix}", resource_id=original.resource_id, outcome="", mode=runtime.settings.mode,
        reason="", event_id=original.event_id, operation="approval", actor=actor,
        findings=original.findings, rules=original.rules, severity=original.severity,
        event_time=original.event_time, decided_at=clock.iso(), incident=original.incident,
    )


def record_expiry(runtime: Runtime, original: DecisionRecord, actor: dict) -> DecisionRecord:
    expired = recorded(follow_up(runtime, original, "expired", actor), not_carried_out(
        f"approval expired at {clock.iso(expires(runtime, original))}: "
        f"{', '.join(s['action'] for s in held_steps(original))} not carried out"))
    return record_once(runtime, expired) or expired


def expire_overdue(runtime: Runtime) -> list[DecisionRecord]:
    """Close what waited for a person past CONTAINMENT_APPROVAL_EXPIRY_HOURS (the hourly
    sweep calls this), so an approval nobody gave is on the record as expired, not left open."""
    written = []
    for item in runtime.ledger.pending():
        original = runtime.ledger.find(item["resource_id"], item["key"])
        if original is None or clock.now() < expires(runtime, original):
            continue
        if runtime.ledger.take_pending(item["key"]) is not None:  # else a person settled it meanwhile
            written.append(record_expiry(runtime, original, {"name": "the approval expiry (drift_sweep)"}))
    return written
