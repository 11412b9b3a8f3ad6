"""Containing a Key Vault that holds synthetic data's keys (rules: containment.judge.key_vault).

- Lock the network: defaultAction Deny, keeping the vault's IP and virtual-network rules,
  adding CONTAINMENT_ALLOWED_CIDRS (IPv4: the spec's IPRule is "An IPv4 address range"), and
  the trusted-services bypass `AzureServices`. Storage reaches its customer-managed key
  through that bypass: Azure Storage encryption with customer-managed keys is on Key Vault's
  trusted services list, and a service outside it needs an IP rule, a virtual network rule or
  a private endpoint (https://learn.microsoft.com/azure/key-vault/general/overview-vnet-service-endpoints,
  "Trusted services"). Released like a storage property (containment.plan.restore).
- Remove an access policy entry: `PUT {vault}/accessPolicies/remove` with the entry as the
  vault holds it now (Vaults_UpdateAccessPolicy, keyvault spec 2024-11-01), the whole vault
  recorded before; release hands a person the exact `add` request (restore_by_person), since
  the app only takes access away.
- Enable purge protection: always a person's decision. It cannot be undone: the Key Vault
  API refuses `enablePurgeProtection: false` ("Enabling the purge protection for a vault is
  an irreversible action", Azure/azure-rest-api-specs#18106), and a purge-protected vault and
  its keys cannot be purged before the retention ends.
"""
from __future__ import annotations

from containment.core.ids import KEY_VAULT, ResourceId
from containment.core.settings import Settings
from containment.judge.key_vault import KEY_OPERATIONS
from containment.plan.action import Action, State, Write

_VAULTS = "Microsoft.KeyVault/vaults"
_VAULT_RW = (f"{_VAULTS}/read", f"{_VAULTS}/write")


def _properties(state: State) -> dict:
    return (state.body or {}).get("properties") or {}


def lock_network(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    acls = dict(_properties(state).get("networkAcls") or {})
    rules = list(acls.get("ipRules") or [])
    held = {str(rule.get("value")) for rule in rules}
    rules += [{"value": str(network)} for network in settings.allowed_cidrs
              if network.version == 4 and str(network) not in held]
    acls.update(defaultAction="Deny", bypass="AzureServices", ipRules=rules,
                virtualNetworkRules=list(acls.get("virtualNetworkRules") or []))
    return [Write("PATCH", target.text, {"properties": {"networkAcls": acls}})]


def _named_principals(state: State) -> set[str]:
    """The principals whose entries the decision's findings name (what it judged not allowed)."""
    return {str(p).lower() for finding in state.facts.get("findings") or ()
            if finding.get("rule") == "key_vault_key_access_by_unallowed_principal"
            for p in (finding.get("evidence") or {}).get("principals") or ()}


def _entries_to_remove(state: State) -> list[dict]:
    named = _named_principals(state)
    return [entry for entry in _properties(state).get("accessPolicies") or []
            if str(entry.get("objectId") or "").lower() in named
            and any(str(p).lower() in KEY_OPERATIONS for p in (entry.get("permissions") or {}).get("keys") or [])]


def remove_entries(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    # Each entry whole, as the vault holds it now: `remove` takes away every permission it lists.
    return [Write("PUT", f"{target.text}/accessPolicies/remove",
                  {"properties": {"accessPolicies": _entries_to_remove(state)}})]


def entries_still_granted(state: State, settings: Settings) -> bool:
    return bool(_entries_to_remove(state))


def enable_purge_protection(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    # Purge protection "is effective only if soft delete is also enabled" (keyvault spec).
    wanted = {"enablePurgeProtection": True}
    if _properties(state).get("enableSoftDelete") is False:
        wanted["enableSoftDelete"] = True
    return [Write("PATCH", target.text, {"properties": wanted})]


def purge_protection_off(state: State, settings: Settings) -> bool:
    return state.body is not None and _properties(state).get("enablePurgeProtection") is not True


def irreversible(target: ResourceId, settings: Settings) -> str:
    return ("enabling purge protection is irreversible: once on, no one can switch it off, and the vault and its keys "
            "cannot be purged before their soft-delete retention ends; a person decides")


ACTIONS = (
    Action("lock_key_vault_network", (KEY_VAULT,), "key_vault_network_open", _VAULT_RW, lock_network),
    Action("remove_key_vault_access_policy", (KEY_VAULT,), "key_vault_key_access_by_unallowed_principal",
           (f"{_VAULTS}/read", f"{_VAULTS}/accessPolicies/write"), remove_entries, exposed=entries_still_granted,
           on_request=False),  # which entries to remove comes from a decision's findings, not a request
    # Needed while purge protection is off; a finding about the retention alone has nothing this
    # write changes (the retention is fixed at creation): carried out, it changes nothing.
    Action("enable_key_vault_purge_protection", (KEY_VAULT,), "key_vault_purge_protection_off", _VAULT_RW,
           enable_purge_protection, exposed=purge_protection_off, approval=irreversible),
)
