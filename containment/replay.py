"""Scenario replay (../shared/SCENARIOS.md is the contract): run the whole app on one machine
against a recorded or imagined incident.

The local emulator is seeded with the scenario's resources and log rows, Azurite holds the
app's ledger and queue, and each step is delivered through the real function entry points
as the Functions host would deliver it. Standard output is JSON Lines only: the decision
records, then one `final_state` line. Progress, the timeline and logs go to standard error.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, TextIO

from containment import clock, runtime
from containment.ledger import DecisionRecord
from containment.settings import SETTINGS, SettingsError, load_settings

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
        load_settings({**settings, "LOCAL_AZURE_ENDPOINT": "", "LOCAL_AZURE_CA_BUNDLE": ""})
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
        if kind == "event" and not isinstance(raw["event"], dict):
            raise ScenarioError(file, f"{where}.event", "an event is a JSON object (Event Grid schema)")
        if kind == "timer" and raw["timer"] not in _timer_functions():
            raise ScenarioError(file, f"{where}.timer", f"{raw['timer']!r} is not one of the app's timer functions "
                                f"({', '.join(_timer_functions())})")
        if kind == "http" and (not isinstance(raw["http"], dict) or not isinstance(raw["http"].get("route"), str)
                               or raw["http"].get("method", "POST") not in ("GET", "POST", "DELETE")):
            raise ScenarioError(file, f"{where}.http", "an http step is {\"method\": GET|POST|DELETE, \"route\": ..., "
                                "\"body\": ...}")
        scenario.steps.append(Step(_time(raw.get("at"), file, f"{where}.at"), kind, raw[kind], f"{where}.{kind}"))
    return scenario


def _timer_functions() -> list[str]:
    import function_app
    from localazure.functions_host import index

    return sorted(name for name, function in index(function_app.app).items()
                  if '"timerTrigger"' in function.get_function_json())


class Replayer:
    """Starts the emulator and Azurite once; runs each scenario on fresh state."""

    def __init__(self, timeline: TextIO | None = None):
        self.timeline = timeline  # None: sys.stderr when each line is written, wherever a caller redirected it

    def __enter__(self) -> "Replayer":
        from localazure.azurite import Azurite
        from localazure.server import LocalAzure

        self.azure = LocalAzure().start()
        self.storage = Azurite().start()
        return self

    def __exit__(self, *exc) -> None:
        self.storage.stop()
        self.azure.stop()

    def run(self, scenario: Scenario) -> tuple[list[DecisionRecord], dict[str, Any]]:
        import function_app
        from localazure.arm import SeedError
        from localazure.functions_host import deliver_event, drain_queue, fire_timer

        self._fresh_state()
        try:
            self.azure.arm.seed(scenario.resources, origin="$.resources")
        except SeedError as error:
            raise ScenarioError(scenario.file, "$.resources", str(error)) from None
        for table, rows in scenario.logs.items():
            try:
                self.azure.logs.seed(table, rows)
            except ValueError as error:
                raise ScenarioError(scenario.file, f"$.logs.{table}", str(error)) from None
        settings = {**scenario.settings, **self.azure.settings(), "AzureWebJobsStorage": self.storage.connection_string}
        self._say(f"== {scenario.name} ({scenario.file}), mode {scenario.settings.get('CONTAINMENT_MODE', 'dry-run')}")
        seen: set[str] = set()
        with _environment(settings):
            runtime.reset()
            app_runtime = runtime.current()
            try:
                for step in scenario.steps:
                    clock.set_source(lambda at=step.at: at)
                    self.azure.clock = lambda at=step.at: at
                    if step.kind == "event":
                        invocations = deliver_event(function_app.app, step.payload)
                        if not invocations:
                            self._say(f"{step.at:%H:%M:%S}  event {step.payload.get('id')}: no function subscribes "
                                      "to it (Event Grid would not deliver it)")
                    elif step.kind == "timer":
                        fire_timer(function_app.app, step.payload)
                    else:
                        self._http(scenario.file, step)
                    drain_queue(function_app.app, "contain", app_runtime.queue, app_runtime.max_attempts)
                    for record in app_runtime.ledger.decisions():
                        if record.key not in seen:
                            seen.add(record.key)
                            self._say(_timeline_line(step.at, record))
                records = app_runtime.ledger.decisions()
            finally:
                clock.set_source(None)
                runtime.reset()
        return records, self._final_state(scenario)

    def _http(self, file: str, step: Step) -> None:
        """An operator's request, authorised as the host would after App Service Authentication."""
        import function_app
        from localazure.functions_host import NoFunction, call_http

        request = step.payload
        try:
            response = call_http(function_app.app, request.get("method", "POST"), request["route"], request.get("body"),
                                 {"x-ms-client-principal-name": "operator@scenario"})
        except NoFunction as error:
            raise ScenarioError(file, step.path, error.args[0]) from None
        self._say(f"{step.at:%H:%M:%S}  http {request.get('method', 'POST')} /api/{request['route']} -> "
                  f"{response.status_code} {response.get_body().decode()[:200]}")

    def _fresh_state(self) -> None:
        from azure.data.tables import TableServiceClient
        from azure.storage.queue import QueueServiceClient

        self.azure.reset()
        tables = TableServiceClient.from_connection_string(self.storage.connection_string)
        for table in tables.list_tables():
            tables.delete_table(table.name)
        queues = QueueServiceClient.from_connection_string(self.storage.connection_string)
        for queue in queues.list_queues():
            queues.delete_queue(queue.name)

    def _final_state(self, scenario: Scenario) -> dict[str, Any]:
        seeded = []
        for body in scenario.resources:
            seeded += body.get("value", []) if isinstance(body, dict) and "id" not in body else [body]
        state = {body["id"]: self.azure.arm.get(body["id"]) for body in seeded}
        known = {rid.lower() for rid in state}
        state.update({rid: body for rid, body in self.azure.arm.snapshot().items() if rid.lower() not in known})
        return state

    def _say(self, line: str) -> None:
        print(line, file=self.timeline or sys.stderr, flush=True)


def _timeline_line(at: datetime, record: DecisionRecord) -> str:
    from containment.report import short

    target = short(record.resource_id)
    actions = f" [{', '.join(record.actions)}]" if record.actions else ""
    return f"{at:%H:%M:%S}  {record.outcome:<15} {target}{actions}: {record.reason}"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """App settings are environment variables to the app, as in Azure; set them for one
    scenario and put everything back afterwards."""
    names = {s.name for s in SETTINGS} | set(values)
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def replay(files: list[Path], out: TextIO | None = None, report_dir: Path | None = None) -> int:
    out = out or sys.stdout  # looked up now, not at import, so a caller's redirection is honoured
    scenarios = []
    for file in files:
        scenarios.append(load_scenario(file))  # every file is checked before anything runs
    from containment.report import write_report

    with Replayer() as replayer:
        for scenario in scenarios:
            records, final_state = replayer.run(scenario)
            for record in records:
                out.write(json.dumps(record.as_output()) + "\n")
            out.write(json.dumps({"final_state": final_state}) + "\n")
            out.flush()
            if report_dir is not None:
                path = write_report(report_dir, scenario, records, final_state)
                print(f"evidence report: {path}", file=sys.stderr)
    return 0
