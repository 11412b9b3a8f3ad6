"""`python -m containment replay` keeps the contract in ../shared/SCENARIOS.md, and every
bundled scenario ends as it says it does."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from localazure.shared import REPO_ROOT

SCENARIOS = REPO_ROOT / "scenarios"
REQUIRED = {"resource_id", "outcome", "actions", "mode", "event_id", "incident"}
EXPECTED = {
    "account-opened-up.json": ["contained"],
    "foreign-subscription-rejected.json": ["rejected"],
    "malformed-event-among-good.json": ["contained", "rejected", "contained"],
    "own-change-ignored.json": ["ignored"],
    "own-deployment-reported-never-contained.json": ["reported", "reported", "rejected"],
    "public-container-dry-run.json": ["would-contain"],
    "public-container-enforce.json": ["contained"],
    "insider-releases-her-own-containment.json": ["contained", "rejected", "rejected", "reported"],
    "redelivered-event.json": ["contained"],
    "scope-tag-removed.json": ["reported", "ignored"],
    "role-data-reader-to-unknown-principal.json": ["contained"],
    "role-allowlist-and-expiry.json": ["compliant", "contained"],
    "role-contributor-on-resource-group.json": ["contained"],
    "role-subscription-scope-needs-approval.json": ["pending-approval"],
    "role-without-data-path-compliant.json": ["compliant", "compliant"],
    "role-gone-and-own-identity.json": ["ignored", "ignored"],
    "nsg-allow-any-at-priority-100.json": ["contained"],
    "nsg-internet-https-at-300.json": ["contained", "ignored"],
    "nsg-102-rules-contained-and-released.json": ["contained", "reported"],
    "nsg-compliant-allowed-and-shadowed.json": ["compliant", "compliant"],
    "nsg-one-foreign-source-prefix.json": ["contained"],
    "nsg-unprotected-ignored.json": ["ignored"],
    "egress-leaked-sas-from-unknown-network.json": ["contained"],
    "egress-held-key-rotation-names-the-training-pipeline.json": ["pending-approval"],
    "egress-baseline-spike-and-enumeration.json": ["would-contain"],
    "egress-catch-up-after-downtime.json": ["contained"],
    "egress-400-anonymous-callers-in-one-window.json": ["contained"],
    "egress-scan-without-workspace-fails-once.json": ["failed"],
    "egress-canary-read-from-the-training-network.json": ["contained"],
    "egress-ordinary-reads-beside-an-untouched-canary.json": [],
    # Locked at once; the rotation held, then approved: key1 alone (final state, below).
    "egress-sas-signed-with-key1-rotates-only-key1.json": ["contained", "contained"],
    "egress-copy-to-an-unprotected-account.json": ["contained"],
    "egress-copy-between-two-protected-accounts.json": [],
    "egress-sas-expiry-policy-violated.json": ["reported"],
    # Two scans an hour apart find the same silence: one record.
    "egress-logs-stopped-for-a-protected-account.json": ["reported"],
    "egress-quiet-account-whose-logs-still-arrive.json": [],
    "egress-vault-key-unwrapped-by-a-stranger.json": ["reported"],
    "egress-vault-key-unwrapped-by-the-accounts-own-identity.json": [],
    "operator-approves-a-held-deletion.json": ["pending-approval", "contained"],
    "operator-break-glass.json": ["pending-approval", "reported", "contained"],
    "drift-sweep-finds-what-no-event-reported.json": ["contained"],
    "incident-one-identity-three-accounts.json": ["contained", "contained", "contained", "reported"],
    "incident-two-people-hours-apart.json": ["contained", "contained"],
    "keys-listed-by-unallowed-identity.json": ["pending-approval"],
    "keys-listed-by-allowlisted-pipeline.json": ["compliant"],
    "sas-listed-by-unallowed-identity.json": ["pending-approval"],
    "replication-to-an-unprotected-account-removed.json": ["contained"],
    "replication-between-protected-accounts-compliant.json": ["compliant"],
    "posture-no-sas-policy-and-old-keys-reported.json": ["reported"],
    "guardrail-diagnostic-setting-deleted-restored.json": ["contained"],
    "guardrail-diagnostic-setting-rewritten-compliant.json": ["compliant"],
    "guardrail-diagnostic-setting-sent-elsewhere.json": ["reported"],
    "guardrail-policy-assignment-deleted-held.json": ["compliant", "pending-approval"],
    "guardrail-policy-assignment-do-not-enforce.json": ["pending-approval"],
    "guardrail-policy-exemption-on-protected-data.json": ["reported"],
    "guardrail-policy-exemption-expired-compliant.json": ["compliant"],
    "guardrail-policy-assignment-rewritten-enforced-compliant.json": ["compliant"],
    "guardrail-policy-assignment-unprotected-group-ignored.json": ["ignored"],
    "encryption-customer-key-disabled-reported.json": ["reported"],
    "encryption-customer-key-enabled-compliant.json": ["compliant"],
    "encryption-customer-keys-required-microsoft-managed-reported.json": ["reported"],
    "encryption-customer-keys-required-and-used-compliant.json": ["compliant"],
    "vault-crypto-user-to-unknown-principal-deleted.json": ["contained"],
    "vault-crypto-user-for-allowlisted-pipeline-compliant.json": ["compliant"],
    "key-vault-open-network-holding-a-protected-key.json": ["contained"],
    "key-vault-private-purge-protected-compliant.json": ["compliant"],
    "key-vault-access-policy-unwraps-for-an-unknown-principal.json": ["contained"],
    "key-vault-purge-protection-off-held-for-approval.json": ["pending-approval"],
}


def replay(*files: Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "containment", "replay", *map(str, files)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def runs(stdout: str) -> list[tuple[list[dict], dict]]:
    """Split JSON Lines output into (records, final_state) per scenario."""
    result, records = [], []
    for line in stdout.splitlines():
        document = json.loads(line)  # every line is JSON: nothing else is printed on stdout
        if "final_state" in document:
            result.append((records, document["final_state"]))
            records = []
        else:
            records.append(document)
    assert records == [], "records after the last final_state line"
    return result


@pytest.fixture(scope="module")
def bundled():
    files = sorted(SCENARIOS.glob("*.json"))
    assert {f.name for f in files} == set(EXPECTED), "every bundled scenario has an expected ending here"
    completed = replay(*files)
    assert completed.returncode == 0, completed.stderr
    return dict(zip((f.name for f in files), runs(completed.stdout))), completed.stderr


def test_each_scenario_ends_as_expected(bundled):
    outputs, _ = bundled
    for name, (records, _) in outputs.items():
        assert [r["outcome"] for r in records] == EXPECTED[name], name
        for record in records:
            assert REQUIRED <= set(record), (name, record)
            # SCENARIOS.md: null where the decision is no finding.
            assert (record["incident"] is None) == (record["outcome"] in ("compliant", "ignored", "rejected")
                                                    or not record["findings"] and record["operation"] != "incident"), (
                name, record)


def test_final_state_shows_the_containment(bundled):
    outputs, _ = bundled
    records, final_state = outputs["public-container-enforce.json"]
    container = records[0]["resource_id"]
    assert final_state[container]["properties"]["publicAccess"] == "None"
    _, dry_final = outputs["public-container-dry-run.json"]
    assert dry_final[container]["properties"]["publicAccess"] == "Container"
    # Released, the NSG of 102 rules is as it was: the containment's Deny, and only it, is gone.
    records, final_state = outputs["nsg-102-rules-contained-and-released.json"]
    nsg, added = [rid for rid in final_state if "/securityrules/" not in rid.lower()], [
        rid for rid in final_state if rid.lower().endswith("/securityrules/deny-untrusted-allow-https")]
    assert len(final_state[nsg[0]]["properties"]["securityRules"]) == 102 and final_state[added[0]] is None
    # The source's replication policy is gone, the destination's twin (which drives nothing) stays;
    # between two protected accounts both stay.
    records, final_state = outputs["replication-to-an-unprotected-account-removed.json"]
    policies = {rid.split("/storageAccounts/")[1].split("/")[0]: body for rid, body in final_state.items()
                if "/objectReplicationPolicies/" in rid}
    assert policies["synthtrain01"] is None and policies["analyticsscratch01"] is not None
    _, final_state = outputs["replication-between-protected-accounts-compliant.json"]
    assert all(body is not None for body in final_state.values())


def test_final_state_shows_the_deleted_diagnostic_setting_put_back_and_the_policy_assignment_not(bundled):
    outputs, _ = bundled
    _, final_state = outputs["guardrail-diagnostic-setting-deleted-restored.json"]
    [setting] = [body for rid, body in final_state.items() if "/diagnosticSettings/" in rid]
    assert [entry["category"] for entry in setting["properties"]["logs"]] == ["StorageRead", "StorageWrite",
                                                                             "StorageDelete"]
    records, final_state = outputs["guardrail-policy-assignment-deleted-held.json"]
    assert [body for rid, body in final_state.items() if "/policyAssignments/" in rid] == [None]
    assert records[-1]["awaiting_approval"][0]["action"] == "restore_policy_assignment"


def test_final_state_shows_the_key_vault_locked_and_the_stranger_gone(bundled):
    outputs, _ = bundled
    [record], final_state = outputs["key-vault-open-network-holding-a-protected-key.json"]
    acls = final_state[record["resource_id"]]["properties"]["networkAcls"]
    assert (acls["defaultAction"], acls["bypass"]) == ("Deny", "AzureServices")  # Storage still reaches its key
    assert acls["ipRules"] == [{"value": "198.51.100.0/24"}, {"value": "10.20.0.0/16"}]
    [record], final_state = outputs["key-vault-access-policy-unwraps-for-an-unknown-principal.json"]
    held = [p["objectId"] for p in final_state[record["resource_id"]]["properties"]["accessPolicies"]]
    assert held == ["6a1b2c3d-0000-4000-8000-0000000000c1"]  # the account's own identity stays
    assert len(record["before"][record["resource_id"]]["properties"]["accessPolicies"]) == 2
    [record], final_state = outputs["key-vault-purge-protection-off-held-for-approval.json"]
    assert final_state[record["resource_id"]]["properties"]["enablePurgeProtection"] is False


def test_final_state_shows_only_the_key_that_signed_the_leaked_sas_rotated(bundled):
    outputs, _ = bundled
    records, final_state = outputs["egress-sas-signed-with-key1-rotates-only-key1.json"]
    [account] = final_state.values()
    created = account["properties"]["keyCreationTime"]  # rotated when the person approved (14:40)
    assert created["key1"].startswith("2026-11-24T14:40") and created["key2"] == "2026-06-01T08:00:00.0000000Z"
    assert [f["evidence"]["keys"] for f in records[0]["findings"]] == [["key1"]]


def test_one_breach_is_one_incident_and_two_unrelated_are_two(bundled):
    outputs, _ = bundled
    records, _ = outputs["incident-one-identity-three-accounts.json"]
    *burst, assessed = records
    assert len({r["resource_id"] for r in burst}) == 3 and {r["incident"] for r in records} == {burst[0]["incident"]}
    assert assessed["incident_update"]["kind"] == "assessment" and assessed["actor"]["name"] == "dpo@contoso.example"
    records, _ = outputs["incident-two-people-hours-apart.json"]
    assert len({r["incident"] for r in records}) == 2


def test_key_and_sas_posture_is_an_incident_of_weaknesses_with_no_article_33_clock(bundled):
    from containment.core.records import DecisionRecord
    from containment.record.incidents import group

    outputs, _ = bundled
    records, _ = outputs["posture-no-sas-policy-and-old-keys-reported.json"]
    [reported] = records
    assert reported["incident"] and {f["rule"]: f.get("weakness") for f in reported["findings"]} == {
        "storage_sas_expiry_policy_missing": True, "storage_keys_older_than_limit": True}
    [incident] = group([DecisionRecord(**record) for record in records])
    assert incident.status == "weakness" and incident.gdpr_deadline is None and incident.exposed_at is None


def test_an_unusable_customer_key_is_an_availability_breach_with_a_clock_and_microsoft_keys_a_weakness(bundled):
    from containment.core.records import DecisionRecord
    from containment.record.incidents import group

    outputs, _ = bundled
    records, final_state = outputs["encryption-customer-key-disabled-reported.json"]
    [reported] = records
    assert [(f["rule"], f["severity"], f.get("weakness")) for f in reported["findings"]] == [
        ("storage_customer_key_unavailable", "critical", None)]
    [incident] = group([DecisionRecord(**record) for record in records])
    assert incident.status == "open" and incident.gdpr_deadline is not None
    key = next(body for rid, body in final_state.items() if rid.endswith("/keys/cmk-synthtrain01"))
    assert key["properties"]["attributes"]["enabled"] is False  # the app gives no access back
    records, _ = outputs["encryption-customer-keys-required-microsoft-managed-reported.json"]
    [incident] = group([DecisionRecord(**record) for record in records])
    assert incident.status == "weakness" and incident.gdpr_deadline is None
    records, final_state = outputs["vault-crypto-user-to-unknown-principal-deleted.json"]
    assert records[0]["findings"][0]["evidence"]["roleName"] == "Key Vault Crypto User"
    assert final_state[records[0]["resource_id"]] is None


def test_a_key_listing_names_who_from_where_and_when_and_holds_the_rotation(bundled):
    outputs, stderr = bundled
    [record], final_state = outputs["keys-listed-by-unallowed-identity.json"]
    assert record["actions"] == ["rotate_account_keys"] and record["rules"] == [
        "storage_keys_listed_by_unallowed_principal"]
    evidence = record["findings"][0]["evidence"]
    assert (evidence["principalId"], evidence["principalType"], evidence["clientIpAddress"], evidence["keys"]) == (
        "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", "ServicePrincipal", "198.51.100.23", ["key1", "key2"])
    assert evidence["eventTime"].startswith("2026-11-24T10:00:00")
    [account] = final_state.values()
    assert account["properties"]["keyCreationTime"]["key1"].startswith("2026-09-01")  # held: nothing rotated
    # The regenerateKey action that follows matches no subscription: not delivered, and the replay says so.
    assert "event e7a1b2c3-0000-4000-8000-00000000a003: no function subscribes to it" in stderr
    [sas] = outputs["sas-listed-by-unallowed-identity.json"][0]
    assert sas["findings"][0]["evidence"]["principalName"] == "Dana Analyst"
    assert "keyToSign is not in the event" in sas["findings"][0]["evidence"]["keys_why"]


def test_a_held_key_rotation_carries_whom_it_would_break(bundled):
    """The approver of a key rotation sees, from the week's logs, the training pipeline that
    signs its reads with the key, beside the leaked SAS the rotation is meant to stop."""
    outputs, _ = bundled
    [held], _ = outputs["egress-held-key-rotation-names-the-training-pipeline.json"]
    [step] = held["impact_preview"]["steps"]
    pipeline = step["callers"][0]
    assert (step["action"], step["status"], pipeline["caller"], pipeline["credential"]) == (
        "rotate_account_keys", "previewed", "198.51.100.20", "account key key1")
    assert pipeline["user_agents"][0].startswith("train-pipeline/2.3") and pipeline["requests"] == 36
    assert {"caller": "203.0.113.77", "named_by_finding": True}.items() <= next(
        c for c in step["callers"] if c["caller"] == "203.0.113.77").items()
    [contained], _ = outputs["egress-leaked-sas-from-unknown-network.json"]
    [rotation] = contained["impact_preview"]["steps"]
    assert rotation["status"] == "previewed" and [c["caller"] for c in rotation["callers"]] == ["203.0.113.77"]


def test_the_timeline_goes_to_stderr(bundled):
    _, stderr = bundled
    assert "contained" in stderr and "public-container-enforce.json" in stderr


def test_a_malformed_scenario_is_named_with_its_json_path(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "steps": [{"at": "yesterday", "event": {}}]}))
    completed = replay(bad)
    assert completed.returncode != 0
    assert str(bad) in completed.stderr and "$.steps[0].at" in completed.stderr
    assert completed.stdout == ""


def test_an_operator_beside_the_http_step_instead_of_in_it_is_named(tmp_path):
    """Ignored, it would run the request as the default operator, who holds every role."""
    bad = tmp_path / "misplaced-as.json"
    bad.write_text(json.dumps({"steps": [{"at": "2026-11-24T10:00:00Z", "http": {"route": "decisions/pending",
                                                                                  "method": "GET"},
                                          "as": {"id": "x", "roles": []}}]}))
    completed = replay(bad)
    assert completed.returncode != 0 and "$.steps[0].as" in completed.stderr and "as goes inside http" in completed.stderr
    bad.write_text(json.dumps({"steps": [{"at": "2026-11-24T10:00:00Z", "http": {"route": "decisions/pending",
                                                                                  "roles": []}}]}))
    completed = replay(bad)
    assert completed.returncode != 0 and "$.steps[0].http.roles" in completed.stderr


def test_a_bad_setting_in_a_scenario_is_named(tmp_path):
    bad = tmp_path / "bad-setting.json"
    bad.write_text(json.dumps({"settings": {"CONTAINMENT_MODE": "yolo"}, "steps": [{"at": "2026-11-24T10:00:00Z",
                                                                                   "event": {}}]}))
    completed = replay(bad)
    assert completed.returncode != 0
    assert "$.settings.CONTAINMENT_MODE" in completed.stderr and "dry-run, enforce" in completed.stderr


def test_replay_writes_to_the_streams_a_caller_redirected_after_import():
    """Replay writes to the standard streams of the moment it writes, not of the moment it
    was imported: a caller that redirects them later gets the JSON Lines and the timeline."""
    import localazure.replay  # noqa: F401 - imported before the streams are redirected
    from containment.__main__ import main

    scenario = REPO_ROOT / "scenarios" / "public-container-dry-run.json"
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["replay", str(scenario)]) == 0
    [record, final] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert record["outcome"] == "would-contain" and "final_state" in final
    assert f"({scenario}), mode dry-run" in err.getvalue() and "would-contain" in err.getvalue()


def variant(tmp_path: Path, name: str, **settings: str) -> Path:
    """A bundled scenario with some settings changed (its logs and steps as they are)."""
    document = json.loads((SCENARIOS / name).read_text())
    document["settings"].update(settings)
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}-{name}"
    path.write_text(json.dumps(document))
    return path


def test_the_tuning_walkthrough_in_scenarios_readme_holds(tmp_path):
    """scenarios/README.md, 'Tuning thresholds': the floor decides for a quiet baseline."""
    name = "egress-baseline-spike-and-enumeration.json"
    files = [variant(tmp_path, name), variant(tmp_path, name, CONTAINMENT_EGRESS_VOLUME_FLOOR_MB="4096"),
             variant(tmp_path, name, CONTAINMENT_EGRESS_VOLUME_SIGMAS="40")]
    completed = replay(*files)
    assert completed.returncode == 0, completed.stderr
    judged = [[(r["outcome"], r["rules"]) for r in records] for records, _ in runs(completed.stdout)]
    both = [("would-contain", ["egress_bulk_enumeration", "egress_volume_anomaly"])]
    assert judged == [both, [("reported", ["egress_bulk_enumeration"])], both]


def test_logs_without_a_workspace_setting_are_scanned_in_the_emulators_workspace(tmp_path):
    """SCENARIOS.md: a scenario with logs and no CONTAINMENT_LOG_WORKSPACE_ID is scanned all the same."""
    document = json.loads((SCENARIOS / "egress-leaked-sas-from-unknown-network.json").read_text())
    del document["settings"]["CONTAINMENT_LOG_WORKSPACE_ID"]
    path = tmp_path / "no-workspace.json"
    path.write_text(json.dumps(document))
    completed = replay(path)
    assert completed.returncode == 0, completed.stderr
    [(records, _)] = runs(completed.stdout)
    assert [r["outcome"] for r in records] == EXPECTED["egress-leaked-sas-from-unknown-network.json"]


def test_replay_is_found_by_its_entry_point_and_a_missing_tool_is_named(capsys):
    """The deployed package never imports the emulator: `python -m containment replay` finds
    it through the containment.commands entry point the development package declares."""
    from containment.__main__ import _development_command
    from localazure.replay import command

    assert _development_command("replay") is command
    with pytest.raises(SystemExit) as missing:
        _development_command("no-such-tool")
    assert missing.value.code == 2
    assert "development command" in capsys.readouterr().err
