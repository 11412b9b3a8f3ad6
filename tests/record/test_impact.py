"""The impact preview of actions held for approval: the app's own KQL (impact_preview.kql) over
StorageBlobLogs rows shaped as the service writes them, on the emulator; the record that keeps
it, the pending list, the held notice and the reports that show it; and the record that says
it is unavailable when the logs cannot be read."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from containment.core import clock
from containment.core.records import DecisionRecord
from containment.record import impact
from tests.helpers import arm_bodies as b

WORKSPACE = "4f1d3c2b-0a9e-4d8c-8b7a-6f5e4d3c2b1a"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
WINDOW = datetime(2026, 11, 24, 11, 46, tzinfo=timezone.utc)  # in the scan window of NOW: [11:45, 11:50)
ACCOUNT = b.storage_account(networkAcls={"bypass": "AzureServices", "defaultAction": "Allow", "virtualNetworkRules": [],
                                         "ipRules": [{"value": "198.51.100.0/24", "action": "Allow"}]})
TRAINING = "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()


# AuthenticationHash as the Storage resource log schema documents it
# (https://learn.microsoft.com/azure/storage/blobs/monitor-blob-storage-reference).
HASHES = {"AccountKey": lambda key: f"{key}({sha(key)})",
          "SAS": lambda key: f"{key}({sha(key)}),SasSignature({sha('sas signed with ' + key)})",
          "DelegationSas": lambda key: f"user-delegation({sha('udk')}),SasSignature({sha('delegation sas')})",
          "OAuth": lambda key: sha("token"), "Anonymous": lambda key: None}


def read(at: datetime, ip: str, auth: str, key: str = "key1", oid: str | None = None, agent: str = "job/1.0") -> dict:
    return {"TimeGenerated": at.isoformat().replace("+00:00", "Z"), "AccountName": ACCOUNT["name"],
            "_ResourceId": ACCOUNT["id"].lower(), "Category": "StorageRead", "OperationName": "GetBlob",
            "StatusCode": "200", "AuthenticationType": auth, "AuthenticationHash": HASHES[auth](key),
            "RequesterObjectId": oid, "CallerIpAddress": f"{ip}:50000" if ":" not in ip else f"[{ip}]:50000",
            "ResponseBodySize": 1024, "ObjectKey": f"/{ACCOUNT['name']}/train/part-0",
            "Uri": f"https://{ACCOUNT['name']}.blob.core.windows.net/train/part-0", "UserAgentHeader": agent}


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


WEEK = [
    *(read(days_ago(d), "198.51.100.20", "AccountKey", "key1", agent="train-pipeline/2.3") for d in (6, 4, 2, 1)),
    read(days_ago(3), "198.51.100.40", "SAS", "key2", agent="AzCopy/10.27.1"),
    read(days_ago(0.5), "203.0.113.77", "SAS", "key1"),
    read(days_ago(2), "203.0.113.8", "DelegationSas"),
    read(days_ago(1), "10.20.4.11", "OAuth", oid=TRAINING),
    read(days_ago(1), "2001:db8::5", "Anonymous"),
    read(days_ago(9), "198.51.100.20", "AccountKey", "key1"),  # before the week: not counted
    {**read(days_ago(1), "198.51.100.20", "AccountKey", "key1"), "_ResourceId": "/subscriptions/x/other"},
]


def held(*actions: str, keys=None, before=None) -> DecisionRecord:
    evidence = {"callers": [{"Caller": "203.0.113.77"}], **({"keys": keys} if keys is not None else {})}
    return DecisionRecord(
        key="egress-test", resource_id=ACCOUNT["id"], outcome="pending-approval", mode="enforce", reason="held",
        awaiting_approval=[{"action": action, "target": ACCOUNT["id"]} for action in actions],
        findings=[{"rule": "egress_key_or_sas_from_untrusted_network", "severity": "critical",
                   "resource_id": ACCOUNT["id"], "summary": "", "evidence": evidence}],
        before={ACCOUNT["id"]: ACCOUNT} if before is None else before)


@pytest.fixture
def preview(app, emulator, moment):
    def make(record: DecisionRecord, rows=WEEK, **settings) -> dict:
        emulator.seed([ACCOUNT], {"StorageBlobLogs": list(rows)})
        app.configure(**{"CONTAINMENT_LOG_WORKSPACE_ID": WORKSPACE,
                         "CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16,198.51.100.0/24", **settings})
        moment(NOW)
        return impact.preview(app.runtime, record)
    return make


def callers(step: dict, group: str | None = None) -> list[tuple]:
    listed = (step[group] if group else step)["callers"]
    return [(c["caller"], c["credential"], c["requests"]) for c in listed]


def test_rotation_of_the_named_key_breaks_its_users_and_a_sas_it_signed(preview):
    [step] = preview(held("rotate_account_keys", keys=["key1"]))["steps"]
    assert (step["status"], step["keys"], step["caller_count"], step["requests"]) == ("previewed", ["key1"], 2, 5)
    assert callers(step) == [("198.51.100.20", "account key key1", 4),
                             ("203.0.113.77", f"SAS signed with key1 (SasSignature {sha('sas signed with key1')[:12]}...)", 1)]
    pipeline, leak = step["callers"]
    assert pipeline["allowed_network"] and pipeline["user_agents"] == ["train-pipeline/2.3"]
    assert (pipeline["first_use"], pipeline["last_use"]) == ("2026-11-18T12:00:00.000000Z", "2026-11-23T12:00:00.000000Z")
    assert leak["named_by_finding"] and leak["sas_signature"] == sha("sas signed with key1")


def test_rotation_where_no_finding_names_a_key_breaks_the_users_of_both(preview):
    [step] = preview(held("rotate_account_keys"))["steps"]
    assert step["keys"] == ["key1", "key2"]
    assert callers(step)[0][0] == "198.51.100.20"  # the busiest first
    assert sorted(c[0] for c in callers(step)) == ["198.51.100.20", "198.51.100.40", "203.0.113.77"]


def test_revoking_user_delegation_keys_breaks_the_user_delegation_sas_users(preview):
    [step] = preview(held("revoke_user_delegation_keys"))["steps"]
    assert callers(step) == [("203.0.113.8", f"user-delegation SAS (SasSignature {sha('delegation sas')[:12]}...)", 1)]


def test_the_network_lock_refuses_public_addresses_outside_the_ip_rules_and_cannot_judge_private_ones(preview):
    [step] = preview(held("lock_account_network"))["steps"]
    assert sorted(c[0] for c in callers(step)) == ["203.0.113.77", "203.0.113.8"]  # the IP rule keeps 198.51.100.0/24
    assert sorted(c[0] for c in callers(step, "undetermined")) == ["2001:db8::5", TRAINING]
    assert "virtual-network rule or a private endpoint" in step["note"]
    [unlocked] = preview(held("lock_account_network"),
                         CONTAINMENT_NETWORK_LOCK="disable-public-network-access")["steps"]
    assert unlocked["caller_count"] == 4 and "198.51.100.20" in [c[0] for c in callers(unlocked)]


def test_one_query_for_the_actions_held_on_an_account_and_words_for_the_others(preview, emulator):
    emulator.clear_traffic()
    record = held("rotate_account_keys", "lock_account_network", "disable_shared_key_access")
    shown = preview(record)
    assert shown["queries"] == 1 and len([x for x in emulator.traffic if "/v1/workspaces/" in x.url]) == 1
    assert [s["status"] for s in shown["steps"]] == ["previewed", "previewed", "none"]
    assert shown["steps"][2]["note"].startswith("no preview")
    assert shown["digest"].startswith("sha256:") and (shown["since"], shown["days"]) == ("2026-11-17T12:00:00.000000Z", 7)


def test_a_replication_policy_is_previewed_from_its_recorded_body(preview):
    policy_id = ACCOUNT["id"] + "/objectReplicationPolicies/default"
    body = {"id": policy_id, "properties": {"sourceAccount": "synthtrain01", "destinationAccount": "/subscriptions/"
            "x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/elsewhere01",
            "rules": [{"sourceContainer": "train", "destinationContainer": "copy", "filters": {"prefixMatch": ["a/"]}}]}}
    record = replace(held(), awaiting_approval=[{"action": "remove_replication_policy", "target": policy_id}],
                     before={policy_id.lower(): body})
    [step] = preview(record)["steps"]
    assert (step["destination_account"].endswith("/elsewhere01"), step["rule_count"]) == (True, 1)
    assert step["rules"] == [{"source_container": "train", "destination_container": "copy", "prefix_match": ["a/"]}]
    assert "No log shows the replication itself" in step["note"]
    [missing] = preview(replace(record, before={}))["steps"]
    assert missing["status"] == "unavailable"


def test_an_account_with_no_blob_logs_in_the_days_is_unavailable_not_breaks_nobody(preview):
    """No StorageBlobLogs from the account (no diagnostic setting, ingestion lag) is not "no caller"."""
    rotate, lock = preview(held("rotate_account_keys", "lock_account_network"), rows=WEEK[-2:])["steps"]
    reason = "no StorageBlobLogs from this account in 7 days: a missing diagnostic setting or logs not yet ingested"
    assert rotate["status"] == lock["status"] == "unavailable" and rotate["reason"].startswith(reason)
    assert impact.in_words(rotate).startswith("rotate_account_keys: impact preview unavailable: no StorageBlobLogs")


def test_an_account_that_logged_requests_but_none_the_action_touches_says_how_many_it_logged(preview):
    quiet = [read(days_ago(d), "10.20.4.11", "OAuth", oid=TRAINING) for d in (5, 1)]
    [step] = preview(held("rotate_account_keys", keys=["key2"]), rows=quiet)["steps"]
    assert (step["status"], step["caller_count"], step["blob_requests_logged"]) == ("previewed", 0, 2)
    assert step["last_logged"] == "2026-11-23T12:00:00.000000Z"
    assert impact.in_words(step) == (
        "rotate_account_keys breaks no caller among the 2 blob requests the account logged, the last at "
        "2026-11-23T12:00:00.000000Z (blob requests signed with key2: the account key itself, or a SAS it signed)")
    assert "queue, table and file requests" in step["note"]


def test_without_a_workspace_or_the_account_rules_the_preview_says_it_is_unavailable(preview):
    [step] = preview(held("rotate_account_keys"), CONTAINMENT_LOG_WORKSPACE_ID="")["steps"]
    assert step == {"action": "rotate_account_keys", "target": ACCOUNT["id"], "status": "unavailable",
                    "keys": ["key1", "key2"], "reason": "CONTAINMENT_LOG_WORKSPACE_ID is not set: no logs to read"}
    rotate, lock = preview(held("rotate_account_keys", "lock_account_network", before={}))["steps"]
    assert rotate["status"] == "previewed" and lock["status"] == "unavailable"
    assert "network rules are not on the record" in lock["reason"]


# -- where the app computes it and where a person sees it ------------------------------------------
@pytest.fixture
def scan(app, emulator):

    def run(rows, **settings):
        emulator.seed([ACCOUNT], {"StorageBlobLogs": list(rows)})
        app.configure(**{"CONTAINMENT_MODE": "enforce", "CONTAINMENT_LOG_WORKSPACE_ID": WORKSPACE,
                         "CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16,198.51.100.0/24",
                         "CONTAINMENT_EGRESS_CONTAINMENT": "critical:rotate_account_keys", **settings})
        assert app.fire_at("egress_scan", NOW).error is None
        return app.records()
    return run


LEAK = [read(WINDOW, "203.0.113.77", "SAS", "key1"), *WEEK]


def test_a_held_rotation_is_recorded_with_its_preview_and_listed_with_it(scan, app):
    from containment.operate import controls

    [record] = scan(LEAK)
    assert record.outcome == "pending-approval"
    [step] = record.impact_preview["steps"]
    assert step["status"] == "previewed" and "198.51.100.20" in [c["caller"] for c in step["callers"]]
    kept = app.runtime.ledger.find(record.resource_id, record.key)
    assert kept.impact_preview == record.impact_preview  # the ledger keeps it as written
    status, listed = controls.list_pending(app.runtime)
    [entry] = listed["pending"]
    assert status == 200 and entry["impact_preview"] == record.impact_preview
    assert entry["awaiting_approval"] == [{"action": "rotate_account_keys", "target": ACCOUNT["id"]}]


def test_in_dry_run_the_preview_is_on_the_record_too(scan):
    [record] = scan(LEAK, CONTAINMENT_MODE="dry-run", CONTAINMENT_EGRESS_CONTAINMENT="critical:lock_account_network+rotate_account_keys")
    assert record.outcome == "would-contain" and record.impact_preview["steps"][0]["status"] == "previewed"


def test_a_failing_preview_query_leaves_the_decision_saying_the_preview_is_unavailable(scan, emulator):
    # The scan's own queries answer; the preview's (the only one naming address_ranges) does not.
    emulator.faults.add("partial-error", path="/v1/workspaces/", body="address_ranges", times=None)
    [record] = scan(LEAK)
    assert record.outcome == "pending-approval" and record.awaiting_approval
    [step] = record.impact_preview["steps"]
    assert step["status"] == "unavailable" and "impact_preview: partial result" in step["reason"]


def test_the_held_notice_says_whom_the_action_breaks(scan, emulator):
    scan(LEAK)
    [held_notice] = [n for n in emulator.notifications if "held" in n["data"].get("changed", [])]
    said = held_notice["data"]["impact_preview"]["steps"][0]
    assert said["summary"].startswith("rotate_account_keys breaks") and "198.51.100.20 (account key key1" in said["summary"]
    assert said["callers"][0]["caller"] == "198.51.100.20" and "198.51.100.20" in held_notice["data"]["summary"]


def test_the_approval_answer_says_back_what_it_breaks(scan, app):
    from containment.operate import controls
    from containment.operate.principal import Principal

    [record] = scan(LEAK)
    approver = Principal("5c6d7e8f-0000-4000-8000-000000000001", "oncall@contoso.example",
                         frozenset({"Containment.Approve"}), "aad")
    clock.set_source(lambda: NOW + timedelta(minutes=5))
    try:
        status, answer = controls.approve(app.runtime, record.key, approver)
    finally:
        clock.set_source(None)
    assert status == 202 and answer["impact_preview"] == record.impact_preview


def test_a_decision_the_blast_radius_limit_holds_whole_carries_the_preview_of_each_action(scan):
    [record] = scan(LEAK, CONTAINMENT_EGRESS_CONTAINMENT="critical:lock_account_network+revoke_user_delegation_keys",
                    CONTAINMENT_MAX_ACTIONS_PER_HOUR="1", CONTAINMENT_HIGH_SEVERITY_RESERVE="0")
    assert record.outcome == "pending-approval" and "blast-radius limit" in record.reason
    lock, revoke = record.impact_preview["steps"]
    assert (lock["action"], revoke["action"]) == ("lock_account_network", "revoke_user_delegation_keys")
    assert "203.0.113.77" in [c["caller"] for c in lock["callers"]] and lock["callers"][0]["named_by_finding"]
    assert [c["caller"] for c in revoke["callers"]] == ["203.0.113.8"]


# -- the reports ---------------------------------------------------------------------------------
PREVIEW = {"since": "2026-11-17T14:15:00.000000Z", "until": "2026-11-24T14:15:00.000000Z", "days": 7, "queries": 1,
           "digest": "sha256:0f0f", "steps": [{
               "action": "rotate_account_keys", "target": ACCOUNT["id"], "status": "previewed", "keys": ["key1"],
               "uses": "blob requests signed with key1: the account key itself, or a SAS it signed",
               "caller_count": 2, "requests": 46, "first_use": "2026-11-18T16:00:00.000000Z",
               "last_use": "2026-11-24T14:02:27.000000Z", "callers": [
                   {"caller": "198.51.100.20", "address": "198.51.100.20", "authentication": "AccountKey",
                    "credential": "account key key1", "requests": 36, "first_use": "2026-11-18T16:00:00.000000Z",
                    "last_use": "2026-11-24T12:00:00.000000Z", "user_agents": ["train-pipeline/2.3"],
                    "allowed_network": True},
                   {"caller": "203.0.113.77", "address": "203.0.113.77", "authentication": "SAS",
                    "credential": "SAS signed with key1 (SasSignature B7AA320F2023...)", "requests": 10,
                    "first_use": "2026-11-24T14:02:00.000000Z", "last_use": "2026-11-24T14:02:27.000000Z",
                    "user_agents": [], "named_by_finding": True}]}]}


def test_the_incident_report_shows_whom_the_waiting_action_breaks():
    from containment.record.export import incident_html
    from tests.helpers import incidents as h
    from tests.record.test_report import Page

    first, *rest = h.egress_sas_leak()
    page = Page(incident_html(h.incident_of([replace(first, impact_preview=PREVIEW), *rest]), NOW))
    waiting = " ".join(page.sections["waiting"].split())
    assert "Who it would break: decision egress-20261124T1400-754c7ddb1ae5b78e3bbb" in waiting
    assert "2026-11-17 14:15:00 UTC to 2026-11-24 14:15:00 UTC (7 days)" in waiting and "sha256:0f0f" in waiting
    assert "Breaks: 2 caller(s), 46 blob requests, last 2026-11-24 14:02:27 UTC" in waiting
    [_, breaks] = page.tables["waiting"]
    assert breaks[0] == ["Caller", "Credential", "Client", "Requests", "First use", "Last use"]
    assert breaks[1][:4] == ["198.51.100.20 inside CONTAINMENT_ALLOWED_CIDRS", "account key key1",
                             "train-pipeline/2.3", "36"]
    assert breaks[2][0] == "203.0.113.77 the caller the finding names"
    nothing_waits = Page(incident_html(h.incident_of(h.public_container()), NOW))
    assert "Who it would break" not in nothing_waits.sections["waiting"]


def test_the_evidence_report_lists_the_preview_under_its_decision():
    from localazure.evidence_report import render
    from tests.helpers import incidents as h

    first, *_ = h.egress_sas_leak()
    markdown = render("leak", {}, [replace(first, impact_preview=PREVIEW)], {})
    assert ("  - rotate_account_keys breaks 2 caller(s), 46 blob requests, last 2026-11-24T14:02:27.000000Z: "
            "198.51.100.20 (account key key1, 36 blob requests, last 2026-11-24T12:00:00.000000Z, inside "
            "CONTAINMENT_ALLOWED_CIDRS); 203.0.113.77 (SAS signed with key1 (SasSignature B7AA320F2023...), 10 blob "
            "requests, last "
            "2026-11-24T14:02:27.000000Z, the caller the finding names)") in markdown
    assert ("| rotate_account_keys | `198.51.100.20` | 198.51.100.20 | account key key1 | 36 | "
            "2026-11-18T16:00:00.000000Z | 2026-11-24T12:00:00.000000Z |") in markdown


def test_address_ranges_are_rendered_as_a_typed_dynamic_array():
    from containment.adapters.log_analytics import with_parameters

    text = "let address_ranges = dynamic([]);"
    assert with_parameters(text, address_ranges=((3325256704, 3325256959, "kept"),)) == \
        'let address_ranges = dynamic([[3325256704, 3325256959, "kept"]]);'
    for wrong in (((1.5, 2, "kept"),), ((True, 2, "kept"),), (("a\n| take 1",),)):
        with pytest.raises(TypeError):
            with_parameters(text, address_ranges=wrong)


def test_the_incident_report_says_when_a_preview_is_unavailable_or_none_exists():
    from containment.record.export import incident_html
    from tests.helpers import incidents as h
    from tests.record.test_report import Page

    first, *rest = h.egress_sas_leak()
    steps = [{"action": "rotate_account_keys", "target": ACCOUNT["id"], "status": "unavailable",
              "reason": "impact_preview: partial result: There were some errors when processing your query."},
             {"action": "disable_shared_key_access", "target": ACCOUNT["id"], "status": "none",
              "note": "no preview: nothing in the logs shows who disable_shared_key_access would affect"}]
    page = Page(incident_html(h.incident_of([replace(first, impact_preview={**PREVIEW, "steps": steps}), *rest]), NOW))
    waiting = " ".join(page.sections["waiting"].split())
    assert ("rotate_account_keys on storageAccounts/synthtrain01: impact preview unavailable: impact_preview: "
            "partial result") in waiting
    assert waiting.count("no preview: nothing in the logs shows who disable_shared_key_access would affect") == 1


def test_a_rotation_step_that_carries_its_keys_previews_those_alone(preview):
    """An earlier decision of the incident took key1: the step left carries key2, and the
    approver is shown who uses key2, as the worker rotates it, not what the findings name."""
    record = held("rotate_account_keys", keys=["key1", "key2"])
    record = replace(record, awaiting_approval=[{**record.awaiting_approval[0], "keys": ["key2"]}])
    [step] = preview(record)["steps"]
    assert (step["status"], step["keys"]) == ("previewed", ["key2"])
    assert step["uses"].startswith("blob requests signed with key2:")
    signed = f"SAS signed with key2 (SasSignature {sha('sas signed with key2')[:12]}...)"
    assert callers(step) == [("198.51.100.40", signed, 1)]
