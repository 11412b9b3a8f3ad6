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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, TextIO

from containment.adapters import runtime
from containment.core import clock
from containment.core.ids import short
from containment.core.records import DecisionRecord
from containment.core.settings import SETTINGS
from containment.record.export import incidents_between
from containment.record.incidents import Incident
from localazure.arm import VAULT_ACCESS_POLICY, resource_type
from localazure.demo_ledger import DEMO_DIR, DemoLedger, ScenarioLedger
from localazure.scenario import Scenario, ScenarioError, Step, load_scenario
from localazure.server import WORKSPACE_ID


# The operator of an http step without `as`: an object ID no event of a scenario names.
SCENARIO_OPERATOR = "5ce0a210-0000-4000-8000-0000000000ff"
# The app's storage, named afresh for each scenario (the defaults, numbered): each scenario
# starts from nothing, and in a demo ledger every scenario's ledger stays (localazure.demo_ledger).
STORAGE_NAMES = {"CONTAINMENT_LEDGER_TABLE": "decisions{n:02d}",
                 "CONTAINMENT_LEDGER_CHAIN_TABLE": "decisionchains{n:02d}",
                 "CONTAINMENT_EVIDENCE_CONTAINER": "evidence-{n:02d}",
                 "CONTAINMENT_LEDGER_DIGEST_CONTAINER": "ledger-digests-{n:02d}",
                 "CONTAINMENT_QUEUE": "containment-requests-{n:02d}"}


@dataclass(frozen=True)
class Run:
    """One scenario's run: its decision records in the order written, the final state, its
    incidents, and the app's clock at its last step."""

    records: list[DecisionRecord]
    final_state: dict[str, Any]
    incidents: list[Incident]
    ended_at: datetime


class Replayer:
    """Starts the emulator and Azurite once; runs each scenario on fresh state: the emulator
    emptied, and storage names of its own. Given a demo ledger, Azurite keeps its data there."""

    def __init__(self, timeline: TextIO | None = None, ledger: DemoLedger | None = None):
        self.timeline = timeline  # None: sys.stderr when each line is written, wherever a caller redirected it
        self.ledger = ledger
        self._runs = 0

    def __enter__(self) -> "Replayer":
        from localazure.azurite import Azurite
        from localazure.server import LocalAzure

        self._stack = ExitStack()
        self.azure = self._stack.enter_context(LocalAzure())
        self.storage = self._stack.enter_context(self.ledger.storage(fresh=True) if self.ledger else Azurite())
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def run(self, scenario: Scenario) -> Run:
        import function_app
        from localazure.arm import SeedError
        from localazure.functions_host import deliver_event, drain_queue, fire_timer

        self._runs += 1
        names = {name: pattern.format(n=self._runs) for name, pattern in STORAGE_NAMES.items()}
        self.azure.reset()
        try:
            self.azure.arm.seed(scenario.resources, origin="$.resources")
        except SeedError as error:
            raise ScenarioError(scenario.file, "$.resources", str(error)) from None
        for table, rows in scenario.logs.items():
            try:
                self.azure.logs.seed(table, rows)
            except ValueError as error:
                raise ScenarioError(scenario.file, f"$.logs.{table}", str(error)) from None
        settings = {**scenario.settings, **names, **self.azure.settings(),
                    "AzureWebJobsStorage": self.storage.connection_string}
        if scenario.logs and not scenario.settings.get("CONTAINMENT_LOG_WORKSPACE_ID"):
            # SCENARIOS.md: a scenario with logs is scanned all the same, in the emulator's workspace.
            settings["CONTAINMENT_LOG_WORKSPACE_ID"] = WORKSPACE_ID
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
                # The days its decisions fall on (the app's clock is UTC): its incidents are read from
                # its ledger over them, as `export incidents` reads them from the demo ledger.
                days = sorted({r.decided_at[:10] for r in records if r.decided_at})
                incidents = incidents_between(
                    app_runtime.ledger, datetime.fromisoformat(days[0]).replace(tzinfo=timezone.utc),
                    datetime.fromisoformat(days[-1]).replace(tzinfo=timezone.utc) + timedelta(days=1)) if days else []
            finally:
                clock.set_source(None)
                runtime.reset()
        if self.ledger is not None:
            self.ledger.add(ScenarioLedger(Path(scenario.file).stem, scenario.file, scenario.name,
                                           {**scenario.settings, **names}, days[0] if days else None,
                                           days[-1] if days else None))
        return Run(records, self._final_state(scenario), incidents, scenario.steps[-1].at)

    def _http(self, file: str, step: Step) -> None:
        """An operator's request, presented as App Service Authentication presents the person."""
        import function_app
        from localazure.functions_host import NoFunction, call_http

        from containment.operate.principal import ROLES, header_for

        request = step.payload
        # Without `as`, the operator holds every role and caused no event (SCENARIOS.md).
        who = request.get("as", {"id": SCENARIO_OPERATOR, "name": "operator@scenario", "roles": list(ROLES)})
        headers = {"x-ms-client-principal": header_for(who["id"], who.get("name") or who["id"], who.get("roles", []))}
        try:
            response = call_http(function_app.app, request.get("method", "POST"), request["route"], request.get("body"),
                                 headers)
        except NoFunction as error:
            raise ScenarioError(file, step.path, error.args[0]) from None
        self._say(f"{step.at:%H:%M:%S}  http {request.get('method', 'POST')} /api/{request['route']} -> "
                  f"{response.status_code} {response.get_body().decode()[:200]}")

    def _final_state(self, scenario: Scenario) -> dict[str, Any]:
        seeded = []
        for body in scenario.resources:
            seeded += body.get("value", []) if isinstance(body, dict) and "id" not in body else [body]
        state = {body["id"]: self.azure.arm.get(body["id"]) for body in seeded}
        known = {rid.lower() for rid in state}
        state.update({rid: body for rid, body in self.azure.arm.snapshot().items() if rid.lower() not in known})
        # What the app created and later removed (the Deny a release deleted) is null (SCENARIOS.md).
        for method, path, _ in self.azure.applied_writes:
            # A PUT of accessPolicies/{add|replace|remove} changes its vault and creates nothing.
            if method == "PUT" and path.lower() not in {rid.lower() for rid in state} \
                    and resource_type(path) != VAULT_ACCESS_POLICY:
                state[path] = self.azure.arm.get(path)
        return state

    def _say(self, line: str) -> None:
        print(line, file=self.timeline or sys.stderr, flush=True)


def _timeline_line(at: datetime, record: DecisionRecord) -> str:
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


def replay(files: list[Path], out: TextIO | None = None, report_dir: Path | None = None,
           ledger_dir: Path | None = None) -> int:
    out = out or sys.stdout  # looked up now, not at import, so a caller's redirection is honoured
    scenarios = []
    for file in files:
        scenarios.append(load_scenario(file))  # every file is checked before anything runs
    stems = [Path(s.file).stem for s in scenarios]
    twice = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twice and (report_dir is not None or ledger_dir is not None):
        raise FileExistsError(f"several scenario files are named {twice[0]}.json: reports and demo ledgers are kept "
                              "by file name, so one would replace the other")
    from localazure.evidence_report import write_incident_reports, write_report

    with Replayer(ledger=DemoLedger(ledger_dir) if ledger_dir else None) as replayer:
        for scenario in scenarios:
            run = replayer.run(scenario)
            for record in run.records:
                out.write(json.dumps(record.as_output()) + "\n")
            out.write(json.dumps({"final_state": run.final_state}) + "\n")
            out.flush()
            if report_dir is not None:
                pages = write_incident_reports(report_dir, scenario, run.incidents, run.ended_at)
                path = write_report(report_dir, scenario, run.records, run.final_state, pages, run.ended_at)
                print(f"evidence report: {path}" + (f"; incident reports: {pages[0][1].parent}" if pages else ""),
                      file=sys.stderr)
    if ledger_dir is not None:
        print(f"demo ledger: {ledger_dir} (python -m containment export and incident-report read it when no "
              "storage is set)", file=sys.stderr)
    return 0


def command(scenarios: list[Path], report_dir: Path | None = None, demo_ledger: bool = False) -> int:
    """`python -m containment replay`: found through the `containment.commands` entry point
    that this development package declares (pyproject.toml), so the deployed package never
    imports the emulator."""
    try:
        return replay(scenarios, report_dir=report_dir, ledger_dir=DEMO_DIR if demo_ledger else None)
    except ScenarioError as error:
        print(f"malformed scenario: {error}", file=sys.stderr)
        return 2
    except FileExistsError as error:  # what the replay was asked to keep would replace something
        print(f"replay: {error}", file=sys.stderr)
        return 2
