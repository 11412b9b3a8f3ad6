"""What happens when someone lists a storage account's keys, or has ARM sign a SAS with
them (listKeys, ListAccountSas, ListServiceSas: ResourceActionSuccess events).

What is judged is the event: who (the caller's claims and principal type), from which
address (data.httpRequest.clientIpAddress), when, and through which role assignment
(data.authorization.evidence). The account is read only to know whether it holds synthetic
data (its tag, or a protected scope) and to keep it as the record's evidence.
"""
from __future__ import annotations

from typing import Any

from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core.events import ACTION_SUCCESS, ArmEvent, EventSubscription
from containment.core.ids import STORAGE_ACCOUNT, ResourceId
from containment.detect.pipeline import Assessment, EventPath, handle_arm_event, in_scope
from containment.judge.allowlist import allowance
from containment.judge.keys import OPERATIONS, key_access
from containment.judge.rule import Context
from containment.plan.registry import judge

PERMISSIONS = ("Microsoft.Storage/storageAccounts/read",)  # what assessing reads (never listKeys)
SUBSCRIPTION = EventSubscription((ACTION_SUCCESS,), OPERATIONS)


def on_key_access(event: Any, runtime: Runtime | None = None):
    return handle_arm_event(event, PATH, runtime or current())


def assess_key_access(resource: ResourceId, runtime: Runtime, event: ArmEvent | None) -> Assessment:
    if event is None:
        return Assessment(resource.text, ignored="a key listing is known only from its event: nothing to re-judge")
    if not resource.is_type(STORAGE_ACCOUNT):
        return Assessment(resource.text, ignored=f"{resource.type} is not a storage account")
    try:
        account = arm.read(runtime.clients, resource)
    except arm.ResourceGone:
        return Assessment(resource.text, ignored="the account no longer exists, nor do its keys")
    spelled = account.get("id") or resource.text
    protection = in_scope(spelled, resource, account.get("tags"), runtime)
    if isinstance(protection, Assessment):
        return protection
    context = Context(runtime.settings, protection, facts={"account": account})
    findings = judge(ACTION_SUCCESS, key_access(event, spelled), context)
    # The account as read: its tags say whose data this is (the incident's privacy context),
    # and its creationTime lets rotation tell it from an account created again since.
    allowed = allowance(event.actor.object_id, runtime.settings, event.time)
    return Assessment(spelled, findings, {spelled: account}, note=f"{allowed.note}: allowed to list keys and SAS")


PATH = EventPath(SUBSCRIPTION, assess_key_access, exposure_is_the_event=True, unread=(
    "nothing else will judge it: a key listing is known only from its event, which the drift sweep cannot see, so a "
    "person must look at the listing (its caller, time and event ID are on this record)"))
