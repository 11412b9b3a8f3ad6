"""Event Grid events as the subscription system topic delivers them (the shape of
../shared/event-samples/resource-write-success.subscription-topic.eventgrid.json, and for
actions of resource-action-success.eventgrid.json)."""
from __future__ import annotations

import uuid

from tests.helpers.arm_bodies import SUBSCRIPTION, TENANT

ANALYST = "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f"
SELF = "5e1d2c3b-4a59-4687-9a0b-c1d2e3f40506"
ACCOUNT_WRITE = "Microsoft.Storage/storageAccounts/write"
CONTAINER_WRITE = "Microsoft.Storage/storageAccounts/blobServices/containers/write"
LIST_KEYS = "Microsoft.Storage/storageAccounts/listKeys/action"
LIST_ACCOUNT_SAS = "Microsoft.Storage/storageAccounts/ListAccountSas/action"
LIST_SERVICE_SAS = "Microsoft.Storage/storageAccounts/ListServiceSas/action"
STRANGER_APP = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"  # a service principal's object ID


def _event(event_type: str, resource_id: str, operation: str, event_id: str | None, subscription: str, time: str,
           evidence: dict, **data) -> dict:
    """The envelope and the data every ARM event carries (`evidence`: how the caller was
    authorized); `data` adds what its kind carries."""
    uri = resource_id.replace("/resourceGroups/", "/resourcegroups/")  # events spell 'resourcegroups'
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": f"/subscriptions/{subscription}",
        "subject": uri,
        "eventType": event_type,
        "eventTime": time,
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "authorization": {"scope": uri, "action": operation, "evidence": evidence},
            "correlationId": str(uuid.uuid4()),
            "resourceUri": uri,
            "operationName": operation,
            "status": "Succeeded",
            "subscriptionId": subscription,
            "tenantId": TENANT,
            **data,
        },
    }


def write_event(resource_id: str, operation: str, *, event_id: str | None = None, actor: str = ANALYST,
                subscription: str = SUBSCRIPTION, time: str = "2026-11-24T10:00:00.1234567Z") -> dict:
    return _event(
        "Microsoft.Resources.ResourceWriteSuccess", resource_id, operation, event_id, subscription, time,
        {"role": "Contributor"},
        claims={"http://schemas.microsoft.com/identity/claims/objectidentifier": actor,
                "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "name": "Dana Analyst"},
        resourceProvider=operation.split("/")[0])


def action_event(resource_id: str, operation: str = LIST_KEYS, *, event_id: str | None = None,
                 actor: str = STRANGER_APP, principal_type: str = "ServicePrincipal",
                 app_id: str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", client_ip: str = "198.51.100.23",
                 time: str = "2026-11-24T10:00:00.1234567Z", subscription: str = SUBSCRIPTION) -> dict:
    """A ResourceActionSuccess for a POST action on a resource, as in Microsoft's sample:
    the caller in `claims` and `authorization.evidence` (principalId, principalType, the role
    assignment that allowed it), the request in `httpRequest` (clientIpAddress, url)."""
    action = operation.rsplit("/", 2)[-2]
    return _event(
        "Microsoft.Resources.ResourceActionSuccess", resource_id, operation, event_id, subscription, time,
        {"role": "Storage Account Contributor", "roleAssignmentScope": f"/subscriptions/{subscription}",
         "roleAssignmentId": "5b1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e", "roleDefinitionId": "17d1049b9a8442c8b1b06bb2eab4d5a0",
         "principalId": actor, "principalType": principal_type},
        claims={"http://schemas.microsoft.com/identity/claims/objectidentifier": actor, "appid": app_id,
                "http://schemas.microsoft.com/identity/claims/tenantid": TENANT},
        httpRequest={"clientRequestId": str(uuid.uuid4()), "clientIpAddress": client_ip, "method": "POST",
                     "url": f"https://management.azure.com{resource_id}/{action}?api-version=2026-09-01"},
        resourceProvider="Microsoft.Storage")


def delete_event(resource_id: str, operation: str, *, event_id: str | None = None, actor: str = ANALYST,
                 subscription: str = SUBSCRIPTION, time: str = "2026-11-24T10:00:00.1234567Z",
                 client_ip: str = "203.0.113.50") -> dict:
    """A ResourceDeleteSuccess as in Microsoft's sample (resource-delete-success.eventgrid.json):
    the caller's claims, and the DELETE in `httpRequest`."""
    return _event(
        "Microsoft.Resources.ResourceDeleteSuccess", resource_id, operation, event_id, subscription, time,
        {"role": "Contributor"},
        claims={"http://schemas.microsoft.com/identity/claims/objectidentifier": actor,
                "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46", "name": "Dana Analyst"},
        httpRequest={"clientRequestId": str(uuid.uuid4()), "clientIpAddress": client_ip, "method": "DELETE",
                     "url": f"https://management.azure.com{resource_id}"},
        resourceProvider=operation.split("/")[0])


def happened_now(event: dict) -> dict:
    """The event, timed now: it tells of a change made after what the app read before it (the
    app reuses a read sent after an event's time: containment.adapters.reads)."""
    from containment.core import clock

    return {**event, "eventTime": clock.iso()}
