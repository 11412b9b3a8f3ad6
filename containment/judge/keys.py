"""When a listing of a protected account's keys, or of a SAS signed with them, is a leak.

ARM publishes a ResourceActionSuccess event for each successful POST action on a resource
(https://learn.microsoft.com/azure/event-grid/event-schema-subscriptions), so the
subscription system topic tells who listed an account's keys (listKeys) or had ARM sign a
SAS with them (ListAccountSas, ListServiceSas), from which address and when. The account
keys grant full control of every blob, and any SAS signed with them stays valid until the
key that signed it is rotated: a caller not on CONTAINMENT_ALLOWED_PRINCIPALS that lists
them is a finding. The app's own identity never lists keys (its role has no listKeys) and
its events are ignored before judging (containment.detect.pipeline).

Each rule judges one event (the `access` dict `key_access` builds from it): what is judged
is the event, not a resource's state, as the egress rules judge log rows. The finding is on
the account, so its containment (rotate_account_keys) acts there.

Severity high, as a standing grant of data access (role_assignment_grants_data_access): the
keys are in a stranger's hands, but no read of the data is shown yet; a read the logs then
show (egress rules) is critical.
"""
from __future__ import annotations

from typing import Any

from containment.core import clock
from containment.core.events import ACTION_SUCCESS, ArmEvent
from containment.core.findings import ACCOUNT_KEYS
from containment.judge.allowlist import allowance
from containment.judge.rule import Context, Rule

# Operation names as the Azure resource provider operations reference spells them
# (https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations#microsoftstorage);
# compared without case, as Event Grid's filters compare them.
LIST_KEYS = "Microsoft.Storage/storageAccounts/listKeys/action"
LIST_ACCOUNT_SAS = "Microsoft.Storage/storageAccounts/ListAccountSas/action"
LIST_SERVICE_SAS = "Microsoft.Storage/storageAccounts/ListServiceSas/action"
OPERATIONS = (LIST_KEYS, LIST_ACCOUNT_SAS, LIST_SERVICE_SAS)


def key_access(event: ArmEvent, account_id: str) -> dict[str, Any]:
    """What a rule judges: who listed what on which account, from where, when."""
    return {"id": account_id, "operation": event.operation, "caller": event.actor.as_dict(),
            "clientIpAddress": event.client_address, "eventTime": clock.iso(event.time) if event.time else None,
            "authorization": dict(event.authorization)}


def keys_listed(access: dict, context: Context):
    if access.get("operation", "").lower() != LIST_KEYS.lower():
        return None
    return _verdict(access, context, "listed the account keys", "both keys, key1 and key2, are in their hands",
                    "listKeys returns both account keys, key1 and key2")


def sas_listed(access: dict, context: Context):
    operation = access.get("operation", "").lower()
    if operation not in (LIST_ACCOUNT_SAS.lower(), LIST_SERVICE_SAS.lower()):
        return None
    kind = "an account SAS" if operation == LIST_ACCOUNT_SAS.lower() else "a service SAS"
    return _verdict(access, context, f"had ARM sign {kind} with an account key",
                    "a SAS signed with key1 or key2 is in their hands, valid until that key is rotated",
                    "the request's keyToSign is not in the event, so either key may have signed the SAS: both "
                    "are named, and rotating the one that did revokes it")


def _verdict(access: dict, context: Context, what: str, consequence: str, keys_why: str):
    caller = access.get("caller") or {}
    # Judged as the allowlist stood when the keys were listed (eventTime), not when the event arrived.
    allowed = allowance(caller.get("object_id"), context.settings, clock.instant(access.get("eventTime")))
    if allowed.allowed:
        return None
    named = {
        "operation": access.get("operation"),
        "principalId": caller.get("object_id"),
        "appId": caller.get("app_id"),
        "principalName": caller.get("name"),
        "principalType": caller.get("principal_type"),
        "clientIpAddress": access.get("clientIpAddress"),
        "eventTime": access.get("eventTime"),
        **(access.get("authorization") or {}),  # the role assignment that let them
    }
    evidence = {**{name: value for name, value in named.items() if value}, "keys": list(ACCOUNT_KEYS),
                "keys_why": keys_why}
    if allowed.expired:
        evidence["allowlist_expired"] = allowed.expired
    who = " ".join(part for part in (caller.get("principal_type") or "caller",
                                     caller.get("name") or caller.get("object_id") or "(unidentified)") if part)
    where = f" from {access['clientIpAddress']}" if access.get("clientIpAddress") else ""
    when = f" at {access['eventTime']}" if access.get("eventTime") else ""
    return (f"{who}, not on CONTAINMENT_ALLOWED_PRINCIPALS, {what} of a protected account{where}{when}: "
            f"{consequence}", evidence)


RULES = (
    Rule("storage_keys_listed_by_unallowed_principal", "high", ACTION_SUCCESS, keys_listed),
    Rule("storage_sas_listed_by_unallowed_principal", "high", ACTION_SUCCESS, sas_listed),
)
