"""Which vault holds a protected account's customer-managed key, and which protected
accounts a vault's keys encrypt: the link between synthetic data and the vaults whose keys
unlock it, read from ARM in the watched subscriptions.

A vault is in scope because of what it encrypts, not only its own tag: whoever can unwrap
the key of a protected account, or purge it, reaches or locks that account's data
(https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview).
"""
from __future__ import annotations

from containment.adapters import arm
from containment.adapters.runtime import Runtime
from containment.core.ids import parse_resource_id
from containment.core.records import describe_failure
from containment.detect.run_listing import storage_accounts
from containment.judge.customer_keys import CustomerKey, customer_key_of, same_vault
from containment.judge.scope import protection_of


def watched_subscriptions(runtime: Runtime) -> list[str]:
    """CONTAINMENT_SUBSCRIPTIONS, or (empty) every subscription the app's identity can see."""
    return sorted(runtime.settings.subscriptions) or sorted(arm.list_subscriptions(runtime.clients))


def accounts_keyed_in(vault: dict, runtime: Runtime) -> list[tuple[dict, bool]]:
    """Every account in the watched subscriptions, protected or not, whose customer-managed key
    the vault holds (matched on the vault's `properties.vaultUri`), and whether it is protected:
    a tagged vault's grant to an unprotected account's encryption identity is that account's way
    to its data, never the app's to take away."""
    vault_uri = (vault.get("properties") or {}).get("vaultUri")
    return [(account, protected) for key, account, protected in customer_keys(runtime) if same_vault(vault_uri, key)]


def protected_customer_keys(runtime: Runtime) -> list[tuple[CustomerKey, dict]]:
    """Every protected account in the watched subscriptions that names a customer-managed key, with the key."""
    return [(key, account) for key, account, protected in customer_keys(runtime) if protected]


def customer_keys(runtime: Runtime) -> list[tuple[CustomerKey, dict, bool]]:
    """Every account in the watched subscriptions that names a customer-managed key, with the
    key and whether the account is protected: one list of accounts per subscription (once per
    drift sweep run)."""
    keyed = []
    for subscription in watched_subscriptions(runtime):
        for account in storage_accounts(runtime, subscription):
            key = customer_key_of(account)
            if key:
                keyed.append((key, account, protection_of(parse_resource_id(account["id"]), account.get("tags"),
                                                          runtime.settings).protected))
    return keyed


def vaults_in_scope(vaults: list[dict], runtime: Runtime) -> list[dict]:
    """The vaults among these that are in scope: tagged, under a protected scope, or holding a
    protected account's customer-managed key. The accounts are listed only where a vault is
    neither tagged nor under a protected scope, and then once for all of them."""
    settings = runtime.settings
    protected = [vault for vault in vaults
                 if protection_of(parse_resource_id(vault["id"]), vault.get("tags"), settings).protected]
    rest = [vault for vault in vaults if vault not in protected]
    keys = [key for key, _ in protected_customer_keys(runtime)] if rest else []
    keyed = [vault for vault in rest
             if any(same_vault((vault.get("properties") or {}).get("vaultUri"), key) for key in keys)]
    return [vault for vault in vaults if vault in protected or vault in keyed]


def vault_holding(key: CustomerKey, runtime: Runtime) -> tuple[dict | None, str]:
    """The vault a customer-managed key lives in, among the watched subscriptions' vaults, or
    None and why not: the app cannot see it (another subscription or tenant), none has that URI,
    or a subscription's vaults could not be listed (named with the error: the key cannot be
    checked, and the account's other rules are judged all the same)."""
    unlisted = []
    for subscription in watched_subscriptions(runtime):
        try:
            vaults = arm.list_vaults(runtime.clients, subscription)
        except Exception as error:  # noqa: BLE001 - one subscription's failure is this key's, said why
            unlisted.append(f"{subscription} ({describe_failure(error)})")
            continue
        for vault in vaults:
            if same_vault((vault.get("properties") or {}).get("vaultUri"), key):
                return vault, f"{vault.get('id')} holds it"
    if unlisted:
        return None, (f"no vault listed has the URI {key.vault_uri}, and the vaults of {', '.join(unlisted)} could "
                      "not be listed")
    return None, (f"no vault in the watched subscriptions has the URI {key.vault_uri}: it is in another "
                  "subscription or tenant, or was deleted")
