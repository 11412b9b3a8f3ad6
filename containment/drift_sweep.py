"""The drift sweep (timer): re-judge every protected storage account and container, NSG
and role assignment through ARM list calls, so what no event reported (a dead-lettered
event, a change made before the app was deployed) is still found. It also closes the
approvals that expired unanswered (operator.expire_overdue).

Same assessors, rules, decisions and records as the event path; a sweep decision says it
came from the sweep. Only what has findings is recorded, once per resource, set of rules
and day, so an exposure left reported is not recorded again every hour. The SDK pagers
follow nextLink; calls are sequential and the SDK's retry policy honours ARM's 429s.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from typing import Iterator

from containment import clock
from containment.decisions import decide
from containment.detection import Assess, conclude, record_once
from containment.events import Actor, ArmEvent
from containment.ledger import DecisionRecord
from containment.nsg_exposure import assess_nsg
from containment.operator import expire_overdue
from containment.resource_ids import parse_resource_id
from containment.role_assignments import assess_role_assignment
from containment.runtime import Runtime, current
from containment.storage_exposure import assess_storage

log = logging.getLogger("containment")
OPERATION = "drift_sweep"
PERMISSIONS = ("Microsoft.Storage/storageAccounts/read", "Microsoft.Network/networkSecurityGroups/read",
               "Microsoft.Authorization/roleAssignments/read")  # the list calls


def run_drift_sweep(runtime: Runtime | None = None) -> list[DecisionRecord]:
    runtime = runtime or current()
    written = expire_overdue(runtime)
    subscriptions = sorted(runtime.settings.subscriptions)
    if not subscriptions:
        return written + _failed(runtime, "CONTAINMENT_SUBSCRIPTIONS is empty: the sweep lists resources per "
                                          "subscription")
    for subscription in subscriptions:
        for resource_id, assess in _inventory(runtime, subscription):
            record = _sweep_one(runtime, resource_id, assess)
            if record is not None:
                written.append(record)
    return written


def _inventory(runtime: Runtime, subscription: str) -> Iterator[tuple[str, Assess]]:
    clients = runtime.clients
    for account in clients.storage(subscription).storage_accounts.list():
        yield account.id, assess_storage
    for nsg in clients.network(subscription).network_security_groups.list_all():
        yield nsg.id, assess_nsg
    for assignment in clients.authorization(subscription).role_assignments.list_for_scope(
            f"/subscriptions/{subscription}"):
        yield assignment.id, assess_role_assignment


def _sweep_one(runtime: Runtime, resource_id: str, assess: Assess) -> DecisionRecord | None:
    if runtime.settings.is_own(resource_id):
        return None  # the app's own deployment is never judged
    resource = parse_resource_id(resource_id)
    event = ArmEvent(id=f"sweep {resource.key}", type="DriftSweep", time=clock.now(), operation=OPERATION,
                     resource=resource, actor=Actor(name="drift sweep"))
    assessment = assess(event, runtime)
    if assessment.ignored or not assessment.findings:
        return None  # not protected, gone, or compliant: nothing to record
    decision = decide(assessment.findings, runtime.settings)
    rules = sorted({f.rule for f in assessment.findings})
    digest = hashlib.sha256(f"{assessment.resource_id.lower()} {' '.join(rules)}".encode()).hexdigest()[:24]
    record = DecisionRecord(
        key=f"sweep-{clock.now():%Y%m%d}-{digest}", resource_id=assessment.resource_id, outcome="",
        mode=runtime.settings.mode, reason="", operation=OPERATION, actor=event.actor.as_dict(),
        event_time=clock.iso(), decided_at=clock.iso(),
    )
    if runtime.ledger.find(record.resource_id, record.key) is not None:
        return None  # found already today
    decision = replace(decision, reason=f"found by the drift sweep: {decision.reason}")
    return conclude(runtime, record, decision, assessment.state)


def _failed(runtime: Runtime, reason: str) -> list[DecisionRecord]:
    log.error("DRIFT SWEEP FAILED: %s", reason)
    record = DecisionRecord(key=f"sweep-failed-{clock.now():%Y%m%d}", resource_id="", outcome="failed",
                            mode=runtime.settings.mode, reason=reason, operation=OPERATION, decided_at=clock.iso())
    written = record_once(runtime, record)
    return [written] if written else []
