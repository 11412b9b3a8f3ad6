"""Egress detection end to end: the timer function queries the Log Analytics emulator
(the app's own KQL over seeded StorageBlobLogs rows), judges, records and contains."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from containment.core import clock
from tests.helpers import arm_bodies as b

WORKSPACE = "4f1d3c2b-0a9e-4d8c-8b7a-6f5e4d3c2b1a"
ACCOUNT = b.storage_account()
MB = 1024 * 1024
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
# With a 10-minute lag and 5-minute windows, the scan at NOW covers [11:45, 11:50).
WINDOW_START = datetime(2026, 11, 24, 11, 45, tzinfo=timezone.utc)


def read(at: datetime, ip: str = "203.0.113.9", size: int = MB, auth: str = "OAuth", blob: str = "train/part-0",
         oid: str | None = "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f", account: dict = ACCOUNT, operation: str = "GetBlob",
         status: str = "200", **columns) -> dict:
    return {
        "TimeGenerated": at.isoformat().replace("+00:00", "Z"), "AccountName": account["name"],
        "_ResourceId": account["id"].lower(), "Category": "StorageRead", "OperationName": operation,
        "StatusCode": status, "AuthenticationType": auth, "RequesterObjectId": oid if auth == "OAuth" else None,
        "CallerIpAddress": f"{ip}:52311", "ResponseBodySize": size, "ObjectKey": f"/{account['name']}/{blob}",
        "Uri": f"https://{account['name']}.blob.core.windows.net/{blob}?sv=2025-01-05", **columns,
    }


@pytest.fixture
def scan(app, emulator):
    """Seed, configure and run the egress_scan timer function at the app's clock."""

    def run(rows=(), at: datetime = NOW, seed=True, **settings):
        if seed:
            emulator.seed([ACCOUNT], {"StorageBlobLogs": list(rows)})
        app.configure(**{"CONTAINMENT_MODE": "enforce", "CONTAINMENT_LOG_WORKSPACE_ID": WORKSPACE,
                         "CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16", "CONTAINMENT_EGRESS_VOLUME_FLOOR_MB": "5",
                         "CONTAINMENT_EGRESS_NEW_CALLER_MB": "5", "CONTAINMENT_EGRESS_ENUMERATION_BLOBS": "20",
                         **settings})
        invocation = app.fire_at("egress_scan", at)
        assert invocation.error is None, invocation.error
        return app.records()
    return run


def in_window(minute: float = 1) -> datetime:
    return WINDOW_START + timedelta(minutes=minute)


def test_an_anonymous_read_is_critical_and_contained_with_key_rotation_held_for_approval(scan, emulator):
    [record] = scan([read(in_window(), auth="Anonymous", ip="198.51.100.20")])
    assert (record.outcome, record.severity, record.rules) == ("contained", "critical", ["egress_anonymous_read"])
    assert record.actions == ["disable_blob_public_access", "lock_account_network", "revoke_user_delegation_keys"]
    assert [a["action"] for a in record.awaiting_approval] == ["rotate_account_keys"]
    evidence = record.findings[0]["evidence"]
    assert evidence["callers"][0]["Addresses"] == ["198.51.100.20"]
    assert evidence["callers"][0]["SampleUris"] and evidence["start"].startswith("2026-11-24T11:45")
    account = emulator.arm.get(ACCOUNT["id"])["properties"]
    assert account["networkAcls"]["defaultAction"] == "Deny" and account["networkAcls"]["bypass"] == "AzureServices"
    assert ACCOUNT["id"].lower() in emulator.arm.user_delegation_keys_revoked
    assert account["keyCreationTime"] == ACCOUNT["properties"]["keyCreationTime"]  # not rotated: waits for a person


def test_quiet_oauth_reads_from_a_known_principal_are_not_recorded(scan):
    assert scan([read(in_window(), size=MB)]) == []


def test_sas_from_the_allowed_network_is_compliant_and_from_elsewhere_is_not(scan):
    assert scan([read(in_window(), auth="SAS", ip="10.20.3.4")]) == []


def test_sas_from_outside_the_allowed_network_is_critical(scan):
    [record] = scan([read(in_window(), auth="SAS", ip="10.20.3.4"), read(in_window(2), auth="SAS", ip="192.0.2.66")])
    assert record.rules == ["egress_key_or_sas_from_untrusted_network"]
    assert record.findings[0]["evidence"]["callers"][0]["untrusted_addresses"] == ["192.0.2.66"]


@pytest.mark.parametrize("megabytes, fires", [(5, False), (6, True)])
def test_a_new_callers_volume_is_judged_by_the_new_caller_threshold(scan, megabytes, fires):
    records = scan([read(in_window(), size=megabytes * MB)], CONTAINMENT_MODE="dry-run")
    assert [r.rules for r in records] == ([["egress_volume_anomaly"]] if fires else [])


def test_a_caller_with_a_long_quiet_baseline_that_spikes(scan):
    history = [read(WINDOW_START - timedelta(hours=h), size=1 * MB) for h in range(1, 49)]  # 1 MB an hour, 2 days
    spike = [read(in_window(m / 10), size=1 * MB, blob=f"train/part-{m}") for m in range(12)]  # 12 MB now
    [record] = scan(history + spike, CONTAINMENT_MODE="dry-run")
    [caller] = record.findings[0]["evidence"]["callers"]
    assert record.rules == ["egress_volume_anomaly"] and caller["baseline_active_windows"] == 48
    assert caller["threshold_bytes"] == 5 * MB  # the floor: mean + 4 sd of a quiet history is far below it
    assert record.outcome == "would-contain"


def test_a_known_caller_within_its_baseline_is_not_anomalous(scan):
    # 20 MB in every window of the lookback: a steady heavy reader, judged against itself.
    history = [read(WINDOW_START - timedelta(minutes=5 * w), size=20 * MB) for w in range(1, 2017)]
    assert scan(history + [read(in_window(), size=20 * MB)], CONTAINMENT_EGRESS_NEW_CALLER_MB="1") == []


@pytest.mark.parametrize("blobs, fires", [(20, False), (21, True)])
def test_bulk_enumeration_near_its_threshold(scan, blobs, fires):
    rows = [read(in_window(i / 100), size=1024, blob=f"train/part-{i}") for i in range(blobs)]
    records = scan(rows, CONTAINMENT_MODE="dry-run")
    assert [r.rules for r in records] == ([["egress_bulk_enumeration"]] if fires else [])


def test_dry_run_changes_nothing(scan, emulator):
    [record] = scan([read(in_window(), auth="Anonymous")], CONTAINMENT_MODE="dry-run")
    assert record.outcome == "would-contain"
    assert emulator.arm.get(ACCOUNT["id"])["properties"]["networkAcls"]["defaultAction"] == "Deny"  # as seeded
    assert not emulator.arm.user_delegation_keys_revoked


def test_reads_of_an_unprotected_account_are_not_judged(scan, emulator):
    other = b.storage_account("webassets01", tags={})
    emulator.seed([other])
    assert scan([read(in_window(), auth="Anonymous", account=other)]) == []


def test_reads_of_the_apps_own_account_are_reported_and_notified_and_never_contained(scan, app, emulator):
    own = b.storage_account("containmentapp01", group="rg-containment")
    emulator.seed([own])
    [record] = scan([read(in_window(), auth="Anonymous", account=own)],
                    CONTAINMENT_OWN_SCOPES=f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-containment")
    assert (record.resource_id, record.outcome, record.own_deployment) == (own["id"], "reported", True)
    assert record.rules == ["egress_anonymous_read"] and record.severity == "critical"
    assert record.plan == record.awaiting_approval == [] and "CONTAINMENT_OWN_SCOPES" in record.reason
    assert [w.url for w in app.writes() if "/subscriptions/" in w.url] == []  # the queries are POSTs too
    assert not emulator.arm.user_delegation_keys_revoked
    assert [n["data"]["decision"] for n in emulator.notifications] == [record.key]


def test_a_partial_error_fails_the_scan_and_keeps_the_checkpoint(scan, emulator, app):
    emulator.faults.add("partial-error", path="/v1/workspaces/", times=1)
    [failed] = scan([read(in_window(), auth="Anonymous")])
    assert failed.outcome == "failed" and "partial result" in failed.reason
    assert app.runtime.ledger.checkpoint("egress_scan")[0] is None
    failed, works_again, contained = scan(seed=False)  # the next scan retries the same window
    assert (works_again.outcome, works_again.key, contained.outcome) == ("reported", f"{failed.key}.recovered",
                                                                         "contained")


@pytest.mark.parametrize("status", [400, 429])
def test_an_error_answer_fails_the_scan(scan, emulator, status):
    emulator.faults.add("status", path="/v1/workspaces/", status=status, retry_after=0, times=None)
    [failed] = scan([read(in_window(), auth="Anonymous")])
    assert failed.outcome == "failed" and "HttpResponseError" in failed.reason


def test_two_scans_over_the_same_data_find_it_once(scan, app):
    rows = [read(in_window(), auth="Anonymous")]
    scan(rows)
    scan(seed=False)  # the same clock: nothing is due
    app.runtime.ledger.table.delete_entity("checkpoint", "egress_scan")  # as if the checkpoint were lost
    scan(seed=False)
    assert [r.outcome for r in app.records()] == ["contained"]


def test_a_scan_after_downtime_catches_up_in_bounded_steps(scan, app):
    rows = [read(WINDOW_START - timedelta(minutes=90), auth="Anonymous"), read(in_window(), auth="SAS", ip="192.0.2.1")]
    scan(rows, at=NOW - timedelta(hours=2))  # the last scan before the outage: checkpoint at 09:50
    assert app.runtime.ledger.checkpoint("egress_scan")[0].startswith("2026-11-24T09:50")
    scan(seed=False, CONTAINMENT_EGRESS_MAX_WINDOWS="12")  # 2 hours later: one hour of windows
    assert app.runtime.ledger.checkpoint("egress_scan")[0].startswith("2026-11-24T10:50")
    assert [r.rules for r in app.records()] == [["egress_anonymous_read"]]  # the 10:15 read, found late
    scan(seed=False)
    assert app.runtime.ledger.checkpoint("egress_scan")[0].startswith("2026-11-24T11:50")
    assert [r.rules for r in app.records()][-1] == ["egress_key_or_sas_from_untrusted_network"]


def test_the_baseline_is_queried_once_an_hour_and_reused_by_the_scans_in_between(scan, app, emulator):
    """The baseline's lookback ends on the hour, so the hour's scans share one answer."""
    import function_app
    from localazure.functions_host import fire_timer

    def lookback_ends(query: str) -> list[str]:
        queries = [str(x.request_body) for x in emulator.traffic if "/v1/workspaces/" in x.url]
        return [q.split("let lookback_end = datetime(", 1)[1][:16] for q in queries if query in q]

    def baseline_lookback_ends() -> list[str]:
        return lookback_ends("StdDev = sqrt(")

    spike = [read(in_window(m / 10), blob=f"train/part-{m}") for m in range(12)]
    history = [read(WINDOW_START - timedelta(hours=h)) for h in range(1, 49)]
    scan(history + spike)  # 12:00: the window from 11:45, the baseline up to 11:00
    for minutes in (5, 10, 15):  # the windows from 11:50 and 11:55, then 12:00: a new hour
        clock.set_source(lambda: NOW + timedelta(minutes=minutes))
        try:
            assert fire_timer(function_app.app, "egress_scan").error is None
        finally:
            clock.set_source(None)
    assert baseline_lookback_ends() == ["2026-11-24T11:00", "2026-11-24T12:00"]
    # The arrival of every account's logs: asked once in the hour too, up to the first scan's clock.
    assert lookback_ends("LastArrival = max(") == ["2026-11-24T12:00"]
    assert app.runtime.ledger.checkpoint("egress_scan")[0].startswith("2026-11-24T12:05")
    [record] = app.records()
    assert record.findings[0]["evidence"]["callers"][0]["baseline_active_windows"] == 48


def test_a_catch_up_reads_each_account_once_however_many_windows_name_it(scan, app, emulator):
    rows = [read(WINDOW_START - timedelta(minutes=m), auth="Anonymous", ip="198.51.100.20") for m in (90, 80, 70)]
    scan(rows, at=NOW - timedelta(hours=2))
    emulator.clear_traffic()
    scan(seed=False, CONTAINMENT_EGRESS_MAX_WINDOWS="12", CONTAINMENT_MODE="dry-run")
    # Three windows, three decisions: one incident, so the later two record it as already handled.
    assert [r.outcome for r in app.records()] == ["would-contain", "reported", "reported"]
    reads = [x for x in emulator.traffic if x.method == "GET" and x.url.split("?")[0].endswith(ACCOUNT["name"])]
    assert len(reads) == 1


def test_without_a_workspace_the_scan_says_it_cannot_run(scan):
    [failed] = scan([], CONTAINMENT_LOG_WORKSPACE_ID="")
    assert failed.outcome == "failed" and "CONTAINMENT_LOG_WORKSPACE_ID is not set" in failed.reason


# -- a failure that repeats is one record, counted, until the scan works again ------------------------
def test_a_scan_without_a_workspace_run_ten_times_in_an_hour_is_one_record_counted_and_notified_once(
        scan, app, emulator):
    from containment.record.verify import verify

    hour = [NOW + timedelta(minutes=6 * n) for n in range(10)]
    for at in hour:
        records = scan(at=at, CONTAINMENT_LOG_WORKSPACE_ID="")
    [failed] = records
    repetition = app.runtime.ledger.repetition(failed.key)
    assert (repetition.count, repetition.first_at, repetition.last_at, repetition.open) == (
        10, clock.iso(hour[0]), clock.iso(hour[-1]), True)
    assert [(n["type"], n["data"]["decision"]) for n in emulator.notifications] == [
        ("SyntheticDataContainment.Decision.failed", failed.key)]
    day = NOW.replace(hour=0)
    assert verify(app.runtime.ledger, day, day + timedelta(days=1)).ordered() == []  # counted beside it, not in it


def test_another_cause_is_a_record_of_its_own_and_the_scan_working_again_closes_each(scan, app, emulator):
    minutes = [NOW + timedelta(minutes=5 * n) for n in range(5)]
    [no_workspace] = scan(at=minutes[0], CONTAINMENT_LOG_WORKSPACE_ID="")
    emulator.faults.add("status", path="/v1/workspaces/", status=400, times=None)  # the service refuses the query
    scan(at=minutes[1], seed=False)
    _, refused = scan(at=minutes[2], seed=False)
    assert refused.outcome == "failed" and "HttpResponseError" in refused.reason
    ledger = app.runtime.ledger
    assert (ledger.repetition(refused.key).count, ledger.repetition(no_workspace.key).open) == (2, True)
    emulator.faults.clear()
    recoveries = {r.key: r for r in scan(at=minutes[3], seed=False)[2:]}
    assert set(recoveries) == {f"{no_workspace.key}.recovered", f"{refused.key}.recovered"}
    works_again = recoveries[f"{refused.key}.recovered"]
    assert (works_again.outcome, works_again.operation, works_again.actions) == ("reported", "egress_scan", [])
    assert (f"happened 2 times, first at {clock.iso(minutes[1])}, last at {clock.iso(minutes[2])}"
            in works_again.reason)
    closed = ledger.repetition(refused.key)
    assert (closed.recovered_at, closed.recovery, closed.count) == (clock.iso(minutes[3]), works_again.key, 2)
    assert [n["data"]["decision"] for n in emulator.notifications] == [no_workspace.key, refused.key]
    again = scan(at=minutes[4], seed=False, CONTAINMENT_LOG_WORKSPACE_ID="")[-1]
    assert (again.outcome, again.key) == ("failed", no_workspace.key[:-1] + "2")  # after recovery: a new record
    assert ledger.repetition(again.key).count == 1 and emulator.notifications[-1]["data"]["decision"] == again.key


def test_an_account_that_fails_window_after_window_is_one_record_until_it_is_judged_again(scan, app, emulator):
    """The app's identity may not read the account yet (403, never retried): each window
    names it, each is a repetition; the first window it is judged in closes it."""
    rows = [read(WINDOW_START + timedelta(minutes=5 * n + 1)) for n in range(4)]  # quiet reads: nothing to find
    emulator.faults.add("status", path=f"/storageAccounts/{ACCOUNT['name']}$", method="GET", status=403, times=None)
    for n in range(3):
        [failed] = scan(rows, at=NOW + timedelta(minutes=5 * n), seed=n == 0)
    assert failed.resource_id == ACCOUNT["id"].lower() and "403" in failed.reason
    assert app.runtime.ledger.repetition(failed.key).count == 3
    emulator.faults.clear()
    _, works_again = scan(at=NOW + timedelta(minutes=15), seed=False)
    assert (works_again.key, works_again.resource_id) == (f"{failed.key}.recovered", failed.resource_id)
    assert f"the egress scan works again for {failed.resource_id}: " in works_again.reason and "3 times" in works_again.reason


def test_the_queries_conform_and_type_check(scan, emulator, shared, tmp_path):
    from localazure.conformance import validate_traffic
    from localazure.kql import check_queries, shipped_queries

    scan([read(in_window(), auth="Anonymous")])
    emulator.write_traffic(tmp_path)
    report = validate_traffic(tmp_path)
    # The hour's watch lists the subscriptions and their storage accounts: ../shared's specs hold
    # neither list operation, so oav can only call them undefined. Everything else must validate.
    assert report.findings == [] and report.operations_covered, str(report)
    undefined = {json.loads((tmp_path / name).read_text())["liveRequest"]["url"].split("?")[0]
                 for name in report.undefined}
    assert undefined == {f"{emulator.endpoint}/subscriptions",
                         f"{emulator.endpoint}/subscriptions/{b.SUBSCRIPTION}/providers/Microsoft.Storage/storageAccounts"}
    assert set(shipped_queries()) == {"adapters/queries/egress_window.kql", "adapters/queries/egress_baseline.kql",
                                      "adapters/queries/egress_canary.kql", "adapters/queries/egress_copy.kql",
                                      "adapters/queries/egress_arrival.kql", "adapters/queries/egress_vault_keys.kql",
                                      "adapters/queries/service_clock.kql", "adapters/queries/impact_preview.kql"}
    assert all(not diagnostics for diagnostics in check_queries(shipped_queries()).values())


CANARY = "train/customers-2026-q3.parquet"


def canaries(*blobs: str) -> str:
    return ",".join(f"{ACCOUNT['name']}/{blob}" for blob in blobs)


def test_a_canary_read_from_the_training_network_is_critical_and_contained(scan, emulator):
    rows = [read(in_window(), auth="SAS", ip="10.20.3.4", blob="train/part-0"),
            read(in_window(2), auth="SAS", ip="10.20.3.4", blob=CANARY, size=4096)]
    [record] = scan(rows, CONTAINMENT_CANARY_BLOBS=canaries(CANARY, "train/untouched.parquet"))
    assert (record.outcome, record.severity, record.rules) == ("contained", "critical", ["egress_canary_read"])
    assert record.actions == ["disable_blob_public_access", "lock_account_network", "revoke_user_delegation_keys"]
    evidence = record.findings[0]["evidence"]
    assert evidence["canaries"] == [f"/{ACCOUNT['name']}/{CANARY}"]
    [one] = evidence["reads"]
    assert (one["Canary"], one["Caller"], one["Address"], one["AuthenticationType"], one["Requests"]) == (
        f"/{ACCOUNT['name']}/{CANARY}", "10.20.3.4", "10.20.3.4", "SAS", 1)
    assert one["FirstRead"].startswith("2026-11-24") and "11:47" in one["FirstRead"]
    assert evidence["digest"] in record.full_evidence
    assert emulator.arm.get(ACCOUNT["id"])["properties"]["networkAcls"]["defaultAction"] == "Deny"


def test_the_canaries_command_lists_each_canary_and_its_last_read_from_the_ledger(scan, capsys):
    import json

    from containment.__main__ import main

    scan([read(in_window(2), auth="SAS", ip="10.20.3.4", blob=CANARY)],
         CONTAINMENT_CANARY_BLOBS=canaries(CANARY, "train/untouched.parquet"))
    capsys.readouterr()
    assert main(["canaries"]) == 0
    out, err = capsys.readouterr()
    read_one, untouched = map(json.loads, out.splitlines())
    assert (read_one["canary"], read_one["read"], read_one["last_caller"], read_one["last_authentication"],
            read_one["decisions"]) == (f"/{ACCOUNT['name']}/{CANARY}", True, "10.20.3.4", "SAS", 1)
    assert read_one["last_read"].startswith("2026-11-24T11:47")
    assert (untouched["canary"], untouched["read"], untouched["last_read"]) == (
        f"/{ACCOUNT['name']}/train/untouched.parquet", False, None)
    assert "2 canaries, 1 read and 1 not read" in err


def test_a_canary_read_by_an_operation_other_than_getblob_is_a_finding(scan):
    oid = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
    [record] = scan([read(in_window(), blob=CANARY, operation="GetBlobProperties", oid=oid, ip="10.20.3.4")],
                    CONTAINMENT_CANARY_BLOBS=canaries(CANARY), CONTAINMENT_MODE="dry-run")
    assert (record.outcome, record.rules) == ("would-contain", ["egress_canary_read"])
    [one] = record.findings[0]["evidence"]["reads"]
    assert (one["Caller"], one["AuthenticationType"], one["Operations"]) == (oid, "OAuth", ["GetBlobProperties"])


def test_ordinary_reads_beside_an_untouched_canary_find_nothing(scan):
    rows = [read(in_window(m), auth="SAS", ip="10.20.3.4", blob=f"train/part-{m}") for m in range(3)]
    assert scan(rows, CONTAINMENT_CANARY_BLOBS=canaries(CANARY)) == []


@pytest.mark.parametrize("status", ["403", "404"])
def test_a_failed_read_of_a_canary_is_not_a_finding(scan, status):
    assert scan([read(in_window(), auth="SAS", ip="10.20.3.4", blob=CANARY, status=status)],
                CONTAINMENT_CANARY_BLOBS=canaries(CANARY)) == []


def test_a_malformed_canary_setting_is_refused_naming_the_entry():
    from containment.core.settings import SettingsError, load_settings
    from containment.plan.registry import VOCABULARY

    with pytest.raises(SettingsError, match=r"CONTAINMENT_CANARY_BLOBS=.*: synthdata01/train not a blob path"):
        load_settings({"CONTAINMENT_CANARY_BLOBS": "synthdata01/train/a.parquet, synthdata01/train"}, VOCABULARY)
    settings = load_settings({"CONTAINMENT_CANARY_BLOBS": "synthdata01/train/a.parquet"}, VOCABULARY)
    assert settings.canary_blobs == ("/synthdata01/train/a.parquet",)


def test_parameters_are_rendered_typed_and_must_exist():
    from containment.adapters.log_analytics import with_parameters

    text = "let window_start = datetime(2020-01-01);\nlet windows = 1;\nT | take windows"
    rendered = with_parameters(text, window_start=NOW, windows=2016)
    assert "let window_start = datetime(2026-11-24T12:00:00.000000Z);" in rendered and "let windows = 2016;" in rendered
    with pytest.raises(KeyError, match="no parameter 'window_end'"):
        with_parameters(text, window_end=NOW)
    with pytest.raises(TypeError):
        with_parameters(text, windows="2016; StorageBlobLogs | take 1")
    assert with_parameters("let canaries = dynamic([]);", canaries=("/a/b/c\" | take 1",)) == \
        'let canaries = dynamic(["/a/b/c\\" | take 1"]);'
    with pytest.raises(TypeError):
        with_parameters("let canaries = dynamic([]);", canaries=("/a/b/c\n| take 1",))


def test_evidence_longer_than_a_table_property_is_kept_whole(app):
    from containment.core.records import DecisionRecord

    huge = {"rules": [{"name": f"rule-{i}", "description": "x" * 200} for i in range(600)]}  # ~150 KB of JSON
    record = DecisionRecord(key="long-evidence", resource_id=ACCOUNT["id"], outcome="reported", mode="dry-run",
                            reason="test", before={ACCOUNT["id"]: huge}, decided_at="2026-11-24T12:00:00Z")
    assert app.runtime.ledger.write(record)
    assert app.runtime.ledger.find(ACCOUNT["id"], "long-evidence").before == {ACCOUNT["id"]: huge}


# -- windows of ingestion time, capped by the service's clock -------------------------------------------
def arriving(generated: datetime, ingested: datetime, **options) -> dict:
    return {**read(generated, **options), "_IngestionTime": ingested.isoformat().replace("+00:00", "Z")}


def scans(scan, emulator, *moments, rows=(), **settings):
    """Scan at each (app clock, service clock), the rows seeded once; the records after each."""
    results, seeded = [], False
    for app_at, service_at in moments:
        emulator.clock = lambda at=service_at: at
        results.append([r.key for r in scan(rows, at=app_at, seed=not seeded, **settings)])
        seeded = True
    return results


def test_a_row_that_arrives_after_its_window_was_scanned_is_scanned_once_where_it_arrived(scan, emulator):
    late = arriving(in_window(1), ingested=NOW + timedelta(minutes=2), auth="Anonymous", ip="198.51.100.20")
    after = [scans(scan, emulator, (NOW, NOW), (NOW + timedelta(minutes=5), NOW + timedelta(minutes=5)),
                   (NOW + timedelta(minutes=15), NOW + timedelta(minutes=15)),
                   (NOW + timedelta(minutes=20), NOW + timedelta(minutes=20)), rows=[late])]
    [[first, second, third, fourth]] = after
    assert first == [] and second == []  # not ingested yet, then not in the window of its arrival
    assert len(third) == 1 and third[0].startswith("egress-20261124T1200")  # the window it arrived in
    assert fourth == third  # scanned once: nothing new later


def test_an_instance_whose_clock_runs_ahead_skips_no_window(scan, emulator):
    """The instance runs 30 minutes ahead of the service: it scans only what the service has
    filled, so a row that arrives after its scan is still scanned by the next one."""
    row = arriving(NOW + timedelta(minutes=9), ingested=NOW + timedelta(minutes=10), auth="Anonymous",
                   ip="198.51.100.20")
    results = scans(scan, emulator, (NOW + timedelta(minutes=30), NOW),
                    (NOW + timedelta(minutes=40), NOW + timedelta(minutes=25)), rows=[row])
    assert results[0] == []  # the row is not there yet
    assert len(results[1]) == 1 and results[1][0].startswith("egress-20261124T1210")


def test_a_window_whose_answer_was_cut_is_a_failed_record_and_is_scanned_again(scan, emulator):
    """An answer past the service's row limit is partial: never read as 'no anomalies'."""
    emulator.logs.max_rows = 1
    rows = [read(in_window(), auth="Anonymous", ip=f"198.51.100.{n}") for n in range(3)]
    [record] = scan(rows)
    assert record.outcome == "failed" and "E_QUERY_RESULT_SET_TOO_LARGE" in record.reason
    emulator.logs.max_rows = 500_000
    assert [r.outcome for r in scan(rows, seed=False)] == ["failed", "reported", "contained"]  # it works again


def test_one_leak_is_contained_once_and_reads_after_it_say_it_is_not_holding(scan, app, emulator):
    """The issue's lagging logs: rows from before the containment that arrive later are the
    same incident (recorded, nothing written, keys revoked once); rows generated after it
    say, once and at the highest severity, that the containment is not holding."""
    minute = timedelta(minutes=1)
    rows = [arriving(in_window(1), ingested=in_window(2), auth="SAS", ip="192.0.2.7"),  # scanned at 12:00
            arriving(in_window(4), ingested=NOW - 8 * minute, auth="SAS", ip="192.0.2.7"),  # late, from before
            arriving(NOW + minute, ingested=NOW + 2 * minute, auth="SAS", ip="192.0.2.7"),  # after containment
            arriving(NOW + 6 * minute, ingested=NOW + 7 * minute, auth="SAS", ip="192.0.2.7")]
    moments = [(NOW + n * 5 * minute,) * 2 for n in (0, 1, 3, 4)]
    scans(scan, emulator, *moments, rows=rows)
    records = app.records()
    first, *later = [r for r in records if r.rules == ["egress_key_or_sas_from_untrusted_network"]]
    assert first.outcome == "contained" and len(later) == 3
    assert all(r.outcome == "reported" and r.actions == [] and f"already contained in this incident by decision "
               f"{first.key}" in r.reason for r in later)
    [not_holding] = [r for r in records if r.key == f"{first.key}.not-holding"]
    assert (not_holding.outcome, not_holding.severity) == ("failed", "critical")
    assert "is not holding: 1 caller(s) read blobs after" in not_holding.reason
    revocations = [p for m, p, _ in emulator.applied_writes if p.lower().endswith("revokeuserdelegationkeys")]
    assert len(revocations) == 1


def test_reads_after_a_decision_that_only_holds_for_a_person_are_no_containment_not_holding(scan, app, emulator):
    """Everything held for approval has changed nothing: later reads are the same leak going
    on, not a containment failing, so no `.not-holding` alarm names the held decision."""
    minute = timedelta(minutes=1)
    rows = [arriving(in_window(1), ingested=in_window(2), auth="SAS", ip="192.0.2.7"),
            arriving(NOW + minute, ingested=NOW + 2 * minute, auth="SAS", ip="192.0.2.7")]
    held = "critical:rotate_account_keys"  # rotate_account_keys waits for a person by default
    scans(scan, emulator, *[(NOW + n * 5 * minute,) * 2 for n in (0, 1, 3, 4)], rows=rows,
          CONTAINMENT_EGRESS_CONTAINMENT=held)
    records = app.records()
    assert [r.outcome for r in records if r.operation == "egress_scan"][0] == "pending-approval"
    assert not [r for r in records if r.key.endswith(".not-holding")]


def test_two_egress_incidents_leave_the_budget_for_an_unrelated_public_account(scan, app, emulator):
    """The issue's case: two egress incidents (re-judged every window while their logs lag)
    must not spend the budget an unrelated public account then needs."""
    from tests.helpers.events import ACCOUNT_WRITE, write_event

    second = b.storage_account("synthtrain02")
    unrelated = b.storage_account("synthtrain03", allowBlobPublicAccess=True)
    public = [b.container(unrelated["id"], f"shard{n}", "Container") for n in range(2)]
    minute = timedelta(minutes=1)
    rows = [arriving(in_window(m), ingested=in_window(m) + 5 * minute * n, auth="Anonymous", ip="198.51.100.20",
                     account=account) for account in (ACCOUNT, second) for n in range(4) for m in (1, 2)]
    emulator.seed([ACCOUNT, second, unrelated, *public])
    settings = {"CONTAINMENT_MAX_ACTIONS_PER_HOUR": "9", "CONTAINMENT_HIGH_SEVERITY_RESERVE": "1"}
    scans(scan, emulator, *[(NOW + n * 5 * minute,) * 2 for n in range(4)], rows=rows, **settings)
    egress = [r for r in app.records() if r.operation == "egress_scan"]
    assert sorted(r.outcome for r in egress).count("contained") == 2  # one per incident, 6 actions in all
    app.deliver(write_event(unrelated["id"], ACCOUNT_WRITE))
    app.drain()
    [record] = [r for r in app.records() if r.resource_id == unrelated["id"]]
    assert record.outcome == "contained" and record.actions == ["disable_blob_public_access"]
    assert emulator.arm.get(unrelated["id"])["properties"]["allowBlobPublicAccess"] is False


# -- bounded evidence: big findings never wedge the scan (#15) ---------------------------------------
OTHER = b.storage_account("synthtrain02")


def evidence_blob(app, record) -> dict:
    """The record's evidence blob as stored, after checking it against the digest its entity keeps."""
    import hashlib
    import json

    from containment.adapters.ledger import resource_partition

    ledger = app.runtime.ledger
    entity = ledger.table.get_entity(resource_partition(record.resource_id), record.key)
    content = ledger.evidence.download_blob(entity["evidence_blob"]).readall()
    assert hashlib.sha256(content).hexdigest() == entity["evidence_sha256"]
    return json.loads(content)


def digest_of(full: dict) -> str:
    import hashlib
    import json

    return "sha256:" + hashlib.sha256(json.dumps(full, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_four_hundred_anonymous_ipv6_callers_are_one_bounded_record_with_the_full_evidence_in_a_blob(scan, app,
                                                                                                       emulator):
    from tests.helpers.table_limits import every_entity_fits

    crowd = [read(in_window(n / 100), auth="Anonymous", ip=f"2001:db8:5eed:{n:x}::1", blob=f"train/shard-{n:04d}")
             for n in range(400)]
    [record] = scan(crowd)
    assert (record.outcome, record.rules) == ("contained", ["egress_anonymous_read"])
    evidence = record.findings[0]["evidence"]
    assert (evidence["caller_count"], evidence["requests"], evidence["bytes"]) == (400, 400, 400 * MB)
    assert len(evidence["callers"]) == 10 and len(evidence["sampled_objects"]) == 10
    full = record.full_evidence[evidence["digest"]]  # read back whole, through the blob
    assert sorted(c["Caller"] for c in full["callers"]) == sorted(f"2001:db8:5eed:{n:x}::1" for n in range(400))
    assert digest_of(full) == evidence["digest"]
    assert evidence_blob(app, record)["full_evidence"] == {evidence["digest"]: full}
    assert emulator.arm.get(ACCOUNT["id"])["properties"]["networkAcls"]["defaultAction"] == "Deny"
    every_entity_fits(app.runtime.ledger.table)


def test_two_callers_with_forty_kilobyte_uris_are_recorded_and_contained(scan, app):
    from tests.helpers.table_limits import every_entity_fits

    rows = [read(in_window(n / 10), auth="Anonymous", ip=ip, blob=f"train/{n}-" + "x" * 40_000)
            for n, ip in enumerate(["198.51.100.20", "198.51.100.20", "203.0.113.7", "203.0.113.7"])]
    [record] = scan(rows)
    assert record.outcome == "contained"
    evidence = record.findings[0]["evidence"]
    assert all(len(uri) < 300 for c in evidence["callers"] for uri in c["SampleUris"])
    full = record.full_evidence[evidence["digest"]]
    assert sorted(uri for c in full["callers"] for uri in c["SampleUris"]) == sorted(r["Uri"] for r in rows)
    assert digest_of(full) == evidence["digest"]
    every_entity_fits(app.runtime.ledger.table)


def test_an_unrelated_leak_on_another_account_in_the_same_window_is_still_contained(scan, emulator):
    emulator.seed([OTHER])
    crowd = [read(in_window(n / 100), auth="Anonymous", ip=f"2001:db8::{n:x}", blob=f"train/{n}") for n in range(400)]
    leak = read(in_window(2), auth="SAS", ip="192.0.2.66", account=OTHER)
    records = scan([*crowd, leak])
    assert sorted((r.resource_id, r.outcome, tuple(r.rules)) for r in records) == [
        (ACCOUNT["id"], "contained", ("egress_anonymous_read",)),
        (OTHER["id"], "contained", ("egress_key_or_sas_from_untrusted_network",))]
    assert emulator.arm.get(OTHER["id"])["properties"]["networkAcls"]["defaultAction"] == "Deny"


def test_an_account_that_cannot_be_judged_is_a_failed_record_and_the_others_are_still_judged(scan, emulator, app):
    """Its reads fail every time (past the SDK's retries): the scan records that, names the
    account, contains the other account's leak and moves on; the next window is scanned."""
    emulator.seed([OTHER])
    emulator.faults.add("status", path=f"/storageAccounts/{ACCOUNT['name']}$", method="GET", status=500,
                        retry_after=0, times=None)
    records = scan([read(in_window(), auth="Anonymous", ip="198.51.100.20"),
                    read(in_window(2), auth="SAS", ip="192.0.2.66", account=OTHER)])
    by_account = {r.resource_id.lower(): r for r in records}
    failed = by_account[ACCOUNT["id"].lower()]
    assert failed.outcome == "failed" and ACCOUNT["id"].lower() in failed.reason and "HttpResponseError" in failed.reason
    assert by_account[OTHER["id"].lower()].outcome == "contained"
    assert app.runtime.ledger.checkpoint("egress_scan")[0].startswith("2026-11-24T11:50")  # the scan moved on


def test_a_catch_up_over_one_leak_in_enforce_contains_it_once(scan, app, emulator):
    """Three windows of one leak in one run: the first decision is still queued when the
    second window is judged, and is the incident all the same."""
    rows = [read(WINDOW_START - timedelta(minutes=m), auth="Anonymous", ip="198.51.100.20") for m in (90, 80, 70)]
    scan(rows, at=NOW - timedelta(hours=2))
    scan(seed=False, CONTAINMENT_EGRESS_MAX_WINDOWS="12")
    assert sorted(r.outcome for r in app.records()) == ["contained", "reported", "reported"]
    revocations = [p for m, p, _ in emulator.applied_writes if p.lower().endswith("revokeuserdelegationkeys")]
    assert len(revocations) == 1


def test_a_training_read_after_containment_is_not_a_leak_that_holds(scan, app, emulator):
    """The network lock keeps the training network reading: its reads after containment,
    beside a late row from before it, say nothing about whether containment holds."""
    minute = timedelta(minutes=1)
    rows = [arriving(in_window(1), ingested=in_window(2), auth="Anonymous", ip="198.51.100.20"),  # contained at 12:00
            arriving(in_window(4), ingested=NOW + minute, auth="Anonymous", ip="198.51.100.20"),  # late, from before
            arriving(NOW + minute, ingested=NOW + 2 * minute, ip="10.20.1.4")]  # OAuth training read, after
    scans(scan, emulator, (NOW, NOW), (NOW + 15 * minute, NOW + 15 * minute), rows=rows)
    later = [r for r in app.records() if r.event_time and r.event_time.startswith("2026-11-24T12:05")]
    assert [r.outcome for r in later] == ["reported"]  # the late row: the same incident
    assert not [r for r in app.records() if r.key.endswith(".not-holding")]


# AuthenticationHash as Microsoft documents it for a SAS (monitor-blob-storage-reference, identity/tokenHash).
KEY1_HASH = "0A0AE8AADA354A19722ED12342443F0DC8FAF3E6AF8C8AD805DE6D563E0E5F8A"
SAS_HASH = "04D64C2B3A704145C9F1664F201123467A74D72DA72751A9137DDAA732FA03CF"
SIGNED_BY_KEY1 = f"key1({KEY1_HASH}),SasSignature({SAS_HASH})"


def test_a_sas_from_an_unknown_network_names_key1_and_its_hash_from_the_logs(scan):
    [record] = scan([read(in_window(), auth="SAS", ip="198.51.100.20", AuthenticationHash=SIGNED_BY_KEY1)])
    [finding] = record.findings
    assert finding["rule"] == "egress_key_or_sas_from_untrusted_network"
    assert (finding["evidence"]["keys"], finding["evidence"]["sas_signatures"]) == (["key1"], [SAS_HASH])
    assert [a["action"] for a in record.awaiting_approval] == ["rotate_account_keys"]


def test_a_sas_that_violates_the_expiry_policy_is_reported_not_contained(scan):
    [record] = scan([read(in_window(), auth="SAS", ip="10.20.3.4", AuthenticationHash=SIGNED_BY_KEY1,
                          SasExpiryStatus="Policy violated (validity exceeds sasExpirationPeriod)")])
    assert (record.outcome, record.rules, record.severity) == ("reported", ["egress_sas_expiry_policy_violated"],
                                                               "medium")
    assert record.findings[0]["evidence"]["keys"] == ["key1"] and record.actions == []


SCRATCH = b.storage_account("scratch01", tags={})  # same subscription, not tagged: not protected
TWIN = b.storage_account("synthtrain02")


def copied(account: dict, operation: str, source: str, **columns) -> dict:
    """A destination's row of a server-side copy: the request went to it and names its source."""
    return read(in_window(), account=account, operation=operation, status="201", ip="10.20.3.4",
                blob="landing/part-0.parquet", SourceUri=f"https://{source}.blob.core.windows.net/train/part-0.parquet",
                Category="StorageWrite", UserAgentHeader="AzCopy/10.27.0 azsdk-go-azblob/v1.4.0", **columns)


def test_a_copy_to_an_unprotected_account_logged_by_the_destination_is_critical_on_the_source(scan, emulator):
    emulator.seed([ACCOUNT, SCRATCH], {"StorageBlobLogs": [copied(SCRATCH, "PutBlockFromURL", ACCOUNT["name"])]})
    [record] = scan(seed=False)
    assert (record.resource_id, record.outcome, record.rules) == (ACCOUNT["id"], "contained",
                                                                   ["egress_copy_out_of_scope"])
    evidence = record.findings[0]["evidence"]
    assert evidence["destinations"] == ["scratch01"] and evidence["copies"][0]["LoggedBy"] == "destination"
    assert "keys" in evidence and evidence["keys"] == []  # the destination's credential is not the source's


def test_a_copy_the_source_logged_to_an_account_nobody_in_scope_knows_is_a_finding(scan):
    [record] = scan([read(in_window(), ip="10.20.3.4", DestinationUri="https://exfil99.blob.core.windows.net/x/p")])
    assert record.rules == ["egress_copy_out_of_scope"]
    assert record.findings[0]["evidence"]["destinations"] == ["exfil99"]


def test_a_copy_between_two_protected_accounts_is_no_finding(scan, emulator):
    emulator.seed([ACCOUNT, TWIN], {"StorageBlobLogs": [
        copied(TWIN, "CopyBlob", ACCOUNT["name"], StatusCode="202"),
        read(in_window(), ip="10.20.3.4", DestinationUri=f"https://{TWIN['name']}.blob.core.windows.net/x/p")]})
    assert scan(seed=False) == []


AZCOPY = {"UserAgentHeader": "AzCopy/10.27.0 azsdk-go-azblob/v1.4.0",
          "RequesterTenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"}  # the emulator's subscriptions' tenant


def test_an_azcopy_read_by_another_tenants_principal_is_a_copy_out_of_scope(scan):
    """No DestinationUri names where an AzCopy download went; the caller's tenant
    (RequesterTenantId) does, against the tenants of the subscriptions the app sees."""
    foreign = {**AZCOPY, "RequesterTenantId": "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"}
    [record] = scan([read(in_window(), ip="10.20.3.4", **foreign)])
    assert record.rules == ["egress_copy_out_of_scope"]
    assert record.findings[0]["evidence"]["copies"][0]["ForeignTenants"] == ["9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"]


def test_an_azcopy_read_by_a_principal_of_the_apps_own_tenant_is_no_finding(scan):
    assert scan([read(in_window(), ip="10.20.3.4", **AZCOPY)]) == []


def test_a_copy_the_source_logs_as_copyblob_is_judged_by_its_uris_not_its_operation(scan):
    """Which operation the source's row of a server-side copy carries is not documented: a
    CopyBlob row whose DestinationUri names another account is the source's, whatever its name."""
    [record] = scan([read(in_window(), operation="CopyBlob", status="202", ip="10.20.3.4",
                          SourceUri=f"https://{ACCOUNT['name']}.blob.core.windows.net/train/part-0",
                          DestinationUri="https://exfil99.blob.core.windows.net/x/part-0")])
    assert (record.resource_id, record.rules) == (ACCOUNT["id"], ["egress_copy_out_of_scope"])
    [copy] = record.findings[0]["evidence"]["copies"]
    assert (copy["LoggedBy"], copy["Source"], copy["Destination"]) == ("source", ACCOUNT["name"], "exfil99")


def test_a_copy_its_destination_logs_with_its_own_blob_under_a_custom_domain_is_found_on_the_source(scan, emulator):
    row = copied(SCRATCH, "CopyBlob", ACCOUNT["name"], DestinationUri="https://landing.contoso.example/landing/p")
    emulator.seed([ACCOUNT, SCRATCH], {"StorageBlobLogs": [row]})
    [record] = scan(seed=False)
    assert (record.resource_id, record.findings[0]["evidence"]["destinations"]) == (ACCOUNT["id"], ["scratch01"])


@pytest.mark.parametrize("host", ["exfil99-secondary.blob.core.windows.net", "exfil99.privatelink.blob.core.windows.net",
                                  "exfil99.dfs.core.windows.net", "exfil99.z17.blob.storage.azure.net",
                                  "10.1.2.3:10000/exfil99", "EXFIL99.BLOB.core.windows.net"])
def test_a_copy_to_any_storage_endpoint_format_names_its_destination(scan, host):
    [record] = scan([read(in_window(), ip="10.20.3.4", DestinationUri=f"https://{host}/x/part-0")])
    assert record.findings[0]["evidence"]["destinations"] == ["exfil99"]


def test_a_copy_from_the_sources_secondary_endpoint_is_found_on_the_source(scan, emulator):
    emulator.seed([ACCOUNT, SCRATCH], {"StorageBlobLogs": [copied(SCRATCH, "CopyBlobFromURL", f"{ACCOUNT['name']}-secondary")]})
    [record] = scan(seed=False)
    assert (record.resource_id, record.rules) == (ACCOUNT["id"], ["egress_copy_out_of_scope"])


def test_a_copy_to_a_uri_that_names_no_storage_account_is_out_of_scope(scan):
    """A custom domain or another service: the account cannot be told, so the copy fails closed."""
    [record] = scan([read(in_window(), ip="10.20.3.4", DestinationUri="https://files.contoso.example/x/p?sig=abc")])
    evidence = record.findings[0]["evidence"]
    assert evidence["destinations"] == ["an account no storage endpoint names (files.contoso.example)"]
    assert "names no storage account the copy query can read" in evidence["copies"][0]["Unresolved"]


def test_a_copy_to_a_protected_account_the_scan_cannot_list_is_out_of_scope_and_the_window_is_judged(
        scan, app, emulator):
    """ARM does not list the storage accounts (403): the window's anonymous read is still found
    and contained, the copy to a protected twin is out of scope (fail closed), the failure is one
    record however often it repeats, and the checkpoint moves on; a scan that lists them closes it."""
    to_twin = {"ip": "10.20.3.4", "DestinationUri": f"https://{TWIN['name']}.blob.core.windows.net/x/p"}
    emulator.seed([ACCOUNT, TWIN], {"StorageBlobLogs": [
        read(in_window(), auth="Anonymous", ip="198.51.100.20"), read(in_window(2), **to_twin),
        read(in_window(6), **to_twin), read(in_window(11), **to_twin)]})
    emulator.faults.add("status", path=r"/providers/Microsoft\.Storage/storageAccounts$", method="GET", status=403,
                        times=None)
    records = scan(seed=False)
    [unlisted] = [r for r in records if r.outcome == "failed"]
    assert f"the storage accounts of subscription {b.SUBSCRIPTION}" in unlisted.reason and "403" in unlisted.reason
    [found] = [r for r in records if r.resource_id == ACCOUNT["id"]]
    assert (found.outcome, found.rules) == ("contained", ["egress_anonymous_read", "egress_copy_out_of_scope"])
    copy = next(f for f in found.findings if f["rule"] == "egress_copy_out_of_scope")["evidence"]["copies"][0]
    assert copy["Destination"] == TWIN["name"] and "could not be listed in ARM" in copy["Unresolved"]
    assert app.runtime.ledger.checkpoint("egress_scan")[0].startswith("2026-11-24T11:50")
    later = scan(at=NOW + timedelta(minutes=5), seed=False)  # every record so far
    assert [r.key for r in later if r.outcome == "failed"] == [unlisted.key]  # the same failure: counted, not recorded
    assert app.runtime.ledger.repetition(unlisted.key).count == 2
    emulator.faults.clear()
    works_again = [r for r in scan(at=NOW + timedelta(minutes=10), seed=False) if r.key == f"{unlisted.key}.recovered"]
    assert len(works_again) == 1 and "works again for the storage accounts of subscription" in works_again[0].reason


def test_an_azcopy_read_whose_callers_tenant_cannot_be_told_is_out_of_scope(scan, emulator):
    emulator.faults.add("status", path=r"^/subscriptions$", method="GET", status=403, times=None)
    records = scan([read(in_window(), ip="10.20.3.4", **AZCOPY)])
    # The same list gives the subscriptions the hour's watch lists accounts in: two failures, one each.
    [subscriptions, unlisted] = [r for r in records if r.outcome == "failed"]
    assert "the subscriptions the app sees could not be listed in ARM" in subscriptions.reason
    assert "the tenants of the subscriptions the app sees could not be listed in ARM" in unlisted.reason
    [found] = [r for r in records if r.resource_id == ACCOUNT["id"]]
    [copy] = found.findings[0]["evidence"]["copies"]
    assert found.rules == ["egress_copy_out_of_scope"] and "could not be listed in ARM" in copy["Unresolved"]
    assert copy["Destination"] == "a destination the scan could not resolve"
