"""The ARM adapter: read and change resources, always as ARM's own JSON.

Thin on purpose: judging and planning work on the JSON a GET returns (the shape the
ledger keeps as before/after state, exactly as ARM sent it, so that a deleted role
assignment can be recreated exactly), and nothing here decides anything.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator

from containment.adapters.clients import AzureClients
from containment.adapters.reads import fresh_since, now
from containment.core.ids import (
    BLOB_CONTAINER,
    DEFAULT_SECURITY_RULE,
    DIAGNOSTIC_SETTING,
    KEY_VAULT,
    NSG,
    POLICY_ASSIGNMENT,
    POLICY_EXEMPTION,
    REPLICATION_POLICY,
    ROLE_ASSIGNMENT,
    SECURITY_RULE,
    STORAGE_ACCOUNT,
    VAULT_ACCESS_POLICY,
    VAULT_KEY,
    MalformedResourceId,
    ResourceId,
    parse_resource_id,
)
from containment.plan.action import State, Write

# Resource types no installed management SDK covers: read and written through ARM's REST API
# on the pipeline the SDK clients use (the same credential, ARM's error format, the write-safe
# retry), rather than three more SDKs for a handful of calls: azure-mgmt-monitor 7.0.0 no
# longer has diagnostic settings, azure-mgmt-resource-policy 1.0.0 has no exemptions. The API
# versions are those of the specs the emulator serves (localazure/specs/README.md).
API_VERSIONS = {
    KEY_VAULT: "2024-11-01", VAULT_KEY: "2024-11-01", VAULT_ACCESS_POLICY: "2024-11-01",
    POLICY_ASSIGNMENT: "2025-03-01", POLICY_EXEMPTION: "2024-12-01-preview",
    DIAGNOSTIC_SETTING: "2021-05-01-preview",
}


class ResourceGone(LookupError):
    """The resource no longer exists (ARM answered 404)."""


class ChangedConcurrently(RuntimeError):
    """A write's precondition failed (412): someone changed the resource since it was read."""


class Refused(RuntimeError):
    """ARM refused the write (a 4xx, or a long-running operation that ended Failed): sending
    it again gets the same answer. `code` is ARM's error code, kept on the record."""

    def __init__(self, status: int | None, code: str | None, message: str):
        super().__init__(message)
        self.status, self.code = status, code


# Refusals that are about timing, not the request: sending it again later can succeed.
_TRANSIENT = ("AnotherOperationInProgress", "RetryableError", "Conflict")


class OutcomeUnknown(RuntimeError):
    """A write answered with a server error, or not at all: ARM may have carried it out.
    Read the resource to know; never send it again blindly (containment.adapters.arm_retry)."""


def _as_sent(pipeline_response, deserialized, headers) -> Any:
    """The SDKs' documented `cls` hook: keep the body as ARM sent it, not the SDK model."""
    return json.loads(pipeline_response.http_response.text())  # .text(): old and new transports alike


def _arm(call: Callable[[], Any]) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return call()
    except ResourceNotFoundError as error:
        raise ResourceGone(str(error.message or error)) from None


def _api_version(resource: ResourceId) -> str | None:
    return next((version for kind, version in API_VERSIONS.items() if resource.is_type(kind)), None)


def rest(clients: AzureClients, method: str, path: str, api_version: str, body: Any = None,
         headers: dict[str, str] | None = None) -> Any:
    """One ARM REST call on the SDK pipeline; the JSON answer (None when empty). ResourceGone
    on 404; any other error status raises the SDK's HttpResponseError with ARM's error code."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    request = HttpRequest(method, f"{path}?api-version={api_version}", json=body, headers=headers or {})
    response = clients.subscriptions.send_request(request)
    if response.status_code == 404:
        raise ResourceGone(f"{method} {path}: 404 {response.text()[:300]}")
    if response.status_code >= 400:
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    return response.json() if response.text() else None


def list_at(clients: AzureClients, path: str, api_version: str) -> list[dict[str, Any]]:
    """Every item of an ARM list, following nextLink."""
    return list(pages_at(clients, path, api_version))


def pages_at(clients: AzureClients, path: str, api_version: str) -> Iterator[dict[str, Any]]:
    """The items of an ARM list page by page: the next page (nextLink, an absolute URL
    carrying its api-version) is asked for when the items before it have been used."""
    page = rest(clients, "GET", path, api_version) or {}
    while True:
        yield from page.get("value") or []
        following = page.get("nextLink")
        if not following:
            return
        from azure.core.rest import HttpRequest

        if not following.lower().startswith(_management_endpoint(clients).lower() + "/"):
            # The next page is fetched with the app's ARM token: never from another host.
            raise ValueError(f"{path}: nextLink {following[:120]!r} is not on the ARM endpoint")
        response = clients.subscriptions.send_request(HttpRequest("GET", following))
        response.raise_for_status()
        page = response.json()


def _management_endpoint(clients: AzureClients) -> str:
    return (clients.settings.local_azure_endpoint or "https://management.azure.com").rstrip("/")


# The only writes the app sends to the types above, by type: what its containment actions and
# releases plan, and nothing else. The app's role must hold vaults/write, accessPolicies/write,
# diagnosticSettings/write and policyAssignments/write for them, and each of those could also
# give access (an access policy added, a vault opened, logs sent elsewhere, an Append policy
# assigned); so any other shape is refused here, before it reaches ARM, whatever planned it.
_VAULT_PROPERTIES = frozenset({"networkAcls", "publicNetworkAccess", "enablePurgeProtection"})
_DIAGNOSTIC_PROPERTIES = frozenset({"workspaceId", "logs", "metrics", "logAnalyticsDestinationType"})


def refused_shape(clients: AzureClients, change: Write, target: ResourceId) -> str | None:
    """Why the app never sends this write to a Key Vault, access-policy, policy or
    diagnostic-setting target, or None for a shape its actions plan."""
    properties = (change.body or {}).get("properties") or {}
    if target.is_type(KEY_VAULT):
        if change.method != "PATCH" or set(change.body or {}) - {"properties"} or set(properties) - _VAULT_PROPERTIES:
            return f"only a PATCH of {sorted(_VAULT_PROPERTIES)} is sent to a vault"
        if properties.get("enablePurgeProtection", True) is not True:
            return "purge protection is only ever switched on"
        return None
    if target.is_type(VAULT_ACCESS_POLICY):
        return None if change.method == "PUT" and target.name.lower() == "remove" else \
            "only accessPolicies/remove is sent: the app never adds or replaces an access policy"
    if target.is_type(DIAGNOSTIC_SETTING):
        workspace = clients.settings.log_workspace_resource_id
        if change.method != "PUT" or set(properties) - _DIAGNOSTIC_PROPERTIES:
            return f"a diagnostic setting is only put back with {sorted(_DIAGNOSTIC_PROPERTIES)}"
        if not workspace or str(properties.get("workspaceId") or "").lower() != workspace.lower():
            return "a diagnostic setting is only put back sending to CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID"
        return None
    if target.is_type(POLICY_ASSIGNMENT):
        return None if change.method == "PUT" else "a policy assignment is only put back, never changed or deleted"
    return f"the app never writes a {target.type}"


def read(clients: AzureClients, resource: ResourceId) -> dict[str, Any]:
    """The resource as ARM returns it; ResourceGone on 404. Answered from this instance's recent
    reads where the work asks for reads no older than a moment (containment.adapters.reads),
    else a GET, which is kept for the reads after it."""
    kept = clients.reads.fresh(resource.key, fresh_since())
    if kept is not None:
        if kept.body is None:
            raise ResourceGone(f"{resource.text}: deleted by this app since the event")
        return json.loads(kept.body)
    sent_at = now()
    body = _get(clients, resource)  # a 404 is never kept: a new role assignment can read as 404 for a while
    # Kept as text: callers may change the dict they are given, never what later reads get.
    clients.reads.keep(resource.key, json.dumps(body), sent_at)
    return body


def _get(clients: AzureClients, resource: ResourceId) -> dict[str, Any]:
    version = _api_version(resource)
    if version:
        return rest(clients, "GET", resource.text, version)
    if resource.is_type(STORAGE_ACCOUNT):
        accounts = clients.storage(resource.subscription).storage_accounts
        return _arm(lambda: accounts.get_properties(resource.resource_group, resource.name, cls=_as_sent))
    if resource.is_type(BLOB_CONTAINER):
        containers = clients.storage(resource.subscription).blob_containers
        return _arm(lambda: containers.get(resource.resource_group, resource.names[0], resource.name, cls=_as_sent))
    if resource.is_type(ROLE_ASSIGNMENT):
        assignments = clients.authorization(resource.subscription).role_assignments
        return _arm(lambda: assignments.get_by_id(resource.text, cls=_as_sent))
    if resource.is_type(NSG):
        groups = clients.network(resource.subscription).network_security_groups
        return _arm(lambda: groups.get(resource.resource_group, resource.name, cls=_as_sent))
    if resource.is_type(REPLICATION_POLICY):
        policies = clients.storage(resource.subscription).object_replication_policies
        return _arm(lambda: policies.get(resource.resource_group, resource.names[0], resource.name, cls=_as_sent))
    raise ValueError(f"no reader for {resource.type}")


# What read_if_permitted says of a resource ARM answers 404 for.
NOT_FOUND = "it does not exist, or not where the app can see it (404)"


def read_or_none(clients: AzureClients, resource: ResourceId) -> dict[str, Any] | None:
    """The resource, or None where ARM answers 404 (gone, or never there)."""
    try:
        return read(clients, resource)
    except ResourceGone:
        return None


def read_if_permitted(clients: AzureClients, resource: ResourceId) -> tuple[dict | None, str | None]:
    """The resource, or None and why it cannot be read: gone (404: NOT_FOUND), or not readable
    by the app's identity (401, 403: another tenant, a subscription its role does not cover)."""
    from azure.core.exceptions import HttpResponseError

    try:
        return read(clients, resource), None
    except ResourceGone:
        return None, NOT_FOUND
    except HttpResponseError as error:
        if error.status_code in (401, 403):
            code = getattr(error.error, "code", None) if error.error else None
            return None, f"the app's identity cannot read it (HTTP {error.status_code} {code or ''})".replace(" )", ")")
        raise


def read_state(clients: AzureClients, target: ResourceId) -> State:
    """The target as it is now, with what judging it needs; State(None) when it is gone.
    An NSG rule is read through its NSG: one GET gives the rule, its neighbours and the ETag;
    a diagnostic setting with the other settings of its resource (`siblings`)."""
    try:
        if target.is_type(SECURITY_RULE) or target.is_type(DEFAULT_SECURITY_RULE):
            nsg = read(clients, target.ancestor(1))
            return State(find_rule(nsg, target.name), {"nsg": nsg}, nsg.get("etag"))
        if target.is_type(DIAGNOSTIC_SETTING):
            # Whether logs still flow is judged over the resource's settings together.
            siblings = [s for s in list_diagnostic_settings(clients, target.scope) if str(s.get("id")).lower() != target.key]
            try:
                return State(read(clients, target), {"siblings": siblings})
            except ResourceGone:
                return State(None, {"siblings": siblings})
        return State(read(clients, target))
    except ResourceGone:
        return State(None)


def find_rule(nsg: dict, name: str) -> dict | None:
    properties = nsg.get("properties") or {}
    rules = list(properties.get("securityRules") or []) + list(properties.get("defaultSecurityRules") or [])
    return next((rule for rule in rules if str(rule.get("name", "")).lower() == name.lower()), None)


def read_role_definition(clients: AzureClients, subscription: str, role_definition_id: str) -> dict[str, Any]:
    """The role definition; like `read`, reused within the work's freshness bound (every grant
    in a storm names one of a few roles)."""
    key = role_definition_id.lower()
    kept = clients.reads.fresh(key, fresh_since())
    if kept is not None and kept.body is not None:
        return json.loads(kept.body)
    definitions = clients.authorization(subscription).role_definitions
    sent_at = now()
    body = _arm(lambda: definitions.get_by_id(role_definition_id, cls=_as_sent))
    clients.reads.keep(key, json.dumps(body), sent_at)
    return body


def list_containers(clients: AzureClients, account: ResourceId) -> list[dict[str, Any]]:
    """An account's blob containers. Each listed container is kept as a read of it sent when
    the list was (containment.adapters.reads), and the listing as the IDs it named, so the
    storm's other events about the account or its containers are answered without a call:
    the list is sent again only where the work asks for reads fresher than it, or one of its
    containers has been written (forgotten) since.

    A listed item is a container's GET body for everything the app judges and restores:
    ListContainerItem and BlobContainer share ContainerProperties, `id`, `name`, `type` and
    `etag` (storage spec 2026-09-01); what Microsoft's examples show only on a GET is the
    immutability policy's and legal hold's detail (`immutabilityPolicy`, `legalHold`; a list
    item has `hasImmutabilityPolicy` and `hasLegalHold`: BlobContainersGet and
    BlobContainersList, and the recorded list in ../shared/recorded-arm). No rule reads them,
    and a release restores only `publicAccess` (containment.plan.restore), so a container's
    evidence taken from a listing lacks that detail and nothing else (unverified beyond the
    examples). One call lists them all: "SRP today does not return continuation token"
    (Blob Containers - List, https://learn.microsoft.com/rest/api/storagerp/blob-containers/list)."""
    listing, since = containers_of(account), fresh_since()
    kept = clients.reads.fresh(listing, since)
    if kept is not None:
        reads = [clients.reads.fresh(key, since) for key in json.loads(kept.body)]
        if all(reads):
            return [json.loads(read.body) for read in reads]
    containers = clients.storage(account.subscription).blob_containers
    sent_at = now()
    listed = _arm(lambda: [item.as_dict() for item in containers.list(account.resource_group, account.name)])
    keys = []
    for body in listed:
        try:
            keys.append(parse_resource_id(str(body.get("id"))).key)
        except MalformedResourceId:
            return listed  # judged from the list all the same; a listing that names it is never reused
        clients.reads.keep(keys[-1], json.dumps(body), sent_at)
    clients.reads.keep(listing, json.dumps(keys), sent_at)
    return listed


def containers_of(account: ResourceId) -> str:
    """What an account's container listing is kept as among the reads: its collection's path."""
    return f"{account.key}/blobservices/default/containers"


def list_accounts(clients: AzureClients, subscription: str, resource_group: str | None) -> list[dict[str, Any]]:
    """The storage accounts in a resource group, or in the whole subscription."""
    accounts = clients.storage(subscription).storage_accounts
    pages = accounts.list_by_resource_group(resource_group) if resource_group else accounts.list()
    return _arm(lambda: [item.as_dict() for item in pages])


def list_replication_policies(clients: AzureClients, account: ResourceId) -> list[dict[str, Any]]:
    """An account's object replication policies, in ARM's own JSON (as source and as destination)."""
    policies = clients.storage(account.subscription).object_replication_policies
    return _arm(lambda: [item.as_dict() for item in policies.list(account.resource_group, account.name)])


def list_subscriptions(clients: AzureClients) -> list[str]:
    """The IDs of the subscriptions the app's identity can see."""
    return _arm(lambda: [item.subscription_id.lower() for item in clients.subscriptions.subscriptions.list()])


def list_tenants(clients: AzureClients) -> set[str]:
    """The tenant IDs of the subscriptions the app's identity can see (Subscriptions - List's
    `tenantId`: https://learn.microsoft.com/rest/api/resources/subscriptions/list): its own."""
    return _arm(lambda: {str(item.tenant_id).lower() for item in clients.subscriptions.subscriptions.list()
                         if item.tenant_id})


def list_vaults(clients: AzureClients, subscription: str) -> list[dict[str, Any]]:
    """The key vaults of a subscription (Vaults - List By Subscription), in ARM's own JSON."""
    return list_at(clients, f"/subscriptions/{subscription}/providers/Microsoft.KeyVault/vaults",
                   API_VERSIONS[KEY_VAULT])


def list_policy_assignments(clients: AzureClients, subscription: str) -> list[dict[str, Any]]:
    """The policy assignments at the subscription, inherited from above it, and on everything
    in it (PolicyAssignments - List, unfiltered)."""
    return list_at(clients, f"/subscriptions/{subscription}/providers/Microsoft.Authorization/policyAssignments",
                   API_VERSIONS[POLICY_ASSIGNMENT])


def list_policy_exemptions(clients: AzureClients, subscription: str) -> list[dict[str, Any]]:
    """The policy exemptions at, above and below the subscription (PolicyExemptions - List)."""
    return list_at(clients, f"/subscriptions/{subscription}/providers/Microsoft.Authorization/policyExemptions",
                   API_VERSIONS[POLICY_EXEMPTION])


def list_diagnostic_settings(clients: AzureClients, resource_id: str) -> list[dict[str, Any]]:
    """The diagnostic settings of one resource (DiagnosticSettings - List)."""
    return list_at(clients, f"{resource_id}/providers/Microsoft.Insights/diagnosticSettings",
                   API_VERSIONS[DIAGNOSTIC_SETTING])


def list_nsgs(clients: AzureClients, subscription: str) -> Iterator[dict[str, Any]]:
    """A subscription's network security groups, page by page (each NSG holds all its rules:
    a few thousand of them are tens of MiB, never held at once)."""
    return _pages(clients.network(subscription).network_security_groups.list_all(), lambda item: item.as_dict())


def list_role_assignments(clients: AzureClients, scope: str) -> Iterator[dict[str, Any]]:
    """The role assignments at a scope, below it, and inherited from above it, in ARM's own
    JSON shape (an inherited one cannot be read again by ID from where the app's role is),
    page by page."""
    subscription = scope.split("/")[2]
    assignments = clients.authorization(subscription).role_assignments
    return _pages(assignments.list_for_scope(scope), lambda item: item.serialize(keep_readonly=True))


def _pages(pager: Iterable, as_sent: Callable[[Any], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """An SDK pager's items as ARM's JSON: its next page is asked for when the items before it
    have been used. ResourceGone on 404, as for a read."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        for item in pager:
            yield as_sent(item)
    except ResourceNotFoundError as error:
        raise ResourceGone(str(error.message or error)) from None


def write(clients: AzureClients, change: Write) -> str | None:
    """Send one containment write and wait for it to finish; the ETag it left on an NSG (the
    precondition of the plan's next write), else None. Where ARM answers with the resource,
    the answer is kept as a read of it (containment.adapters.reads): the read-back is that. ChangedConcurrently on a failed
    If-Match, Refused when ARM refuses it, OutcomeUnknown on a server error or a lost answer."""
    from azure.core.exceptions import HttpResponseError, ServiceResponseError

    target = parse_resource_id(change.resource_id)
    headers = {"If-Match": change.if_match} if change.if_match else {}
    # Whatever happens to it, what was read of it, or of the resource whose body holds it (an
    # NSG holds its rules, a vault its access policies), no longer stands.
    sent_at, answer = now(), None  # answer: the resource, where ARM answers a write with it
    clients.reads.forget(target.key, sent_at)
    if target.is_type(SECURITY_RULE) or target.is_type(VAULT_ACCESS_POLICY):
        clients.reads.forget(target.ancestor(1).key, sent_at)
    try:
        if change.method == "PATCH" and target.is_type(STORAGE_ACCOUNT):
            # Storage Accounts - Update and Blob Containers - Update answer 200 with the resource
            # as it now is (https://learn.microsoft.com/rest/api/storagerp/storage-accounts/update,
            # .../blob-containers/update): that answer is the read-back, no GET after it.
            answer = clients.storage(target.subscription).storage_accounts.update(
                target.resource_group, target.name, change.body, headers=headers, cls=_as_sent)
        elif change.method == "PATCH" and target.is_type(BLOB_CONTAINER):
            answer = clients.storage(target.subscription).blob_containers.update(
                target.resource_group, target.names[0], target.name, change.body, headers=headers, cls=_as_sent)
        elif change.method == "PUT" and target.is_type(SECURITY_RULE):
            # Long-running: result() polls Azure-AsyncOperation until Succeeded (or raises on Failed).
            written = clients.network(target.subscription).security_rules.begin_create_or_update(
                target.resource_group, target.names[0], target.name, change.body, headers=headers).result()
            return written.etag  # rules carry their NSG's ETag (recorded-arm/custodian-nsg.json)
        elif change.method == "POST" and change.operation == "revokeUserDelegationKeys" \
                and target.is_type(STORAGE_ACCOUNT):
            clients.storage(target.subscription).storage_accounts.revoke_user_delegation_keys(
                target.resource_group, target.name)
        elif change.method == "POST" and change.operation == "regenerateKey" and target.is_type(STORAGE_ACCOUNT):
            clients.storage(target.subscription).storage_accounts.regenerate_key(
                target.resource_group, target.name, change.body)
        elif change.method == "DELETE" and target.is_type(SECURITY_RULE):
            network = clients.network(target.subscription)
            network.security_rules.begin_delete(target.resource_group, target.names[0], target.name,
                                                headers=headers).result()
            return network.network_security_groups.get(target.resource_group, target.names[0]).etag
        elif change.method == "DELETE" and target.is_type(REPLICATION_POLICY):
            clients.storage(target.subscription).object_replication_policies.delete(
                target.resource_group, target.names[0], target.name)
        elif change.method == "PUT" and target.is_type(ROLE_ASSIGNMENT):
            clients.authorization(target.subscription).role_assignments.create_by_id(target.text, change.body)
        elif change.method == "DELETE" and target.is_type(ROLE_ASSIGNMENT):
            clients.authorization(target.subscription).role_assignments.delete_by_id(target.text)
        elif _api_version(target):
            refusal = refused_shape(clients, change, target)
            if refusal:
                raise ValueError(f"{change.method} {change.resource_id} refused before sending: {refusal}")
            # A vault's PATCH, a diagnostic setting's and a policy assignment's PUT answer with the
            # resource (Vaults - Update, Diagnostic Settings - Create Or Update, Policy Assignments -
            # Create); accessPolicies/remove answers with the access policies alone, not the vault.
            answered = rest(clients, change.method, target.text, _api_version(target), change.body, headers)
            answer = None if target.is_type(VAULT_ACCESS_POLICY) else answered
        else:
            raise ValueError(f"this app never sends {change.method} to a {target.type}")
    except ServiceResponseError as error:
        raise OutcomeUnknown(f"{change.method} {change.resource_id}: the answer was lost ({error})") from None
    except HttpResponseError as error:
        status, code = error.status_code, getattr(error.error, "code", None) if error.error else None
        if status == 412:
            raise ChangedConcurrently(f"{change.method} {change.resource_id}: {error.message}") from None
        if status == 404:
            raise ResourceGone(str(error.message or error)) from None
        if status is not None and status >= 500:
            raise OutcomeUnknown(f"{change.method} {change.resource_id}: HTTP {status} {error.message}") from None
        if status == 429 or code in _TRANSIENT:
            raise
        raise Refused(status, code, f"ARM refused {change.method} {change.resource_id}: HTTP {status} {code}: "
                                    f"{error.message}") from None
    if isinstance(answer, dict) and str(answer.get("id", "")).lower() == target.key:
        clients.reads.keep(target.key, json.dumps(answer), sent_at)  # what ARM holds, no older than the write
    elif change.method == "DELETE":
        # Gone by the app's own hand: the storm's later events about it need no 404 each. (A 404
        # read is never kept: a new role assignment can read as 404 for a while.)
        clients.reads.keep(target.key, None, sent_at)
    return None
