"""Containing a Key Vault that holds synthetic data's keys (rules: containment.judge.key_vault).

- Lock the network: defaultAction Deny, keeping the vault's IP and virtual-network rules,
  adding CONTAINMENT_ALLOWED_CIDRS (IPv4: the spec's IPRule is "An IPv4 address range"), and
  the vault's own trusted-services bypass (absent means `AzureServices`, the spec's default),
  forced to `AzureServices` only where the vault holds an account's customer-managed key or
  the decision's findings do not say: Storage reaches its customer-managed key through that
  bypass: Azure Storage encryption with customer-managed keys is on Key Vault's
  trusted services list, and a service outside it needs an IP rule, a virtual network rule or
  a private endpoint (https://learn.microsoft.com/azure/key-vault/general/overview-vnet-service-endpoints,
  "Trusted services"). Released like a storage property (containment.plan.restore).
- Remove an access policy entry: `PUT {vault}/accessPolicies/remove` with the entry as the
  vault holds it now (Vaults_UpdateAccessPolicy, keyvault spec 2024-11-01), the whole vault
  recorded before; release hands a person the exact `add` request (restore_by_person), since
  the app only takes access away.
- Enable purge protection: always a person's decision; a finding about the retention alone
  (purge protection on already) is recorded only, since the retention is fixed at creation. It cannot be undone: the Key Vault
  API refuses `enablePurgeProtection: false` ("Enabling the purge protection for a vault is
  an irreversible action", Azure/azure-rest-api-specs#18106), and a purge-protected vault and
  its keys cannot be purged before the retention ends.
"""
from __future__ import annotations

from containment.core.ids import KEY_VAULT, ResourceId
from containment.core.settings import Settings
from containment.core.findings import Finding
from containment.judge.customer_keys import key_access_granted
from containment.plan.action import Action, State, Write, judged_state

_VAULTS = "Microsoft.KeyVault/vaults"
_VAULT_RW = (f"{_VAULTS}/read", f"{_VAULTS}/write")


def _properties(state: State) -> dict:
    return (state.body or {}).get("properties") or {}


def _findings(state: State, rule: str) -> list[dict]:
    return [finding for finding in state.facts.get("findings") or () if finding.get("rule") == rule]


def _holds_a_customer_key(state: State) -> bool:
    """Whether the vault holds some account's customer-managed key, as the decision's finding
    says (`encrypts`); True where no finding says (a person's request): Storage's bypass is kept."""
    said = [finding.get("evidence") or {} for finding in _findings(state, "key_vault_network_open")]
    return not said or any(evidence.get("encrypts") for evidence in said)


def lock_network(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    acls = dict(_properties(state).get("networkAcls") or {})
    rules = list(acls.get("ipRules") or [])
    held = {str(rule.get("value")) for rule in rules}
    rules += [{"value": str(network)} for network in settings.allowed_cidrs
              if network.version == 4 and str(network) not in held]
    # Absent, the bypass is AzureServices (keyvault spec NetworkRuleSet: "If not specified the
    # default is 'AzureServices'"); `None` is kept unless Storage needs the bypass to reach a key.
    bypass = acls.get("bypass") or "AzureServices"
    if _holds_a_customer_key(state):
        bypass = "AzureServices"
    acls.update(defaultAction="Deny", bypass=bypass, ipRules=rules,
                virtualNetworkRules=list(acls.get("virtualNetworkRules") or []))
    return [Write("PATCH", target.text, {"properties": {"networkAcls": acls}})]


def _named_principals(state: State) -> set[str]:
    """The principals whose entries the decision's findings name (what it judged not allowed)."""
    return {str(p).lower() for finding in _findings(state, "key_vault_key_access_by_unallowed_principal")
            for p in (finding.get("evidence") or {}).get("principals") or ()}


def _entries_to_remove(state: State) -> list[dict]:
    named = _named_principals(state)
    return [entry for entry in _properties(state).get("accessPolicies") or []
            if str(entry.get("objectId") or "").lower() in named
            and key_access_granted((entry.get("permissions") or {}).get("keys"))]


def remove_entries(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    # Each entry whole, as the vault holds it now: `remove` takes away every permission it lists.
    return [Write("PUT", f"{target.text}/accessPolicies/remove",
                  {"properties": {"accessPolicies": _entries_to_remove(state)}})]


def only_encryption_identities(finding: Finding, settings: Settings) -> str | None:
    """Why a finding leaves nothing to remove: every grant it names is an encryption identity's
    (containment.judge.key_vault), whose entry stays."""
    if finding.evidence.get("principals"):
        return None
    return "only encryption identities hold more than Storage needs; their entries stay, or the data is locked"


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


def retention_only(finding: Finding, settings: Settings) -> str | None:
    """Why a finding leaves enabling purge protection nothing to change: it is on already, and
    what is left (the retention) no write can change."""
    evidence = finding.evidence
    if evidence.get("enablePurgeProtection") is True and evidence.get("enableSoftDelete") is not False:
        return "the retention is fixed when a vault is created; purge protection is already on"
    return None


def vault_recreated(state: State, settings: Settings) -> str | None:
    """Why the ID now names another vault than the one judged: another `systemData.createdAt`
    (the ARM resource's system metadata; a vault has no creationTime among its properties).
    A body without it (an older API version, or the emulator before a write) is not compared."""
    judged, now = judged_state(state), state.body
    was, is_now = (((body or {}).get("systemData") or {}).get("createdAt") for body in (judged, now))
    if was and is_now and was != is_now:
        return f"{now.get('id')} was deleted and created again since it was judged (createdAt {was} is now {is_now})"
    return None


def irreversible(target: ResourceId, settings: Settings) -> str:
    return ("enabling purge protection is irreversible: once on, no one can switch it off, and the vault and its keys "
            "cannot be purged before their soft-delete retention ends; a person decides")


ACTIONS = (
    Action("lock_key_vault_network", (KEY_VAULT,), "key_vault_network_open", _VAULT_RW, lock_network,
           moot=vault_recreated),
    Action("remove_key_vault_access_policy", (KEY_VAULT,), "key_vault_key_access_by_unallowed_principal",
           (f"{_VAULTS}/read", f"{_VAULTS}/accessPolicies/write"), remove_entries, exposed=entries_still_granted,
           on_request=False,  # which entries to remove comes from a decision's findings, not a request
           moot=vault_recreated, unavailable=only_encryption_identities),
    # Needed while purge protection is off; a finding about the retention alone has nothing this
    # write changes (the retention is fixed at creation): recorded only.
    Action("enable_key_vault_purge_protection", (KEY_VAULT,), "key_vault_purge_protection_off", _VAULT_RW,
           enable_purge_protection, exposed=purge_protection_off, approval=irreversible, moot=vault_recreated,
           unavailable=retention_only),
)
