"""What happens when a storage account, blob container or object replication policy is written.

The event says only that something was written; this re-reads the account (and its
containers), the container (and its account, whose tags decide the scope), or the policy
(its account, and the account it replicates to) and judges what is there now. In a storm on
one account, its containers are judged from one listing (`storm_on`).
"""
from __future__ import annotations

from typing import Any

from containment.adapters import arm
from containment.adapters.reads import fresh_since
from containment.adapters.runtime import Runtime, current, together
from containment.core.events import WRITE_SUCCESS, ArmEvent, EventSubscription
from containment.core.ids import (
    BLOB_CONTAINER,
    REPLICATION_POLICY,
    STORAGE_ACCOUNT,
    MalformedResourceId,
    ResourceId,
    parse_resource_id,
)
from containment.detect.customer_keys import vault_holding
from containment.detect.pipeline import Assessment, EventPath, handle_arm_event, in_scope
from containment.judge.customer_keys import customer_key_of
from containment.judge.rule import Context
from containment.judge.scope import protection_of
from containment.plan.registry import judge

PERMISSIONS = ("Microsoft.Storage/storageAccounts/read",
               "Microsoft.Storage/storageAccounts/blobServices/containers/read",
               "Microsoft.Storage/storageAccounts/objectReplicationPolicies/read",  # what assessing reads
               # and, for an account encrypted with a customer-managed key, the vault that holds it and
               # the key's state through ARM (control-plane reads: no data-plane access to the key)
               "Microsoft.KeyVault/vaults/read", "Microsoft.KeyVault/vaults/keys/read")
OPERATIONS = ("Microsoft.Storage/storageAccounts/write",
              "Microsoft.Storage/storageAccounts/blobServices/containers/write",
              "Microsoft.Storage/storageAccounts/objectReplicationPolicies/write")
SUBSCRIPTION = EventSubscription((WRITE_SUCCESS,), OPERATIONS)


def on_storage_write(event: Any, runtime: Runtime | None = None):
    return handle_arm_event(event, PATH, runtime or current())


def assess_storage(resource: ResourceId, runtime: Runtime, event: ArmEvent | None) -> Assessment:
    if resource.is_type(REPLICATION_POLICY):
        return assess_replication_policy(resource, runtime)
    if not (resource.is_type(STORAGE_ACCOUNT) or resource.is_type(BLOB_CONTAINER)):
        return Assessment(resource.text, ignored=f"{resource.type} is not a storage account, blob container or "
                                                 "object replication policy")
    account_id = resource if resource.is_type(STORAGE_ACCOUNT) else resource.ancestor(2)
    try:
        if resource.is_type(BLOB_CONTAINER) and storm_on(account_id, resource, runtime):
            arm.list_containers(runtime.clients, account_id)  # kept as reads of each: the container's among them
        # The account's tags decide the scope: read beside the container, not after it.
        account, container = together(lambda: arm.read(runtime.clients, account_id),
                                      lambda: None if resource.is_type(STORAGE_ACCOUNT)
                                      else arm.read(runtime.clients, resource))
    except arm.ResourceGone:
        return Assessment(resource.text, ignored="the resource no longer exists")
    spelled = (container or account).get("id") or resource.text  # as ARM spells it
    protection = in_scope(spelled, resource, account.get("tags"), runtime)
    if isinstance(protection, Assessment):
        return protection
    facts: dict[str, Any] = {"account": account}
    key_state: dict[str, dict] = {}
    if container is None:  # an account write: where its customer-managed key is, and whether it is usable
        facts["customer_key"] = customer_key_state(account, runtime, key_state)
    context = Context(runtime.settings, protection, facts=facts)
    if container is not None:
        # The account as read beside it: its tags say whose data this is (the incident's
        # privacy context, containment.record.dataset_context).
        return Assessment(spelled, judge(BLOB_CONTAINER, container, context),
                          {spelled: container, account.get("id") or account_id.text: account})
    # An account write can make containers that were set public earlier readable: judge them too.
    containers = arm.list_containers(runtime.clients, account_id)
    findings = judge(STORAGE_ACCOUNT, account, context)
    state = {spelled: account, **key_state}
    for body in containers:
        exposed = judge(BLOB_CONTAINER, body, context)
        if exposed:  # the evidence keeps the containers that matter, not every one
            findings += exposed
            state[body["id"]] = body
    return Assessment(spelled, findings, state)


def storm_on(account: ResourceId, container: ResourceId, runtime: Runtime) -> bool:
    """Whether this instance read the container's account after the event, but neither the
    container nor the account's containers: another event about the account came first (one
    of its other containers, or the account itself, changed), so this is likely one of many.
    Then one listing of the account's containers answers this event and the others about
    them (arm.list_containers). A lone container event reads just its container, cheaper than
    listing an account of many containers; so does one whose container was written (and
    forgotten) since the account's containers were listed."""
    since, reads = fresh_since(), runtime.clients.reads
    return (reads.fresh(account.key, since) is not None and reads.fresh(container.key, since) is None
            and reads.fresh(arm.containers_of(account), since) is None)


def customer_key_state(account: dict, runtime: Runtime, state: dict[str, dict]) -> dict[str, Any] | None:
    """Where the account's customer-managed key is and what state it is in, as
    containment.judge.encryption reads it; None where Microsoft manages the key (no ARM call).
    A customer-managed key costs one list of vaults per watched subscription and one read of the
    key through ARM (`vaults/{vault}/keys/{key}`, whose `properties.attributes.enabled` says
    whether it can be used). The vault and the key read are kept in `state` (the evidence) where
    the key is not usable."""
    key = customer_key_of(account)
    if key is None:
        return None
    found: dict[str, Any] = {"keyvaulturi": key.vault_uri, "keyname": key.key_name, "keyversion": key.key_version,
                             "vault": None, "key": None}
    vault, why = vault_holding(key, runtime)
    if vault is None:
        return {**found, "state": "unseen", "why": why}
    found["vault"] = vault.get("id")
    try:
        key_id = parse_resource_id(f"{vault['id']}/keys/{key.key_name}") if key.key_name else None
    except MalformedResourceId:
        key_id = None
    if key_id is None:
        return {**found, "state": "unseen", "why": f"the account names no key ARM can address ({key.key_name!r})"}
    found["key"] = key_id.text
    body, unreadable = arm.read_if_permitted(runtime.clients, key_id)
    if body is None and unreadable != arm.NOT_FOUND:
        return {**found, "state": "unseen", "why": f"the key cannot be read: {unreadable}"}
    attributes = ((body or {}).get("properties") or {}).get("attributes") or {}
    if body is not None and attributes.get("enabled") is not False:
        return {**found, "state": "enabled", "why": f"{key_id.text} is enabled"}
    state[vault.get("id") or key_id.ancestor(1).text] = vault
    if body is None:
        return {**found, "state": "deleted", "why": f"ARM answers 404 for {key_id.text}: the key is deleted"}
    state[body.get("id") or key_id.text] = body
    return {**found, "state": "disabled", "why": f"{key_id.text} has attributes.enabled false"}


def assess_replication_policy(resource: ResourceId, runtime: Runtime) -> Assessment:
    """The policy, its account (whose tags decide the scope) and, where the account is the
    policy's source, the destination account: whether it is a protected account the app can
    read in the watched subscriptions (containment.judge.replication)."""
    account_id = resource.ancestor(1)
    try:
        policy, account = together(lambda: arm.read(runtime.clients, resource),
                                   lambda: arm.read(runtime.clients, account_id))
    except arm.ResourceGone:
        return Assessment(resource.text, ignored="the policy or its account no longer exists")
    spelled = policy.get("id") or resource.text
    protection = in_scope(spelled, account_id, account.get("tags"), runtime)
    if isinstance(protection, Assessment):
        return protection
    properties = policy.get("properties") or {}
    state = {spelled: policy, account.get("id") or account_id.text: account}
    this = (account_id.key, (account.get("id") or "").lower(), account_id.name.lower())  # by ID or by bare name
    side = next((end for end, named in (("source", properties.get("sourceAccount")),
                                        ("destination", properties.get("destinationAccount")))
                 if isinstance(named, str) and named.lower() in this), None)
    facts = {"side": side,
             "cross_tenant_allowed": (account.get("properties") or {}).get("allowCrossTenantReplication") is True}
    if side == "source":
        facts["destination"] = _destination(properties.get("destinationAccount"), runtime, state)
    context = Context(runtime.settings, protection, facts=facts)
    note = None if side == "source" else (
        "the account receives this replica (the policy's source is judged where it is protected)"
        if side == "destination" else "the policy names this account neither as source nor as destination")
    return Assessment(spelled, judge(REPLICATION_POLICY, policy, context), state, note=note)


def _destination(named: Any, runtime: Runtime, state: dict[str, dict]) -> dict[str, Any]:
    """Whether the destination is a protected account the app can read in the watched
    subscriptions, and if not, why. What cannot be established is out of scope (fail closed).
    The account read is kept in `state` (the evidence)."""
    try:
        destination = parse_resource_id(str(named or ""))
    except MalformedResourceId:
        # A bare name is the form ARM takes where cross-tenant replication is allowed (the
        # spec's destinationAccount: "full resource id if allowCrossTenantReplication set to false").
        return {"protected": False, "why": f"named only as {named!r}, not by resource ID (the cross-tenant or "
                                           "legacy form): which account, in which tenant, cannot be established"}
    if not destination.is_type(STORAGE_ACCOUNT):
        return {"protected": False, "why": f"{destination.text} is not a storage account"}
    settings = runtime.settings
    if settings.subscriptions and destination.subscription not in settings.subscriptions:
        return {"protected": False, "why": f"subscription {destination.subscription} is outside "
                                           "CONTAINMENT_SUBSCRIPTIONS"}
    body, unreadable = arm.read_if_permitted(runtime.clients, destination)
    if body is None:
        return {"protected": False, "why": f"the destination cannot be read ({unreadable}): another tenant, or "
                                           "outside what the app watches"}
    state[body.get("id") or destination.text] = body
    protection = protection_of(destination, body.get("tags"), settings)
    if not protection.protected:
        return {"protected": False, "why": f"the destination account {protection.describe()}"}
    return {"protected": True, "why": f"the destination account {protection.describe()}"}


PATH = EventPath(SUBSCRIPTION, assess_storage)
