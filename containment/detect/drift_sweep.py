"""The drift sweep (timer): re-judge every protected storage account and container, the
object replication policies and blob diagnostic settings of protected accounts, Key Vault,
NSG, role assignment, policy assignment and policy exemption through ARM list calls (keeping
the last good body of each compliant guardrail: containment.detect.guardrails), so what no
event reported (a dead-lettered
event, a change made before the app was deployed) is still found. It also closes the
approvals that expired unanswered (containment.record.approvals.expire_overdue).

The same assess step, rules, decisions and records as the event path, called on each
listed resource (no event is made up); a sweep decision says it came from the sweep. Only
what has findings is recorded: a decision to contain whenever the sweep finds it, anything
else once per resource, set of rules, outcome and day, so an exposure left reported is not
recorded again every hour (sweep_key). The lists are read page by page as the sweep goes
(following nextLink), and a list that fails is that collection's `failed` record. Calls are
sequential, and paced: while ARM says few of the subscription's reads are left, each list
page and re-read waits for a reserve kept for containment (containment.adapters.arm_limits);
a 429's Retry-After is honoured by the SDK's retry policy.

Each run first writes the ledger's digest: every evidence chain's head, to the immutable
digest container, so what was recorded before it cannot be rewritten unseen.

What fails (nothing to sweep, the digest, one item) is a `failed` record and the sweep goes
on; a failure that repeats is one record, counted until it works again
(containment.record.repeats).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from typing import Callable, Iterable, Iterator

from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core import clock
from containment.core.ids import parse_resource_id
from containment.judge.scope import protection_of
from containment.core.records import DecisionRecord, describe_failure
from containment.detect.guardrails import assess_guardrail
from containment.detect.key_vault import assess_key_vault
from containment.detect.nsg import assess_nsg
from containment.detect.pipeline import Assess, Assessment
from containment.detect.run_listing import one_listing_per_run, storage_accounts
from containment.detect.role_assignments import assess_inherited_assignment, assess_role_assignment
from containment.detect.storage import assess_storage
from containment.plan.decisions import CONTAIN, decide, failed, recorded
from containment.record.approvals import expire_overdue
from containment.record.conclude import conclude, with_exemptions
from containment.record.repeats import Repeats

log = logging.getLogger("containment")
OPERATION = "drift_sweep"
SWEEPER = {"name": "drift sweep"}
PERMISSIONS = ("Microsoft.Storage/storageAccounts/read", "Microsoft.Network/networkSecurityGroups/read",
               "Microsoft.Authorization/roleAssignments/read",
               "Microsoft.Storage/storageAccounts/objectReplicationPolicies/read",
               "Microsoft.Insights/diagnosticSettings/read", "Microsoft.Authorization/policyAssignments/read",
               "Microsoft.Authorization/policyExemptions/read", "Microsoft.KeyVault/vaults/read")  # the list calls
# What a failure is about, where it is no one listed resource: the sweep itself, its digest.
SWEEP, DIGEST = "", "the ledger digest"


def run_drift_sweep(runtime: Runtime | None = None) -> list[DecisionRecord]:
    runtime = runtime or current()
    failures = Repeats(runtime, OPERATION, "sweep")
    written = expire_overdue(runtime) + _digest(runtime, failures)
    # Empty CONTAINMENT_SUBSCRIPTIONS means every subscription the identity can see.
    subscriptions = sorted(runtime.settings.subscriptions) or sorted(arm.list_subscriptions(runtime.clients))
    if not subscriptions:
        return written + _failed(runtime, failures, SWEEP,
                                 "CONTAINMENT_SUBSCRIPTIONS is empty and the app's identity sees no subscription: "
                                 "nothing to sweep (is its role assigned?)")
    written += failures.worked(SWEEP)
    with one_listing_per_run():  # each subscription's accounts listed once for everything the run judges
        for subscription in subscriptions:
            for resource_id, assess in _inventory(runtime, subscription):
                written += _sweep_one(runtime, failures, resource_id, assess)
    return written


Listed = Callable[[Runtime], Assessment]


def _inventory(runtime: Runtime, subscription: str) -> Iterator[tuple[str, Listed]]:
    """Every listed resource with the assess step that judges it, collection by collection and
    page by page. A role assignment the subscription holds from above it (the root, a
    management group) is judged from its body: it has no ID under the subscription to read it by."""
    clients = runtime.clients
    under = f"/subscriptions/{subscription}/providers"
    yield from _each(f"{under}/Microsoft.Storage/storageAccounts", lambda: storage_accounts(runtime, subscription),
                     lambda account: _account(runtime, account))
    yield from _each(f"{under}/Microsoft.KeyVault/vaults", lambda: arm.list_vaults(clients, subscription),
                     lambda vault: [(vault["id"], _by_id(assess_key_vault, vault["id"]))])
    yield from _each(f"{under}/Microsoft.Network/networkSecurityGroups", lambda: arm.list_nsgs(clients, subscription),
                     lambda nsg: [(nsg["id"], _by_id(assess_nsg, nsg["id"]))])
    yield from _each(f"{under}/Microsoft.Authorization/roleAssignments",
                     lambda: arm.list_role_assignments(clients, f"/subscriptions/{subscription}"),
                     lambda assignment: [_assignment(assignment, subscription)])
    # Those of a management group have no ID under the subscription and are not judged (README).
    for kind, listing in (("policyAssignments", arm.list_policy_assignments),
                          ("policyExemptions", arm.list_policy_exemptions)):
        yield from _each(f"{under}/Microsoft.Authorization/{kind}", lambda listing=listing: listing(clients, subscription),
                         lambda item: [(item["id"], _by_id(assess_guardrail, item["id"]))]
                         if str(item.get("id", "")).lower().startswith("/subscriptions/") else [])


def _each(collection: str, listing: Callable[[], Iterable[dict]],
          work: Callable[[dict], Iterable[tuple[str, Listed]]]) -> Iterator[tuple[str, Listed]]:
    """The work on each listed item, as its page arrives (lists are never held whole: a page
    at a time, and ARM is asked for the next when the sweep has judged the one before). A list
    that fails, at once or at a later page, is that collection's failure (a `failed` record),
    not the sweep's: what was listed before the failure is judged, and the sweep goes on."""
    try:
        for item in listing():
            yield from work(item)
    except Exception as error:  # noqa: BLE001 - recorded by _sweep_one as this collection's failure
        yield collection, _failing(error)


def _account(runtime: Runtime, account: dict) -> Iterator[tuple[str, Listed]]:
    """A storage account and, where it is protected, its object replication policies and its
    blob service's diagnostic settings (guardrails: containment.detect.guardrails)."""
    yield account["id"], _by_id(assess_storage, account["id"])
    if protection_of(parse_resource_id(account["id"]), account.get("tags"), runtime.settings).protected:
        yield from _each(f"{account['id']}/objectReplicationPolicies",
                         lambda: arm.list_replication_policies(runtime.clients, parse_resource_id(account["id"])),
                         lambda policy: [(policy["id"], _by_id(assess_storage, policy["id"]))])
        service = f"{account['id']}/blobServices/default"
        yield from _each(f"{service}/providers/Microsoft.Insights/diagnosticSettings",
                         lambda: arm.list_diagnostic_settings(runtime.clients, service),
                         lambda setting: [(setting["id"], _by_id(assess_guardrail, setting["id"]))])


def _assignment(assignment: dict, subscription: str) -> tuple[str, Listed]:
    if str(assignment.get("id", "")).lower().startswith("/subscriptions/"):
        return assignment["id"], _by_id(assess_role_assignment, assignment["id"])
    return str(assignment.get("id")), lambda runtime: assess_inherited_assignment(assignment, subscription, runtime)


def _failing(error: Exception) -> Listed:
    def assess(runtime: Runtime) -> Assessment:
        raise error
    return assess


def _by_id(assess: Assess, resource_id: str) -> Listed:
    return lambda runtime: assess(parse_resource_id(resource_id), runtime, None)  # no event: nothing reported it


def _sweep_one(runtime: Runtime, failures: Repeats, resource_id: str, assess: Listed) -> list[DecisionRecord]:
    try:
        record = _judge(runtime, assess)
    except Exception as error:  # noqa: BLE001 - one item that cannot be judged or recorded must not stop the sweep
        log.error("DRIFT SWEEP could not judge %s: %s", resource_id, error)
        why = describe_failure(error)
        record = DecisionRecord(key="", resource_id=resource_id, outcome="", mode=runtime.settings.mode, reason="",
                                operation=OPERATION, actor=SWEEPER, decided_at=clock.iso())
        failure = failures.failed(resource_id, recorded(record, failed(
            f"the drift sweep could not judge or record it: {why}; the next sweep tries again")), why)
        return [failure] if failure else []
    return ([record] if record else []) + failures.worked(resource_id)


def _judge(runtime: Runtime, assess: Listed) -> DecisionRecord | None:
    assessment = assess(runtime)
    if assessment.ignored or not assessment.findings:
        return None  # not protected, gone, or compliant: nothing to record
    decision = with_exemptions(runtime, decide(assessment.findings, runtime.settings))
    record = DecisionRecord(
        key=sweep_key(assessment.resource_id, assessment.findings, decision.outcome), outcome="",
        resource_id=assessment.resource_id, mode=runtime.settings.mode, reason="", operation=OPERATION,
        actor=SWEEPER, event_time=clock.iso(), decided_at=clock.iso(),
    )
    if runtime.ledger.find(record.resource_id, record.key) is not None:
        return None  # recorded already today
    decision = replace(decision, reason=f"found by the drift sweep: {decision.reason}")
    return conclude(runtime, record, decision, assessment.state, check_exemptions=False)


def sweep_key(resource_id: str, findings: list, outcome: str) -> str:
    """One record per resource, set of rules and outcome a day, so an exposure left
    reported (or exempt) is not recorded again every hour; but a decision to contain is keyed
    to the minute: whatever was recorded earlier that day (contained, then released, then
    opened again; exempt until an exemption ended), an exposure there is now is contained."""
    rules = " ".join(sorted({f.rule for f in findings}))
    digest = hashlib.sha256(f"{resource_id.lower()} {rules} {outcome}".encode()).hexdigest()[:24]
    return f"sweep-{clock.now():%Y%m%dT%H%M}-{digest}" if outcome == CONTAIN else f"sweep-{clock.now():%Y%m%d}-{digest}"


def _digest(runtime: Runtime, failures: Repeats) -> list[DecisionRecord]:
    """The ledger's digest for this run; one that cannot be written (storage down, or a digest
    of that name there already, never overwritten) is a failed record, and the sweep goes on."""
    try:
        runtime.ledger.keep_digest(clock.now())
    except Exception as error:  # noqa: BLE001 - the sweep must still run; the failure is on the record
        why = describe_failure(error)
        return _failed(runtime, failures, DIGEST, f"the ledger digest could not be written: {why}; the next sweep "
                                                  "writes one", why)
    return failures.worked(DIGEST)


def _failed(runtime: Runtime, failures: Repeats, scope: str, reason: str, cause: str | None = None
            ) -> list[DecisionRecord]:
    """A failure of the sweep that no listed resource is the subject of; `cause`: what
    names it among the scope's failures (default: the reason)."""
    log.error("DRIFT SWEEP FAILED: %s", reason)
    record = DecisionRecord(key="", resource_id="", outcome="",
                            mode=runtime.settings.mode, reason="", operation=OPERATION, decided_at=clock.iso())
    written = failures.failed(scope, recorded(record, failed(reason)), cause or reason)
    return [written] if written else []
