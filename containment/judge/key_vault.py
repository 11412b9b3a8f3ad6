"""What makes a Key Vault holding synthetic data's keys weak or exposed. Pure.

A vault is judged when it is tagged, under a protected scope, or holds the customer-managed
key of a protected account (containment.detect.key_vault reads which; the facts name the
protected accounts, and the encryption identity of every account, protected or not, whose key
the vault holds). Property defaults are the keyvault 2024-11-01 spec's:
`publicNetworkAccess` enabled, `networkAcls` absent is every network (the firewall is off by
default: https://learn.microsoft.com/azure/key-vault/general/network-security), soft delete on
with 90 days, purge protection off, access policies in force unless `enableRbacAuthorization`
is true ("the access policies specified in vault properties will be ignored").
"""
from __future__ import annotations

from containment.core.ids import KEY_VAULT
from containment.judge.allowlist import allowance
from containment.judge.customer_keys import STORAGE_NEEDS, key_access_granted
from containment.judge.rule import Context, Rule

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
        # `encrypts`: the accounts whose key it holds, whose Storage needs the trusted-services
        # bypass once the firewall is locked (containment.plan.key_vault).
        return ("the vault accepts data-plane connections from any network (its firewall admits every address)",
                {"publicNetworkAccess": public, "networkAcls.defaultAction": default,
                 "encrypts": list(context.facts.get("encrypts") or [])})
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
    """Access policy entries granting key access (containment.judge.customer_keys.KEY_ACCESS)
    to a principal that is not allowed (CONTAINMENT_ALLOWED_PRINCIPALS). The encryption identity
    of an account whose key the vault holds (`facts["encryption_identities"]`, protected or not)
    keeps what Storage needs: what it holds beyond that is reported (`identity_grants`), never
    removed, since removing its entry locks that account's data. Every other entry is kept
    whole in `entries`: what containment removes and what a person would put back."""
    properties = _properties(vault)
    if properties.get("enableRbacAuthorization") is True:
        return None  # access policies are ignored; RBAC data roles are judged as role assignments
    identities = {str(i).lower(): a for i, a in (context.facts.get("encryption_identities") or {}).items()}
    needs = {n.lower() for n in STORAGE_NEEDS}
    entries, operations, identity_grants = [], {}, {}
    for entry in properties.get("accessPolicies") or []:
        object_id = str(entry.get("objectId") or "").lower()
        granted = key_access_granted((entry.get("permissions") or {}).get("keys"))
        if object_id in identities:
            granted = [g for g in granted if g.lower() not in needs]
        if not granted or allowance(object_id, context.settings).allowed:
            continue
        if object_id in identities:
            identity_grants[object_id] = granted
        else:
            entries.append(entry)
            operations[object_id] = granted
    if not entries and not identity_grants:
        return None
    keyed = context.facts.get("keyed_accounts") or []
    whose = f" the customer-managed key of {', '.join(keyed)}" if keyed else " its keys"
    found = [f"access policies let principals not allowed use or destroy{whose}: "
             + ", ".join(f"{principal} ({'/'.join(granted)})" for principal, granted in operations.items())
             ] if entries else []
    found += [f"the encryption identity {principal} of {identities[principal]} holds more than Storage needs "
              f"({'/'.join(granted)}): reported, not removed (removing its entry locks that account's data)"
              for principal, granted in identity_grants.items()]
    return "; ".join(found), {"entries": entries, "principals": sorted(operations), "keyed_accounts": keyed,
                              "identity_grants": identity_grants}


# Weaknesses: an open firewall still asks every caller for a token and a permission, and purge
# protection off destroys nothing until someone with the purge permission acts; both make a
# leak or a loss easier. An access policy granting key operations to a principal not allowed
# is an exposure: that principal can unwrap the key that encrypts the data, or purge it.
RULES = (
    Rule("key_vault_network_open", "high", KEY_VAULT, network_open, weakness=True),
    Rule("key_vault_purge_protection_off", "medium", KEY_VAULT, purge_protection_off, weakness=True),
    Rule("key_vault_key_access_by_unallowed_principal", "critical", KEY_VAULT, unallowed_key_access),
)
