"""Which Key Vault key encrypts a storage account, as the account's own body says. Pure.

An account encrypted with a customer-managed key names it in
`properties.encryption.keyvaultproperties` (`keyvaulturi`, `keyname`, `keyversion`) with
`keySource: Microsoft.Keyvault` (storage spec 2026-09-01, `Encryption` and `KeyVaultProperties`;
https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview). The vault
holding that key is in scope because of the account: whoever reads or deletes the key reads or
locks the data (containment.judge.key_vault).
"""
from __future__ import annotations

from dataclasses import dataclass

CUSTOMER_KEY_SOURCE = "microsoft.keyvault"  # keySource is compared case-insensitively, as ARM does


@dataclass(frozen=True)
class CustomerKey:
    vault_uri: str  # https://{vault}.vault.azure.net, lower case, no trailing slash
    key_name: str | None
    key_version: str | None  # None or empty: the account follows the key's current version

    @property
    def vault_host(self) -> str:
        return _host(self.vault_uri)

    @property
    def vault_name(self) -> str:
        """The vault's name: the first label of its host (https://{name}.vault.azure.net)."""
        return self.vault_host.split(".", 1)[0]


def customer_key_of(account: dict) -> CustomerKey | None:
    """The customer-managed key the account's body names, or None where Microsoft manages its key."""
    encryption = ((account or {}).get("properties") or {}).get("encryption") or {}
    if str(encryption.get("keySource") or "").lower() != CUSTOMER_KEY_SOURCE:
        return None
    properties = encryption.get("keyvaultproperties") or {}
    uri = str(properties.get("keyvaulturi") or "").strip().lower().rstrip("/")
    if not uri:
        return None
    return CustomerKey(uri, properties.get("keyname") or None, properties.get("keyversion") or None)


def account_identities(account: dict) -> list[str]:
    """The object IDs of the account's managed identities, lower case (system-assigned, and each
    user-assigned one, as ARM's `identity` block names them): whichever its encryption uses
    reaches the key as Storage does."""
    identity = (account or {}).get("identity") or {}
    found = [identity.get("principalId")] + [
        (assigned or {}).get("principalId") for assigned in (identity.get("userAssignedIdentities") or {}).values()]
    return [str(principal).lower() for principal in found if principal]


def same_vault(vault_uri: object, key: CustomerKey) -> bool:
    """Whether a vault's `properties.vaultUri` is the one the key lives in."""
    return isinstance(vault_uri, str) and _host(vault_uri) == key.vault_host


def _host(uri: str) -> str:
    """The host of an https URI, lower case (no port or path: vault URIs carry neither)."""
    rest = uri.strip().lower().split("://", 1)[-1]
    return rest.split("/", 1)[0].split(":", 1)[0]
