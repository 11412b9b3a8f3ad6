"""The emulator and the app speak real ARM: traffic captured from the real SDK clients is
validated by Microsoft's oav against Microsoft's REST specs (../shared/azure-specs)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from azure.mgmt.network.models import SecurityRule
from azure.mgmt.storage.models import (AccountSasParameters, ServiceSasParameters,
                                       StorageAccountRegenerateKeyParameters)

from localazure.conformance import validate_traffic
from tests.helpers import arm_bodies as b
from tests.helpers.events import CONTAINER_WRITE, write_event

ACCOUNT = b.storage_account()
CONTAINER = b.container(ACCOUNT["id"], "training", "Container")
REPLICA = b.storage_account("synthreplica01")
NSG = b.nsg(rules=[b.security_rule("allow-training", 200)])
ASSIGNMENT = b.role_assignment(ACCOUNT["id"], "11111111-1111-4111-8111-111111111111", b.STORAGE_BLOB_DATA_READER,
                               name="a0000000-0000-4000-8000-000000000001")
SPECS = ("storage", "network", "authorization", "operationalinsights")


def validated(emulator, tmp_path):
    count = emulator.write_traffic(tmp_path)
    assert count > 0
    return validate_traffic(tmp_path)


def test_every_operation_the_emulator_serves_conforms(emulator, clients, owner, shared, tmp_path):
    # An Owner calls ARM here: the emulator serves more than the app's role allows (listKeys, NSG PUT).
    # The list-all operations (storage accounts, NSGs) are left out: the shared storage and
    # network specs are subsets without them, so oav could only call them undefined.
    now = datetime.now(timezone.utc)
    emulator.seed([ACCOUNT, REPLICA, CONTAINER, NSG, ASSIGNMENT], {"StorageBlobLogs": [{
        "TimeGenerated": (now - timedelta(minutes=5)).isoformat(), "AccountName": "synthtrain01",
        "CallerIpAddress": "203.0.113.7:51234", "ResponseBodySize": 1024, "AuthenticationType": "Anonymous"}]})
    storage = owner.storage(b.SUBSCRIPTION)
    storage.storage_accounts.get_properties(b.RG, ACCOUNT["name"])
    storage.storage_accounts.update(b.RG, ACCOUNT["name"], {"properties": {"allowBlobPublicAccess": False}})
    storage.storage_accounts.list_keys(b.RG, ACCOUNT["name"])
    storage.storage_accounts.regenerate_key(b.RG, ACCOUNT["name"], StorageAccountRegenerateKeyParameters(key_name="key2"))
    storage.storage_accounts.revoke_user_delegation_keys(b.RG, ACCOUNT["name"])
    expiry = datetime(2026, 11, 25, tzinfo=timezone.utc)
    storage.storage_accounts.list_account_sas(b.RG, ACCOUNT["name"], AccountSasParameters(
        services="b", resource_types="o", permissions="r", shared_access_expiry_time=expiry, key_to_sign="key2"))
    storage.storage_accounts.list_service_sas(b.RG, ACCOUNT["name"], ServiceSasParameters(
        canonicalized_resource="/blob/synthtrain01/training", resource="c", permissions="rl",
        shared_access_expiry_time=expiry))
    list(storage.blob_containers.list(b.RG, ACCOUNT["name"]))
    storage.blob_containers.get(b.RG, ACCOUNT["name"], "training")
    storage.blob_containers.update(b.RG, ACCOUNT["name"], "training", {"properties": {"publicAccess": "None"}})
    # Object replication: the destination's policy first, then the source's with its IDs.
    policies = storage.object_replication_policies
    rule = {"sourceContainer": "training", "destinationContainer": "replica"}
    made = policies.create_or_update(b.RG, REPLICA["name"], "default", {"properties": {
        "sourceAccount": ACCOUNT["id"], "destinationAccount": REPLICA["id"], "rules": [rule]}})
    policies.create_or_update(b.RG, ACCOUNT["name"], made.policy_id, {"properties": {
        "sourceAccount": ACCOUNT["id"], "destinationAccount": REPLICA["id"],
        "rules": [{**rule, "ruleId": made.rules[0].rule_id}]}})
    policies.get(b.RG, ACCOUNT["name"], made.policy_id)
    list(policies.list(b.RG, ACCOUNT["name"]))
    policies.delete(b.RG, ACCOUNT["name"], made.policy_id)

    network = owner.network(b.SUBSCRIPTION)
    nsg = network.network_security_groups.get(b.RG, NSG["name"])
    network.network_security_groups.begin_create_or_update(b.RG, NSG["name"], nsg).result()
    network.security_rules.begin_create_or_update(
        b.RG, NSG["name"], "deny-internet",
        SecurityRule(protocol="*", source_port_range="*", destination_port_range="*", source_address_prefix="Internet",
                     destination_address_prefix="*", access="Deny", priority=150, direction="Inbound")).result()
    network.security_rules.get(b.RG, NSG["name"], "deny-internet")
    list(network.security_rules.list(b.RG, NSG["name"]))
    network.security_rules.begin_delete(b.RG, NSG["name"], "deny-internet").result()

    authorization = owner.authorization(b.SUBSCRIPTION)
    authorization.role_assignments.get_by_id(ASSIGNMENT["id"])
    authorization.role_assignments.get(ACCOUNT["id"], ASSIGNMENT["name"])
    list(authorization.role_assignments.list_for_scope(ACCOUNT["id"], filter="atScope()"))
    authorization.role_definitions.get(f"/subscriptions/{b.SUBSCRIPTION}", b.STORAGE_BLOB_DATA_READER)
    authorization.role_assignments.delete_by_id(ASSIGNMENT["id"])

    clients.logs.query_workspace("00000000-0000-4000-8000-0000000000aa",
                                 "StorageBlobLogs | summarize sum(ResponseBodySize) by AccountName",
                                 timespan=timedelta(hours=1))

    report = validated(emulator, tmp_path)
    assert report.ok, str(report)
    covered = {operation.lower() for operation in report.operations_covered}
    for expected in ("storageaccounts_getproperties", "storageaccounts_update", "storageaccounts_listkeys",
                     "storageaccounts_regeneratekey", "storageaccounts_revokeuserdelegationkeys",
                     "storageaccounts_listaccountsas", "storageaccounts_listservicesas",
                     "blobcontainers_list", "blobcontainers_get", "blobcontainers_update",
                     "networksecuritygroups_get", "networksecuritygroups_createorupdate",
                     "securityrules_createorupdate", "securityrules_get", "securityrules_delete",
                     # oav names by-ID calls after the path they match (Get, Delete, ListForResource)
                     "roleassignments_get", "roleassignments_listfor", "roleassignments_delete",
                     "roledefinitions_get", "query_execute",
                     "objectreplicationpolicies_createorupdate", "objectreplicationpolicies_get",
                     "objectreplicationpolicies_list", "objectreplicationpolicies_delete"):
        assert any(expected in operation for operation in covered), (expected, sorted(covered))


def test_the_apps_own_calls_conform(app, emulator, shared, tmp_path):
    """What the app itself sends and receives while containing a public container."""
    emulator.seed([ACCOUNT, CONTAINER, b.container(ACCOUNT["id"], "eval")])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(ACCOUNT["id"], "Microsoft.Storage/storageAccounts/write"))
    app.deliver(write_event(CONTAINER["id"], CONTAINER_WRITE))
    app.drain()
    assert {r.outcome for r in app.records()} == {"contained"}
    report = validated(emulator, tmp_path)
    assert report.ok, str(report)


def test_the_apps_own_replication_calls_conform(app, emulator, shared, tmp_path):
    """What the app sends and receives while removing a policy that replicates out of scope."""
    outside = b.storage_account("scratch01", tags={})
    policy = b.replication_policy(ACCOUNT, outside["id"])
    emulator.seed([ACCOUNT, outside, policy])
    app.configure(CONTAINMENT_MODE="enforce")
    app.deliver(write_event(policy["id"], "Microsoft.Storage/storageAccounts/objectReplicationPolicies/write"))
    app.drain()
    assert [r.outcome for r in app.records()] == ["contained"]
    report = validated(emulator, tmp_path)
    assert report.ok, str(report)
    assert {"ObjectReplicationPolicies_Get", "ObjectReplicationPolicies_Delete"} <= report.operations_covered


def test_the_check_has_teeth_a_wrong_body_is_reported(emulator, clients, shared, tmp_path):
    wrong = b.storage_account(allowBlobPublicAccess="true")  # a string where the spec says boolean
    emulator.seed([wrong])
    clients.storage(b.SUBSCRIPTION).storage_accounts.get_properties(b.RG, wrong["name"])
    report = validated(emulator, tmp_path)
    assert not report.ok
    assert any("allowBlobPublicAccess" in (finding.path or "") + finding.message for finding in report.findings), \
        str(report)


def test_the_check_has_teeth_an_unknown_api_version_is_undefined(emulator, shared, tmp_path):
    from localazure.conformance import write_traffic_file

    write_traffic_file(tmp_path, "GET", f"https://127.0.0.1{ACCOUNT['id']}?api-version=2019-04-01",
                       {"authorization": "Bearer x"}, None, 200, {"Content-Type": "application/json"}, ACCOUNT)
    report = validate_traffic(tmp_path)
    assert not report.ok and report.undefined


def test_the_check_has_teeth_for_the_projects_own_specs_too(emulator, clients, shared, tmp_path):
    """The replication subset (localazure/specs) is checked like the shared specs."""
    wrong = b.replication_policy(ACCOUNT, ACCOUNT["id"])
    wrong["properties"]["rules"] = "training->replica"  # a string where the spec says array
    emulator.seed([ACCOUNT, wrong])
    clients.storage(b.SUBSCRIPTION).object_replication_policies.get(b.RG, ACCOUNT["name"], wrong["name"], cls=lambda *a: None)
    report = validated(emulator, tmp_path)
    assert not report.ok and not report.undefined
    assert any("rules" in (finding.path or "") + finding.message for finding in report.findings), str(report)
