"""Notifications: every containment, pending approval, failure and release, and every
exposure found on the app's own deployment (which it never acts on), is published as a
CloudEvent to an Event Grid custom topic, so Logic Apps, Sentinel or a chat channel can
subscribe. Publishing never blocks or undoes containment: a failure is logged loudly and
kept in the ledger next to the decision it was about."""
from __future__ import annotations

import logging

from containment.adapters.runtime import Runtime
from containment.core.records import OPERATOR_OPERATIONS, DecisionRecord

log = logging.getLogger("containment")
SOURCE = "/synthetic-data-containment"
NOTIFIED = ("contained", "pending-approval", "failed")




def worth_notifying(record: DecisionRecord) -> bool:
    # An exposure of the app's own deployment is reported, never contained: only a person will act on it.
    return (record.outcome in NOTIFIED or record.operation in OPERATOR_OPERATIONS  # what people do, accepted or refused or bool(record.awaiting_approval)
            or (record.outcome == "reported" and record.own_deployment))


def notify(runtime: Runtime, record: DecisionRecord) -> None:
    if runtime.settings.notify_topic_endpoint is None or not worth_notifying(record):
        return
    kind = {"release": "released", "exemption": "exemption", "operator-request": "refused"}.get(
        record.operation, record.outcome)
    event = dict(
        # Unique per notification (consumers may drop a repeated source + id): a decision's
        # provisional failure and the decision that replaces it share the key, not the outcome.
        source=SOURCE, type=f"SyntheticDataContainment.Decision.{kind}", subject=record.resource_id or "(none)",
        id=record.key if record.key.endswith(f".{kind}") else f"{record.key}.{kind}", data={
            "decision": record.key, "outcome": record.outcome, "resource_id": record.resource_id,
            "severity": record.severity, "rules": record.rules, "actions": record.actions,
            "own_deployment": record.own_deployment,
            "awaiting_approval": [step["action"] for step in record.awaiting_approval],
            "reason": record.reason, "mode": record.mode, "decided_at": record.decided_at,
            "contained_at": record.contained_at, "actor": record.actor,
        })
    try:
        runtime.clients.publish([event])
    except Exception as error:  # noqa: BLE001 - a notification must never stop containment
        log.error("NOTIFICATION FAILED for decision %s: %s", record.key, error)
        runtime.ledger.notification_failed(record, f"{type(error).__name__}: {error}")
