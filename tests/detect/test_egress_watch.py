"""The egress scan's watch, end to end through the emulator: whether each protected account's
logs arrive (egress_arrival.kql, once an hour for every account), and who uses the keys of the
vaults holding protected accounts' customer-managed keys (egress_vault_keys.kql over AZKVAuditLogs)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.detect.test_egress_scan import ACCOUNT, NOW, WORKSPACE, in_window, read
from tests.helpers import arm_bodies as b

VAULT = b.key_vault("kv-synthkeys01")
KEY = b.vault_key(VAULT, "cmk-synthtrain01")
ACCOUNT_MI = "6a1b2c3d-0000-4000-8000-0000000000c1"
KEYED = b.customer_keyed(ACCOUNT, VAULT, "cmk-synthtrain01", principal_id=ACCOUNT_MI)
STRANGER = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def key_use(at: datetime, object_id: str | None, address: str, operation: str = "KeyUnwrap") -> dict:
    """An AZKVAuditLogs row of a key operation on the account's key, as the vault logs it
    (https://learn.microsoft.com/azure/key-vault/general/logging: the AuditEvent sample's identity claim)."""
    claim = {"http://schemas.microsoft.com/identity/claims/objectidentifier": object_id} if object_id else {}
    return {"TimeGenerated": iso(at), "OperationName": operation, "OperationVersion": "7.4", "HttpStatusCode": 200,
            "ResultType": "Success", "ResultSignature": "OK", "CallerIpAddress": address,
            "Id": f"{KEY['properties']['keyUriWithVersion']}", "Identity": {"claim": claim},
            "RequestUri": f"{KEY['properties']['keyUriWithVersion']}/unwrapkey?api-version=7.4",
            "_ResourceId": VAULT["id"].lower(), "ClientInfo": "azsdk-python-keyvault-keys/4.10.0"}


@pytest.fixture
def scan(app, emulator):
    def run(resources=(ACCOUNT,), logs=None, at: datetime = NOW, **settings):
        emulator.seed(list(resources), logs or {})
        app.configure(**{"CONTAINMENT_MODE": "enforce", "CONTAINMENT_LOG_WORKSPACE_ID": WORKSPACE,
                         "CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16", **settings})
        invocation = app.fire_at("egress_scan", at)
        assert invocation.error is None, invocation.error
        return app.records()
    return run


def queries(emulator) -> list[str]:
    return [str(x.request_body) for x in emulator.traffic if "/v1/workspaces/" in x.url]


def test_logs_that_stopped_a_day_ago_are_a_high_weakness_recorded_once_per_silence(scan, app, emulator):
    history = [read(NOW - timedelta(hours=h), ip="10.20.1.4") for h in range(25, 60, 5)]  # the last 25 hours ago
    [record] = scan(logs={"StorageBlobLogs": history})
    assert (record.resource_id, record.outcome, record.rules, record.severity) == (
        ACCOUNT["id"], "reported", ["egress_logs_stopped"], "high")
    [finding] = record.findings
    assert finding["weakness"] is True and finding["evidence"]["arrival"] == "stopped"
    assert finding["evidence"]["last_arrival"] == "2026-11-23T11:00:00.000000Z"
    assert finding["evidence"]["rows_in_lookback"] == 7 and record.actions == []
    assert "no containment action exists" in record.reason
    # The next scans (the watch asked again by a fresh instance) find the same silence: no second record.
    assert scan(resources=(), at=NOW + timedelta(minutes=5)) == [record]


def test_a_quiet_account_whose_logs_still_arrive_is_not_recorded(scan):
    assert scan(logs={"StorageBlobLogs": [read(NOW - timedelta(hours=2), ip="10.20.1.4")]}) == []


def test_an_old_account_that_never_logged_is_said_apart_once_a_day_and_a_new_one_not_at_all(scan):
    old = {**ACCOUNT, "properties": {**ACCOUNT["properties"], "creationTime": "2026-06-01T08:00:00.0000000Z"}}
    new = b.storage_account("synthnew01")
    new["properties"]["creationTime"] = iso(NOW - timedelta(hours=3))
    [record] = scan(resources=(old, new))
    assert record.resource_id == old["id"] and record.rules == ["egress_logs_stopped"]
    assert record.findings[0]["evidence"]["arrival"] == "none in the lookback"
    assert record.key.startswith("egress-nologs-20261124-")
    assert scan(resources=(), at=NOW + timedelta(hours=1)) == [record]  # the same day: recorded once


def test_one_arrival_query_an_hour_for_every_account_and_no_vault_query_without_a_customer_key(scan, emulator):
    twin = b.storage_account("synthtrain02")
    rows = [read(in_window(), ip="10.20.1.4"), read(in_window(), ip="10.20.1.4", account=twin)]
    assert scan(resources=(ACCOUNT, twin), logs={"StorageBlobLogs": rows}) == []
    sent = queries(emulator)
    assert sum("LastArrival = max(" in q for q in sent) == 1
    assert not any("AZKVAuditLogs" in q for q in sent)


def test_a_stranger_unwrapping_the_customer_key_from_outside_is_critical_and_recorded_on_the_vault(scan, emulator):
    uses = [key_use(in_window(1), STRANGER, "203.0.113.50"), key_use(in_window(2), STRANGER, "203.0.113.50",
                                                                     "KeyDecrypt"),
            key_use(in_window(3), ACCOUNT_MI, "52.236.186.210")]
    [record] = scan(resources=(VAULT, KEY, KEYED), logs={
        "StorageBlobLogs": [read(in_window(), ip="10.20.1.4")], "AZKVAuditLogs": uses})
    assert (record.resource_id, record.outcome, record.rules, record.severity) == (
        VAULT["id"], "reported", ["key_vault_key_use_by_unexpected_caller"], "critical")
    evidence = record.findings[0]["evidence"]
    [caller] = evidence["callers"]  # the account's own identity is not among them
    assert (caller["ObjectId"], caller["Address"], caller["Key"], caller["Requests"]) == (
        STRANGER, "203.0.113.50", "cmk-synthtrain01", 2)
    assert sorted(caller["Operations"]) == ["KeyDecrypt", "KeyUnwrap"]  # a set: in no order
    assert (caller["FirstUse"], caller["LastUse"]) == (iso(in_window(1)), iso(in_window(2)))
    assert evidence["accounts"] == [ACCOUNT["id"]] and evidence["start"].startswith("2026-11-24T11:45")
    assert emulator.arm.get(VAULT["id"])["properties"] == VAULT["properties"]  # recorded, nothing changed
    assert any("AZKVAuditLogs" in q and "kv-synthkeys01.vault.azure.net" in q for q in queries(emulator))


def test_the_accounts_own_identity_unwrapping_its_key_is_not_recorded(scan):
    assert scan(resources=(VAULT, KEY, KEYED), logs={
        "StorageBlobLogs": [read(in_window(), ip="10.20.1.4")],
        "AZKVAuditLogs": [key_use(in_window(1), ACCOUNT_MI, "52.236.186.210"),
                          key_use(in_window(2), ACCOUNT_MI, "52.236.186.210", "KeyWrap")]}) == []


def test_an_account_keyed_through_a_user_assigned_identity_is_judged_by_that_identity(scan):
    """`encryption.identity.userAssignedIdentity` names the identity the account reaches its key with
    (storage spec 2026-09-01 EncryptionIdentity): its principal is the account's own; the account's
    system-assigned identity, which does not reach the key, is not."""
    uami = (f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/{b.RG}/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/id-synthtrain01-cmk")
    uami_principal = "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
    keyed = {**KEYED, "identity": {"type": "SystemAssigned,UserAssigned", "principalId": ACCOUNT_MI,
                                   "userAssignedIdentities": {uami: {"principalId": uami_principal,
                                                                     "clientId": STRANGER}}}}
    keyed["properties"] = {**KEYED["properties"], "encryption": {**KEYED["properties"]["encryption"],
                                                                  "identity": {"userAssignedIdentity": uami}}}
    [record] = scan(resources=(VAULT, KEY, keyed), logs={
        "StorageBlobLogs": [read(in_window(), ip="10.20.1.4")],
        "AZKVAuditLogs": [key_use(in_window(1), uami_principal, "52.236.186.210"),
                          key_use(in_window(2), ACCOUNT_MI, "52.236.186.210")]})
    assert [c["ObjectId"] for c in record.findings[0]["evidence"]["callers"]] == [ACCOUNT_MI]
