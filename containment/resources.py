"""The ARM adapter: read and change resources, always as ARM's own JSON.

Thin on purpose: judging and planning work on the JSON a GET returns (the shape the
ledger keeps as before/after state), and nothing here decides anything.
"""
from __future__ import annotations

from typing import Any

from containment.azure import AzureClients
from containment.resource_ids import BLOB_CONTAINER, STORAGE_ACCOUNT, ResourceId


class ResourceGone(LookupError):
    """The resource no longer exists (ARM answered 404)."""


def _not_found(call):
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return call()
    except ResourceNotFoundError as error:
        raise ResourceGone(str(error.message or error)) from None


def read(clients: AzureClients, resource: ResourceId) -> dict[str, Any]:
    """GET the resource; ResourceGone on 404."""
    storage = clients.storage(resource.subscription)
    if resource.is_type(STORAGE_ACCOUNT):
        return _not_found(lambda: storage.storage_accounts.get_properties(
            resource.resource_group, resource.name)).as_dict()
    if resource.is_type(BLOB_CONTAINER):
        return _not_found(lambda: storage.blob_containers.get(
            resource.resource_group, resource.names[0], resource.name)).as_dict()
    raise ValueError(f"no reader for {resource.type}")


def list_containers(clients: AzureClients, account: ResourceId) -> list[dict[str, Any]]:
    containers = clients.storage(account.subscription).blob_containers
    return _not_found(lambda: [c.as_dict() for c in containers.list(account.resource_group, account.name)])


def patch(clients: AzureClients, resource: ResourceId, body: dict[str, Any]) -> dict[str, Any]:
    """PATCH the resource with an ARM JSON merge body; return what ARM answered."""
    storage = clients.storage(resource.subscription)
    if resource.is_type(STORAGE_ACCOUNT):
        return _not_found(lambda: storage.storage_accounts.update(
            resource.resource_group, resource.name, body)).as_dict()
    if resource.is_type(BLOB_CONTAINER):
        return _not_found(lambda: storage.blob_containers.update(
            resource.resource_group, resource.names[0], resource.name, body)).as_dict()
    raise ValueError(f"no writer for {resource.type}")
