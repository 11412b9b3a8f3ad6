"""The demo ledger (`make demo`): after the replay has exited, `export` and `incident-report`
read what every scenario recorded, with no setting, and the demo's evidence holds a report
per scenario and per incident."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from localazure.shared import REPO_ROOT
from tests.emulator.test_replay import EXPECTED, SCENARIOS, runs


def without_storage() -> dict[str, str]:
    """The environment of a person after `make demo`: no storage setting."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("AzureWebJobsStorage")}
    # The app is not an installed package: from another folder it is found as from the checkout.
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [environ.get("PYTHONPATH")])])
    return environ


def containment(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containment", *args], cwd=cwd, env={**without_storage(), **settings},
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`make demo`'s replay, in a folder of its own: the demo ledger lands in its .demo/."""
    folder = tmp_path_factory.mktemp("demo")
    files = sorted(SCENARIOS.glob("*.json"))
    completed = containment("replay", *map(str, files), "--report", "evidence", "--demo-ledger", cwd=folder)
    assert completed.returncode == 0, completed.stderr
    return folder, dict(zip((f.stem for f in files), runs(completed.stdout)))


def test_the_replay_keeps_its_contract_with_a_demo_ledger(demo):
    _, outputs = demo
    assert {name: [r["outcome"] for r in records] for name, (records, _) in outputs.items()} == {
        name.removesuffix(".json"): outcomes for name, outcomes in EXPECTED.items()}


def test_export_reads_every_scenarios_decisions_from_the_demo_ledger_after_the_replay(demo):
    folder, outputs = demo
    completed = containment("export", "decisions", cwd=folder)
    assert completed.returncode == 0, completed.stderr
    assert f"reading the demo ledger in {folder / '.demo'}" in completed.stderr
    exported = [json.loads(line) for line in completed.stdout.splitlines()]
    replayed = [record for records, _ in outputs.values() for record in records]
    # The same records, scenario by scenario, though scenarios share resources and event IDs.
    assert Counter((r["resource_id"], r["key"], r["outcome"]) for r in exported) == Counter(
        (r["resource_id"], r["key"], r["outcome"]) for r in replayed)
    assert not any("final_state" in row for row in exported)
    one = containment("export", "decisions", "--scenario", "public-container-dry-run", "--format", "csv", cwd=folder)
    assert [row["outcome"] for row in csv.DictReader(io.StringIO(one.stdout))] == ["would-contain"]


def test_each_incident_has_its_html_report_and_the_command_line_finds_it(demo):
    folder, _ = demo
    completed = containment("export", "incidents", cwd=folder)
    assert completed.returncode == 0, completed.stderr
    incidents = [json.loads(line)["incident"] for line in completed.stdout.splitlines()]
    pages = sorted((folder / "evidence" / "incidents").glob("*/*.html"))
    assert incidents and Counter(incidents) == Counter(page.stem for page in pages)
    for page in pages:
        html = page.read_text()
        assert html.startswith("<!doctype html>") and page.stem in html.replace("<wbr>", "")
    # Scenarios that replay one incident differently (contained; contained, then released) share its ID.
    [page] = (folder / "evidence" / "incidents" / "public-container-enforce").glob("*.html")
    twice = containment("incident-report", page.stem, "--out", "incident.html", cwd=folder)
    assert twice.returncode == 2 and "insider-releases-her-own-containment" in twice.stderr
    assert "--scenario" in twice.stderr
    once = containment("incident-report", page.stem, "--scenario", "public-container-enforce", "--out",
                       "incident.html", cwd=folder)
    assert once.returncode == 0, once.stderr
    assert page.stem in (folder / "incident.html").read_text().replace("<wbr>", "")


def test_verify_reads_one_scenarios_ledger_of_the_demo(demo):
    folder, _ = demo
    completed = containment("verify", "--scenario", "operator-break-glass", cwd=folder)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["records"] == 3
    unnamed = containment("verify", cwd=folder)
    assert unnamed.returncode == 2 and "name one with --scenario" in unnamed.stderr
    unknown = containment("export", "decisions", "--scenario", "no-such-scenario", cwd=folder)
    assert unknown.returncode == 2 and "no scenario no-such-scenario" in unknown.stderr


def test_canaries_lists_the_demos_canaries_read_and_untouched(demo):
    folder, _ = demo
    completed = containment("canaries", cwd=folder)
    assert completed.returncode == 0, completed.stderr
    lines = {line["scenario"]: line for line in map(json.loads, completed.stdout.splitlines())}
    assert set(lines) == {"egress-canary-read-from-the-training-network",
                          "egress-ordinary-reads-beside-an-untouched-canary"}
    read = lines["egress-canary-read-from-the-training-network"]
    assert (read["canary"], read["read"], read["last_caller"], read["last_read"]) == (
        "/synthtrain01/train/customers-2026-q3.parquet", True, "10.20.7.30", "2026-11-24T14:03:41Z")
    assert lines["egress-ordinary-reads-beside-an-untouched-canary"]["read"] is False


def test_the_markdown_reports_say_what_led_to_each_decision_and_link_the_incidents(demo):
    folder, _ = demo
    reports = {path.stem: path.read_text() for path in (folder / "evidence").glob("*.md")}
    assert set(reports) == {name.removesuffix(".json") for name in EXPECTED}
    assert not [name for name, text in reports.items() if "`None`" in text]
    assert "- Found by the egress scan of the window ending 2026-11-24T14:05:00.000000Z" in reports[
        "egress-leaked-sas-from-unknown-network"]
    assert "- Found by the drift sweep at 2026-11-24T19:00:00.000000Z" in reports[
        "drift-sweep-finds-what-no-event-reported"]
    assert "- Operator request (break-glass) by sec-oncall@contoso.example" in reports["operator-break-glass"]
    for name, text in reports.items():
        for link in re.findall(r"\]\((incidents/[^)]+\.html)\)", text):
            assert (folder / "evidence" / link).is_file(), (name, link)
    assert "(incidents/public-container-enforce/inc-" in reports["public-container-enforce"]


def test_a_new_demo_ledger_replaces_the_last_and_never_a_folder_it_did_not_make(tmp_path):
    scenario = str(SCENARIOS / "public-container-enforce.json")
    for _ in range(2):
        assert containment("replay", scenario, "--demo-ledger", cwd=tmp_path).returncode == 0
    completed = containment("export", "decisions", cwd=tmp_path)
    assert [json.loads(line)["outcome"] for line in completed.stdout.splitlines()] == ["contained"]
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / ".demo").mkdir(parents=True)
    (elsewhere / ".demo" / "notes.txt").write_text("mine")
    refused = containment("replay", scenario, "--demo-ledger", cwd=elsewhere)
    assert refused.returncode == 2 and "notes.txt" in refused.stderr
    assert (elsewhere / ".demo" / "notes.txt").read_text() == "mine"


def test_a_command_waits_while_another_process_uses_the_demo_ledger(tmp_path):
    from localazure.demo_ledger import DemoLedger

    assert containment("replay", str(SCENARIOS / "public-container-dry-run.json"), "--demo-ledger",
                       cwd=tmp_path).returncode == 0
    with DemoLedger(tmp_path / ".demo").storage():
        waiting = subprocess.Popen([sys.executable, "-m", "containment", "export", "decisions"], cwd=tmp_path,
                                   env=without_storage(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "waiting for the demo ledger" in waiting.stderr.readline()
        assert waiting.poll() is None  # still waiting: it has not started an Azurite of its own on the folder
    out, _ = waiting.communicate(timeout=120)
    assert waiting.returncode == 0 and [json.loads(line)["outcome"] for line in out.splitlines()] == ["would-contain"]


def test_a_storage_setting_names_the_ledger_even_beside_a_demo_ledger(demo):
    folder, _ = demo
    completed = containment("export", "decisions", "--scenario", "public-container-enforce", cwd=folder,
                            AzureWebJobsStorage="UseDevelopmentStorage=true")
    assert completed.returncode == 2 and "none is read here" in completed.stderr


def test_two_scenario_files_of_one_name_are_refused_where_reports_or_ledgers_are_kept(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.json").write_text((SCENARIOS / "public-container-dry-run.json").read_text())
    files = [str(tmp_path / "a" / "same.json"), str(tmp_path / "b" / "same.json")]
    refused = containment("replay", *files, "--demo-ledger", cwd=tmp_path)
    assert refused.returncode == 2 and "same.json" in refused.stderr and refused.stdout == ""
    assert not (tmp_path / ".demo").exists()
    assert containment("replay", *files, cwd=tmp_path).returncode == 0  # nothing kept: nothing replaced
