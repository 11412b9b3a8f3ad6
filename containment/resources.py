"""The ARM adapter: read and change resources, always as ARM's own JSON.

Thin on purpose: judging and planning work on the JSON a GET returns (the shape the
ledger keeps as before/after state, exactly as ARM sent it, so that a deleted role
assignment can be recreated exactly), and nothing here decides anything.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from containment.azure import AzureClients
from containment.resource_ids import BLOB_CONTAINER, ROLE_ASSIGNMENT, STORAGE_ACCOUNT, ResourceId


class ResourceGone(LookupError):
    """The resource no longer exists (ARM answered 404)."""


def _as_sent(pipeline_response, deserialized, headers) -> Any:
    """The SDKs' documented `cls` hook: keep the body as ARM sent it, not the SDK model."""
    return json.loads(pipeline_response.http_response.text())  # .text(): old and new transports alike


def _arm(call: Callable[[], Any]) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return call()
    except ResourceNotFoundError as error:
        raise ResourceGone(str(error.message or error)) from None


def read(clients: AzureClients, resource: ResourceId) -> dict[str, Any]:
    """GET the resource; ResourceGone on 404."""
    if resource.is_type(STORAGE_ACCOUNT):
        accounts = clients.storage(resource.subscription).storage_accounts
        return _arm(lambda: accounts.get_properties(resource.resource_group, resource.name, cls=_as_sent))
    if resource.is_type(BLOB_CONTAINER):
        containers = clients.storage(resource.subscription).blob_containers
        return _arm(lambda: containers.get(resource.resource_group, resource.names[0], resource.name, cls=_as_sent))
    if resource.is_type(ROLE_ASSIGNMENT):
        assignments = clients.authorization(resource.subscription).role_assignments
        return _arm(lambda: assignments.get_by_id(resource.text, cls=_as_sent))
    raise ValueError(f"no reader for {resource.type}")


def read_role_definition(clients: AzureClients, subscription: str, role_definition_id: str) -> dict[str, Any]:
    definitions = clients.authorization(subscription).role_definitions
    return _arm(lambda: definitions.get_by_id(role_definition_id, cls=_as_sent))


def list_containers(clients: AzureClients, account: ResourceId) -> list[dict[str, Any]]:
    containers = clients.storage(account.subscription).blob_containers
    return _arm(lambda: [item.as_dict() for item in containers.list(account.resource_group, account.name)])


def list_accounts(clients: AzureClients, subscription: str, resource_group: str | None) -> list[dict[str, Any]]:
    """The storage accounts in a resource group, or in the whole subscription."""
    accounts = clients.storage(subscription).storage_accounts
    pages = accounts.list_by_resource_group(resource_group) if resource_group else accounts.list()
    return _arm(lambda: [item.as_dict() for item in pages])


def patch(clients: AzureClients, resource: ResourceId, body: dict[str, Any]) -> None:
    """PATCH the resource with an ARM JSON merge body."""
    storage = clients.storage(resource.subscription)
    if resource.is_type(STORAGE_ACCOUNT):
        _arm(lambda: storage.storage_accounts.update(resource.resource_group, resource.name, body))
    elif resource.is_type(BLOB_CONTAINER):
        _arm(lambda: storage.blob_containers.update(resource.resource_group, resource.names[0], resource.name, body))
    else:
        raise ValueError(f"no writer for {resource.type}")


def delete(clients: AzureClients, resource: ResourceId) -> None:
    if resource.is_type(ROLE_ASSIGNMENT):
        _arm(lambda: clients.authorization(resource.subscription).role_assignments.delete_by_id(resource.text))
    else:
        raise ValueError(f"this app never deletes a {resource.type}")
