"""What happens when a role assignment is written.

The event names the assignment but not who got it or which role: re-read the assignment
by ID and its role definition, work out which protected resources its scope covers, and
judge whether its principal can now read or exfiltrate the data.
"""
from __future__ import annotations

import time
from typing import Any

from containment.adapters import arm
from containment.adapters.runtime import Runtime, current
from containment.core.events import WRITE_SUCCESS, ArmEvent, EventSubscription
from containment.core.ids import ROLE_ASSIGNMENT, MalformedResourceId, ResourceId, parse_resource_id
from containment.detect.pipeline import Assessment, EventPath, handle_arm_event
from containment.judge.allowlist import allowance
from containment.detect.customer_keys import customer_keys, vaults_in_scope
from containment.judge.customer_keys import encryption_identity, same_vault
from containment.judge.role_permissions import STORAGE_KEY_PATHS, data_paths, key_paths, reaches
from containment.judge.rule import Context
from containment.judge.scope import Protection, has_scope_tag
from containment.plan.registry import judge

PERMISSIONS = ("Microsoft.Authorization/roleAssignments/read", "Microsoft.Authorization/roleDefinitions/read",
               "Microsoft.Storage/storageAccounts/read",  # what assessing reads (accounts under a scope too)
               "Microsoft.KeyVault/vaults/read")  # and the vaults under it, for a role that reaches vault keys
OPERATIONS = ("Microsoft.Authorization/roleAssignments/write",)
SUBSCRIPTION = EventSubscription((WRITE_SUCCESS,), OPERATIONS)


def on_role_assignment_write(event: Any, runtime: Runtime | None = None):
    return handle_arm_event(event, PATH, runtime or current())


def assess_role_assignment(resource: ResourceId, runtime: Runtime, event: ArmEvent | None) -> Assessment:
    if not resource.is_type(ROLE_ASSIGNMENT):
        return Assessment(resource.text, ignored=f"{resource.type} is not a role assignment")
    try:
        assignment = read_when_visible(resource, runtime)
    except arm.ResourceGone:
        return Assessment(resource.text, ignored="the role assignment no longer exists (read again for "
                                                 f"{runtime.settings.role_assignment_wait_seconds:g} s)")
    properties = assignment.get("properties") or {}
    return judge_assignment(assignment, resource.text, resource.subscription, properties.get("scope") or resource.scope,
                            runtime)


def read_when_visible(resource: ResourceId, runtime: Runtime) -> dict:
    """The assignment, read again with growing pauses while ARM answers 404: a new
    assignment is not readable everywhere at once (Microsoft's RBAC troubleshooting: changes
    can take minutes to propagate), and one missed read must not let a grant through. One
    this app deleted itself is gone for certain: not waited for."""
    deadline = time.monotonic() + runtime.settings.role_assignment_wait_seconds
    pause = 0.25
    while True:
        try:
            return arm.read(runtime.clients, resource)
        except arm.ResourceGone:
            if time.monotonic() + pause > deadline or deleted_by_this_app(resource, runtime):
                raise
            time.sleep(pause)
            pause *= 2


def deleted_by_this_app(resource: ResourceId, runtime: Runtime) -> bool:
    return any(record.outcome == "contained" and any(rid.lower() == resource.key and body is None
                                                     for rid, body in record.after.items())
               for record in runtime.ledger.for_resource(resource.text))


def assess_inherited_assignment(assignment: dict, subscription: str, runtime: Runtime) -> Assessment:
    """An assignment a subscription's list holds from above it (the tenant root, a management
    group): it covers everything in the subscription, and only someone above can remove it."""
    properties = assignment.get("properties") or {}
    scope = properties.get("scope") or "/"
    return judge_assignment(assignment, str(assignment.get("id")), subscription, f"/subscriptions/{subscription}",
                            runtime, inherited_from=scope)


def judge_assignment(assignment: dict, resource_text: str, subscription: str, scope: str, runtime: Runtime,
                     inherited_from: str | None = None) -> Assessment:
    """Judge an assignment over what `scope` covers. The storage account it is scoped to (or
    to one of its containers), as read to judge it, is kept in the record, so the incident
    knows the dataset's privacy tags (containment.record.dataset_context)."""
    settings = runtime.settings
    spelled = assignment.get("id") or resource_text
    properties = assignment.get("properties") or {}
    principal = str(properties.get("principalId") or "").lower()
    if settings.self_principal_id and principal == settings.self_principal_id:
        return Assessment(spelled, ignored="the app's own identity's role assignments are never touched")
    covered, account = covered_protected_resources(scope, runtime)
    role, vaults = None, []
    if may_hold_vaults(scope):
        # The vaults a scope covers cost ARM calls of their own: looked for only where the
        # role reaches vault keys at all.
        role = _role(properties, subscription, runtime)
        if key_paths(role):
            vaults = covered_vaults(scope, runtime)
            covered = list(dict.fromkeys(covered + [vault["id"] for vault in vaults]))
    if not covered:
        return Assessment(spelled, ignored="not synthetic data: the assignment's scope covers no protected resource")
    role = role or _role(properties, subscription, runtime)
    state = {spelled: assignment, role.get("id") or str(properties.get("roleDefinitionId")): role,
             **({account["id"]: account} if account and account.get("id") else {})}
    paths = data_paths(role, scope, covered)
    role_name = (role.get("properties") or {}).get("roleName")
    if not paths:
        keys = " or to the vault keys that encrypt it" if "vault" in reaches(scope, covered) else ""
        return Assessment(spelled, [], state, note=f"{role_name} has no path to blob data{keys}")
    allowed = allowance(principal, settings)
    if allowed.allowed:
        return Assessment(spelled, [], state, note=allowed.note)
    own = keyed_by_its_identity(principal, vaults, runtime) if set(paths) & set(key_paths(role)) else None
    if own and set(paths) <= set(key_paths(role, STORAGE_KEY_PATHS)):
        return Assessment(spelled, [], state, note=f"{principal} is the encryption identity of {own}, whose "
                                                   "customer-managed key the vault holds: Storage reaches the key "
                                                   "through it")
    # The encryption identity granted more than Storage needs: reported (`encryption_identity_of`),
    # never removed, since removing the assignment locks that account's data (containment.plan.roles).
    context = Context(settings, Protection(tagged=True, protected_scope=None),
                      facts={"role_definition": role, "data_paths": paths, "covered": covered,
                             "allowlist_expired": allowed.expired, "inherited_from": inherited_from,
                             "encryption_identity_of": own})
    return Assessment(spelled, judge(ROLE_ASSIGNMENT, assignment, context), state)


def _role(properties: dict, subscription: str, runtime: Runtime) -> dict:
    return arm.read_role_definition(runtime.clients, subscription, str(properties.get("roleDefinitionId")))


def covered_protected_resources(scope: str, runtime: Runtime) -> tuple[list[str], dict | None]:
    """The protected storage accounts (or protected scopes) a role assignment's scope reaches,
    and the storage account read where the scope is one account or within it. The vaults it
    covers: covered_vaults."""
    settings, clients = runtime.settings, runtime.clients
    try:
        parsed = parse_resource_id(scope)
    except MalformedResourceId:
        # A management-group or root scope covers every subscription below it.
        return [f"{scope} (covers every subscription below it)"], None
    covered = [p for p in settings.protected_scopes
               if p.lower() == parsed.key or p.lower().startswith(parsed.key + "/")]
    account = None
    if parsed.provider is None:  # a subscription or resource group: every account in it
        accounts = arm.list_accounts(clients, parsed.subscription, parsed.resource_group)
        covered += [a["id"] for a in accounts if has_scope_tag(a.get("tags"), settings)]
    elif parsed.provider.lower() == "microsoft.storage" and parsed.types[0].lower() == "storageaccounts":
        # The account itself, one of its containers, or its blob service: judged by the account.
        account_id = parsed.ancestor(len(parsed.types) - 1) if len(parsed.types) > 1 else parsed
        covered += [p for p in settings.protected_scopes if parsed.is_within(p)]
        account = arm.read_or_none(clients, account_id) or {}
        if has_scope_tag(account.get("tags"), settings):
            covered.append(account.get("id") or account_id.text)
    elif _is_vault(parsed):  # the vault, or one of its keys: under a protected scope
        covered += [p for p in settings.protected_scopes if parsed.is_within(p)]
    return list(dict.fromkeys(covered)), account or None


def may_hold_vaults(scope: str) -> bool:
    """Whether a scope is a vault, within one, or above one (a subscription or resource group)."""
    try:
        parsed = parse_resource_id(scope)
    except MalformedResourceId:
        return False  # a management-group scope is covered whole already
    return parsed.provider is None or _is_vault(parsed)


def covered_vaults(scope: str, runtime: Runtime) -> list[dict]:
    """The vaults in scope (containment.detect.customer_keys) that a role assignment's scope
    reaches: a vault the scope is (or is within), or the vaults of a subscription or resource
    group. One ARM call for the vault or the list, and, only where a vault is neither tagged nor
    under a protected scope, one list of accounts per watched subscription (which protected
    accounts' keys it holds)."""
    parsed = parse_resource_id(scope)
    if _is_vault(parsed):
        vault_id = parsed.ancestor(len(parsed.types) - 1) if len(parsed.types) > 1 else parsed
        vault = arm.read_or_none(runtime.clients, vault_id)
        if vault is None:
            return []
        vaults = [vault]
    else:
        vaults = [vault for vault in arm.list_vaults(runtime.clients, parsed.subscription)
                  if parse_resource_id(vault["id"]).is_within(parsed.text)]
    return vaults_in_scope(vaults, runtime)


def keyed_by_its_identity(principal: str, vaults: list[dict], runtime: Runtime) -> str | None:
    """The account, protected or not, whose encryption identity the principal is (the one
    identity Storage wraps and unwraps its key with: containment.judge.customer_keys) and whose
    customer-managed key every one of these vaults holds, or None: a grant over a vault that
    holds no key of its account is no part of Storage's access. Asked only before a finding:
    one list of accounts per watched subscription."""
    if not vaults:
        return None
    return next((account["id"] for key, account, _ in customer_keys(runtime)
                 if encryption_identity(account) == principal
                 and all(same_vault((vault.get("properties") or {}).get("vaultUri"), key) for vault in vaults)), None)


def _is_vault(resource: ResourceId) -> bool:
    return (resource.provider or "").lower() == "microsoft.keyvault" and resource.types[0].lower() == "vaults"


PATH = EventPath(SUBSCRIPTION, assess_role_assignment)
