"""What happens when a Key Vault, its access policies or its private endpoint connections are
written (ResourceWriteSuccess), and what the drift sweep judges of each vault it lists.

The event says only that something was written; this re-reads the vault and judges it when
it is synthetic data's: tagged, under a protected scope, or holding the customer-managed key
of a protected account (containment.detect.customer_keys). Whoever can unwrap that key, or
purge it, reads or destroys the account's data, whatever the vault's own tags say.
"""
from __future__ import annotations

from typing import Any

from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core.events import WRITE_SUCCESS, ArmEvent, EventSubscription
from containment.core.ids import KEY_VAULT, ResourceId
from containment.detect.customer_keys import accounts_keyed_in
from containment.detect.pipeline import Assessment, EventPath, handle_arm_event
from containment.judge.customer_keys import encryption_identity
from containment.judge.rule import Context
from containment.judge.scope import protection_of
from containment.plan.registry import judge

# What assessing reads: the vault, and every account of the watched subscriptions (which of
# them the vault's keys encrypt).
PERMISSIONS = ("Microsoft.KeyVault/vaults/read", "Microsoft.Storage/storageAccounts/read")
OPERATIONS = ("Microsoft.KeyVault/vaults/write", "Microsoft.KeyVault/vaults/accessPolicies/write",
              "Microsoft.KeyVault/vaults/privateEndpointConnections/write")
SUBSCRIPTION = EventSubscription((WRITE_SUCCESS,), OPERATIONS)


def on_key_vault_write(event: Any, runtime: Runtime | None = None):
    return handle_arm_event(event, PATH, runtime or current())


def _vault_of(resource: ResourceId) -> ResourceId | None:
    """The vault itself, or the vault an access policy or private endpoint connection is under."""
    for levels in range(len(resource.names)):
        candidate = resource.ancestor(levels) if levels else resource
        if candidate.is_type(KEY_VAULT):
            return candidate
    return None


def assess_key_vault(resource: ResourceId, runtime: Runtime, event: ArmEvent | None) -> Assessment:
    vault_id = _vault_of(resource)
    if vault_id is None:
        return Assessment(resource.text, ignored=f"{resource.type} is not a Key Vault or one of its parts")
    try:
        vault = arm.read(runtime.clients, vault_id)
    except arm.ResourceGone:
        return Assessment(resource.text, ignored="the vault no longer exists")
    spelled = vault.get("id") or vault_id.text
    every = accounts_keyed_in(vault, runtime)
    keyed = [account for account, protected in every if protected]
    protection = protection_of(vault_id, vault.get("tags"), runtime.settings)
    if not protection.protected and not keyed:
        return Assessment(spelled, ignored=f"not synthetic data: the vault {protection.describe()}, and it holds no "
                                           "protected account's customer-managed key")
    names = [account["id"] for account in keyed]
    # Every account whose key the vault holds, protected or not: its encryption identity keeps
    # what Storage needs (containment.judge.key_vault), or that account's data is locked.
    facts = {"keyed_accounts": names, "encrypts": [account["id"] for account, _ in every],
             "encryption_identities": {identity: account["id"] for account, _ in every
                                       if (identity := encryption_identity(account))}}
    state = {spelled: vault, **{account["id"]: account for account in keyed}}
    why = (f"it holds the customer-managed key of {', '.join(names)}" if names else
           f"the vault {protection.describe()}")
    return Assessment(spelled, judge(KEY_VAULT, vault, Context(runtime.settings, protection, facts)), state,
                      note=f"in scope because {why}")


PATH = EventPath(SUBSCRIPTION, assess_key_vault)
