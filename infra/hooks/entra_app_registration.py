"""azd preprovision hook: the Microsoft Entra app registration that App Service
Authentication accepts tokens for (infra/app/function.bicep, authSettings), with the app
roles the operator routes require, declared in app-registration.json beside this file.

Run by azd before every provision (azure.yaml). Idempotent: it creates the registration once,
then brings it to app-registration.json on every run and writes nothing when it already is.

- ENTRA_CLIENT_ID set by you (and ENTRA_APP_MANAGED_BY_HOOK not "true"): an existing
  registration, yours or your identity team's. The hook changes nothing and calls nothing.
- ENTRA_CLIENT_ID empty: the hook creates `synthetic-data-containment-<environment>` and
  records its client ID in ENTRA_CLIENT_ID (the Bicep parameter entraClientId) and
  ENTRA_APP_MANAGED_BY_HOOK=true, before anything else, so a failure later in the run never
  leads to a second registration.
- ENTRA_APP_MANAGED_BY_HOOK=true: the registration it created. It finds it by client ID
  (never by name: anyone in the tenant can create a registration with any name), brings its
  app roles, scope, pre-authorized client and identifier URI to the declared ones, and makes
  sure its service principal requires an app role assignment. If it is gone, the hook stops:
  it never silently replaces a registration whose role assignments people rely on.

Why a hook and not the Bicep Microsoft Graph extension (Microsoft.Graph/applications): the
extension needs `extension microsoftGraphV1`, which neither tree-sitter-bicep nor the pycep
inside checkov can parse, so infra/ would no longer be checked offline as a whole; every
provision would need Graph permissions, even to change an app setting; and it has changed
under its users (built-in types retired for dynamic types, microsoftgraph/msgraph-bicep-types#299;
scope errors after a Bicep release, Azure/bicep#18158). And an app role or scope can be
removed only after a write that disables it (https://learn.microsoft.com/graph/api/resources/approle,
https://learn.microsoft.com/graph/api/resources/permissionscope): the hook writes that first
(and, to be safe, before it changes one), which one declarative state cannot express.

Every Graph call goes through `az rest` to Microsoft Graph v1.0
(https://learn.microsoft.com/cli/azure/reference-index#az-rest): `az ad app` has no
option for pre-authorized applications, and the declared registration is Graph's own JSON
(https://learn.microsoft.com/graph/api/resources/application). Needs the Azure CLI signed in
(`az login`) to the deployment's tenant, as a user who may create app registrations.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).with_name("app-registration.json")
CLIENT_ID = "ENTRA_CLIENT_ID"
MANAGED = "ENTRA_APP_MANAGED_BY_HOOK"
# Entra is eventually consistent: right after a registration is created, a call about it can
# answer that it does not exist (https://devblogs.microsoft.com/identity/designing-for-eventual-consistency-for-microsoft-entra/),
# for a service principal "does not reference a valid application object". Such calls are retried.
NOT_YET_REPLICATED = re.compile(r"Request_ResourceNotFound|does not exist|does not reference a valid application",
                                re.IGNORECASE)
REPLICATION_ATTEMPTS = 8
REPLICATION_WAIT_SECONDS = 10

Run = Callable[[list[str]], str]


class HookError(Exception):
    """What stops the hook, said so that a person can act on it."""


def run_command(argv: list[str]) -> str:
    """Runs a CLI (az, azd) and returns its standard output; a non-zero exit is a HookError."""
    executable = shutil.which(argv[0])
    if executable is None:
        raise HookError(f"{argv[0]} is not on PATH")
    done = subprocess.run([executable, *argv[1:]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HookError(f"`{' '.join(argv[:4])} ...` failed: {done.stderr.strip()}")
    return done.stdout


class Graph:
    """Microsoft Graph v1.0 through `az rest`."""

    def __init__(self, run: Run, sleep: Callable[[float], None]) -> None:
        self.run, self.sleep = run, sleep
        self.endpoint = run(["az", "cloud", "show", "--query", "endpoints.microsoftGraphResourceId",
                             "--output", "tsv"]).strip().rstrip("/") + "/v1.0/"
        self.just_created = False
        self.writes = 0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        argv = ["az", "rest", "--method", method, "--url", self.endpoint + path]
        attempts = REPLICATION_ATTEMPTS if self.just_created else 1
        # The body goes in a file: JSON on a command line does not survive Windows quoting.
        with tempfile.TemporaryDirectory() as folder:
            if body is not None:
                body_file = Path(folder) / "body.json"
                body_file.write_text(json.dumps(body))
                argv += ["--body", f"@{body_file}", "--headers", "Content-Type=application/json"]
            for attempt in range(1, attempts + 1):
                try:
                    out = self.run(argv)
                    break
                except HookError as error:
                    if attempt == attempts or not NOT_YET_REPLICATED.search(str(error)):
                        raise
                    self.sleep(REPLICATION_WAIT_SECONDS)
        if method != "GET":
            self.writes += 1
        return json.loads(out) if out.strip() else None

    def by_app_id(self, collection: str, app_id: str) -> dict[str, Any] | None:
        query = urllib.parse.quote(f"appId eq '{app_id}'", safe="")
        found = self.call("GET", f"{collection}?$filter={query}")["value"]
        if len(found) > 1:
            raise HookError(f"{len(found)} {collection} have the client ID {app_id}")
        return found[0] if found else None


def _key(entitlement: dict[str, Any]) -> str:
    return entitlement["id"].lower()


def _as_declared(current: dict[str, Any], declared: dict[str, Any]) -> bool:
    return all(current.get(name) == value for name, value in declared.items())


def _stale(current: list[dict[str, Any]], declared: list[dict[str, Any]]) -> set[str]:
    """IDs of enabled app roles or scopes that Graph must see disabled before they are changed
    or removed: those not declared, and those that differ from their declaration."""
    wanted = {_key(d): d for d in declared}
    return {_key(c) for c in current
            if c.get("isEnabled") and (_key(c) not in wanted or not _as_declared(c, wanted[_key(c)]))}


def _disabled(entitlements: list[dict[str, Any]], ids: set[str]) -> list[dict[str, Any]]:
    """The entitlements as Graph may be sent them back (without the read-only `origin`,
    https://learn.microsoft.com/graph/api/resources/approle), those of `ids` disabled."""
    writable = [{name: value for name, value in e.items() if name != "origin"} for e in entitlements]
    return [{**e, "isEnabled": False} if _key(e) in ids else e for e in writable]


def _same_entitlements(current: list[dict[str, Any]], declared: list[dict[str, Any]]) -> bool:
    by_id = {_key(c): c for c in current}
    return by_id.keys() == {_key(d) for d in declared} and all(_as_declared(by_id[_key(d)], d) for d in declared)


def _same_pre_authorizations(current: list[dict[str, Any]], declared: list[dict[str, Any]]) -> bool:
    def normal(items: list[dict[str, Any]]) -> set[tuple[str, frozenset[str]]]:
        return {(i["appId"].lower(), frozenset(p.lower() for p in i["delegatedPermissionIds"])) for i in items}
    return normal(current) == normal(declared)


def reconcile(graph: Graph, app: dict[str, Any], manifest: dict[str, Any]) -> None:
    """Brings the registration `app` (as Graph returned it) to the manifest, in at most three
    writes, each only when something differs."""
    path = f"applications/{app['id']}"
    roles, scopes = app.get("appRoles") or [], (app.get("api") or {}).get("oauth2PermissionScopes") or []
    pre_authorized = (app.get("api") or {}).get("preAuthorizedApplications") or []
    declared_api = manifest["api"]

    # 1. Disable what is about to change or go, and drop pre-authorizations of those scopes.
    stale_roles = _stale(roles, manifest["appRoles"])
    stale_scopes = _stale(scopes, declared_api["oauth2PermissionScopes"])
    if stale_roles or stale_scopes:
        pre_authorized = [p for p in pre_authorized
                          if not {i.lower() for i in p["delegatedPermissionIds"]} & stale_scopes]
        roles, scopes = _disabled(roles, stale_roles), _disabled(scopes, stale_scopes)
        graph.call("PATCH", path, {"appRoles": roles, "api": {
            **app.get("api", {}), "oauth2PermissionScopes": scopes, "preAuthorizedApplications": pre_authorized}})

    # 2. The declared roles, scope, token version and identifier URI. Pre-authorizations of
    # scopes that are not declared go; the declared ones follow once their scope exists.
    declared_scope_ids = {_key(s) for s in declared_api["oauth2PermissionScopes"]}
    kept = [p for p in pre_authorized if {i.lower() for i in p["delegatedPermissionIds"]} <= declared_scope_ids]
    identifier_uris = [f"api://{app['appId']}"]
    if not (app.get("identifierUris") == identifier_uris
            and app.get("signInAudience") == manifest["signInAudience"]
            and (app.get("api") or {}).get("requestedAccessTokenVersion") == declared_api["requestedAccessTokenVersion"]
            and _same_entitlements(roles, manifest["appRoles"])
            and _same_entitlements(scopes, declared_api["oauth2PermissionScopes"])
            and _same_pre_authorizations(kept, pre_authorized)):
        graph.call("PATCH", path, {
            "identifierUris": identifier_uris,
            "signInAudience": manifest["signInAudience"],
            "appRoles": manifest["appRoles"],
            "api": {"requestedAccessTokenVersion": declared_api["requestedAccessTokenVersion"],
                    "oauth2PermissionScopes": declared_api["oauth2PermissionScopes"],
                    "preAuthorizedApplications": kept}})

    # 3. The pre-authorized client (the Azure CLI), which names the scope written in step 2
    # (https://learn.microsoft.com/graph/api/resources/preauthorizedapplication).
    if not _same_pre_authorizations(kept, declared_api["preAuthorizedApplications"]):
        graph.call("PATCH", path, {"api": {
            "requestedAccessTokenVersion": declared_api["requestedAccessTokenVersion"],
            "oauth2PermissionScopes": declared_api["oauth2PermissionScopes"],
            "preAuthorizedApplications": declared_api["preAuthorizedApplications"]}})


def require_assignment(graph: Graph, client_id: str) -> None:
    """The registration's service principal, requiring an app role assignment: Entra issues no
    token for the app to a user or application that holds none of its roles
    (https://learn.microsoft.com/entra/identity-platform/howto-restrict-your-app-to-a-set-of-users)."""
    principal = graph.by_app_id("servicePrincipals", client_id)
    if principal is None:
        graph.call("POST", "servicePrincipals", {"appId": client_id, "appRoleAssignmentRequired": True})
    elif principal.get("appRoleAssignmentRequired") is not True:
        graph.call("PATCH", f"servicePrincipals/{principal['id']}", {"appRoleAssignmentRequired": True})


def check_tenant(run: Run, environ: Mapping[str, str]) -> None:
    """Registrations are made in the tenant `az` is signed in to; the app accepts tokens of its
    subscription's tenant (tenant() in Bicep). Both must be the same."""
    subscription = environ.get("AZURE_SUBSCRIPTION_ID", "").strip()
    if not subscription:
        print("Entra app registration: AZURE_SUBSCRIPTION_ID is not set, so the tenant az is signed in to "
              "was not compared with the deployment's", file=sys.stderr)
        return
    signed_in = run(["az", "account", "show", "--query", "tenantId", "--output", "tsv"]).strip()
    deployed = run(["az", "account", "show", "--subscription", subscription, "--query", "tenantId",
                    "--output", "tsv"]).strip()
    if signed_in.lower() != deployed.lower():
        raise HookError(f"az is signed in to tenant {signed_in}, but subscription {subscription} is in tenant "
                        f"{deployed}: run `az login --tenant {deployed}`")


def ensure_registration(environ: Mapping[str, str], run: Run, sleep: Callable[[float], None]) -> str:
    """Creates or updates the registration; returns what it did, in a sentence."""
    client_id = environ.get(CLIENT_ID, "").strip()
    if client_id and environ.get(MANAGED, "").strip().lower() != "true":
        return (f"{CLIENT_ID}={client_id} names an existing registration: left as it is. It must declare the app "
                f"roles of infra/hooks/{MANIFEST.name} and issue v2.0 access tokens (README, Deployment).")
    manifest = json.loads(MANIFEST.read_text())
    check_tenant(run, environ)
    graph = Graph(run, sleep)
    if not client_id:
        if not environ.get("AZURE_ENV_NAME"):
            raise HookError("AZURE_ENV_NAME is not set: the hook runs under azd (azd provision, azd up)")
        name = f"synthetic-data-containment-{environ['AZURE_ENV_NAME']}"
        app = graph.call("POST", "applications", {
            "displayName": name,
            "signInAudience": manifest["signInAudience"],
            "appRoles": manifest["appRoles"],
            "api": {"requestedAccessTokenVersion": manifest["api"]["requestedAccessTokenVersion"],
                    "oauth2PermissionScopes": manifest["api"]["oauth2PermissionScopes"]}})
        client_id = app["appId"]
        run(["azd", "env", "set", CLIENT_ID, client_id])
        run(["azd", "env", "set", MANAGED, "true"])
        graph.just_created = True
        done = f"created the app registration {name} ({CLIENT_ID}={client_id})"
    else:
        app = graph.by_app_id("applications", client_id)
        if app is None:
            raise HookError(f"the app registration {CLIENT_ID}={client_id}, which this hook created, no longer "
                            f"exists. Restore it (deleted registrations stay restorable for 30 days), or, to create "
                            f"a new one and assign its roles again: azd env set {CLIENT_ID} '' && "
                            f"azd env set {MANAGED} ''")
        done = f"app registration {CLIENT_ID}={client_id}"
    before = graph.writes
    reconcile(graph, app, manifest)
    require_assignment(graph, client_id)
    changes = graph.writes - before
    return f"{done}: {changes} change(s) to match infra/hooks/{MANIFEST.name}" if changes else \
        f"{done}: as declared, nothing changed"


def main(environ: Mapping[str, str] = os.environ, run: Run = run_command,
         sleep: Callable[[float], None] = time.sleep) -> int:
    try:
        print(ensure_registration(environ, run, sleep))
    except HookError as error:
        print(f"Entra app registration: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
