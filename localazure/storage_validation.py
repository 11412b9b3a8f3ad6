"""How the storage resource provider takes a PATCH of an account or a container, and what it
refuses, with its status and error code. Every rule names its source; a code no public
source shows is marked `unverified` (the README lists them).

Sources:
- [spec] ../shared/azure-specs, Microsoft.Storage 2026-09-01: StorageAccountPropertiesUpdateParameters
  (what a PATCH may set), the PublicAccess enum of a container (None, Blob, Container),
  MinimumTlsVersion, PublicNetworkAccess and DefaultAction enums
- [cli#4825] Azure/azure-cli#4825: setting networkAcls.defaultAction alone "discards the
  bypass and actual rules in that same object": the RP replaces networkAcls as a whole
- [paving#89] pivotal/paving#89, microsoft/AzureStorageExplorer#4764: a container made
  public on an account that disallows public access: 409 PublicAccessNotPermitted,
  "Public access is not permitted on this storage account."
- [docs-anon] https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-prevent:
  when allowBlobPublicAccess is false, setting a container's public access level fails;
  accounts created on API versions from 2023-01-01 treat an absent value as false
"""
from __future__ import annotations

import copy
from typing import Any

from localazure.refusals import Refused

# [spec] StorageAccountPropertiesUpdateParameters: the properties a PATCH can change. Anything
# else under `properties` (provisioningState, primaryEndpoints, creationTime, ...) is left as
# it is (unverified: whether the RP ignores or refuses them is not documented; ignored here).
UPDATABLE = frozenset({
    "accessTier", "allowBlobPublicAccess", "allowCrossTenantDelegationSas", "allowCrossTenantReplication",
    "allowSharedKeyAccess", "allowSharedKeyAccessForServices", "allowedCopyScope",
    "azureFilesIdentityBasedAuthentication", "customDomain", "dataCollaborationPolicyProperties",
    "defaultToOAuthAuthentication", "dnsEndpointType", "dualStackEndpointPreference", "enableExtendedGroups",
    "encryption", "geoPriorityReplicationStatus", "immutableStorageWithVersioning", "isLocalUserEnabled",
    "isSftpEnabled", "keyPolicy", "largeFileSharesState", "minimumTlsVersion", "networkAcls",
    "publicNetworkAccess", "routingPreference", "sasPolicy", "supportsHttpsTrafficOnly",
})
_BOOLEANS = ("allowBlobPublicAccess", "allowCrossTenantReplication", "allowSharedKeyAccess",
             "supportsHttpsTrafficOnly", "defaultToOAuthAuthentication", "isLocalUserEnabled", "isSftpEnabled")
_ENUMS = {  # [spec]
    "minimumTlsVersion": ("TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3"),
    "publicNetworkAccess": ("Enabled", "Disabled", "SecuredByPerimeter"),
}
PUBLIC_ACCESS = ("None", "Blob", "Container")  # [spec] PublicAccess


def _invalid(name: str, value: Any, accepted: str) -> Refused:
    return Refused(400, "InvalidRequestPropertyValue",  # unverified code
                   f"The value '{value}' is not valid for property '{name}'; accepted: {accepted}.")


def patch_account(account: dict, body: dict) -> None:
    """Apply a PATCH body to an account as the RP does: tags replaced whole; each updatable
    property replaced whole, networkAcls included [cli#4825]; nothing else changes."""
    properties = body.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise Refused(400, "InvalidRequestContent", "properties must be a JSON object.")
    properties = properties or {}
    for name in _BOOLEANS:
        if name in properties and properties[name] is not None and not isinstance(properties[name], bool):
            raise _invalid(name, properties[name], "true, false")
    for name, accepted in _ENUMS.items():
        if name in properties and properties[name] is not None and properties[name] not in accepted:
            raise _invalid(name, properties[name], ", ".join(accepted))
    acls = properties.get("networkAcls")
    if acls is not None and (not isinstance(acls, dict) or acls.get("defaultAction") not in ("Allow", "Deny")):
        # [spec] NetworkRuleSet.defaultAction is required: a networkAcls without it is refused.
        raise _invalid("networkAcls.defaultAction", (acls or {}).get("defaultAction") if isinstance(acls, dict)
                       else acls, "Allow, Deny")
    if "tags" in body:
        account["tags"] = copy.deepcopy(body["tags"])
    stored = account.setdefault("properties", {})
    for name, value in properties.items():
        if name not in UPDATABLE:
            continue
        if value is None:
            stored.pop(name, None)
        else:
            stored[name] = copy.deepcopy(value)


def patch_container(container: dict, account: dict, body: dict) -> None:
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise Refused(400, "InvalidRequestContent", "properties must be a JSON object.")
    level = properties.get("publicAccess")
    if level is not None and level not in PUBLIC_ACCESS:
        raise _invalid("publicAccess", level, ", ".join(PUBLIC_ACCESS))
    allowed = (account.get("properties") or {}).get("allowBlobPublicAccess") is True  # [docs-anon]
    if level in ("Blob", "Container") and not allowed:
        raise Refused(409, "PublicAccessNotPermitted",  # [paving#89]
                      "Public access is not permitted on this storage account.")
    stored = container.setdefault("properties", {})
    for name, value in properties.items():
        if value is None:
            stored.pop(name, None)
        else:
            stored[name] = copy.deepcopy(value)
