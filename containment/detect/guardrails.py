"""What happens when a guardrail around synthetic data is written or deleted: a diagnostic
setting of a protected account's blob service, or a policy assignment or exemption whose
scope covers protected data (ResourceWriteSuccess and ResourceDeleteSuccess events, and the
drift sweep, which lists them).

Azure Policy cannot see its own assignment being deleted, and a deleted diagnostic setting
leaves the egress scan blind without a sound: the deletion event is the only signal of
either. This re-reads the guardrail: gone after a deletion event, it is judged removed, with
the last good body the app recorded (containment.adapters.ledger, kept here whenever a
guardrail is judged compliant, by events and by the sweep; a diagnostic setting only where
the configured workspace is its only destination); present, it is judged as it is. A
diagnostic setting is judged with the other settings of its blob service, listed here.
Rules: containment.judge.guardrails; restoring: containment.plan.guardrails.
"""
from __future__ import annotations

from typing import Any

from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core.events import DELETE_SUCCESS, WRITE_SUCCESS, ArmEvent, EventSubscription
from containment.core.ids import (
    DIAGNOSTIC_SETTING,
    POLICY_ASSIGNMENT,
    POLICY_EXEMPTION,
    MalformedResourceId,
    ResourceId,
    parse_resource_id,
)
from containment.detect.pipeline import Assessment, EventPath, handle_arm_event, in_scope
from containment.detect.run_listing import storage_accounts
from containment.judge.guardrails import covers_one_another, sends_reads, unkeepable_setting
from containment.judge.rule import Context
from containment.judge.scope import Protection, has_scope_tag
from containment.plan.registry import judge

PERMISSIONS = ("Microsoft.Insights/diagnosticSettings/read", "Microsoft.Authorization/policyAssignments/read",
               "Microsoft.Authorization/policyExemptions/read",
               "Microsoft.Storage/storageAccounts/read")  # the guardrail, and the accounts whose scope decides
OPERATIONS = tuple(f"{kind}/{verb}" for kind in (POLICY_ASSIGNMENT, POLICY_EXEMPTION, DIAGNOSTIC_SETTING)
                   for verb in ("write", "delete"))
SUBSCRIPTION = EventSubscription((WRITE_SUCCESS, DELETE_SUCCESS), OPERATIONS)
_BLOB_SERVICE = "Microsoft.Storage/storageAccounts/blobServices"


def on_guardrail_change(event: Any, runtime: Runtime | None = None):
    return handle_arm_event(event, PATH, runtime or current())


def assess_guardrail(resource: ResourceId, runtime: Runtime, event: ArmEvent | None) -> Assessment:
    kind = next((k for k in (DIAGNOSTIC_SETTING, POLICY_ASSIGNMENT, POLICY_EXEMPTION) if resource.is_type(k)), None)
    if kind is None:
        return Assessment(resource.text, ignored=f"{resource.type} is not a diagnostic setting, policy assignment or "
                                                 "policy exemption")
    body = arm.read_or_none(runtime.clients, resource)
    if body is None and not (event is not None and event.type == DELETE_SUCCESS):
        return Assessment(resource.text, ignored="it no longer exists: its deletion is judged from its own event")
    if kind == DIAGNOSTIC_SETTING:
        return _diagnostic_setting(resource, body, runtime)
    return _policy(kind, resource, body, runtime)


def _diagnostic_setting(resource: ResourceId, body: dict | None, runtime: Runtime) -> Assessment:
    """A diagnostic setting matters on a protected account's blob service: the StorageRead
    logs of its blobs are what the egress scan reads."""
    try:
        service = parse_resource_id(resource.scope)
    except MalformedResourceId:
        service = None
    if service is None or not service.is_type(_BLOB_SERVICE):
        return Assessment(resource.text, ignored=f"it is not on a storage account's blob service ({resource.scope})")
    account_id = service.ancestor(1)
    try:
        account = arm.read(runtime.clients, account_id)
    except arm.ResourceGone:
        return Assessment(resource.text, ignored="its storage account no longer exists")
    last_good = runtime.ledger.last_good_guardrail(resource.text)
    spelled = (body or (last_good or {}).get("body") or {}).get("id") or resource.text
    protection = in_scope(spelled, account_id, account.get("tags"), runtime, what="its storage account")
    if isinstance(protection, Assessment):
        return protection
    workspace = runtime.settings.log_workspace_resource_id
    # The blob service's settings are judged together: another that sends StorageRead to the
    # workspace keeps the app's signal, whatever this one sends.
    delivering = [setting for setting in arm.list_diagnostic_settings(runtime.clients, service.text)
                  if str(setting.get("id")).lower() != resource.key and sends_reads(setting, workspace)[0]]
    facts = {"removed": body is None, "last_good": last_good, "workspace": workspace,
             "delivered_by": delivering[0]["id"] if delivering else None}
    evidence = {account.get("id") or account_id.text: account, **{s["id"]: s for s in delivering[:1]}}
    compliant = ("it sends the account's StorageRead logs to the workspace the app scans"
                 if body is not None and sends_reads(body, workspace)[0] or not delivering
                 else f"StorageRead reaches the workspace the app scans through {delivering[0]['id']}")
    return _judged(spelled, DIAGNOSTIC_SETTING, body, Context(runtime.settings, protection, facts), runtime,
                   evidence, compliant, not_kept=unkeepable_setting(body, workspace) if body is not None else None)


def _policy(kind: str, resource: ResourceId, body: dict | None, runtime: Runtime) -> Assessment:
    """A policy assignment or exemption matters where its scope covers protected data: a
    protected scope at, above or below it, or a tagged storage account in it (or it on one)."""
    last_good = runtime.ledger.last_good_guardrail(resource.text) if kind == POLICY_ASSIGNMENT else None
    spelled = (body or (last_good or {}).get("body") or {}).get("id") or resource.text
    protection, covers, accounts = _covered(resource.scope, runtime)
    if not covers:
        return Assessment(spelled, ignored=f"its scope {resource.scope} covers no synthetic data (no protected scope "
                                           "and no tagged storage account at, above or below it)")
    facts = {"removed": body is None, "last_good": last_good, "covers": covers}
    if kind == POLICY_EXEMPTION:
        note = ("the exemption was deleted: the assignment it waived applies again" if body is None
                else "the exemption has expired")
    else:
        note = "the assignment is enforced"
    return _judged(spelled, kind, body, Context(runtime.settings, protection, facts), runtime,
                   {account["id"]: account for account in accounts}, note)


def _judged(spelled: str, kind: str, body: dict | None, context: Context, runtime: Runtime,
            evidence: dict[str, dict], compliant: str, not_kept: str | None = None) -> Assessment:
    """`not_kept`: why a compliant body is still not kept as the last good one."""
    findings = judge(kind, body or {"id": spelled}, context)
    state = {**({spelled: body} if body is not None else {}), **evidence}
    if body is not None and not findings and kind != POLICY_EXEMPTION:
        # What a removed or weakened one is restored from (an exemption is never restored).
        if not_kept:
            compliant += f"; not kept as its last good body: {not_kept}"
        else:
            kept = runtime.ledger.keep_guardrail(body)
            compliant += "; kept as its last good body" if kept else "; too large to keep as its last good body"
    return Assessment(spelled, findings, state, note=compliant)


def _covered(scope: str, runtime: Runtime) -> tuple[Protection, list[str], list[dict]]:
    """The protection a policy scope covers: the protected scopes at, above or below it, and
    the tagged storage accounts in it or holding it; and the accounts read (the evidence)."""
    settings = runtime.settings
    scopes = [s for s in settings.protected_scopes if covers_one_another(scope, s)]
    parts = scope.strip("/").split("/")
    subscription, group = parts[1], (parts[3] if len(parts) > 3 and parts[2].lower() == "resourcegroups" else None)
    accounts = [account for account in storage_accounts(runtime, subscription, group)
                if covers_one_another(scope, account["id"]) and has_scope_tag(account.get("tags"), settings)]
    covers = scopes + [account["id"] for account in accounts]
    return Protection(tagged=bool(accounts), protected_scope=scopes[0] if scopes else None), covers, accounts


PATH = EventPath(SUBSCRIPTION, assess_guardrail, unread=(
    "the drift sweep re-judges the guardrails it lists (CONTAINMENT_SWEEP_SCHEDULE); a deletion it cannot see, so a "
    "person must check the guardrail named on this record"))
