"""What makes a Key Vault holding synthetic data's keys weak or exposed. Pure.

A vault is judged when it is tagged, under a protected scope, or holds the customer-managed
key of a protected account (containment.detect.key_vault reads which; the facts name the
accounts and their managed identities). Property defaults are the keyvault 2024-11-01 spec's:
`publicNetworkAccess` enabled, `networkAcls` absent is every network (the firewall is off by
default: https://learn.microsoft.com/azure/key-vault/general/network-security), soft delete on
with 90 days, purge protection off, access policies in force unless `enableRbacAuthorization`
is true ("the access policies specified in vault properties will be ignored").
"""
from __future__ import annotations

from containment.core.ids import KEY_VAULT
from containment.judge.allowlist import allowance
from containment.judge.rule import Context, Rule

# Key permissions that read, unlock or destroy a key (keyvault spec `KeyPermissions`): with
# get, unwrapKey or decrypt a principal unwraps the account's encryption key (Storage itself
# needs get, wrapKey and unwrapKey: https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview);
# purge destroys the key for good, and with it the data; `all` is every one of them.
KEY_OPERATIONS = ("all", "get", "unwrapkey", "wrapkey", "decrypt", "purge")


def _properties(vault: dict) -> dict:
    properties = vault.get("properties")
    return properties if isinstance(properties, dict) else {}


def network_open(vault: dict, context: Context):
    properties = _properties(vault)
    public = str(properties.get("publicNetworkAccess") or "Enabled")
    default = (properties.get("networkAcls") or {}).get("defaultAction") or "Allow"
    # publicNetworkAccess disabled overrides the firewall rules (spec: "all traffic except private
    # endpoint traffic and that that originates from trusted services will be blocked").
    if public.lower() != "disabled" and default.lower() == "allow":
        return ("the vault accepts data-plane connections from any network (its firewall admits every address)",
                {"publicNetworkAccess": public, "networkAcls.defaultAction": default})
    return None


def purge_protection_off(vault: dict, context: Context):
    properties = _properties(vault)
    minimum = context.settings.vault_min_soft_delete_days
    soft_delete = properties.get("enableSoftDelete", True)
    days = properties.get("softDeleteRetentionInDays", 90)
    purge = properties.get("enablePurgeProtection") is True
    problems = []
    if not purge:
        problems.append("purge protection is off: whoever holds the purge permission can destroy the keys for good, "
                        "and the data they encrypt with them")
    if soft_delete is False:
        problems.append("soft delete is off: a deleted key cannot be recovered")
    elif not isinstance(days, int) or days < minimum:
        problems.append(f"deleted keys are kept {days!r} days, fewer than {minimum} "
                        "(CONTAINMENT_VAULT_MIN_SOFT_DELETE_DAYS; the retention is fixed when a vault is created)")
    if not problems:
        return None
    return "; ".join(problems), {"enablePurgeProtection": properties.get("enablePurgeProtection"),
                                 "enableSoftDelete": soft_delete, "softDeleteRetentionInDays": days,
                                 "min_soft_delete_days": minimum}


def unallowed_key_access(vault: dict, context: Context):
    """Access policy entries granting key operations to a principal that is neither allowed
    (CONTAINMENT_ALLOWED_PRINCIPALS) nor the managed identity of a protected account whose
    key the vault holds (`facts["account_identities"]`). Each entry is kept whole: it is what
    containment removes and what a person would put back."""
    properties = _properties(vault)
    if properties.get("enableRbacAuthorization") is True:
        return None  # access policies are ignored; RBAC data roles are judged as role assignments
    accounts = {str(i).lower() for i in context.facts.get("account_identities") or ()}
    entries, operations = [], {}
    for entry in properties.get("accessPolicies") or []:
        object_id = str(entry.get("objectId") or "").lower()
        granted = [p for p in (entry.get("permissions") or {}).get("keys") or [] if str(p).lower() in KEY_OPERATIONS]
        if not granted or object_id in accounts or allowance(object_id, context.settings).allowed:
            continue
        entries.append(entry)
        operations[object_id] = granted
    if not entries:
        return None
    who = ", ".join(f"{principal} ({'/'.join(granted)})" for principal, granted in operations.items())
    keyed = context.facts.get("keyed_accounts") or []
    whose = f" the customer-managed key of {', '.join(keyed)}" if keyed else " its keys"
    return (f"access policies let principals not allowed use or destroy{whose}: {who}",
            {"entries": entries, "principals": sorted(operations), "keyed_accounts": keyed})


# Weaknesses: an open firewall still asks every caller for a token and a permission, and purge
# protection off destroys nothing until someone with the purge permission acts; both make a
# leak or a loss easier. An access policy granting key operations to a principal not allowed
# is an exposure: that principal can unwrap the key that encrypts the data, or purge it.
RULES = (
    Rule("key_vault_network_open", "high", KEY_VAULT, network_open, weakness=True),
    Rule("key_vault_purge_protection_off", "medium", KEY_VAULT, purge_protection_off, weakness=True),
    Rule("key_vault_key_access_by_unallowed_principal", "critical", KEY_VAULT, unallowed_key_access),
)
