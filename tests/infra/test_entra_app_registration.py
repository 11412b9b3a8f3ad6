"""The Entra app registration: the app roles the operator routes require
(infra/hooks/app-registration.json), and the azd preprovision hook that creates and updates
the registration (infra/hooks/entra_app_registration.py), run against a fake `az` and `azd`
that keep Microsoft Graph's rules: an enabled app role or scope cannot be changed or removed,
a pre-authorization must name a scope the registration already has, and a new registration
is not found at once everywhere."""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest

from localazure.shared import REPO_ROOT

HOOKS = REPO_ROOT / "infra" / "hooks"
MANIFEST = json.loads((HOOKS / "app-registration.json").read_text())
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # Microsoft Azure CLI, the same in every tenant
TENANT = "72f988bf-0000-0000-0000-000000000001"
# Role and scope IDs are derived from their values in this namespace, so they never change by accident.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:synthetic-data-containment:entra")
ROLES = {
    "Containment.Read": ["User", "Application"],
    "Containment.Approve": ["User"],
    "Containment.Release": ["User"],
    "Containment.Exempt": ["User"],
    "Containment.BreakGlass": ["User"],
    "Containment.Assess": ["User"],
    "Containment.Mute": ["User"],
}


def load_hook():
    spec = importlib.util.spec_from_file_location("entra_app_registration", HOOKS / "entra_app_registration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = load_hook()


# ---------------------------------------------------------------------------------------
# What the registration declares
# ---------------------------------------------------------------------------------------

def test_the_registration_declares_exactly_the_seven_operator_roles():
    roles = MANIFEST["appRoles"]
    assert [r["value"] for r in roles] == list(ROLES)
    assert len({r["id"] for r in roles}) == len(roles), "app role IDs must be unique"
    for role in roles:
        assert role["id"] == str(uuid.uuid5(ID_NAMESPACE, role["value"])), role["value"]
        assert role["allowedMemberTypes"] == ROLES[role["value"]], role["value"]
        assert role["isEnabled"] is True
        assert role["displayName"] and role["description"]
    # A person decides; only reading is open to applications (a SIEM, a dashboard).
    assert [r["value"] for r in roles if "Application" in r["allowedMemberTypes"]] == ["Containment.Read"]


def test_the_registration_is_single_tenant_with_v2_tokens_and_one_pre_authorized_client():
    assert MANIFEST["signInAudience"] == "AzureADMyOrg"
    api = MANIFEST["api"]
    assert api["requestedAccessTokenVersion"] == 2  # audience: the client ID, which Easy Auth accepts
    (scope,) = api["oauth2PermissionScopes"]
    assert scope["value"] == "user_impersonation" and scope["type"] == "Admin" and scope["isEnabled"] is True
    assert scope["id"] == str(uuid.uuid5(ID_NAMESPACE, "user_impersonation"))
    assert {r["id"] for r in MANIFEST["appRoles"]}.isdisjoint({scope["id"]})
    # The Azure CLI may get tokens for that scope without a consent prompt; Entra still issues
    # them only to people holding one of the roles (the service principal requires assignment).
    assert api["preAuthorizedApplications"] == [{"appId": AZURE_CLI, "delegatedPermissionIds": [scope["id"]]}]


def test_the_readme_lists_every_role():
    readme = (REPO_ROOT / "README.md").read_text()
    documented = re.findall(r"^\| `(Containment\.\w+)` \|", readme, re.MULTILINE)
    assert documented == list(ROLES)


# ---------------------------------------------------------------------------------------
# A fake az and azd, with Microsoft Graph's rules
# ---------------------------------------------------------------------------------------

class FakeAzure:
    def __init__(self, env: dict[str, str] | None = None, signed_in_tenant: str = TENANT,
                 replication_lag: int = 0) -> None:
        self.env = {"AZURE_ENV_NAME": "prod", "AZURE_SUBSCRIPTION_ID": "sub-1", **(env or {})}
        self.signed_in_tenant = signed_in_tenant
        self.applications: dict[str, dict[str, Any]] = {}
        self.principals: dict[str, dict[str, Any]] = {}
        self.calls: list[list[str]] = []
        self.writes: list[tuple[str, str, Any]] = []
        self.replication_lag = replication_lag  # calls after a registration is created that do not see it
        self.unreplicated = 0
        self.slept: list[float] = []

    # -- the CLI ---------------------------------------------------------------------------
    def __call__(self, argv: list[str]) -> str:
        self.calls.append(argv)
        if argv[:3] == ["azd", "env", "set"]:
            self.env[argv[3]] = argv[4]
            return ""
        if argv[:3] == ["az", "cloud", "show"]:
            return "https://graph.microsoft.com/\n"
        if argv[:3] == ["az", "account", "show"]:
            return (TENANT if "--subscription" in argv else self.signed_in_tenant) + "\n"
        assert argv[:2] == ["az", "rest"], f"unexpected command {argv}"
        options = dict(zip(argv[2::2], argv[3::2]))
        body = None
        if "--body" in options:
            body = json.loads(Path(options["--body"].removeprefix("@")).read_text())
            assert options["--headers"] == "Content-Type=application/json"
        url = urllib.parse.urlsplit(options["--url"])
        assert url.netloc == "graph.microsoft.com" and url.path.startswith("/v1.0/"), url
        answer = self.graph(options["--method"], url.path.removeprefix("/v1.0/"), url.query, body)
        return "" if answer is None else json.dumps(answer)

    @staticmethod
    def fail(status: str, code: str, message: str):
        raise hook.HookError(f"`az rest ...` failed: {status}({{\"error\":{{\"code\":\"{code}\",\"message\":\"{message}\"}}}})")

    # -- Microsoft Graph -----------------------------------------------------------------------
    def graph(self, method: str, path: str, query: str, body: Any) -> Any:
        collection, _, object_id = path.partition("/")
        if self.unreplicated:
            self.unreplicated -= 1
            if collection == "servicePrincipals" and method == "POST":
                self.fail("Bad Request", "Request_BadRequest",
                          f"The appId {body['appId']} of the service principal does not reference a valid application object.")
            self.fail("Not Found", "Request_ResourceNotFound", f"Resource {object_id} does not exist.")
        if method != "GET":
            self.writes.append((method, path, copy.deepcopy(body)))
        store = {"applications": self.applications, "servicePrincipals": self.principals}[collection]
        if method == "GET":
            app_id = re.fullmatch(r"\$filter=appId eq '([^']+)'", urllib.parse.unquote(query)).group(1)
            return {"value": [copy.deepcopy(o) for o in store.values() if o["appId"] == app_id]}
        if method == "POST" and collection == "applications":
            app = {"id": str(uuid.uuid4()), "appId": str(uuid.uuid4()), "identifierUris": [], "appRoles": [],
                   "api": {"requestedAccessTokenVersion": None, "oauth2PermissionScopes": [],
                           "preAuthorizedApplications": []}}
            self.patch_application(app, body)
            self.applications[app["id"]] = app
            self.unreplicated = self.replication_lag
            return copy.deepcopy(app)
        if method == "POST":
            assert any(a["appId"] == body["appId"] for a in self.applications.values())
            principal = {"id": str(uuid.uuid4()), **body}
            self.principals[principal["id"]] = principal
            return copy.deepcopy(principal)
        if collection == "applications":
            self.patch_application(self.applications[object_id], body)
        else:
            self.principals[object_id].update(body)
        return None

    def patch_application(self, app: dict[str, Any], body: dict[str, Any]) -> None:
        for name in ("displayName", "signInAudience", "identifierUris"):
            if name in body:
                app[name] = body[name]
        if "appRoles" in body:
            self.check_entitlements(app["appRoles"], body["appRoles"])
            app["appRoles"] = [{"origin": "Application", **r} for r in body["appRoles"]]
        if "api" in body:
            # The stricter reading of PATCH on a complex property: the whole `api` is replaced.
            api = body["api"]
            scopes = api.get("oauth2PermissionScopes", [])
            self.check_entitlements(app["api"]["oauth2PermissionScopes"], scopes)
            existing = {s["id"] for s in app["api"]["oauth2PermissionScopes"]}
            for pre in api.get("preAuthorizedApplications", []):
                if not set(pre["delegatedPermissionIds"]) <= existing:
                    self.fail("Bad Request", "InvalidValue", "a pre-authorization names a scope the application lacks")
            app["api"] = {"requestedAccessTokenVersion": api.get("requestedAccessTokenVersion"),
                          "oauth2PermissionScopes": [{"origin": "Application", **e} for e in scopes],
                          "preAuthorizedApplications": api.get("preAuthorizedApplications", [])}

    def check_entitlements(self, current: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        """An enabled app role or scope may only stay as it is or be disabled as it is; `origin` is
        read-only and must not be sent."""
        if any("origin" in e for e in new):
            self.fail("Bad Request", "InvalidValue", "origin is read-only")
        by_id = {e["id"]: e for e in new}
        for entitlement in current:
            replacement = by_id.get(entitlement["id"])
            unchanged = replacement is not None and all(
                replacement.get(k) == v for k, v in entitlement.items() if k not in ("isEnabled", "origin"))
            if entitlement.get("isEnabled") and not unchanged:
                self.fail("Bad Request", "CannotDeleteOrUpdateEnabledEntitlement",
                          f"{entitlement['value']} is enabled: disable it before changing or removing it")

    # -- helpers -----------------------------------------------------------------------------
    def run(self) -> int:
        return hook.main(environ=dict(self.env), run=self, sleep=self.slept.append)

    def the_application(self) -> dict[str, Any]:
        (app,) = self.applications.values()
        return app


def as_declared(app: dict[str, Any]) -> None:
    assert [{k: r[k] for k in declared} for r, declared in zip(app["appRoles"], MANIFEST["appRoles"])] == \
        MANIFEST["appRoles"]
    assert len(app["appRoles"]) == len(MANIFEST["appRoles"])
    assert app["identifierUris"] == [f"api://{app['appId']}"]
    assert app["signInAudience"] == "AzureADMyOrg"
    api = {**app["api"], "oauth2PermissionScopes": [{k: v for k, v in e.items() if k != "origin"}
                                                     for e in app["api"]["oauth2PermissionScopes"]]}
    assert api == MANIFEST["api"]


# ---------------------------------------------------------------------------------------
# The hook
# ---------------------------------------------------------------------------------------

def test_the_first_run_creates_the_registration_and_its_service_principal(capsys):
    azure = FakeAzure()
    assert azure.run() == 0
    app = azure.the_application()
    as_declared(app)
    assert app["displayName"] == "synthetic-data-containment-prod"
    (principal,) = azure.principals.values()
    assert principal == {"id": principal["id"], "appId": app["appId"], "appRoleAssignmentRequired": True}
    # azd's environment names it, and says the hook made it.
    assert azure.env["ENTRA_CLIENT_ID"] == app["appId"]
    assert azure.env["ENTRA_APP_MANAGED_BY_HOOK"] == "true"
    # The client ID is recorded right after the registration exists, before anything else.
    created = azure.calls.index(next(c for c in azure.calls if c[:2] == ["az", "rest"] and "POST" in c))
    assert azure.calls[created + 1][:4] == ["azd", "env", "set", "ENTRA_CLIENT_ID"]
    assert "created the app registration synthetic-data-containment-prod" in capsys.readouterr().out


def test_a_second_run_finds_it_by_client_id_and_writes_nothing(capsys):
    azure = FakeAzure()
    azure.run()
    writes = len(azure.writes)
    assert azure.run() == 0
    assert len(azure.writes) == writes
    assert len(azure.applications) == 1 and len(azure.principals) == 1
    assert "as declared, nothing changed" in capsys.readouterr().out.splitlines()[-1]


def test_an_existing_registration_set_by_hand_is_left_alone(capsys):
    azure = FakeAzure({"ENTRA_CLIENT_ID": "11111111-2222-3333-4444-555555555555"})
    assert azure.run() == 0
    assert azure.calls == [], "the hook must not touch (or even read) a registration it does not manage"
    assert "left as it is" in capsys.readouterr().out


def test_a_registration_edited_by_hand_is_brought_back_disabling_first():
    azure = FakeAzure()
    azure.run()
    app = azure.the_application()
    # Someone rewords a role, adds one, and pre-authorizes another client.
    app["appRoles"][0]["description"] = "Read everything"
    app["appRoles"].append({"id": str(uuid.uuid4()), "value": "Containment.Everything", "isEnabled": True,
                            "allowedMemberTypes": ["User"], "displayName": "All", "description": "All"})
    app["api"]["preAuthorizedApplications"].append({"appId": str(uuid.uuid4()),
                                                    "delegatedPermissionIds": [MANIFEST["api"]["oauth2PermissionScopes"][0]["id"]]})
    azure.writes.clear()
    assert azure.run() == 0  # the fake refuses to change or remove an enabled role
    as_declared(azure.the_application())
    first = azure.writes[0][2]
    assert {r["value"]: r["isEnabled"] for r in first["appRoles"]} == {
        **{v: True for v in ROLES}, "Containment.Read": False, "Containment.Everything": False}


def test_a_removed_scope_is_disabled_and_its_pre_authorization_dropped_first():
    azure = FakeAzure()
    azure.run()
    app = azure.the_application()
    extra = {"id": str(uuid.uuid4()), "value": "everything", "type": "Admin", "isEnabled": True,
             "adminConsentDisplayName": "x", "adminConsentDescription": "x"}
    app["api"]["oauth2PermissionScopes"].append(extra)
    app["api"]["preAuthorizedApplications"].append({"appId": str(uuid.uuid4()), "delegatedPermissionIds": [extra["id"]]})
    assert azure.run() == 0
    as_declared(azure.the_application())


def test_a_scope_deleted_by_hand_is_restored_before_it_is_pre_authorized_again():
    azure = FakeAzure()
    azure.run()
    app = azure.the_application()
    app["api"]["oauth2PermissionScopes"] = []
    app["api"]["preAuthorizedApplications"] = []
    azure.writes.clear()
    assert azure.run() == 0  # the fake refuses a pre-authorization of a scope it does not have yet
    as_declared(azure.the_application())
    assert [w[2]["api"]["preAuthorizedApplications"] for w in azure.writes] == [[], MANIFEST["api"]["preAuthorizedApplications"]]


def test_a_service_principal_that_stopped_requiring_assignment_requires_it_again():
    azure = FakeAzure()
    azure.run()
    (principal,) = azure.principals.values()
    principal["appRoleAssignmentRequired"] = False
    assert azure.run() == 0
    assert principal["appRoleAssignmentRequired"] is True


def test_a_new_registration_not_yet_replicated_is_waited_for():
    azure = FakeAzure(replication_lag=3)
    assert azure.run() == 0
    as_declared(azure.the_application())
    assert azure.slept == [hook.REPLICATION_WAIT_SECONDS] * 3


def test_a_registration_the_hook_made_that_is_gone_stops_it_and_nothing_is_created(capsys):
    azure = FakeAzure({"ENTRA_CLIENT_ID": "11111111-2222-3333-4444-555555555555", "ENTRA_APP_MANAGED_BY_HOOK": "true"})
    assert azure.run() == 1
    assert azure.writes == [] and azure.applications == {}
    assert "no longer exists" in capsys.readouterr().err


def test_a_cli_signed_in_to_another_tenant_stops_it_before_any_graph_call(capsys):
    azure = FakeAzure(signed_in_tenant="99999999-0000-0000-0000-000000000009")
    assert azure.run() == 1
    assert not any(c[:2] == ["az", "rest"] for c in azure.calls)
    assert f"az login --tenant {TENANT}" in capsys.readouterr().err


def test_what_it_cannot_check_or_name_it_says(capsys):
    azure = FakeAzure()
    del azure.env["AZURE_SUBSCRIPTION_ID"]
    assert azure.run() == 0
    assert "was not compared" in capsys.readouterr().err
    outside_azd = FakeAzure()
    del outside_azd.env["AZURE_ENV_NAME"]
    assert outside_azd.run() == 1
    assert outside_azd.applications == {}
    assert "runs under azd" in capsys.readouterr().err


def test_a_graph_error_that_is_not_replication_is_not_retried(capsys):
    azure = FakeAzure()

    def refuse(argv: list[str]) -> str:
        if argv[:2] == ["az", "rest"]:
            raise hook.HookError("`az rest ...` failed: Forbidden(Authorization_RequestDenied)")
        return azure(argv)

    assert hook.main(environ=dict(azure.env), run=refuse, sleep=azure.slept.append) == 1
    assert azure.slept == []
    assert "Authorization_RequestDenied" in capsys.readouterr().err


@pytest.mark.parametrize("platform", ["posix", "windows"])
def test_azd_runs_the_hook_before_every_provision(platform):
    import yaml

    azure = yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())
    step = azure["hooks"]["preprovision"][platform]
    assert step["run"].split()[-1] == "infra/hooks/entra_app_registration.py"
    assert step["run"].split()[0] in ("python", "python3")
    assert step["continueOnError"] is False
