"""infra/ checked offline, against the code it deploys: no Bicep compiler runs here, so every
.bicep file is parsed by two independent parsers (pycep, tree-sitter-bicep), scanned by
checkov with the project's own checks (tests/infra/checks/), and compared with what the code
declares: the permissions it needs (containment.deployment.required_permissions()), the
settings it reads (containment.core.settings.SETTINGS) and the events each function handles
(containment.deployment.EVENT_SUBSCRIPTIONS)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from containment.core.settings import SETTINGS
from containment.deployment import CONTAINMENT_PATH, EVENT_SUBSCRIPTIONS, required_permissions
from localazure.shared import REPO_ROOT

INFRA = REPO_ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
CHECKOV = REPO_ROOT / ".venv-tools" / "bin" / "checkov"
CUSTOM_CHECKS = REPO_ROOT / "tests" / "infra" / "checks"

# Settings the deployment derives instead of taking a parameter: this deployment's identity,
# workspace, notification topic and resource group. LOCAL_AZURE_* are development only and never set in Azure.
DERIVED_SETTINGS = {
    "CONTAINMENT_SELF_PRINCIPAL_ID": "identity.properties.principalId",
    "CONTAINMENT_LOG_WORKSPACE_ID": "logWorkspaceCustomerId",
    "CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID": "logWorkspaceResourceId",
    "CONTAINMENT_NOTIFY_TOPIC_ENDPOINT": "notificationTopic.properties.endpoint",
    "CONTAINMENT_OWN_SCOPES": "resourceGroup().id",
}
DEPLOYED_SETTINGS = [s for s in SETTINGS if not s.name.startswith("LOCAL_AZURE_")]

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


# ---------------------------------------------------------------------------------------
# Reading the Bicep
# ---------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def bicep(relative: str) -> dict[str, Any]:
    """A .bicep file as pycep's JSON (identifiers appear as bare strings)."""
    from pycep import BicepParser

    return BicepParser().parse(file_path=INFRA / relative)


def tree_sitter_errors(source: bytes) -> list[str]:
    import tree_sitter
    import tree_sitter_bicep

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))
    errors: list[str] = []

    def walk(node) -> None:
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            errors.append(f"line {line + 1}, column {column + 1}: {node.type}")
        for child in node.children:
            walk(child)

    walk(parser.parse(source).root_node)
    return errors


def ref(node: Any) -> str:
    """A property accessor as the dotted text Bicep shows (`route.eventTypes`,
    `resourceGroup().id`)."""
    if isinstance(node, str):
        return node
    if "function" in node and not any(node["function"]["parameters"].values()):
        name = node["function"]["type"]
        return re.sub(r"_(\w)", lambda m: m.group(1).upper(), name) + "()"
    operator = node["operator"]
    assert operator["type"] == "property_accessor", node
    return f"{ref(operator['operands']['operand_1'])}.{ref(operator['operands']['operand_2'])}"


def resource(relative: str, name: str) -> dict[str, Any]:
    """A resource's body, loops and conditions unwrapped."""
    config = bicep(relative)["resources"][name]["config"]
    while "loop_type" in config or "condition" in config and "config" in config:
        config = config["config"]
    return config


def variable(relative: str, name: str) -> Any:
    return bicep(relative)["variables"][name]["value"]


def unescape(text: str) -> str:
    return text.replace("\\'", "'")


# ---------------------------------------------------------------------------------------
# Every .bicep file parses
# ---------------------------------------------------------------------------------------

def test_infra_declares_the_deployment():
    names = {path.relative_to(INFRA).as_posix() for path in BICEP_FILES}
    assert {"main.bicep", "app/function.bicep", "app/watch-subscription.bicep", "app/event-subscriptions.bicep",
            "app/logs-access.bicep", "app/storage-logs.bicep"} <= names
    assert (INFRA / "main.parameters.json").is_file()
    assert (REPO_ROOT / "azure.yaml").is_file()


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses(path: Path):
    from pycep import BicepParser

    assert tree_sitter_errors(path.read_bytes()) == [], f"tree-sitter-bicep cannot parse {path}"
    parsed = BicepParser().parse(file_path=path)  # raises on a syntax error
    assert parsed.get("resources") or parsed.get("modules"), f"{path} declares nothing"


def test_every_module_reference_resolves():
    for path in BICEP_FILES:
        for name, module in (bicep(path.relative_to(INFRA).as_posix()).get("modules") or {}).items():
            target = (path.parent / module["detail"]["path"]).resolve()
            assert module["type"] == "local", f"{path}: module {name} is a registry reference, not checkable offline"
            assert target.is_file(), f"{path}: module {name} points at {target}, which does not exist"


def test_the_parsers_reject_broken_bicep(tmp_path: Path):
    from pycep import BicepParser

    broken = tmp_path / "broken.bicep"
    broken.write_text("resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
                      "  name: 'x'\n  properties: [for a in b: {]\n}\n")
    assert tree_sitter_errors(broken.read_bytes())
    with pytest.raises(Exception):
        BicepParser().parse(file_path=broken)


# ---------------------------------------------------------------------------------------
# checkov, with the project's own checks
# ---------------------------------------------------------------------------------------

# Each of the project's checks fails on one of these resources (the scan must be able to fail).
KNOWN_BAD = """
resource publicBlobs 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stbadpublic'
  location: 'westeurope'
  kind: 'StorageV2'
  sku: { name: 'Standard_GRS' }
  properties: {
    allowBlobPublicAccess: true
    allowSharedKeyAccess: false
  }
}

resource sharedKey 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'stbadsharedkey'
  location: 'westeurope'
  kind: 'StorageV2'
  sku: { name: 'Standard_GRS' }
  properties: {
    allowBlobPublicAccess: false
  }
}

resource plainHttp 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-bad'
  location: 'westeurope'
  kind: 'functionapp,linux'
  properties: {
    httpsOnly: false
  }
}

resource anonymousAllowed 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-bad-anonymous'
  location: 'westeurope'
  kind: 'functionapp,linux'
  properties: {
    httpsOnly: true
  }
}

resource anonymousAllowedAuth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: anonymousAllowed
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
  }
}

resource authSwitchedOff 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-bad-auth-off'
  location: 'westeurope'
  kind: 'functionapp,linux'
  properties: {
    httpsOnly: true
  }
}

resource authSwitchedOffAuth 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: authSwitchedOff
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: false }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
    }
  }
}

var everything = ['Microsoft.Storage/storageAccounts/*', 'Microsoft.Storage/storageAccounts/listKeys/action']

resource wildcardRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid('bad')
  properties: {
    roleName: 'bad'
    assignableScopes: [subscription().id]
    permissions: [
      { actions: everything }
    ]
  }
}

resource appendableRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: 365
    allowProtectedAppendWrites: true
  }
}
"""
CUSTOM_CHECK_FAILURES = {
    "CKV_SDC_1": {"publicBlobs"},
    "CKV_SDC_2": {"sharedKey"},
    "CKV_SDC_3": {"plainHttp"},
    "CKV_SDC_4": {"wildcardRole"},
    # No authentication at all, authentication that lets anonymous requests through, and
    # authentication switched off.
    "CKV_SDC_5": {"plainHttp", "anonymousAllowed", "authSwitchedOff"},
    "CKV_SDC_6": {"appendableRetention"},
}
# What the project's checks must have passed in infra/.
CUSTOM_CHECK_PASSES = {
    "CKV_SDC_1": {"storage"},
    "CKV_SDC_2": {"storage"},
    "CKV_SDC_3": {"site"},
    "CKV_SDC_4": {"containmentRole", "logReader"},
    "CKV_SDC_5": {"site"},
    "CKV_SDC_6": {"digestRetention"},
}


@pytest.fixture(scope="session")
def checkov(tmp_path_factory) -> dict[str, dict[str, list[dict]]]:
    """One checkov run over infra/ and the known-bad file: results by directory and outcome."""
    if not CHECKOV.is_file():
        message = f"checkov is not installed at {CHECKOV}: run `make setup`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # One directory, one report: a copy of infra/ beside the known-bad file.
    root = tmp_path_factory.mktemp("checkov")
    shutil.copytree(INFRA, root / "infra")
    bad = root / "known-bad"
    bad.mkdir()
    (bad / "bad.bicep").write_text(KNOWN_BAD)
    run = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "--skip-download", "--output", "json", "--compact",
         "--external-checks-dir", str(CUSTOM_CHECKS), "-d", str(root)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no JSON (exit {run.returncode}):\n{run.stderr[-3000:]}")
    report = report if isinstance(report, dict) else next(r for r in report if r.get("check_type") == "bicep")
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")
    results: dict[str, dict[str, list[dict]]] = {"infra": {}, "bad": {}}
    for outcome in ("passed_checks", "failed_checks", "skipped_checks"):
        for record in report["results"].get(outcome, []):
            where = "bad" if Path(record["file_abs_path"]).resolve().is_relative_to(bad.resolve()) else "infra"
            results[where].setdefault(outcome, []).append(record)
    return results


def _symbol(record: dict) -> str:
    return record["resource"].rsplit(".", 1)[-1]


def test_checkov_finds_no_failed_check_in_infra(checkov):
    failed = [f"{r['check_id']} {r['check_name']}: {r['file_path']} {r['resource']}"
              for r in checkov["infra"].get("failed_checks", [])]
    assert failed == [], "\n".join(failed)
    assert len(checkov["infra"].get("passed_checks", [])) >= 20, "checkov scanned (almost) nothing in infra/"


def test_every_skipped_checkov_check_says_why(checkov):
    for record in checkov["infra"].get("skipped_checks", []):
        reason = (record["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) > 40, f"{record['check_id']} on {record['resource']} is skipped without a reason"


def test_the_projects_checks_pass_on_infra(checkov):
    passed: dict[str, set[str]] = {}
    for record in checkov["infra"].get("passed_checks", []):
        passed.setdefault(record["check_id"], set()).add(_symbol(record))
    for check, symbols in CUSTOM_CHECK_PASSES.items():
        assert symbols <= passed.get(check, set()), f"{check} did not pass on {symbols - passed.get(check, set())}"


def test_the_projects_checks_fail_what_they_forbid(checkov):
    failed: dict[str, set[str]] = {}
    for record in checkov["bad"].get("failed_checks", []):
        failed.setdefault(record["check_id"], set()).add(_symbol(record))
    for check, symbols in CUSTOM_CHECK_FAILURES.items():
        assert failed.get(check, set()) == symbols, (check, failed.get(check))


# ---------------------------------------------------------------------------------------
# Least privilege: the roles grant exactly what the code performs
# ---------------------------------------------------------------------------------------

def _role_actions(relative: str, symbol: str) -> list[str]:
    properties = resource(relative, symbol)["properties"]
    assert properties["type"] == "CustomRole"
    (block,) = properties["permissions"]
    actions = block["actions"]
    if isinstance(actions, str):  # a variable of the same file
        actions = variable(relative, actions)
    assert all(isinstance(a, str) for a in actions), actions
    assert block.get("dataActions") in (None, []) and block.get("notActions") in (None, [])
    return actions


def deployed_actions() -> tuple[list[str], list[str]]:
    return (_role_actions("app/watch-subscription.bicep", "containmentRole"),
            _role_actions("app/logs-access.bicep", "logReader"))


def test_the_roles_grant_exactly_the_permissions_the_code_needs():
    subscription_role, workspace_role = deployed_actions()
    granted = subscription_role + workspace_role
    assert len(granted) == len({a.lower() for a in granted}), "an action is granted twice"
    needed = {p.lower(): p for p in required_permissions()}
    missing = sorted(needed[p] for p in needed.keys() - {a.lower() for a in granted})
    extra = sorted(a for a in granted if a.lower() not in needed)
    assert not missing, f"the code performs operations the roles do not grant: {missing}"
    assert not extra, f"the roles grant operations the code never performs: {extra}"


def test_log_analytics_is_granted_on_the_workspace_alone():
    subscription_role, workspace_role = deployed_actions()
    assert all(a.startswith("Microsoft.OperationalInsights/") for a in workspace_role)
    assert not any(a.startswith("Microsoft.OperationalInsights/") for a in subscription_role)
    assignment = resource("app/logs-access.bicep", "logReaderAssignment")
    assert assignment["scope"] == "workspace"
    assert bicep("app/logs-access.bicep")["resources"]["workspace"]["type"] == "Microsoft.OperationalInsights/workspaces"
    role_id = assignment["properties"]["roleDefinitionId"]["function"]
    assert role_id["type"] == "subscription_resource_id"
    assert ref(role_id["parameters"]["resource_name_1"]) == "logReader.name"


def test_no_role_grants_wildcards_or_keys():
    for action in sum(deployed_actions(), []):
        assert "*" not in action
        assert not re.search(r"/(listkeys|listaccountsas|listservicesas)/action$", action, re.IGNORECASE), action


def test_the_containment_role_is_assigned_at_the_subscription_to_the_app_identity():
    role = resource("app/watch-subscription.bicep", "containmentRole")
    assert role["properties"]["assignableScopes"] == [{"operator": {"type": "property_accessor", "operands": {
        "operand_1": {"function": {"type": "subscription", "parameters": {"subscription_id": None}}},
        "operand_2": "id"}}}]
    assignment = resource("app/watch-subscription.bicep", "containmentAssignment")
    assert "scope" not in assignment  # the deployment's scope: the watched subscription
    assert ref(assignment["properties"]["roleDefinitionId"]) == "containmentRole.id"
    assert assignment["properties"]["principalId"] == "principalId"
    assert assignment["properties"]["conditionVersion"] == "2.0"
    main = bicep("main.bicep")["modules"]["watch"]["config"]["config"]
    assert ref(main["params"]["principalId"]) == "identity.outputs.principalId"


# A small evaluator for the ABAC condition the Bicep renders: the grammar of Azure role
# assignment conditions as far as the condition uses it.
_TOKEN = re.compile(r"\s*(\(|\)|!|AND\b|OR\b|ActionMatches\{'[^']*'\}|@(?:Request|Resource)\[[^\]]+\]\s+\S+\s+\{[^}]*\})")


def abac_allows(condition: str, action: str, role: str, principal: str) -> bool:
    """Whether the condition lets `action` through on an assignment of `role` to `principal`.
    Evaluated as Azure does, left to right with short-circuit: an expression that names an
    attribute the action does not have is an error only if it is reached."""
    tokens, position = [], 0
    while position < len(condition.rstrip()):
        match = _TOKEN.match(condition, position)
        assert match, f"cannot read the condition at: {condition[position:position + 60]!r}"
        tokens.append(match.group(1))
        position = match.end()

    def expression(i: int, live: bool) -> tuple[bool, int]:
        value, i = conjunction(i, live)
        while i < len(tokens) and tokens[i] == "OR":
            right, i = conjunction(i + 1, live and not value)
            value = value or right
        return value, i

    def conjunction(i: int, live: bool) -> tuple[bool, int]:
        value, i = atom(i, live)
        while i < len(tokens) and tokens[i] == "AND":
            right, i = atom(i + 1, live and value)
            value = value and right
        return value, i

    def atom(i: int, live: bool) -> tuple[bool, int]:
        token = tokens[i]
        if token == "!":
            value, i = atom(i + 1, live)
            return not value, i
        if token == "(":
            value, i = expression(i + 1, live)
            assert tokens[i] == ")"
            return value, i + 1
        if token.startswith("ActionMatches"):
            return token[len("ActionMatches{'"):-2] == action, i + 1
        source, attribute, operator, values = re.match(
            r"@(\w+)\[([^\]]+)\]\s+(\S+)\s+\{([^}]*)\}", token).groups()
        assert operator == "ForAnyOfAllValues:GuidNotEquals", operator
        if not live:
            return False, i + 1
        expected_source = "Request" if action.endswith("/write") else "Resource"
        assert source == expected_source, f"{action} has no {source} attributes: {token}"
        actual = {"Microsoft.Authorization/roleAssignments:RoleDefinitionId": role,
                  "Microsoft.Authorization/roleAssignments:PrincipalId": principal}[attribute]
        return actual.lower() not in {v.strip().lower() for v in values.split(",")}, i + 1

    value, end = expression(0, True)
    assert end == len(tokens), "trailing tokens in the condition"
    return value


def rendered_condition(self_id: str, extra_roles: list[str]) -> str:
    """The assignment's condition with its variables substituted, as ARM would render it."""
    path = "app/watch-subscription.bicep"
    values = {"principalId": self_id}
    join = variable(path, "protectedRoles")["function"]
    assert join["type"] == "join"
    union = join["parameters"]["input_array"]["function"]
    assert union["type"] == "union" and union["parameters"] == {
        "arg_1": "privilegedRoleDefinitionIds", "arg_2": "protectedRoleDefinitionIds"}
    roles = list(dict.fromkeys(variable(path, "privilegedRoleDefinitionIds") + extra_roles))
    values["protectedRoles"] = join["parameters"]["delimiter"].join(roles)

    def render(text: str) -> str:
        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name in values:
                return values[name]
            return render(unescape(variable(path, name)))
        return re.sub(r"\$\{(\w+)\}", substitute, unescape(text))

    condition = resource(path, "containmentAssignment")["properties"]["condition"]
    if re.fullmatch(r"\w+", condition):  # a variable's name, not an expression
        condition = variable(path, condition)
    return render(condition)


def test_the_apps_identity_only_takes_access_away():
    """No roleAssignments/write in the role (a released role deletion is a person's to
    apply), and an ABAC condition on deletions: never access administration, never itself."""
    me, someone = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    actions, _ = deployed_actions()
    delete, write = "Microsoft.Authorization/roleAssignments/delete", "Microsoft.Authorization/roleAssignments/write"
    assert write not in actions and delete in actions
    condition = rendered_condition(me, [])
    # The data-access grants the app contains: it may delete them.
    for role in (STORAGE_BLOB_DATA_READER, CONTRIBUTOR):
        assert abac_allows(condition, delete, role, someone)
    # Access administration, whoever holds it: never.
    for role in (OWNER, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR):
        assert not abac_allows(condition, delete, role, someone)
    # Its own assignments: never deleted.
    assert not abac_allows(condition, delete, STORAGE_BLOB_DATA_READER, me)
    # Every other action of the role is untouched by the condition.
    for action in actions:
        if action != delete:
            assert abac_allows(condition, action, OWNER, me)
    # Roles added by parameter are protected too.
    custom = "33333333-3333-3333-3333-333333333333"
    assert not abac_allows(rendered_condition(me, [custom]), delete, custom, someone)


# ---------------------------------------------------------------------------------------
# App settings: every setting the code reads, with the code's default
# ---------------------------------------------------------------------------------------

def _main_settings() -> dict[str, str]:
    """CONTAINMENT_* name -> the main.bicep parameter it is set from."""
    settings = bicep("main.bicep")["modules"]["app"]["config"]["params"]["containmentSettings"]
    return dict(settings)


def test_every_setting_the_code_reads_is_deployed_with_its_default():
    parameters = bicep("main.bicep")["parameters"]
    settings = _main_settings()
    for setting in DEPLOYED_SETTINGS:
        if setting.name in DERIVED_SETTINGS:
            continue
        parameter = settings.get(setting.name)
        assert parameter is not None, f"{setting.name} is not among the deployed app settings"
        assert parameters[parameter]["type"] == "string", parameter
        assert parameters[parameter].get("default") == setting.default, (setting.name, parameters[parameter])
    unknown = set(settings) - {s.name for s in DEPLOYED_SETTINGS}
    assert not unknown, f"infra sets settings the code does not read: {unknown}"
    assert parameters["containmentMode"]["default"] == "dry-run"


def test_the_derived_settings_are_this_deployments_identity_and_workspace():
    host = variable("app/function.bicep", "hostSettings")
    for name, source in DERIVED_SETTINGS.items():
        assert ref(host[name]) == source, name
    assert ref(host["AZURE_CLIENT_ID"]) == "identity.properties.clientId"
    main = bicep("main.bicep")["modules"]["app"]["config"]["params"]
    assert ref(main["logWorkspaceCustomerId"]) == "logsAccess.outputs.customerId"
    assert ref(main["logWorkspaceResourceId"]) == "workspaceId"  # the workspace storage-logs.bicep sends to
    assert bicep("app/logs-access.bicep")["outputs"]["customerId"]["value"] == {"operator": {
        "type": "property_accessor", "operands": {"operand_1": "workspace", "operand_2": {"operator": {
            "type": "property_accessor", "operands": {"operand_1": "properties", "operand_2": "customerId"}}}}}}


def test_the_site_gets_every_setting_and_identity_based_storage():
    app_settings = variable("app/function.bicep", "appSettings")["function"]
    assert app_settings["type"] == "union"
    assert set(app_settings["parameters"].values()) == {"containmentSettings", "hostSettings"}
    loop = resource("app/function.bicep", "site")["properties"]["siteConfig"]["appSettings"]
    assert loop["loop_type"]["detail"]["array_name"] == {"function": {"type": "items", "parameters": {
        "arg_1": "appSettings"}}}
    host = variable("app/function.bicep", "hostSettings")
    assert host["AzureWebJobsStorage__credential"] == "managedidentity"
    assert ref(host["AzureWebJobsStorage__accountName"]) == "storage.name"
    assert ref(host["AzureWebJobsStorage__clientId"]) == "identity.properties.clientId"
    assert "AzureWebJobsStorage" not in host and "FUNCTIONS_WORKER_RUNTIME" not in host


def test_no_development_setting_reaches_azure():
    for path in [*BICEP_FILES, INFRA / "main.parameters.json"]:
        assert "LOCAL_AZURE_" not in path.read_text(), path


def test_the_parameters_file_carries_every_default():
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    settings = _main_settings()
    by_name = {s.name: s for s in SETTINGS}
    seen = set()
    for parameter, entry in parameters.items():
        match = re.fullmatch(r"\$\{(\w+)(?:=(.*))?\}", entry["value"], re.DOTALL)
        assert match, f"{parameter}: {entry['value']!r} is not an azd ${{VAR=default}} reference"
        variable_name, default = match.groups()
        assert parameter in bicep("main.bicep")["parameters"], f"{parameter} is not a parameter of main.bicep"
        if variable_name in by_name:
            assert settings.get(variable_name) == parameter, (variable_name, parameter)
            assert default == by_name[variable_name].default, (variable_name, default)
            seen.add(variable_name)
        else:
            assert not variable_name.startswith("CONTAINMENT_"), f"{variable_name} looks like an app setting"
    assert seen == set(settings), f"settings azd cannot set: {set(settings) - seen}"
    assert parameters["eventSubscriptionsEnabled"]["value"] == "${EVENT_SUBSCRIPTIONS_ENABLED=false}"


def test_the_local_sample_has_every_deployed_setting_with_its_default():
    values = json.loads((REPO_ROOT / "local.settings.sample.json").read_text())["Values"]
    for setting in DEPLOYED_SETTINGS:
        assert values.get(setting.name) == setting.default, setting.name


# ---------------------------------------------------------------------------------------
# Storage the app uses, Flex Consumption shape
# ---------------------------------------------------------------------------------------

def test_the_ledger_and_queues_are_named_by_the_settings():
    path = "app/function.bicep"
    assert ref(resource(path, "containmentQueue")["name"]) == "containmentSettings.CONTAINMENT_QUEUE"
    assert resource(path, "poisonQueue")["name"] == "${containmentSettings.CONTAINMENT_QUEUE}-poison"
    assert ref(resource(path, "ledgerTable")["name"]) == "containmentSettings.CONTAINMENT_LEDGER_TABLE"


def test_the_ledgers_chains_and_digests_are_declared_and_the_digests_are_write_once():
    path = "app/function.bicep"
    assert ref(resource(path, "chainTable")["name"]) == "containmentSettings.CONTAINMENT_LEDGER_CHAIN_TABLE"
    assert ref(resource(path, "digestContainer")["name"]) == "containmentSettings.CONTAINMENT_LEDGER_DIGEST_CONTAINER"
    policy = bicep(path)["resources"]["digestRetention"]
    assert policy["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"
    assert resource(path, "digestRetention") == {"parent": "digestContainer", "name": "default", "properties": {
        "immutabilityPeriodSinceCreationInDays": "ledgerDigestRetentionDays", "allowProtectedAppendWrites": False}}
    assert bicep("main.bicep")["modules"]["app"]["config"]["params"]["ledgerDigestRetentionDays"] == \
        "ledgerDigestRetentionDays"
    assert bicep("main.bicep")["parameters"]["ledgerDigestRetentionDays"]["default"] >= 1
    # Those who read the ledger can verify it: the digests are theirs to read, never to write.
    assert resource(path, "digestReaders")["scope"] == "digestContainer"
    role = resource(path, "digestReaders")["properties"]["roleDefinitionId"]["function"]["parameters"]
    assert variable(path, role["resource_name_1"]) == STORAGE_BLOB_DATA_READER
    assert {"chainTable", "digestRetention"} <= set(resource(path, "site")["dependsOn"])


def test_the_identitys_data_roles_are_scoped_to_the_apps_own_resources():
    path = "app/function.bicep"
    roles = bicep(path)["resources"]["storageRoles"]["config"]["loop_type"]["detail"]["array_name"]
    assert {variable(path, r) for r in roles} == {
        "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
    }
    assert resource(path, "storageRoles")["scope"] == "storage"
    assert resource(path, "notificationSender")["scope"] == "notificationTopic"
    assert resource(path, "metricsPublisher")["scope"] == "applicationInsights"
    for path in BICEP_FILES:
        for name, body in bicep(path.relative_to(INFRA).as_posix())["resources"].items():
            if body["type"] == "Microsoft.Authorization/roleAssignments" and path.name != "watch-subscription.bicep":
                config = resource(path.relative_to(INFRA).as_posix(), name)
                assert "scope" in config, f"{path}:{name} is assigned at the whole deployment scope"


def test_the_function_app_is_flex_consumption_python_311_https_only():
    site = resource("app/function.bicep", "site")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["httpsOnly"] is True
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    plan = resource("app/function.bicep", "plan")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    storage = resource("app/function.bicep", "storage")["properties"]
    assert storage["allowBlobPublicAccess"] is False and storage["allowSharedKeyAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"


def test_every_function_on_the_containment_path_is_kept_always_ready():
    """The functions an exposure passes through before its containment write (each Event Grid
    trigger, and the queue trigger on the containment queue) are the code's CONTAINMENT_PATH,
    and infra keeps alwaysReadyInstances of each: Flex Consumption scales an Event Grid or
    queue function on instances of its own, named `function:<name>`
    (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#per-function-scaling)."""
    on_the_path = {name for name, trigger in _triggers().items()
                   if trigger.type == "eventGridTrigger"
                   or trigger.type == "queueTrigger" and trigger.queue_name == "%CONTAINMENT_QUEUE%"}
    assert set(CONTAINMENT_PATH) == on_the_path
    path = "app/function.bicep"
    assert sorted(variable(path, "containmentPath")) == sorted(CONTAINMENT_PATH)
    entries = variable(path, "alwaysReady")
    assert entries["loop_type"]["detail"] == {"item_name": "name", "array_name": "containmentPath"}
    assert entries["config"] == {"name": "function:${name}", "instanceCount": "alwaysReadyInstances"}
    chosen = resource(path, "site")["properties"]["functionAppConfig"]["scaleAndConcurrency"]["alwaysReady"]
    assert chosen["operator"]["type"] == "conditional"
    assert chosen["operator"]["operands"] == {
        "condition": {"operator": {"type": "greater_than", "operands": {"operand_1": "alwaysReadyInstances",
                                                                         "operand_2": 0}}},
        "true_value": "alwaysReady", "false_value": []}
    main = bicep("main.bicep")
    assert main["modules"]["app"]["config"]["params"]["alwaysReadyInstances"] == "alwaysReadyInstances"
    parameter = main["parameters"]["alwaysReadyInstances"]
    assert parameter["type"] == "int" and parameter["default"] >= 1
    assert {"type": "min_value", "argument": 0} in parameter["decorators"], "0 (none, cold starts) is allowed"
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["alwaysReadyInstances"]["value"] == f"${{ALWAYS_READY_INSTANCES={parameter['default']}}}"


# ---------------------------------------------------------------------------------------
# App Service Authentication: Entra ID in front of the app, the Event Grid webhook alone on keys
# ---------------------------------------------------------------------------------------

# The host paths a trigger type is reached at without an Entra token (the Functions host checks
# the extension's system key there). A trigger type missing from both this table and
# TRIGGERS_WITHOUT_HTTP makes the test below fail until someone decides which it is.
WEBHOOK_PATHS = {"eventGridTrigger": "/runtime/webhooks/eventgrid"}
TRIGGERS_WITHOUT_HTTP = {"timerTrigger", "queueTrigger"}


def _triggers() -> dict[str, Any]:
    import function_app
    from localazure.functions_host import index

    return {name: next(b for b in fn.get_bindings() if b.type.endswith("Trigger"))
            for name, fn in index(function_app.app).items()}


def _excluded(path: str, excluded_paths: list[str]) -> bool:
    """Whether Easy Auth lets `path` through without a token: an excluded path itself, or below
    one ending in /* (https://learn.microsoft.com/azure/app-service/configure-authentication-file-based).
    Case-insensitive, the wider reading."""
    path = path.lower()
    return any(path == e.lower() or (e.endswith("/*") and path.startswith(e[:-1].lower())) for e in excluded_paths)


def test_app_service_authentication_requires_an_entra_token_or_answers_401():
    auth = resource("app/function.bicep", "authSettings")
    assert bicep("app/function.bicep")["resources"]["authSettings"]["type"] == "Microsoft.Web/sites/config"
    assert auth["parent"] == "site" and auth["name"] == "authsettingsV2"
    properties = auth["properties"]
    assert properties["platform"]["enabled"] is True
    assert properties["globalValidation"]["requireAuthentication"] is True
    assert properties["globalValidation"]["unauthenticatedClientAction"] == "Return401"
    assert properties["httpSettings"]["requireHttps"] is True
    assert properties["login"]["tokenStore"]["enabled"] is False
    # Microsoft Entra ID alone, this tenant's v2.0 issuer, the registration's client ID as the
    # one audience, and no client secret (the app validates tokens, it signs no one in).
    assert set(properties["identityProviders"]) == {"azureActiveDirectory"}
    entra = properties["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    assert entra["registration"] == {
        "openIdIssuer": "${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0",
        "clientId": "entraClientId"}
    assert entra["validation"] == {"allowedAudiences": ["entraClientId"]}
    # The client ID comes from main.bicep, where it is required (no default: the deployment
    # fails without one rather than leave the operator routes on function keys alone) and
    # azd fills it from ENTRA_CLIENT_ID.
    assert bicep("main.bicep")["modules"]["app"]["config"]["params"]["entraClientId"] == "entraClientId"
    parameter = bicep("main.bicep")["parameters"]["entraClientId"]
    assert parameter["type"] == "string" and parameter["default"] is None
    assert {"type": "min_length", "argument": 36} in parameter["decorators"]
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["entraClientId"]["value"] == "${ENTRA_CLIENT_ID}"


def test_only_the_event_grid_webhook_is_let_through_without_a_token():
    excluded_paths = variable("app/function.bicep", "keyAuthenticatedPaths")
    assert resource("app/function.bicep", "authSettings")["properties"]["globalValidation"]["excludedPaths"] == \
        "keyAuthenticatedPaths"
    triggers = _triggers()
    unclassified = {b.type for b in triggers.values()} - TRIGGERS_WITHOUT_HTTP - set(WEBHOOK_PATHS) - {"httpTrigger"}
    assert not unclassified, f"does a {unclassified} trigger need a host path outside Entra? Decide, and say so"
    # Exactly the webhooks of the app's triggers, nothing more.
    assert sorted(excluded_paths) == sorted({WEBHOOK_PATHS[b.type] for b in triggers.values() if b.type in WEBHOOK_PATHS})
    assert excluded_paths == ["/runtime/webhooks/eventgrid"]
    # No operator route, no admin API, no other host path.
    host = json.loads((REPO_ROOT / "host.json").read_text())
    assert "routePrefix" not in host.get("extensions", {}).get("http", {}), "routes are under /api/"
    routes = {name: b.route for name, b in triggers.items() if b.type == "httpTrigger"}
    assert set(routes) == {"pending_approvals", "approve", "deny", "break_glass", "release", "exemptions", "mutes",
                           "incidents", "incident", "incident_decision"}
    for name, route in routes.items():
        path = "/api/" + re.sub(r"\{\w+\}", "some-key", route)
        assert not _excluded(path, excluded_paths), f"{name} ({path}) would be reachable without an Entra token"
    for path in ("/", "/api", "/admin/host/status", "/admin/functions", "/runtime/webhooks/blobs"):
        assert not _excluded(path, excluded_paths), path
    assert _excluded("/runtime/webhooks/eventgrid", excluded_paths)


def test_function_keys_stay_a_second_factor_behind_entra():
    from azure.functions import AuthLevel

    for name, binding in _triggers().items():
        if binding.type == "httpTrigger":
            assert binding.auth_level == AuthLevel.FUNCTION, f"{name} must still need a function key"


def test_the_app_can_live_in_a_subscription_it_does_not_watch():
    watched = variable("main.bicep", "watchedSubscriptionIds")["operator"]
    assert watched["type"] == "conditional"
    operands = watched["operands"]
    assert operands["condition"] == "watchAppSubscription"
    assert operands["false_value"] == "additionalSubscriptions"
    union = operands["true_value"]["function"]
    assert union["type"] == "union" and union["parameters"]["arg_2"] == "additionalSubscriptions"
    (home,) = union["parameters"]["arg_1"]
    assert ref(home) == "subscription().subscriptionId"
    loop = bicep("main.bicep")["modules"]["watch"]["config"]["loop_type"]["detail"]
    assert loop["array_name"] == "watchedSubscriptionIds"
    assert bicep("main.bicep")["parameters"]["watchAppSubscription"]["default"] is True
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["watchAppSubscription"]["value"] == "${WATCH_APP_SUBSCRIPTION=true}"


def test_protected_accounts_send_their_blob_logs_to_the_workspace():
    setting = resource("app/storage-logs.bicep", "blobLogs")
    assert setting["scope"] == "blobService"
    assert bicep("app/storage-logs.bicep")["resources"]["blobService"]["config"]["name"] == "default"
    categories = setting["properties"]["logs"]["loop_type"]["detail"]["array_name"]
    assert sorted(categories) == ["StorageDelete", "StorageRead", "StorageWrite"]
    assert setting["properties"]["workspaceId"] == "workspaceId"
    main = bicep("main.bicep")["modules"]
    assert main["storageLogs"]["config"]["config"]["params"]["workspaceId"] == "workspaceId"
    assert main["logsAccess"]["config"]["params"]["workspaceName"] == {"function": {"type": "last", "parameters": {
        "arg_1": {"function": {"type": "split", "parameters": {"input_string": "workspaceId", "delimiter": "/"}}}}}}


# ---------------------------------------------------------------------------------------
# Event Grid: each function receives exactly the operations it handles
# ---------------------------------------------------------------------------------------

def test_every_event_grid_function_has_a_route_with_its_filters():
    routes = {route["function"]: route for route in variable("app/event-subscriptions.bicep", "routes")}
    assert set(routes) == set(EVENT_SUBSCRIPTIONS)
    for function, subscription in EVENT_SUBSCRIPTIONS.items():
        assert tuple(routes[function]["eventTypes"]) == subscription.event_types, function
        assert sorted(routes[function]["operations"]) == sorted(subscription.operations), function


def test_every_event_grid_trigger_in_the_app_is_routed():
    import function_app
    from localazure.functions_host import index  # indexes once: get_functions() refuses a second call

    triggered = {name for name, fn in index(function_app.app).items()
                 if any(b.type == "eventGridTrigger" for b in fn.get_bindings())}
    assert triggered == set(EVENT_SUBSCRIPTIONS)


def test_the_event_subscriptions_filter_deliver_retry_and_dead_letter():
    body = resource("app/event-subscriptions.bicep", "subscriptions")
    loop = bicep("app/event-subscriptions.bicep")["resources"]["subscriptions"]["config"]["loop_type"]
    assert loop["detail"] == {"item_name": "route", "array_name": "routes"}
    properties = body["properties"]
    assert properties["destination"]["endpointType"] == "AzureFunction"
    assert properties["destination"]["properties"]["resourceId"] == "${functionAppId}/functions/${route.function}"
    assert ref(properties["filter"]["includedEventTypes"]) == "route.eventTypes"
    (advanced,) = properties["filter"]["advancedFilters"]
    assert advanced["operatorType"] == "StringIn" and advanced["key"] == "data.operationName"
    assert ref(advanced["values"]) == "route.operations"
    assert properties["retryPolicy"]["maxDeliveryAttempts"] >= 1
    assert properties["retryPolicy"]["eventTimeToLiveInMinutes"] >= 1
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["deadLetterDestination"]["endpointType"] == "StorageBlob"
    assert properties["eventDeliverySchema"] == "EventGridSchema"


def test_the_system_topic_watches_the_subscription():
    topic = resource("app/system-topic.bicep", "topic")
    assert topic["location"] == "global"
    assert topic["properties"]["topicType"] == "Microsoft.Resources.Subscriptions"
    source = topic["properties"]["source"]["operator"]["operands"]
    assert source["operand_1"] == {"function": {"type": "subscription", "parameters": {"subscription_id": None}}}
    assert source["operand_2"] == "id"


# ---------------------------------------------------------------------------------------
# azd: one command, and the ordering of code and event subscriptions
# ---------------------------------------------------------------------------------------

def test_azure_yaml_provisions_and_deploys_the_function_app():
    import yaml

    azure = yaml.safe_load((REPO_ROOT / "azure.yaml").read_text())
    assert azure["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (name, service), = azure["services"].items()
    assert service == {"project": ".", "language": "python", "host": "function"}
    tags = resource("app/function.bicep", "site")["tags"]["function"]["parameters"]["arg_2"]
    assert {key.strip("'"): value for key, value in tags.items()} == {"azd-service-name": name}, \
        "azd finds the app by its azd-service-name tag"
    for platform in ("posix", "windows"):
        script = REPO_ROOT / azure["hooks"]["postdeploy"][platform]["run"]
        assert script.is_file(), script


def test_the_event_subscriptions_are_switched_on_after_the_code_is_deployed():
    watch = bicep("app/watch-subscription.bicep")["modules"]["subscriptions"]["config"]
    assert watch["condition"] == "eventSubscriptionsEnabled"
    assert bicep("main.bicep")["parameters"]["eventSubscriptionsEnabled"]["default"] is False
    hook = (INFRA / "hooks" / "enable-event-subscriptions.sh").read_text()
    assert "azd env set EVENT_SUBSCRIPTIONS_ENABLED true" in hook
    assert "azd provision --no-prompt" in hook
    script_lines = [line.strip() for line in hook.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert not any(re.match(r"(az|func)\s", line) for line in script_lines), "the hook creates nothing imperatively"
    assert "EVENT_SUBSCRIPTIONS_ENABLED" in (INFRA / "hooks" / "enable-event-subscriptions.ps1").read_text()


def test_the_package_leaves_tests_infra_and_dev_tools_out():
    ignored = {line.strip() for line in (REPO_ROOT / ".funcignore").read_text().splitlines() if line.strip()}
    for entry in ("tests/", "infra/", "azure.yaml", ".venv/", ".venv-tools/", ".azure/", "localazure/",
                  "local.settings.json", "requirements-dev.txt", "node_modules/", "evidence/", ".demo/"):
        assert entry in ignored, f".funcignore does not keep {entry} out of the deployment package"
