"""What makes a synthetic-data storage account or container exposed.

Property defaults follow the storage API's documented interpretation when a property is
absent: shared-key access is allowed (null means true), public network access is enabled,
the minimum TLS version is 1.0; blob public access and cross-tenant replication are off.
"""
from __future__ import annotations

from containment.core.ids import BLOB_CONTAINER, STORAGE_ACCOUNT
from containment.judge.rule import Context, Rule


def _properties(body: dict) -> dict:
    properties = body.get("properties")
    return properties if isinstance(properties, dict) else {}


def blob_public_access_allowed(account: dict, context: Context):
    if _properties(account).get("allowBlobPublicAccess") is True:
        return ("the account allows anonymous read access to blobs (any container set to public is "
                "readable by anyone on the internet)", {"allowBlobPublicAccess": True})
    return None


def network_open_to_internet(account: dict, context: Context):
    properties = _properties(account)
    public = properties.get("publicNetworkAccess") or "Enabled"
    default = (properties.get("networkAcls") or {}).get("defaultAction") or "Allow"
    if public == "Enabled" and default == "Allow":
        return ("the account accepts connections from any network",
                {"publicNetworkAccess": public, "networkAcls.defaultAction": default})
    return None


def shared_key_access_allowed(account: dict, context: Context):
    value = _properties(account).get("allowSharedKeyAccess")
    if value is not False:
        return ("account keys and the SAS tokens signed with them can read the data",
                {"allowSharedKeyAccess": value})
    return None


def cross_tenant_replication_allowed(account: dict, context: Context):
    if _properties(account).get("allowCrossTenantReplication") is True:
        return ("object replication to accounts in other tenants is allowed",
                {"allowCrossTenantReplication": True})
    return None


def tls_below_1_2(account: dict, context: Context):
    version = _properties(account).get("minimumTlsVersion") or "TLS1_0"
    if version in ("TLS1_0", "TLS1_1"):
        return f"the account accepts {version.replace('_', '.')} connections", {"minimumTlsVersion": version}
    return None


def scope_tag_removed(account: dict, context: Context):
    protection = context.protection
    if protection.protected_scope and not protection.tagged:
        name, value = context.settings.scope_tag
        return (f"the account lies under protected scope {protection.protected_scope} but no longer carries "
                f"the tag {name}={value}", {"tags": account.get("tags") or {}, "expected_tag": f"{name}={value}"})
    return None


def container_public_access(container: dict, context: Context):
    level = _properties(container).get("publicAccess") or "None"
    account = context.facts.get("account")
    if account is not None and _properties(account).get("allowBlobPublicAccess") is False:
        # The account refuses every anonymous request whatever the container's level
        # (https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-prevent): once
        # containment turns it off there, the containers are contained too. Absent, the
        # property's default interpretation depends on the API version that made the account
        # (true in older specs, false in newer): the container's own level decides.
        return None
    if level in ("Blob", "Container"):
        what = "its blobs" if level == "Blob" else "its blobs and the list of them"
        return f"the container lets anyone read {what} without credentials", {"publicAccess": level}
    return None


RULES = (
    Rule("storage_blob_public_access_allowed", "high", STORAGE_ACCOUNT, blob_public_access_allowed),
    Rule("storage_network_open_to_internet", "medium", STORAGE_ACCOUNT, network_open_to_internet),
    Rule("storage_shared_key_access_allowed", "medium", STORAGE_ACCOUNT, shared_key_access_allowed),
    Rule("storage_cross_tenant_replication_allowed", "medium", STORAGE_ACCOUNT, cross_tenant_replication_allowed),
    Rule("storage_tls_below_1_2", "medium", STORAGE_ACCOUNT, tls_below_1_2),
    Rule("storage_scope_tag_removed", "high", STORAGE_ACCOUNT, scope_tag_removed),
    Rule("storage_container_public_access", "high", BLOB_CONTAINER, container_public_access),
)
