"""Event Grid events as the subscription system topic delivers them (the shape of
../shared/event-samples/resource-write-success.subscription-topic.eventgrid.json)."""
from __future__ import annotations

import uuid

from tests.helpers.arm_bodies import SUBSCRIPTION, TENANT

ANALYST = "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f"
SELF = "5e1d2c3b-4a59-4687-9a0b-c1d2e3f40506"
ACCOUNT_WRITE = "Microsoft.Storage/storageAccounts/write"
CONTAINER_WRITE = "Microsoft.Storage/storageAccounts/blobServices/containers/write"


def write_event(resource_id: str, operation: str, *, event_id: str | None = None, actor: str = ANALYST,
                subscription: str = SUBSCRIPTION, time: str = "2026-11-24T10:00:00.1234567Z") -> dict:
    # Events spell 'resourcegroups'; ARM answers 'resourceGroups'.
    uri = resource_id.replace("/resourceGroups/", "/resourcegroups/")
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": f"/subscriptions/{subscription}",
        "subject": uri,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": time,
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "authorization": {"scope": uri, "action": operation, "evidence": {"role": "Contributor"}},
            "claims": {
                "http://schemas.microsoft.com/identity/claims/objectidentifier": actor,
                "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
                "name": "Dana Analyst",
            },
            "correlationId": str(uuid.uuid4()),
            "resourceProvider": operation.split("/")[0],
            "resourceUri": uri,
            "operationName": operation,
            "status": "Succeeded",
            "subscriptionId": subscription,
            "tenantId": TENANT,
        },
    }
