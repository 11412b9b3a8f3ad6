"""The function metadata the host reads, and the cold start it pays."""
from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys

from containment.core.settings import SETTINGS
from localazure.shared import REPO_ROOT

SDKS = ("azure.identity", "azure.mgmt", "azure.eventgrid", "azure.monitor", "azure.data", "azure.storage")


def _metadata():
    """(user function, function.json) per function, indexed as the worker does."""
    import function_app
    from localazure.functions_host import index

    return {name: (f.get_user_function(), json.loads(f.get_function_json()))
            for name, f in index(function_app.app).items()}


def test_the_app_declares_its_triggers():
    metadata = _metadata()
    triggers = {name: next(b for b in meta["bindings"] if b["type"].endswith("Trigger"))["type"]
                for name, (_, meta) in metadata.items()}
    assert triggers == {"storage_exposure": "eventGridTrigger", "role_assignment_grant": "eventGridTrigger",
                        "nsg_exposure": "eventGridTrigger", "storage_key_access": "eventGridTrigger",
                        "guardrail_change": "eventGridTrigger", "key_vault_write": "eventGridTrigger",
                        "egress_scan": "timerTrigger", "drift_sweep": "timerTrigger",
                        "notifications": "timerTrigger", "contain": "queueTrigger",
                        "pending_approvals": "httpTrigger", "approve": "httpTrigger", "deny": "httpTrigger",
                        "break_glass": "httpTrigger", "release": "httpTrigger", "exemptions": "httpTrigger",
                        "mutes": "httpTrigger",
                        "incidents": "httpTrigger", "incident": "httpTrigger", "incident_decision": "httpTrigger"}


def test_operator_endpoints_need_a_function_key_at_least():
    for name, (_, meta) in _metadata().items():
        for binding in meta["bindings"]:
            if binding["type"] == "httpTrigger":
                assert binding["authLevel"] in ("FUNCTION", "ADMIN"), name


def test_binding_names_match_parameter_names_and_settings_exist():
    settings = {setting.name for setting in SETTINGS}
    for name, (function, meta) in _metadata().items():
        parameters = set(inspect.signature(function).parameters)
        for binding in meta["bindings"]:
            assert binding["name"] in parameters | {"$return"}, (name, binding)  # $return: the HTTP response
            for key in ("queueName", "schedule", "tableName"):
                value = binding.get(key)
                if value is None:
                    continue
                match = re.fullmatch(r"%([A-Za-z0-9_]+)%", value)
                assert match, f"{name}.{key} should come from an app setting, got {value!r}"
                assert match.group(1) in settings, f"{name}.{key} names unknown setting {match.group(1)}"
            if binding["type"] == "timerTrigger":
                default = next(s.default for s in SETTINGS if f"%{s.name}%" == binding["schedule"])
                assert len(default.split()) == 6, f"{name}: NCRONTAB schedules have six fields"


def test_every_event_grid_function_has_a_declared_subscription():
    from containment.deployment import EVENT_SUBSCRIPTIONS

    grid = {name for name, (_, meta) in _metadata().items()
            if any(b["type"] == "eventGridTrigger" for b in meta["bindings"])}
    assert grid == set(EVENT_SUBSCRIPTIONS)


def test_importing_the_app_imports_no_azure_sdk():
    code = ("import sys, function_app; "
            f"print([m for m in sys.modules if m.startswith({SDKS!r})])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
