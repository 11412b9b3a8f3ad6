"""What happens when a storage account or blob container is written.

The event says only that something was written; this re-reads the account (and its
containers) or the container (and its account, whose tags decide the scope) and judges
what is there now.
"""
from __future__ import annotations

from typing import Any

from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core.events import WRITE_SUCCESS, ArmEvent, EventSubscription
from containment.core.ids import BLOB_CONTAINER, STORAGE_ACCOUNT, ResourceId
from containment.detect.pipeline import Assessment, handle_arm_event
from containment.judge.rule import Context
from containment.judge.scope import protection_of
from containment.plan.registry import judge

PERMISSIONS = ("Microsoft.Storage/storageAccounts/read",
               "Microsoft.Storage/storageAccounts/blobServices/containers/read")  # what assessing reads
OPERATIONS = ("Microsoft.Storage/storageAccounts/write",
              "Microsoft.Storage/storageAccounts/blobServices/containers/write")
SUBSCRIPTION = EventSubscription((WRITE_SUCCESS,), OPERATIONS)


def on_storage_write(event: Any, runtime: Runtime | None = None):
    return handle_arm_event(event, assess_storage, runtime or current(), SUBSCRIPTION)


def assess_storage(resource: ResourceId, runtime: Runtime, event: ArmEvent | None) -> Assessment:
    if not (resource.is_type(STORAGE_ACCOUNT) or resource.is_type(BLOB_CONTAINER)):
        return Assessment(resource.text, ignored=f"{resource.type} is not a storage account or blob container")
    account_id = resource if resource.is_type(STORAGE_ACCOUNT) else resource.ancestor(2)
    try:
        account = arm.read(runtime.clients, account_id)
        container = None if resource.is_type(STORAGE_ACCOUNT) else arm.read(runtime.clients, resource)
    except arm.ResourceGone:
        return Assessment(resource.text, ignored="the resource no longer exists")
    spelled = (container or account).get("id") or resource.text  # as ARM spells it
    protection = protection_of(resource, account.get("tags"), runtime.settings)
    if not protection.protected:
        return Assessment(spelled, ignored=f"not synthetic data: the account {protection.describe()}")
    context = Context(runtime.settings, protection, facts={"account": account})
    if container is not None:
        # The account as read beside it: its tags say whose data this is (the incident's
        # privacy context, containment.record.dataset_context).
        return Assessment(spelled, judge(BLOB_CONTAINER, container, context),
                          {spelled: container, account.get("id") or account_id.text: account})
    # An account write can make containers that were set public earlier readable: judge them too.
    containers = arm.list_containers(runtime.clients, account_id)
    findings = judge(STORAGE_ACCOUNT, account, context)
    state = {spelled: account}
    for body in containers:
        exposed = judge(BLOB_CONTAINER, body, context)
        if exposed:  # the evidence keeps the containers that matter, not every one
            findings += exposed
            state[body["id"]] = body
    return Assessment(spelled, findings, state)
