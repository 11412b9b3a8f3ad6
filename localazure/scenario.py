"""Scenario files (../shared/SCENARIOS.md is the contract; scenarios/README.md in this
repository documents every field): read and checked strictly, so a malformed scenario is
refused with the file and the JSON path before anything runs."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from containment.core.settings import SETTINGS, SettingsError, load_settings
from containment.plan.registry import VOCABULARY

STEP_KINDS = ("event", "timer", "http")


class ScenarioError(ValueError):
    """The scenario itself is malformed; the message names the file and the JSON path."""

    def __init__(self, file: str, path: str, problem: str):
        super().__init__(f"{file}: {path}: {problem}")


@dataclass
class Step:
    at: datetime
    kind: str
    payload: Any
    path: str


@dataclass
class Scenario:
    file: str
    name: str
    settings: dict[str, str]
    resources: list[dict]
    logs: dict[str, list[dict]]
    steps: list[Step] = field(default_factory=list)


def _time(text: Any, file: str, path: str) -> datetime:
    if not isinstance(text, str):
        raise ScenarioError(file, path, f"expected an ISO 8601 UTC time, got {type(text).__name__}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(file, path, f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ScenarioError(file, path, f"{text!r} has no time zone (write Z for UTC)")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # '9999-12-31T23:59:59-01:00' is a valid time whose UTC is past year 9999
        raise ScenarioError(file, path, f"{text!r} in UTC is outside the years 1 to 9999") from None


def load_scenario(path: Path) -> Scenario:
    file = str(path)
    try:
        document = json.loads(Path(path).read_text())
    except OSError as error:
        raise ScenarioError(file, "$", f"cannot read: {error.strerror}") from None
    except ValueError as error:
        raise ScenarioError(file, "$", f"not JSON: {error}") from None
    except RecursionError:  # JSON nested deeper than Python's recursion limit
        raise ScenarioError(file, "$", "nested too deeply to read") from None
    if not isinstance(document, dict):
        raise ScenarioError(file, "$", "a scenario is a JSON object")
    name = document.get("name", Path(path).stem)
    if not isinstance(name, str):
        raise ScenarioError(file, "$.name", "must be a string")
    settings = document.get("settings", {})
    if not isinstance(settings, dict):
        raise ScenarioError(file, "$.settings", "must be an object of app settings")
    for key, value in settings.items():
        if not isinstance(value, str):
            raise ScenarioError(file, f"$.settings.{key}", f"app settings are strings, got {type(value).__name__}")
    try:
        load_settings({**settings, "LOCAL_AZURE_ENDPOINT": "", "LOCAL_AZURE_CA_BUNDLE": ""}, VOCABULARY)
    except SettingsError as error:
        first = error.problems[0].split("=", 1)[0]
        raise ScenarioError(file, f"$.settings.{first}", "; ".join(error.problems)) from None
    unknown = sorted(set(settings) - {s.name for s in SETTINGS} - {"AzureWebJobsStorage"})
    if unknown:
        print(f"{file}: settings the app does not read: {', '.join(unknown)}", file=sys.stderr)
    resources = document.get("resources", [])
    if not isinstance(resources, list):
        raise ScenarioError(file, "$.resources", "must be a list of ARM resource bodies")
    logs = document.get("logs", {})
    if not isinstance(logs, dict) or not all(isinstance(rows, list) for rows in logs.values()):
        raise ScenarioError(file, "$.logs", "must map table names to lists of rows")
    steps = document.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ScenarioError(file, "$.steps", "must be a non-empty list")
    scenario = Scenario(file, name, settings, resources, logs)
    for index, raw in enumerate(steps):
        where = f"$.steps[{index}]"
        if not isinstance(raw, dict):
            raise ScenarioError(file, where, "a step is a JSON object")
        kinds = [kind for kind in STEP_KINDS if kind in raw]
        if len(kinds) != 1:
            raise ScenarioError(file, where, f"a step has exactly one of {', '.join(STEP_KINDS)}")
        kind = kinds[0]
        # A field the replay would ignore is a mistake it must name: an `as` beside the http
        # step instead of in it would run the request as the default operator, who holds every role.
        unknown = sorted(set(raw) - {"at", kind})
        if unknown:
            raise ScenarioError(file, f"{where}.{unknown[0]}", f"not a field of a step (a step is \"at\" and one of "
                                f"{', '.join(STEP_KINDS)}{'; as goes inside http' if 'as' in unknown else ''})")
        if kind == "http" and isinstance(raw["http"], dict) and set(raw["http"]) - {"method", "route", "body", "as"}:
            extra = sorted(set(raw["http"]) - {"method", "route", "body", "as"})[0]
            raise ScenarioError(file, f"{where}.http.{extra}", "not a field of an http step (method, route, body, as)")
        if kind == "event" and not isinstance(raw["event"], dict):
            raise ScenarioError(file, f"{where}.event", "an event is a JSON object (Event Grid schema)")
        if kind == "timer" and raw["timer"] not in _timer_functions():
            raise ScenarioError(file, f"{where}.timer", f"{raw['timer']!r} is not one of the app's timer functions "
                                f"({', '.join(_timer_functions())})")
        if kind == "http" and (not isinstance(raw["http"], dict) or not isinstance(raw["http"].get("route"), str)
                               or raw["http"].get("method", "POST") not in ("GET", "POST", "DELETE")):
            raise ScenarioError(file, f"{where}.http", "an http step is {\"method\": GET|POST|DELETE, \"route\": ..., "
                                "\"body\": ..., \"as\": ...}")
        if kind == "http" and "as" in raw["http"]:
            _operator(raw["http"]["as"], file, f"{where}.http.as")
        scenario.steps.append(Step(_time(raw.get("at"), file, f"{where}.at"), kind, raw[kind], f"{where}.{kind}"))
    return scenario


def _operator(raw, file: str, where: str) -> None:
    """`as` (SCENARIOS.md): {"id": OBJECT_ID, "name": UPN, "roles": [APP_ROLE, ...]}."""
    from containment.operate.principal import ROLES

    if not isinstance(raw, dict) or set(raw) - {"id", "name", "roles"} or not isinstance(raw.get("id"), str) \
            or not raw["id"] or not isinstance(raw.get("name", ""), str):
        raise ScenarioError(file, where, "as is {\"id\": OBJECT_ID, \"name\": UPN, \"roles\": [APP_ROLE, ...]}")
    roles = raw.get("roles", [])
    if not isinstance(roles, list) or any(role not in ROLES for role in roles):
        raise ScenarioError(file, f"{where}.roles", f"roles are a list from {', '.join(ROLES)}")


def _timer_functions() -> list[str]:
    import function_app
    from localazure.functions_host import index

    return sorted(name for name, function in index(function_app.app).items()
                  if '"timerTrigger"' in function.get_function_json())
