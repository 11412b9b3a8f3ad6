"""What the emulator's ARM does for POST actions on a storage account beyond listKeys:
sign a SAS with an account key (ListAccountSas, ListServiceSas), and, for every action that
succeeds, the ResourceActionSuccess event the subscription system topic publishes.

- Request and response shapes: the storage REST spec at 2026-09-01 (the version
  azure-mgmt-storage 25.3.0 sends), kept in localazure/specs (sas.subset.json, with its
  source); the required fields are read from it. A body that lacks one, or names a key that
  does not exist, is refused 400 `InvalidValuesForRequestParameters` (the code the emulator
  gives a bad regenerateKey keyName; which code ARM gives here is unverified).
- The SAS: `sv=2015-04-05`, fields in the order of Microsoft's examples
  (StorageAccountListAccountSAS.json, StorageAccountListServiceSAS.json), signed as
  https://learn.microsoft.com/rest/api/storageservices/create-account-sas and
  .../create-service-sas describe for that version (HMAC-SHA256 of the string-to-sign with
  the key). Which signed version ARM uses today is unverified; the examples show 2015-04-05.
  Without keyToSign, key1 signs (unverified: the spec does not say).
- The event: the shape of Microsoft's sample
  (../shared/event-samples/resource-action-success.eventgrid.json; the schema:
  https://learn.microsoft.com/azure/event-grid/event-schema-subscriptions): the caller in
  `claims` and in `authorization.evidence` with the role assignment that granted the
  action, the request in `httpRequest`. The emulator's URL is given as management.azure.com,
  as Azure would show it; `clientIpAddress` is the caller's address as the emulator saw it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

SPEC = (Path(__file__).with_name("specs") / "specification" / "storage" / "resource-manager" / "Microsoft.Storage"
        / "stable" / "2026-09-01" / "sas.subset.json")
SAS_VERSION = "2015-04-05"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # the emulator's one tenant
ACTION_SUCCESS = "Microsoft.Resources.ResourceActionSuccess"


class BadSasRequest(ValueError):
    """The listing's body is not what the spec requires; the message says what."""


@lru_cache(maxsize=1)
def _definitions() -> dict[str, dict]:
    return json.loads(SPEC.read_text())["definitions"]


def _checked(body: Any, definition: str, keys: list[dict]) -> tuple[dict, dict]:
    """The request body and the key that signs it."""
    if not isinstance(body, dict):
        raise BadSasRequest("the request body must be a JSON object")
    missing = [name for name in _definitions()[definition]["required"] if not body.get(name)]
    if missing:
        raise BadSasRequest(f"{', '.join(missing)} (required by {definition}) missing")
    name = body.get("keyToSign") or "key1"
    key = next((entry for entry in keys if entry["keyName"] == name), None)
    if key is None:
        raise BadSasRequest(f"keyToSign (got {name!r}, expected one of {[entry['keyName'] for entry in keys]})")
    return body, key


def _time(body: dict, name: str) -> str:
    """A SAS time field as the token carries it: UTC, to the second (the examples' `se`)."""
    text = body.get(name)
    if not text:
        return ""
    head, _, _ = str(text).rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(head.replace("+00:00", ""))
    except ValueError:
        raise BadSasRequest(f"{name} (got {text!r}, expected an ISO 8601 date-time)") from None
    return moment.replace(tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sign(key: dict, string_to_sign: str) -> str:
    digest = hmac.new(base64.b64decode(key["value"]), string_to_sign.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _token(fields: list[tuple[str, str]]) -> str:
    return "&".join(f"{name}={quote(value, safe=',')}" for name, value in fields if value)


def account_sas(account: str, body: Any, keys: list[dict]) -> dict:
    """POST .../listAccountSas: {"accountSasToken": ...}."""
    body, key = _checked(body, "AccountSasParameters", keys)
    start, expiry = _time(body, "signedStart"), _time(body, "signedExpiry")
    permissions, services, types = body["signedPermission"], body["signedServices"], body["signedResourceTypes"]
    ip, protocol = body.get("signedIp") or "", body.get("signedProtocol") or ""
    signature = _sign(key, "\n".join([account, permissions, services, types, start, expiry, ip, protocol,
                                      SAS_VERSION]) + "\n")
    return {"accountSasToken": _token([("sv", SAS_VERSION), ("ss", services), ("srt", types), ("sp", permissions),
                                       ("st", start), ("se", expiry), ("sip", ip), ("spr", protocol),
                                       ("sig", signature)])}


def service_sas(body: Any, keys: list[dict]) -> dict:
    """POST .../listServiceSas: {"serviceSasToken": ...}."""
    body, key = _checked(body, "ServiceSasParameters", keys)
    start, expiry = _time(body, "signedStart"), _time(body, "signedExpiry")
    text = {name: body.get(name) or "" for name in ("signedPermission", "signedIdentifier", "signedIp",
                                                    "signedProtocol", "signedResource", "rscc", "rscd", "rsce",
                                                    "rscl", "rsct")}
    signature = _sign(key, "\n".join([text["signedPermission"], start, expiry, body["canonicalizedResource"],
                                      text["signedIdentifier"], text["signedIp"], text["signedProtocol"],
                                      SAS_VERSION, text["rscc"], text["rscd"], text["rsce"], text["rscl"],
                                      text["rsct"]]))
    return {"serviceSasToken": _token([("sv", SAS_VERSION), ("sr", text["signedResource"]), ("st", start),
                                       ("se", expiry), ("sp", text["signedPermission"]), ("sip", text["signedIp"]),
                                       ("spr", text["signedProtocol"]), ("si", text["signedIdentifier"]),
                                       ("sig", signature)])}


def action_event(path: str, operation: str, query: dict[str, str], headers: dict[str, str], when: str,
                 caller: dict[str, str], client_address: str | None) -> dict:
    """The ResourceActionSuccess for a successful POST `operation` to `path` (the resource's
    ARM ID as requested, then the action's segment). `caller`: principalId and principalType,
    and where a role assignment granted the action, role, roleAssignmentScope,
    roleAssignmentId, roleDefinitionId."""
    resource = path.rsplit("/", 1)[0]
    subscription = resource.strip("/").split("/")[1]
    return {
        "subject": resource,
        "eventType": ACTION_SUCCESS,
        "eventTime": when,
        "id": str(uuid.uuid4()),
        "data": {
            "authorization": {"scope": resource, "action": operation, "evidence": dict(caller)},
            "claims": {
                "aud": "https://management.azure.com/",
                "iss": f"https://sts.windows.net/{TENANT_ID}/",
                "http://schemas.microsoft.com/identity/claims/objectidentifier": caller["principalId"],
                "http://schemas.microsoft.com/identity/claims/tenantid": TENANT_ID,
                "ver": "1.0",
            },
            "correlationId": headers.get("x-ms-correlation-request-id") or str(uuid.uuid4()),
            "httpRequest": {
                "clientRequestId": headers.get("x-ms-client-request-id") or str(uuid.uuid4()),
                "clientIpAddress": client_address or "",
                "method": "POST",
                "url": f"https://management.azure.com{path}?" + "&".join(f"{k}={v}" for k, v in query.items()),
            },
            "resourceProvider": operation.split("/", 1)[0],
            "resourceUri": resource,
            "operationName": operation,
            "status": "Succeeded",
            "subscriptionId": subscription,
            "tenantId": TENANT_ID,
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{subscription}",
    }
