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


def encryption_identity(account: dict) -> str | None:
    """The principal ID (lower case) of the one managed identity the account reaches its
    customer-managed key with: the user-assigned identity `encryption.identity.userAssignedIdentity`
    names (an ID among `identity.userAssignedIdentities`), else its system-assigned identity
    (storage spec 2026-09-01, `Encryption.identity`: EncryptionIdentity, and `Identity`). Its
    other identities are not Storage's way to the key, and get no allowance from it."""
    identity = (account or {}).get("identity") or {}
    chosen = ((((account or {}).get("properties") or {}).get("encryption") or {}).get("identity") or {}).get(
        "userAssignedIdentity")
    if chosen:
        assigned = {str(name).lower(): value for name, value in (identity.get("userAssignedIdentities") or {}).items()}
        principal = (assigned.get(str(chosen).lower()) or {}).get("principalId")
    else:
        principal = identity.get("principalId")
    return str(principal).lower() if principal else None


# What a grant on a vault's keys does to the data a customer-managed key encrypts: one row per
# operation, its access-policy permission (keyvault spec 2024-11-01 `KeyPermissions`; `all` is
# every one), its RBAC dataAction (https://learn.microsoft.com/azure/role-based-access-control/permissions/security#microsoftkeyvault)
# and what it is. Storage wraps and unwraps the account's encryption key with get, wrapKey and
# unwrapKey (https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview).
# - EXPOSURE, reaches the data: unwrapKey and decrypt unwrap the account's encryption key;
#   release hands the key's private material to an attested environment
#   (https://learn.microsoft.com/azure/key-vault/keys/about-keys#key-operations); a backup is
#   a copy of the key that restores into any vault of the same subscription and geography
#   (https://learn.microsoft.com/azure/key-vault/general/backup), where others may unwrap with it.
# - AVAILABILITY, locks the data: delete and purge remove the key, update can set
#   `enabled: false` or an expiry; with its key disabled, expired or deleted the account
#   refuses every read and write (customer-managed-keys-overview, "Revoke access").
# Not a finding: get/read (key metadata and the public key), wrapKey and encrypt (what a
# public key does anyway), sign/verify, list, and create/import/rotate/restore/recover (they
# add versions or bring a key back: none reaches or removes the one in use).
EXPOSURE, AVAILABILITY = "exposure", "availability"
KEY_ACCESS = (
    ("unwrapKey", "Microsoft.KeyVault/vaults/keys/unwrap/action", EXPOSURE),
    ("decrypt", "Microsoft.KeyVault/vaults/keys/decrypt/action", EXPOSURE),
    ("release", "Microsoft.KeyVault/vaults/keys/release/action", EXPOSURE),
    ("backup", "Microsoft.KeyVault/vaults/keys/backup/action", EXPOSURE),
    ("delete", "Microsoft.KeyVault/vaults/keys/delete", AVAILABILITY),
    ("purge", "Microsoft.KeyVault/vaults/keys/purge/action", AVAILABILITY),
    ("update", "Microsoft.KeyVault/vaults/keys/update/action", AVAILABILITY),
)
# Of those, what Storage itself needs of its key (the encryption identity keeps it).
STORAGE_NEEDS = ("unwrapKey",)


def key_access_granted(permissions: list) -> list[str]:
    """The KEY_ACCESS permissions an access policy entry's `permissions.keys` grants, as the
    table spells them (`all` grants every one)."""
    held = {str(p).lower() for p in permissions or []}
    return [name for name, _, _ in KEY_ACCESS if "all" in held or name.lower() in held]


def same_vault(vault_uri: object, key: CustomerKey) -> bool:
    """Whether a vault's `properties.vaultUri` is the one the key lives in."""
    return isinstance(vault_uri, str) and _host(vault_uri) == key.vault_host


def _host(uri: str) -> str:
    """The host of an https URI, lower case (no port or path: vault URIs carry neither)."""
    rest = uri.strip().lower().split("://", 1)[-1]
    return rest.split("/", 1)[0].split(":", 1)[0]
