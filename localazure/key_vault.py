"""How the Key Vault resource provider takes vault writes and access-policy updates, and what
it refuses. Every rule names its source; a code or behaviour no public source shows is marked
`unverified` (the README lists them).

Sources:
- [spec] localazure/specs (keyvault 2024-11-01 keyvault.subset.json, keys.subset.json, from
  Azure/azure-rest-api-specs, see its README): the `required` lists (read from the subset
  below, not copied); `softDeleteRetentionInDays` "accepts >=7 and <=90" (default 90);
  `enableSoftDelete` defaults to true and "Once set to true, it cannot be reverted to
  false"; `enablePurgeProtection`: "Enabling this functionality is irreversible - that is,
  the property does not accept false as its value"; access policies: "All identities in the
  array must use the same tenant ID as the key vault's tenant ID", "The object ID must be
  unique for the list of access policies"; `networkAcls.bypass` "If not specified the
  default is 'AzureServices'"; the access-policy answer's shape (updateAccessPoliciesAdd.json:
  `id` ending `/accessPolicies/`, the type, and the policies sent).
- [purge] the refusal of `enablePurgeProtection: false`: 400 `BadRequest`, "The property
  \"enablePurgeProtection\" cannot be set to false. Enabling the purge protection for a vault
  is an irreversible action." (Azure/azure-rest-api-specs#18106, Azure/azure-cli#13006).
- [retention] https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview: the
  retention interval "can only be configured during key vault creation and can't be
  changed afterwards" (the refusal's code is unverified).

Unverified (README): the codes of every refusal but [purge]; what `remove` does with an
entry (here: the listed permissions leave the entry, and an entry left with none is
removed); that `replace` adds an entry that is not there yet.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from localazure.refusals import Refused
from localazure.shared import REPO_ROOT

SPEC_DIR = (REPO_ROOT / "localazure" / "specs" / "specification" / "keyvault" / "resource-manager"
            / "Microsoft.KeyVault" / "stable" / "2024-11-01")
_DEFINITIONS = json.loads((SPEC_DIR / "keyvault.subset.json").read_text())["definitions"]
VAULT_TYPE = "Microsoft.KeyVault/vaults"
ACCESS_POLICY_TYPE = "Microsoft.KeyVault/vaults/accessPolicies"
KINDS = ("add", "replace", "remove")  # [spec] AccessPolicyUpdateKind
PERMISSION_KINDS = tuple(_DEFINITIONS["Permissions"]["properties"])  # keys, secrets, certificates, storage


def _required(definition: str) -> list[str]:
    return _DEFINITIONS[definition].get("required", [])


def _bad(message: str) -> Refused:
    return Refused(400, "BadRequest", message)  # unverified code except for [purge]


def _missing(where: str, body: Any, definition: str) -> None:
    if not isinstance(body, dict):
        raise _bad(f"{where} must be a JSON object.")
    missing = [name for name in _required(definition) if body.get(name) in (None, "")]
    if missing:  # [spec] required
        raise _bad(f"{where} needs {', '.join(missing)}.")


def _check_policies(policies: Any, tenant: str | None, where: str) -> list[dict]:
    if not isinstance(policies, list):
        raise _bad(f"{where} must be an array of access policy entries.")
    seen = set()
    for index, entry in enumerate(policies):
        _missing(f"{where}[{index}]", entry, "AccessPolicyEntry")
        if tenant and str(entry["tenantId"]).lower() != tenant.lower():  # [spec] same tenant as the vault
            raise _bad(f"{where}[{index}].tenantId {entry['tenantId']} is not the vault's tenant {tenant}.")
        identity = _identity(entry)
        if identity in seen:  # [spec] the object ID must be unique
            raise _bad(f"{where}[{index}]: object ID {entry['objectId']} appears twice.")
        seen.add(identity)
    return copy.deepcopy(policies)


def _check_properties(current: dict, wanted: dict) -> None:
    """What a write may not do to the vault's properties as they stand."""
    if wanted.get("enablePurgeProtection") is False:  # [spec], [purge]: refused on creation too
        raise _bad('The property "enablePurgeProtection" cannot be set to false. Enabling the purge protection '
                   "for a vault is an irreversible action.")
    if wanted.get("enableSoftDelete") is False and current and current.get("enableSoftDelete", True):
        raise _bad('The property "enableSoftDelete" cannot be set to false: once soft delete is on, it cannot be '
                   "reverted.")  # [spec] enableSoftDelete
    days = wanted.get("softDeleteRetentionInDays")
    if days is not None:
        if not isinstance(days, int) or isinstance(days, bool) or not 7 <= days <= 90:  # [spec]
            raise _bad(f"softDeleteRetentionInDays {days!r}: it accepts >=7 and <=90.")
        if current and days != current.get("softDeleteRetentionInDays", 90):  # [retention]
            raise _bad("softDeleteRetentionInDays cannot be changed after the vault is created.")
    acls = wanted.get("networkAcls")
    if acls is not None and not isinstance(acls, dict):
        raise _bad("networkAcls must be an object.")
    for index, rule in enumerate((acls or {}).get("ipRules") or []):
        _missing(f"networkAcls.ipRules[{index}]", rule, "IPRule")


def vault_uri(name: str) -> str:
    """https://{name}.vault.azure.net, as getVault.json spells it (no trailing slash)."""
    return f"https://{name.lower()}.vault.azure.net"


def put_vault(path: str, body: Any, existing: dict | None) -> dict:
    """The vault as stored after a PUT (create or replace), or Refused."""
    _missing("The request", body, "VaultCreateOrUpdateParameters")
    properties = body["properties"]
    _missing("properties", properties, "VaultProperties")
    current = (existing or {}).get("properties") or {}
    _check_properties(current, properties)
    stored = copy.deepcopy(properties)
    stored["accessPolicies"] = _check_policies(properties.get("accessPolicies") or [], properties["tenantId"],
                                               "properties.accessPolicies")
    name = path.rstrip("/").rsplit("/", 1)[1]
    stored["vaultUri"] = current.get("vaultUri") or vault_uri(name)
    # [spec] defaults; purge protection, once on, stays on whatever a PUT leaves out.
    stored.setdefault("enableSoftDelete", current.get("enableSoftDelete", True))
    stored.setdefault("softDeleteRetentionInDays", current.get("softDeleteRetentionInDays", 90))
    stored.setdefault("enableRbacAuthorization", False)
    stored.setdefault("publicNetworkAccess", "Enabled")  # the examples' spelling of the default
    if current.get("enablePurgeProtection"):
        stored["enablePurgeProtection"] = True
    stored["provisioningState"] = "Succeeded"
    vault = {"id": (existing or {}).get("id") or path, "name": name, "type": VAULT_TYPE,
             "location": body["location"], "tags": copy.deepcopy(body.get("tags") or {}), "properties": stored}
    return vault


def patch_vault(vault: dict, body: Any) -> None:
    """Apply a PATCH in place: each property named replaces the stored one (tags likewise)."""
    if not isinstance(body, dict):
        raise _bad("The request content must be a JSON object.")
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise _bad("properties must be an object.")
    current = vault.setdefault("properties", {})
    _check_properties(current, properties)
    if "accessPolicies" in properties:
        properties = {**properties, "accessPolicies": _check_policies(
            properties["accessPolicies"], current.get("tenantId"), "properties.accessPolicies")}
    current.update(copy.deepcopy(properties))
    if body.get("tags") is not None:
        vault["tags"] = copy.deepcopy(body["tags"])


def _identity(entry: dict) -> tuple[str, str, str]:
    return (str(entry.get("tenantId", "")).lower(), str(entry.get("objectId", "")).lower(),
            str(entry.get("applicationId") or "").lower())


def update_access_policies(vault: dict, kind: str, body: Any) -> dict:
    """Apply an `accessPolicies/{kind}` PUT to the vault in place; the answer's body."""
    if kind not in KINDS:
        raise _bad(f"The operation kind {kind!r} is not one of {', '.join(KINDS)}.")
    _missing("The request", body, "VaultAccessPolicyParameters")
    _missing("properties", body["properties"], "VaultAccessPolicyProperties")
    properties = vault.setdefault("properties", {})
    sent = _check_policies(body["properties"]["accessPolicies"], properties.get("tenantId"),
                           "properties.accessPolicies")
    policies = properties.setdefault("accessPolicies", [])
    for entry in sent:
        index = next((i for i, held in enumerate(policies) if _identity(held) == _identity(entry)), None)
        if kind == "remove":
            if index is None:
                continue
            held = policies[index].setdefault("permissions", {})
            for family in PERMISSION_KINDS:
                gone = {p.lower() for p in (entry["permissions"].get(family) or [])}
                if family in held:
                    held[family] = [p for p in held[family] if p.lower() not in gone]
            if not any(held.get(family) for family in PERMISSION_KINDS):
                del policies[index]
        elif index is None:
            policies.append(copy.deepcopy(entry))
        elif kind == "replace":
            policies[index]["permissions"] = copy.deepcopy(entry["permissions"])
        else:  # add: the permissions merge into the entry's
            held = policies[index].setdefault("permissions", {})
            for family in PERMISSION_KINDS:
                for permission in entry["permissions"].get(family) or []:
                    if permission.lower() not in {p.lower() for p in held.get(family) or []}:
                        held.setdefault(family, []).append(permission)
    return {"id": f"{vault['id']}/accessPolicies/", "type": ACCESS_POLICY_TYPE,
            "properties": {"accessPolicies": sent}}
