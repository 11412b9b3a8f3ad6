"""Containing an exposed storage account or blob container: one PATCH of the property that
exposes it (storage rules: containment.judge.storage)."""
from __future__ import annotations

from containment.core.ids import BLOB_CONTAINER, STORAGE_ACCOUNT, ResourceId
from containment.core.settings import Settings
from containment.plan.action import Action, State, Write, patch, recreated

ACCOUNT_RW = ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/write")
_CONTAINER_RW = ("Microsoft.Storage/storageAccounts/blobServices/containers/read",
                 "Microsoft.Storage/storageAccounts/blobServices/containers/write")


def lock_network(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    if settings.network_lock == "disable-public-network-access":
        return [Write("PATCH", target.text, {"properties": {"publicNetworkAccess": "Disabled"}})]
    # Keep the account's IP and virtual-network rules and bypass: only the default flips,
    # so authorised training networks keep working. (The storage RP replaces networkAcls
    # as a whole on PATCH, so the body carries all of it.)
    acls = dict((state.body.get("properties") or {}).get("networkAcls") or {})
    acls["defaultAction"] = "Deny"
    return [Write("PATCH", target.text, {"properties": {"networkAcls": acls}})]


def public_access_not_refused(state: State, settings: Settings) -> bool:
    return state.body is not None and (state.body.get("properties") or {}).get("allowBlobPublicAccess") is not False


ACTIONS = (
    # Needed until the account says false: absent, older API versions read it as allowed,
    # and this write is what contains the account's public containers (covered_by below).
    Action("disable_blob_public_access", (STORAGE_ACCOUNT,), "storage_blob_public_access_allowed", ACCOUNT_RW,
           patch(allowBlobPublicAccess=False), exposed=public_access_not_refused, moot=recreated),
    Action("lock_account_network", (STORAGE_ACCOUNT,), "storage_network_open_to_internet", ACCOUNT_RW, lock_network,
           moot=recreated),
    Action("disable_shared_key_access", (STORAGE_ACCOUNT,), "storage_shared_key_access_allowed", ACCOUNT_RW,
           patch(allowSharedKeyAccess=False), moot=recreated),
    Action("disable_cross_tenant_replication", (STORAGE_ACCOUNT,), "storage_cross_tenant_replication_allowed",
           ACCOUNT_RW, patch(allowCrossTenantReplication=False), moot=recreated),
    Action("require_tls_1_2", (STORAGE_ACCOUNT,), "storage_tls_below_1_2", ACCOUNT_RW,
           patch(minimumTlsVersion="TLS1_2"), moot=recreated),
    # With blob public access disallowed on the account, every anonymous request is refused
    # whatever a container's level ("Remediate anonymous read access to blob data",
    # https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-prevent): one
    # account write contains any number of public containers.
    Action("make_container_private", (BLOB_CONTAINER,), "storage_container_public_access", _CONTAINER_RW,
           patch(publicAccess="None"), covered_by=("disable_blob_public_access", 2)),
)
