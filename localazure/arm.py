"""The Azure Resource Manager side of the local emulator: a stateful resource store and
the operations the app calls, at the API versions its pinned SDKs send.

Bodies are kept as ARM returns them (the shape of ../shared/recorded-arm and of the
x-ms-examples). Writes follow ARM: a storage PATCH replaces each property it names
(localazure/storage_validation.py), PUT replaces, DELETE removes, every write changes the
ETag, and `If-Match` is honoured with a 412. What ARM refuses is refused with its status and
code (nsg_validation.py, storage_validation.py).
"""
from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import uuid
from base64 import b64encode
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from localazure import guardrails, key_actions, key_vault, replication, storage_validation
from localazure.authorization import PRINCIPAL_TOKEN, assigned, authorize, default_principals
from localazure.nsg_validation import check_rules
from localazure.refusals import Refused
from localazure.throttling import Throttling

# The API version each resource provider family answers; anything else gets ARM's 400, so
# an SDK upgrade that changes the version shows up here and in the oav conformance test.
API_VERSIONS = {
    "": "2022-12-01",  # GET /subscriptions (Microsoft.Resources, no /providers/ segment)
    "microsoft.storage": "2026-09-01",
    "microsoft.network": "2026-03-01",
    "microsoft.authorization": "2022-04-01",
    # Types whose provider family answers other versions: the versions of the spec subsets
    # in localazure/specs (containment.adapters.arm.API_VERSIONS sends the same).
    guardrails.POLICY_ASSIGNMENT: "2025-03-01",
    guardrails.POLICY_EXEMPTION: "2024-12-01-preview",
    guardrails.DIAGNOSTIC_SETTING: "2021-05-01-preview",
    "microsoft.keyvault": "2024-11-01",  # containment.adapters.arm.API_VERSIONS; localazure/specs
}

STORAGE_ACCOUNT = "microsoft.storage/storageaccounts"
CONTAINER = "microsoft.storage/storageaccounts/blobservices/containers"
NSG = "microsoft.network/networksecuritygroups"
SECURITY_RULE = "microsoft.network/networksecuritygroups/securityrules"
ROLE_ASSIGNMENT = "microsoft.authorization/roleassignments"
ROLE_DEFINITION = "microsoft.authorization/roledefinitions"
REPLICATION_POLICY = "microsoft.storage/storageaccounts/objectreplicationpolicies"
KEY_VAULT = "microsoft.keyvault/vaults"
VAULT_KEY = "microsoft.keyvault/vaults/keys"
VAULT_ACCESS_POLICY = "microsoft.keyvault/vaults/accesspolicies"  # an operation on the vault, not a resource
SEEDABLE_TYPES = {STORAGE_ACCOUNT, CONTAINER, NSG, ROLE_ASSIGNMENT, ROLE_DEFINITION, REPLICATION_POLICY,
                  KEY_VAULT, VAULT_KEY, *guardrails.TYPES}

# IDs and permissions as Microsoft publishes them (the Key Vault roles: https://learn.microsoft.com/azure/
# role-based-access-control/built-in-roles/security); createdOn/updatedOn are placeholders.
BUILTIN_ROLES_FILE = Path(__file__).with_name("builtin_roles.json")
# An operation nobody polls is done after this long (a caller that does not wait for it).
_OPERATION_SECONDS = 2.0


class ArmError(Exception):
    """An ARM error answer: status, code and message, in ARM's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 details: list[dict] | None = None, flat: bool = False):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers, self.details, self.flat = headers or {}, details, flat

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.flat:  # the Insights RP's ErrorResponse: code and message at the top level
            return error
        return {"error": {**error, "details": self.details} if self.details else error}


@dataclass
class Operation:
    """A long-running network operation on one NSG. ARM answers the write at once with the
    resource in `Updating` and an Azure-AsyncOperation URL; the status reads `InProgress`
    until the work is done, then `Succeeded`, and the resource shows `Succeeded`
    (https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations).
    Here the work is done after `polls` status reads, or after `seconds` whoever polls."""

    nsg_key: str
    polls: int
    deadline: float
    status: str = "InProgress"


class SeedError(ValueError):
    """A resource body that cannot be seeded; the message names where it came from."""


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def resource_type(resource_id: str) -> str:
    """`microsoft.storage/storageaccounts/blobservices/containers` from a full ARM ID.

    Types come from the last `/providers/` segment, so extension resources (role
    assignments at any scope) are typed by their own provider. Lower case throughout.
    """
    parts = resource_id.strip("/").lower().split("/")
    if "providers" not in parts:
        raise SeedError(f"{resource_id!r} is not an ARM resource ID (no /providers/ segment)")
    start = len(parts) - 1 - parts[::-1].index("providers")
    rest = parts[start + 1:]
    if len(rest) < 3 or len(rest) % 2 == 0:
        raise SeedError(f"{resource_id!r} is not an ARM resource ID (type and name segments do not pair)")
    return "/".join([rest[0]] + rest[1::2])


def _key(resource_id: str) -> str:
    return "/" + resource_id.strip("/").lower()


def _parent(key: str) -> str:
    return key.rsplit("/", 1)[0]


def _new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _subscription_of(key: str) -> str:
    parts = key.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "subscriptions" else ""


class ArmState:
    """Every resource the emulator knows, keyed by lower-cased ID."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        # The emulator's clock (a scenario step's time in replay) stamps what ARM stamps.
        self.clock = clock
        self._lock = threading.RLock()
        self.resources: dict[str, dict] = {}
        self.etags: dict[str, str] = {}
        self.keys: dict[str, list[dict]] = {}  # storage account key -> listKeys entries
        self.user_delegation_keys_revoked: dict[str, str] = {}  # account key -> when
        # The ResourceActionSuccess events of the POST actions that succeeded, in order, as the
        # subscription system topic publishes them (localazure/key_actions.py): a test takes
        # them and delivers them (functions_host.deliver_event). Writes raise no event here.
        self.action_events: list[dict] = []
        self.operations: dict[str, Operation] = {}  # async operation id -> the operation
        # Status reads an operation answers InProgress before it is done (0: done at once).
        self.lro_polls = 1
        # A new role assignment is not readable at once: Azure RBAC replicates it (Microsoft's
        # RBAC troubleshooting: changes can take up to 10 minutes to take effect); reads and
        # lists miss it until `visible_after` (monotonic seconds). How long reads miss a new
        # assignment in Azure is unverified; `assignment_delay` seconds after each PUT here.
        self.assignment_delay = 0.0
        self.visible_after: dict[str, float] = {}
        # Subscriptions a caller sees listed: those it holds a role in. The emulator lists every
        # subscription its resources name (the app's role is assigned in each watched one), or
        # only these where a test sets them.
        self.listed_subscriptions: set[str] | None = None
        # ARM's token buckets (localazure/throttling.py); None: no throttling of its own.
        self.throttling: Throttling | None = None
        # Bearer token -> principal and the operations its roles grant (localazure/authorization.py).
        self.principals = default_principals()
        self.builtin_roles = {
            role["name"].lower(): role for role in json.loads(BUILTIN_ROLES_FILE.read_text())
        }

    # -- seeding -------------------------------------------------------------------
    def seed(self, bodies: list[dict], origin: str = "resources") -> None:
        """Load ARM bodies: single resources or list answers (`{"value": [...]}`)."""
        for index, body in enumerate(bodies):
            where = f"{origin}[{index}]"
            if isinstance(body, dict) and isinstance(body.get("value"), list) and "id" not in body:
                self.seed(body["value"], f"{where}.value")
                continue
            self._seed_one(body, where)

    def _seed_one(self, body: Any, where: str) -> None:
        if not isinstance(body, dict):
            raise SeedError(f"{where}: a resource must be a JSON object, got {type(body).__name__}")
        resource_id = body.get("id")
        if not isinstance(resource_id, str) or not resource_id.startswith("/"):
            raise SeedError(f"{where}.id: a resource needs its full ARM ID, got {resource_id!r}")
        try:
            kind = resource_type(resource_id)
        except SeedError as error:
            raise SeedError(f"{where}.id: {error}") from None
        declared = body.get("type")
        if not isinstance(declared, str) or declared.lower() != kind:
            raise SeedError(f"{where}.type: {declared!r} does not match the type of its ID ({kind})")
        if kind not in SEEDABLE_TYPES:
            raise SeedError(f"{where}.type: the emulator does not serve {declared}")
        key = _key(resource_id)
        with self._lock:
            self.resources[key] = copy.deepcopy(body)
            self.etags[key] = body.get("etag") or _new_etag()
            if kind == STORAGE_ACCOUNT:
                self.keys[key] = [self._new_key("key1"), self._new_key("key2")]

    # -- reading -------------------------------------------------------------------
    def get(self, resource_id: str) -> dict | None:
        with self._lock:
            body = self.resources.get(_key(resource_id))
            return copy.deepcopy(body) if body is not None else None

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {body["id"]: copy.deepcopy(body) for body in self.resources.values()}

    def _require(self, key: str, kind: str, not_found: Callable[[], ArmError]) -> dict:
        body = self.resources.get(key)
        if body is None or resource_type(key) != kind:
            raise not_found()
        return body

    def _check_if_match(self, key: str, headers: dict[str, str]) -> None:
        wanted = headers.get("if-match")
        if wanted and wanted != "*" and wanted != self.etags.get(key):
            raise ArmError(
                412, "PreconditionFailed",
                "The condition specified using HTTP conditional header(s) is not met.",
            )

    def reported_deleted(self, resource_id: str) -> None:
        """A ResourceDeleteSuccess reports a deletion ARM has carried out: in a replay, the
        resource is gone by the time its event is delivered."""
        with self._lock:
            key = _key(resource_id)
            if self.resources.pop(key, None) is not None:
                self.etags.pop(key, None)

    def concurrent_write(self, path: str) -> None:
        """Someone else writes the resource (or the NSG holding a rule): its ETag moves on."""
        with self._lock:
            key = _key(path)
            while key.count("/") > 2 and key not in self.resources:
                key = _parent(key)
            if key in self.resources:
                self._touch(key)
                if resource_type(key) == NSG:
                    self._stamp_nsg(key)

    def _touch(self, key: str) -> str:
        etag = self.etags[key] = _new_etag()
        if "etag" in self.resources[key]:  # containers and NSGs carry theirs in the body too
            self.resources[key]["etag"] = etag
        return etag

    def _new_key(self, name: str) -> dict:
        return {
            "keyName": name,
            "value": b64encode(secrets.token_bytes(64)).decode(),
            "permissions": "Full",
            "creationTime": _timestamp(self.clock()),
        }

    # -- routing -------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any, client_address: str | None = None) -> Answer:
        path = "/" + path.strip("/")
        lower = path.lower()
        for pattern, methods in _ROUTES:
            match = pattern.match(lower)
            if match is None:
                continue
            route = methods.get(method)
            if route is None:
                raise ArmError(405, "MethodNotAllowed", f"The requested method {method} is not allowed on {path}.")
            handler, operation = route
            if "api-version" not in query:
                raise ArmError(400, "MissingApiVersionParameter",
                               "The api-version query parameter (?api-version=) is required for all requests.")
            provider = _provider_of(lower)
            expected = API_VERSIONS.get(_type_family(lower)) or API_VERSIONS.get(provider)
            if expected is not None and query["api-version"] != expected:
                raise ArmError(
                    400, "InvalidApiVersionParameter",
                    f"The api-version '{query['api-version']}' is invalid. The emulator serves "
                    f"{provider or 'subscriptions'} at '{expected}' only (the version the pinned SDK sends).",
                )
            token = headers.get("authorization", "")[len("bearer "):].strip()
            scope = _parent(path) if operation and operation.endswith("/action") else path
            principals = self.principals
            if token.startswith(PRINCIPAL_TOKEN) and operation is not None:
                principals = {token: self._assigned_principal(token[len(PRINCIPAL_TOKEN):], scope)}
            _refusing(authorize, principals, token, operation, scope)
            with self._lock:
                remaining = None if self.throttling is None else _refusing(
                    self.throttling.take, _subscription_of(lower), method)
                # What is left is said on every answer to a request that spent a token, a refusal too.
                said = {} if remaining is None else {f"x-ms-ratelimit-remaining-subscription-{remaining[0]}":
                                                     str(remaining[1])}
                try:
                    answer = handler(self, path, match, query, headers, body)
                except ArmError as error:
                    error.headers = {**said, **error.headers}
                    raise
                if operation is not None and operation.endswith("/action") and answer.status < 300:
                    self.action_events.append(key_actions.action_event(
                        path, operation, query, headers, _timestamp(self.clock()),
                        self._caller(token, scope, operation), client_address))
            answer.headers.update(said)
            return answer
        raise ArmError(404, "NoRegisteredProviderFound" if "/providers/" in lower else "InvalidResourceType",
                       f"The emulator has no operation for {method} {path}.")

    # -- subscriptions ---------------------------------------------------------------
    def list_subscriptions(self, path, match, query, headers, body) -> Answer:
        """GET /subscriptions: the ones the caller can see (no RBAC action is needed to list
        them: https://learn.microsoft.com/rest/api/resources/subscriptions/list)."""
        known = {_subscription_of(key) for key in self.resources} - {""}
        listed = sorted(known if self.listed_subscriptions is None else self.listed_subscriptions)
        return Answer(200, {"value": [
            {"id": f"/subscriptions/{sid}", "subscriptionId": sid, "displayName": f"subscription {sid[:8]}",
             "state": "Enabled", "tenantId": key_actions.TENANT_ID} for sid in listed]})

    # -- storage accounts ----------------------------------------------------------
    def _account_not_found(self, path: str) -> Callable[[], ArmError]:
        name = path.rstrip("/").split("/")[-1]
        return lambda: ArmError(
            404, "ResourceNotFound",
            f"The Resource 'Microsoft.Storage/storageAccounts/{name}' was not found.",
        )

    def get_account(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        account = self._require(key, STORAGE_ACCOUNT, self._account_not_found(path))
        return Answer(200, copy.deepcopy(account), {"ETag": self.etags[key]})

    def patch_account(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        account = self._require(key, STORAGE_ACCOUNT, self._account_not_found(path))
        self._check_if_match(key, headers)
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content is not a JSON object.")
        _refusing(replication.refuse_account_patch, account, body, self._list(key + "/objectreplicationpolicies",
                                                                              REPLICATION_POLICY), self._in_tenant)
        _refusing(storage_validation.patch_account, account, body)
        return Answer(200, copy.deepcopy(account), {"ETag": self._touch(key)})

    def list_accounts(self, path, match, query, headers, body) -> Answer:
        return Answer(200, {"value": self._list(_key(path), STORAGE_ACCOUNT)})

    def list_keys(self, path, match, query, headers, body) -> Answer:
        key = _parent(_key(path))
        self._require(key, STORAGE_ACCOUNT, self._account_not_found(_parent(path)))
        return Answer(200, {"keys": copy.deepcopy(self.keys[key])})

    def list_account_sas(self, path, match, query, headers, body) -> Answer:
        key = _parent(_key(path))
        self._require(key, STORAGE_ACCOUNT, self._account_not_found(_parent(path)))
        return Answer(200, _refusing_sas(key_actions.account_sas, key.rsplit("/", 1)[1], body, self.keys[key]))

    def list_service_sas(self, path, match, query, headers, body) -> Answer:
        key = _parent(_key(path))
        self._require(key, STORAGE_ACCOUNT, self._account_not_found(_parent(path)))
        return Answer(200, _refusing_sas(key_actions.service_sas, body, self.keys[key]))

    def regenerate_key(self, path, match, query, headers, body) -> Answer:
        key = _parent(_key(path))
        account = self._require(key, STORAGE_ACCOUNT, self._account_not_found(_parent(path)))
        name = body.get("keyName") if isinstance(body, dict) else None
        names = [entry["keyName"] for entry in self.keys[key]]
        if name not in names:
            raise ArmError(400, "InvalidValuesForRequestParameters",
                           f"Values for request parameters are invalid: keyName (got {name!r}, expected one of {names}).")
        fresh = self._new_key(name)
        self.keys[key] = [fresh if entry["keyName"] == name else entry for entry in self.keys[key]]
        times = account.setdefault("properties", {}).setdefault("keyCreationTime", {})
        times[name] = fresh["creationTime"]
        self._touch(key)
        return Answer(200, {"keys": copy.deepcopy(self.keys[key])})

    def revoke_user_delegation_keys(self, path, match, query, headers, body) -> Answer:
        key = _parent(_key(path))
        self._require(key, STORAGE_ACCOUNT, self._account_not_found(_parent(path)))
        self.user_delegation_keys_revoked[key] = _timestamp(self.clock())
        return Answer(200)

    # -- object replication policies (localazure/replication.py names each source) ----------
    def _in_tenant(self, subscription: str) -> bool:
        """The emulator serves one tenant: the subscriptions its resources are in."""
        prefix = f"/subscriptions/{subscription.lower()}/"
        return any(key.startswith(prefix) for key in self.resources)

    @staticmethod
    def _policy_not_found(path: str) -> Callable[[], ArmError]:
        return lambda: ArmError(404, "ResourceNotFound",  # unverified code
                                f"The object replication policy '{path.rsplit('/', 1)[-1]}' was not found.")

    def list_replication_policies(self, path, match, query, headers, body) -> Answer:
        account = _parent(_key(path))
        self._require(account, STORAGE_ACCOUNT, self._account_not_found(_parent(path)))
        return Answer(200, {"value": self._list(_key(path), REPLICATION_POLICY)})

    def get_replication_policy(self, path, match, query, headers, body) -> Answer:
        self._require(_parent(_parent(_key(path))), STORAGE_ACCOUNT, self._account_not_found(_parent(_parent(path))))
        return Answer(200, copy.deepcopy(self._require(_key(path), REPLICATION_POLICY, self._policy_not_found(path))))

    def put_replication_policy(self, path, match, query, headers, body) -> Answer:
        account_key = _parent(_parent(_key(path)))
        account = self._require(account_key, STORAGE_ACCOUNT, self._account_not_found(_parent(_parent(path))))
        existing = self.resources.get(_key(path))
        policy = _refusing(replication.put_policy, account, path.rsplit("/", 1)[1], body, existing,
                           _timestamp(self.clock()), self.get, self.get, self._in_tenant)
        key = _key(policy["id"])
        self.resources[key] = policy
        self.etags[key] = _new_etag()
        return Answer(200, copy.deepcopy(policy))

    def delete_replication_policy(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        if resource_type(key) != REPLICATION_POLICY or self.resources.pop(key, None) is None:
            return Answer(204)
        self.etags.pop(key, None)
        return Answer(200)

    # -- key vaults (localazure/key_vault.py names each source) ----------------------
    @staticmethod
    def _vault_not_found(path: str) -> Callable[[], ArmError]:
        parts = path.strip("/").split("/")
        name, group = parts[7] if len(parts) > 7 else path, parts[3] if len(parts) > 3 else ""
        # ARM's generic not-found answer for a resource (unverified: Key Vault's own wording).
        return lambda: ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.KeyVault/vaults/{name}' under "
                                                         f"resource group '{group}' was not found.")

    def _vault(self, path: str) -> tuple[str, dict]:
        key = "/".join(_key(path).split("/")[:9])  # /subscriptions/s/resourcegroups/g/providers/ns/vaults/v
        return key, self._require(key, KEY_VAULT, self._vault_not_found(path))

    def get_vault(self, path, match, query, headers, body) -> Answer:
        _, vault = self._vault(path)
        return Answer(200, copy.deepcopy(vault))

    def list_vaults(self, path, match, query, headers, body) -> Answer:
        return Answer(200, {"value": self._list(_key(path), KEY_VAULT)})

    def put_vault(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        existing = self.resources.get(key)
        vault = _refusing(key_vault.put_vault, path, body, existing)
        self.resources[key] = vault
        self.etags[key] = _new_etag()
        return Answer(200 if existing else 201, copy.deepcopy(vault))

    def patch_vault(self, path, match, query, headers, body) -> Answer:
        key, vault = self._vault(path)
        candidate = copy.deepcopy(vault)
        _refusing(key_vault.patch_vault, candidate, body)
        self.resources[key] = candidate
        self._touch(key)
        return Answer(200, copy.deepcopy(candidate))

    def update_access_policies(self, path, match, query, headers, body) -> Answer:
        key, vault = self._vault(path)
        candidate = copy.deepcopy(vault)
        answer = _refusing(key_vault.update_access_policies, candidate, path.rsplit("/", 1)[1].lower(), body)
        self.resources[key] = candidate
        self._touch(key)
        return Answer(200, answer)

    def list_vault_keys(self, path, match, query, headers, body) -> Answer:
        key, _ = self._vault(path)
        return Answer(200, {"value": self._list(key + "/keys", VAULT_KEY)})

    def get_vault_key(self, path, match, query, headers, body) -> Answer:
        self._vault(path)
        name = path.rsplit("/", 1)[1]
        return Answer(200, copy.deepcopy(self._require(_key(path), VAULT_KEY, lambda: ArmError(
            404, "ResourceNotFound", f"The key '{name}' was not found in the vault."))))  # unverified wording

    # -- blob containers -----------------------------------------------------------
    @staticmethod
    def _container_not_found() -> ArmError:
        return ArmError(404, "ContainerNotFound", "The specified container does not exist.")

    def list_containers(self, path, match, query, headers, body) -> Answer:
        account = _key(path).split("/blobservices/")[0]
        self._require(account, STORAGE_ACCOUNT, self._account_not_found(account))
        return Answer(200, {"value": self._list(_key(path), CONTAINER)})

    def get_container(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        container = self._require(key, CONTAINER, self._container_not_found)
        return Answer(200, copy.deepcopy(container), {"ETag": self.etags[key]})

    def patch_container(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        container = self._require(key, CONTAINER, self._container_not_found)
        self._check_if_match(key, headers)
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content is not a JSON object.")
        account = self.resources.get(key.split("/blobservices/")[0], {})
        _refusing(storage_validation.patch_container, container, account, body)
        etag = self._touch(key)
        return Answer(200, copy.deepcopy(container), {"ETag": etag})

    # -- network security groups -----------------------------------------------------
    @staticmethod
    def _nsg_not_found(path: str) -> Callable[[], ArmError]:
        segments = path.strip("/").split("/")
        name = segments[7] if len(segments) > 7 else path
        return lambda: ArmError(
            404, "ResourceNotFound", f"The Resource 'Microsoft.Network/networkSecurityGroups/{name}' was not found.",
        )

    def get_nsg(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        nsg = self._require(key, NSG, self._nsg_not_found(path))
        return Answer(200, copy.deepcopy(nsg), {"ETag": self.etags[key]})

    def list_nsgs(self, path, match, query, headers, body) -> Answer:
        return Answer(200, {"value": self._list(_key(path), NSG)})

    def put_nsg(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        existing = self.resources.get(key)
        self._check_if_match(key, headers)
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content is not a JSON object.")
        nsg_id = existing["id"] if existing else path
        properties = copy.deepcopy(body.get("properties") or {})
        rules = properties.get("securityRules") or []
        self._validate_rules(rules, nsg_id)
        nsg = {
            "id": nsg_id,
            "name": nsg_id.rsplit("/", 1)[1],
            "type": "Microsoft.Network/networkSecurityGroups",
            "location": body.get("location") or (existing or {}).get("location"),
            "properties": properties,
        }
        if body.get("tags") is not None:
            nsg["tags"] = copy.deepcopy(body["tags"])
        previous = (existing or {}).get("properties", {})
        properties["securityRules"] = [self._rule_body(nsg_id, rule) for rule in rules]
        properties["defaultSecurityRules"] = previous.get("defaultSecurityRules") or default_rules(nsg_id)
        properties["resourceGuid"] = previous.get("resourceGuid") or str(uuid.uuid4())
        self._refuse_while_updating(key)
        self.resources[key] = nsg
        self.etags[key] = _new_etag()  # before _stamp_nsg, which spreads it to the rules
        self._stamp_nsg(key)
        return self._accepted(key, 200 if existing else 201, nsg, location_header=False)

    def list_rules(self, path, match, query, headers, body) -> Answer:
        nsg_key = _parent(_key(path))
        nsg = self._require(nsg_key, NSG, self._nsg_not_found(path))
        return Answer(200, {"value": copy.deepcopy(nsg["properties"].get("securityRules", []))})

    def _find_rule(self, path: str) -> tuple[str, dict, int | None]:
        nsg_key = _parent(_parent(_key(path)))
        nsg = self._require(nsg_key, NSG, self._nsg_not_found(path))
        name = path.rsplit("/", 1)[1].lower()
        rules = nsg["properties"].setdefault("securityRules", [])
        for index, rule in enumerate(rules):
            if rule.get("name", "").lower() == name:
                return nsg_key, nsg, index
        return nsg_key, nsg, None

    def get_rule(self, path, match, query, headers, body) -> Answer:
        nsg_key, nsg, index = self._find_rule(path)
        if index is None:
            raise ArmError(404, "NotFound", f"Resource {path} not found.")
        rule = nsg["properties"]["securityRules"][index]
        return Answer(200, copy.deepcopy(rule), {"ETag": rule.get("etag", "")})

    def put_rule(self, path, match, query, headers, body) -> Answer:
        nsg_key, nsg, index = self._find_rule(path)
        rules = nsg["properties"]["securityRules"]
        # Rules carry their NSG's ETag, so a new rule's If-Match is checked against it too.
        self._check_if_match(nsg_key, headers)
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content is not a JSON object.")
        rule = self._rule_body(nsg["id"], {**body, "name": path.rsplit("/", 1)[1]})
        candidate = [r for i, r in enumerate(rules) if i != index] + [rule]
        self._validate_rules(candidate, nsg["id"])
        self._refuse_while_updating(nsg_key)
        if index is None:
            rules.append(rule)
        else:
            rules[index] = rule
        self.etags[nsg_key] = _new_etag()
        self._stamp_nsg(nsg_key)
        return self._accepted(nsg_key, 200 if index is not None else 201, rule, location_header=False)

    def delete_rule(self, path, match, query, headers, body) -> Answer:
        nsg_key, nsg, index = self._find_rule(path)
        if index is None:
            return Answer(204)
        self._refuse_while_updating(nsg_key)
        del nsg["properties"]["securityRules"][index]
        self.etags[nsg_key] = _new_etag()
        self._stamp_nsg(nsg_key)
        return self._accepted(nsg_key, 202, None, location_header=True)

    def _rule_body(self, nsg_id: str, rule: dict) -> dict:
        name = rule.get("name")
        if not isinstance(name, str) or not name:
            raise ArmError(400, "InvalidRequestFormat", "Every security rule needs a name.")
        properties = copy.deepcopy(rule.get("properties") or {})
        properties["provisioningState"] = "Succeeded"  # until an operation marks it Updating
        return {
            "name": name,
            "id": f"{nsg_id}/securityRules/{name}",
            "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "properties": properties,
        }

    def _stamp_nsg(self, nsg_key: str) -> None:
        """An NSG and its rules share one ETag that changes with any write, as in Azure."""
        nsg = self.resources[nsg_key]
        etag = self.etags[nsg_key]
        nsg["etag"] = etag
        for rule in nsg["properties"].get("securityRules", []) + nsg["properties"].get("defaultSecurityRules", []):
            rule["etag"] = etag

    @staticmethod
    def _validate_rules(rules: list[dict], nsg_id: str) -> None:
        """ARM's refusals of security rules (localazure/nsg_validation.py names each source)."""
        _refusing(check_rules, rules, nsg_id)

    def _accepted(self, nsg_key: str, status: int, body: dict | None, *, location_header: bool) -> Answer:
        """A long-running network operation: the NSG (and the rule written) read `Updating`
        until the operation is done; the answer carries the Azure-AsyncOperation URL to poll."""
        operation = str(uuid.uuid4())
        self.operations[operation] = Operation(nsg_key, self.lro_polls, time.monotonic() + _OPERATION_SECONDS)
        if self.lro_polls:
            self._provisioning(nsg_key, "Updating", body)
        subscription = _subscription_of(nsg_key)
        base = f"/subscriptions/{subscription}/providers/Microsoft.Network/locations/local"
        version = API_VERSIONS["microsoft.network"]
        headers = {"Azure-AsyncOperation": f"{{base}}{base}/operations/{operation}?api-version={version}",
                   "Retry-After": "0"}
        if location_header:
            headers["Location"] = f"{{base}}{base}/operationResults/{operation}?api-version={version}"
        return Answer(status, copy.deepcopy(body), headers)

    def _provisioning(self, nsg_key: str, state: str, written: dict | None = None) -> None:
        nsg = self.resources.get(nsg_key)
        if nsg is None:
            return
        nsg["properties"]["provisioningState"] = state
        names = {str((written or {}).get("name", "")).lower()} if state == "Updating" else None
        for rule in nsg["properties"].get("securityRules", []):
            if names is None or rule.get("name", "").lower() in names:
                rule["properties"]["provisioningState"] = state
        if written is not None:
            written.setdefault("properties", {})["provisioningState"] = state

    def _running(self, nsg_key: str) -> Operation | None:
        """The operation still in progress on an NSG; one past its deadline is done."""
        for operation in self.operations.values():
            if operation.nsg_key == nsg_key and operation.status == "InProgress":
                if time.monotonic() < operation.deadline:
                    return operation
                self._finish(operation)
        return None

    def _finish(self, operation: Operation) -> None:
        operation.status = "Succeeded"
        if not any(o.nsg_key == operation.nsg_key and o.status == "InProgress" for o in self.operations.values()):
            self._provisioning(operation.nsg_key, "Succeeded")

    def _refuse_while_updating(self, nsg_key: str) -> None:
        """A write to an NSG while an operation on it runs is refused, to be retried: 429
        RetryableError, detail RetryableErrorDueToAnotherOperation (Azure/azure-sdk-for-python#556;
        AnotherOperationInProgress is reported too, e.g. microsoft/AzureTRE#2222: unverified which)."""
        running = self._running(nsg_key)
        if running is not None:
            raise ArmError(429, "RetryableError", "A retryable error occured.", headers={"Retry-After": "1"},
                           details=[{"code": "RetryableErrorDueToAnotherOperation",
                                     "message": f"Operation PutSecurityRuleOperation is updating resource {nsg_key}. "
                                                "The call can be retried in 1 seconds."}])

    def get_operation(self, path, match, query, headers, body) -> Answer:
        operation_id = path.rsplit("/", 1)[1]
        operation = self.operations.get(operation_id)
        if operation is None:
            raise ArmError(404, "NotFound", f"Operation {operation_id} not found.")
        if operation.status == "InProgress":
            if operation.polls > 0 and time.monotonic() < operation.deadline:
                operation.polls -= 1
                return Answer(200, {"status": "InProgress"}, {"Retry-After": "0"})
            self._finish(operation)
        return Answer(200, {"status": operation.status})

    def get_operation_result(self, path, match, query, headers, body) -> Answer:
        return Answer(204)

    # -- role assignments and definitions ---------------------------------------------
    @staticmethod
    def _assignment_not_found() -> ArmError:
        return ArmError(404, "RoleAssignmentNotFound", "The role assignment does not exist.")

    def _assigned_principal(self, object_id: str, scope: str):
        """What the role assignments in this state give a principal at a scope: those at the
        scope or above it (RBAC inheritance), their role definitions' permission blocks."""
        return assigned(object_id, [definition for _, definition in self._assignments(object_id, scope)])

    def _caller(self, token: str, scope: str, operation: str) -> dict[str, str]:
        """Who performed an operation, as an event's authorization.evidence names them: the
        principal, and the role assignment that granted it where one did (the first, in ID order)."""
        if not token.startswith(PRINCIPAL_TOKEN):
            principal = self.principals[token]
            return {"principalId": principal.object_id, "principalType": principal.principal_type}
        object_id = token[len(PRINCIPAL_TOKEN):]
        for assignment, definition in self._assignments(object_id, scope):
            if assigned(object_id, [definition]).may(operation):
                properties = assignment.get("properties") or {}
                return {"role": (definition.get("properties") or {}).get("roleName") or "",
                        "roleAssignmentScope": properties.get("scope") or "",
                        "roleAssignmentId": str(assignment.get("name") or ""),
                        "roleDefinitionId": str(definition.get("name") or ""),
                        "principalId": object_id, "principalType": properties.get("principalType") or "User"}
        return {"principalId": object_id, "principalType": "User"}

    def _assignments(self, object_id: str, scope: str) -> list[tuple[dict, dict]]:
        """The principal's visible role assignments at the scope or above it, each with its role definition."""
        target = _key(scope)
        found = []
        with self._lock:
            for key, assignment in list(self.resources.items()):
                if resource_type(key) != ROLE_ASSIGNMENT or not self._visible(key):
                    continue
                properties = assignment.get("properties") or {}
                if str(properties.get("principalId", "")).lower() != object_id.lower():
                    continue
                own = _key(properties.get("scope") or "/")
                if not (target == own or target.startswith(own.rstrip("/") + "/")):
                    continue
                role = str(properties.get("roleDefinitionId", ""))
                name = role.rsplit("/", 1)[-1].lower()
                custom = next((body for k, body in self.resources.items()
                               if resource_type(k) == ROLE_DEFINITION and k.rsplit("/", 1)[1] == name), None)
                definition = custom or self.builtin_roles.get(name)
                if definition is not None:
                    found.append((assignment, definition))
        return sorted(found, key=lambda pair: str(pair[0].get("id", "")).lower())

    def hide_assignment(self, resource_id: str, seconds: float) -> None:
        """Make an assignment unreadable for a while, as one not yet replicated."""
        self.visible_after[_key(resource_id)] = time.monotonic() + seconds

    def _visible(self, key: str) -> bool:
        return time.monotonic() >= self.visible_after.get(key, 0.0)

    def get_assignment(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        if not self._visible(key):
            raise self._assignment_not_found()
        assignment = self._require(key, ROLE_ASSIGNMENT, self._assignment_not_found)
        return Answer(200, copy.deepcopy(assignment))

    def delete_assignment(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        if key not in self.resources:
            return Answer(204)
        assignment = self.resources.pop(key)
        self.etags.pop(key, None)
        return Answer(200, assignment)

    def put_assignment(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        properties = (body or {}).get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict) or not properties.get("roleDefinitionId") or not properties.get("principalId"):
            raise ArmError(400, "InvalidRoleAssignmentRequest",
                           "A role assignment needs properties.roleDefinitionId and properties.principalId.")
        scope = path[: path.lower().rindex("/providers/microsoft.authorization/roleassignments/")] or "/"
        existing = self.resources.get(key)
        if existing is not None:
            same = (existing["properties"]["principalId"], existing["properties"]["roleDefinitionId"].lower())
            if same != (properties["principalId"], properties["roleDefinitionId"].lower()):
                raise ArmError(409, "RoleAssignmentUpdateNotPermitted",
                               "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
            return Answer(201, copy.deepcopy(existing))
        now = _timestamp(self.clock())
        assignment = {
            "id": path,
            "name": path.rsplit("/", 1)[1],
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "scope": scope,
                "principalType": "User",
                "createdOn": now,
                "updatedOn": now,
                **copy.deepcopy(properties),
            },
        }
        self.resources[key] = assignment
        self.etags[key] = _new_etag()
        if self.assignment_delay:
            self.hide_assignment(path, self.assignment_delay)
        return Answer(201, copy.deepcopy(assignment))

    def list_assignments(self, path, match, query, headers, body) -> Answer:
        scope = _key(match.group("scope") or "/")
        wanted = query.get("$filter", "")
        at_scope_only = "atscope()" in wanted.lower()
        principal = re.search(r"(?:principalId\s+eq\s+|assignedTo\()'([^']+)'", wanted, re.IGNORECASE)
        found = []
        for key, assignment in self.resources.items():
            if resource_type(key) != ROLE_ASSIGNMENT or not self._visible(key):
                continue
            own = _key(assignment["properties"].get("scope") or "/")
            # A list at a scope holds what is assigned at, above (inherited: the root and the
            # management groups over it) and below it; atScope() keeps at and above
            # (https://learn.microsoft.com/rest/api/authorization/role-assignments/list-for-scope).
            # The emulator keeps one hierarchy: every management group is above every
            # subscription (unverified for a tenant with several branches).
            management_group = own.startswith("/providers/microsoft.management/managementgroups/")
            above = scope == own or scope.startswith(own.rstrip("/") + "/") or (
                management_group and scope.startswith("/subscriptions/"))
            below = own.startswith(scope.rstrip("/") + "/")
            if not (above or (below and not at_scope_only)):
                continue
            if principal and assignment["properties"].get("principalId", "").lower() != principal.group(1).lower():
                continue
            found.append(copy.deepcopy(assignment))
        return Answer(200, {"value": found})

    def get_role_definition(self, path, match, query, headers, body) -> Answer:
        key = _key(path)
        custom = self.resources.get(key)
        if custom is None:  # custom roles may be read at any scope they are assignable at
            name = key.rsplit("/", 1)[1]
            custom = next((b for k, b in self.resources.items()
                           if resource_type(k) == ROLE_DEFINITION and k.rsplit("/", 1)[1] == name), None)
        if custom is not None:
            return Answer(200, copy.deepcopy(custom))
        builtin = self.builtin_roles.get(key.rsplit("/", 1)[1])
        if builtin is None:
            raise ArmError(404, "RoleDefinitionDoesNotExist", "The specified role definition with ID "
                           f"'{path.rsplit('/', 1)[1]}' does not exist.")
        scope = match.group("scope") or ""
        return Answer(200, {**copy.deepcopy(builtin),
                            "id": f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{builtin['name']}"})

    # -- guardrails: policy assignments, exemptions, diagnostic settings (localazure/guardrails.py) --
    def _of_type(self, kind: str) -> dict[str, dict]:
        return {key: body for key, body in self.resources.items() if resource_type(key) == kind}

    @staticmethod
    def _guardrail_refusal(kind: str, refused: Refused) -> ArmError:
        return ArmError(refused.status, refused.code, refused.message, flat=kind == guardrails.DIAGNOSTIC_SETTING)

    def get_guardrail(self, path, match, query, headers, body) -> Answer:
        kind = resource_type(path)
        found = self.resources.get(_key(path))
        if found is None:
            raise self._guardrail_refusal(kind, guardrails.not_found(kind, path))
        return Answer(200, copy.deepcopy(found))

    def put_guardrail(self, path, match, query, headers, body) -> Answer:
        kind, key = resource_type(path), _key(path)
        existing = self.resources.get(key)
        try:
            if kind == guardrails.POLICY_ASSIGNMENT:
                status, written = guardrails.put_policy_assignment(path, body, existing)
            elif kind == guardrails.POLICY_EXEMPTION:
                status, written = guardrails.put_policy_exemption(path, body, existing, self.get)
            else:
                self._require_scope(guardrails.scope_of(path))
                siblings = guardrails.listed(kind, self._of_type(kind), guardrails.scope_of(path), {}, self.clock())
                status, written = 200, guardrails.put_diagnostic_setting(path, body, siblings)
        except Refused as refused:
            raise self._guardrail_refusal(kind, refused) from None
        self.resources[key] = written
        self.etags[key] = _new_etag()
        return Answer(status, copy.deepcopy(written))

    def _require_scope(self, scope: str) -> None:
        """A diagnostic setting is on a resource that exists: here, the storage account whose
        blob service it is on (the 404's code is unverified)."""
        account = re.match(r"(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.storage/storageaccounts/"
                           r"[^/]+)", scope.lower())
        if account and account.group(1) not in self.resources:
            raise Refused(404, "ResourceNotFound", f"The Resource 'Microsoft.Storage/storageAccounts/"
                                                   f"{account.group(1).rsplit('/', 1)[1]}' was not found.")

    def delete_guardrail(self, path, match, query, headers, body) -> Answer:
        """200 with what was deleted (a policy assignment's body, as its spec answers), or 204
        where nothing was there (each spec's 204)."""
        key = _key(path)
        deleted = self.resources.pop(key, None)
        if deleted is None:
            return Answer(204)
        self.etags.pop(key, None)
        return Answer(200, deleted if resource_type(path) == guardrails.POLICY_ASSIGNMENT else None)

    def list_guardrails(self, path, match, query, headers, body) -> Answer:
        kind = resource_type(path + "/list")
        return Answer(200, {"value": guardrails.listed(kind, self._of_type(kind), match.group("scope") or "/", query,
                                                       self.clock())})

    # -- shared ------------------------------------------------------------------------
    def _list(self, collection: str, kind: str) -> list[dict]:
        """Resources of a type directly in a collection, or anywhere in its subscription
        when the collection is the subscription-wide one."""
        subscription_wide = collection.count("/") == 5  # /subscriptions/s/providers/ns/type
        prefix = collection.split("/providers/")[0] + "/"
        return [
            copy.deepcopy(body)
            for key, body in sorted(self.resources.items())
            if resource_type(key) == kind
            and (key.startswith(prefix) if subscription_wide else _parent(key) == collection)
        ]


def _refusing(check: Callable, *args: Any) -> Any:
    """Run a validation module's check; its refusal becomes ARM's error answer."""
    try:
        return check(*args)
    except Refused as refused:
        raise ArmError(refused.status, refused.code, refused.message, headers=refused.headers) from None


def _refusing_sas(sign: Callable, *args: Any) -> dict:
    try:
        return sign(*args)
    except key_actions.BadSasRequest as bad:
        raise ArmError(400, "InvalidValuesForRequestParameters",
                       f"Values for request parameters are invalid: {bad}.") from None


def _type_family(lower_path: str) -> str:
    """`namespace/type` of the last /providers/ segment: the family whose API version applies."""
    if "/providers/" not in lower_path:
        return ""
    return "/".join(lower_path.rsplit("/providers/", 1)[1].split("/")[:2])


def _provider_of(lower_path: str) -> str:
    if "/providers/" not in lower_path:
        return ""
    return lower_path.rsplit("/providers/", 1)[1].split("/", 1)[0]


def default_rules(nsg_id: str) -> list[dict]:
    """The six rules Azure puts in every NSG (priorities 65000-65500)."""
    shapes = [
        ("AllowVnetInBound", "Inbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
        ("AllowAzureLoadBalancerInBound", "Inbound", "Allow", 65001, "AzureLoadBalancer", "*"),
        ("DenyAllInBound", "Inbound", "Deny", 65500, "*", "*"),
        ("AllowVnetOutBound", "Outbound", "Allow", 65000, "VirtualNetwork", "VirtualNetwork"),
        ("AllowInternetOutBound", "Outbound", "Allow", 65001, "*", "Internet"),
        ("DenyAllOutBound", "Outbound", "Deny", 65500, "*", "*"),
    ]
    return [
        {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {
                "protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                "sourceAddressPrefix": source, "destinationAddressPrefix": destination,
                "access": access, "priority": priority, "direction": direction,
                "provisioningState": "Succeeded",
            },
        }
        for name, direction, access, priority, source, destination in shapes
    ]


_SUB = r"/subscriptions/[^/]+"
_RG = _SUB + r"/resourcegroups/[^/]+"
_ACCOUNT = _RG + r"/providers/microsoft\.storage/storageaccounts/[^/]+"
_NSG = _RG + r"/providers/microsoft\.network/networksecuritygroups/[^/]+"
_AUTH = r"(?P<scope>.*?)/providers/microsoft\.authorization"
_VAULT = _RG + r"/providers/microsoft\.keyvault/vaults/[^/]+"
_VAULTS = "Microsoft.KeyVault/vaults"
_STORAGE = "Microsoft.Storage/storageAccounts"
_CONTAINERS = _STORAGE + "/blobServices/containers"
_POLICIES = _STORAGE + "/objectReplicationPolicies"
_NSGS = "Microsoft.Network/networkSecurityGroups"
_RULES = _NSGS + "/securityRules"
_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
# Extension resources at any scope (under /subscriptions: management groups are not served).
_GUARDRAILS = [(r"(?P<scope>/subscriptions/.*?)/providers/", collection, spelled) for collection, spelled in (
    (r"microsoft\.authorization/policyassignments", "Microsoft.Authorization/policyAssignments"),
    (r"microsoft\.authorization/policyexemptions", "Microsoft.Authorization/policyExemptions"),
    (r"microsoft\.insights/diagnosticsettings", "Microsoft.Insights/diagnosticSettings"))]
# Each route: per method, the handler and the RBAC operation it performs (the Azure resource
# provider operations reference); None where the emulator does not authorise (polling).
_ROUTES: list[tuple[re.Pattern, dict[str, tuple[Callable, str | None]]]] = [
    (re.compile(pattern + "$"), methods) for pattern, methods in [
        (r"/subscriptions", {"GET": (ArmState.list_subscriptions, None)}),
        (_SUB + r"/providers/microsoft\.storage/storageaccounts", {"GET": (ArmState.list_accounts, _STORAGE + "/read")}),
        (_RG + r"/providers/microsoft\.storage/storageaccounts", {"GET": (ArmState.list_accounts, _STORAGE + "/read")}),
        (_ACCOUNT, {"GET": (ArmState.get_account, _STORAGE + "/read"),
                    "PATCH": (ArmState.patch_account, _STORAGE + "/write")}),
        # Action names as the resource provider operations reference spells them; ARM matches
        # them without case, as the events spell them.
        (_ACCOUNT + r"/listkeys", {"POST": (ArmState.list_keys, _STORAGE + "/listKeys/action")}),
        (_ACCOUNT + r"/listaccountsas", {"POST": (ArmState.list_account_sas, _STORAGE + "/ListAccountSas/action")}),
        (_ACCOUNT + r"/listservicesas", {"POST": (ArmState.list_service_sas, _STORAGE + "/ListServiceSas/action")}),
        (_ACCOUNT + r"/regeneratekey", {"POST": (ArmState.regenerate_key, _STORAGE + "/regeneratekey/action")}),
        (_ACCOUNT + r"/revokeuserdelegationkeys",
         {"POST": (ArmState.revoke_user_delegation_keys, _STORAGE + "/revokeUserDelegationKeys/action")}),
        (_ACCOUNT + r"/objectreplicationpolicies",
         {"GET": (ArmState.list_replication_policies, _POLICIES + "/read")}),
        (_ACCOUNT + r"/objectreplicationpolicies/[^/]+",
         {"GET": (ArmState.get_replication_policy, _POLICIES + "/read"),
          "PUT": (ArmState.put_replication_policy, _POLICIES + "/write"),
          "DELETE": (ArmState.delete_replication_policy, _POLICIES + "/delete")}),
        (_ACCOUNT + r"/blobservices/default/containers", {"GET": (ArmState.list_containers, _CONTAINERS + "/read")}),
        (_ACCOUNT + r"/blobservices/default/containers/[^/]+",
         {"GET": (ArmState.get_container, _CONTAINERS + "/read"),
          "PATCH": (ArmState.patch_container, _CONTAINERS + "/write")}),
        (_SUB + r"/providers/microsoft\.network/networksecuritygroups", {"GET": (ArmState.list_nsgs, _NSGS + "/read")}),
        (_RG + r"/providers/microsoft\.network/networksecuritygroups", {"GET": (ArmState.list_nsgs, _NSGS + "/read")}),
        (_NSG, {"GET": (ArmState.get_nsg, _NSGS + "/read"), "PUT": (ArmState.put_nsg, _NSGS + "/write")}),
        (_NSG + r"/securityrules", {"GET": (ArmState.list_rules, _RULES + "/read")}),
        (_NSG + r"/securityrules/[^/]+",
         {"GET": (ArmState.get_rule, _RULES + "/read"), "PUT": (ArmState.put_rule, _RULES + "/write"),
          "DELETE": (ArmState.delete_rule, _RULES + "/delete")}),
        (_SUB + r"/providers/microsoft\.network/locations/[^/]+/operations/[^/]+",
         {"GET": (ArmState.get_operation, None)}),
        (_SUB + r"/providers/microsoft\.network/locations/[^/]+/operationresults/[^/]+",
         {"GET": (ArmState.get_operation_result, None)}),
        (_SUB + r"/providers/microsoft\.keyvault/vaults", {"GET": (ArmState.list_vaults, _VAULTS + "/read")}),
        (_RG + r"/providers/microsoft\.keyvault/vaults", {"GET": (ArmState.list_vaults, _VAULTS + "/read")}),
        (_VAULT, {"GET": (ArmState.get_vault, _VAULTS + "/read"), "PUT": (ArmState.put_vault, _VAULTS + "/write"),
                  "PATCH": (ArmState.patch_vault, _VAULTS + "/write")}),
        (_VAULT + r"/accesspolicies/[^/]+",
         {"PUT": (ArmState.update_access_policies, _VAULTS + "/accessPolicies/write")}),
        (_VAULT + r"/keys", {"GET": (ArmState.list_vault_keys, _VAULTS + "/keys/read")}),
        (_VAULT + r"/keys/[^/]+", {"GET": (ArmState.get_vault_key, _VAULTS + "/keys/read")}),
        (_AUTH + r"/roleassignments", {"GET": (ArmState.list_assignments, _ASSIGNMENTS + "/read")}),
        (_AUTH + r"/roleassignments/[^/]+",
         {"GET": (ArmState.get_assignment, _ASSIGNMENTS + "/read"),
          "DELETE": (ArmState.delete_assignment, _ASSIGNMENTS + "/delete"),
          "PUT": (ArmState.put_assignment, _ASSIGNMENTS + "/write")}),
        (_AUTH + r"/roledefinitions/[^/]+",
         {"GET": (ArmState.get_role_definition, "Microsoft.Authorization/roleDefinitions/read")}),
        *[(scoped + collection, {"GET": (ArmState.list_guardrails, f"{spelled}/read")})
          for scoped, collection, spelled in _GUARDRAILS],
        *[(scoped + collection + r"/[^/]+",
           {"GET": (ArmState.get_guardrail, f"{spelled}/read"), "PUT": (ArmState.put_guardrail, f"{spelled}/write"),
            "DELETE": (ArmState.delete_guardrail, f"{spelled}/delete")})
          for scoped, collection, spelled in _GUARDRAILS],
    ]
]

# Polling endpoints are ARM plumbing, not operations in the resource providers' specs:
# traffic capture leaves them out of what oav validates.
POLLING_PATH = re.compile(r"/providers/microsoft\.network/locations/[^/]+/operation(s|results)/", re.IGNORECASE)
