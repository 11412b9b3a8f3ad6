"""The emulator answers the real management SDK clients over HTTPS as ARM would."""
from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceResponseError
from azure.mgmt.network.models import SecurityRule
from azure.mgmt.storage.models import (BlobContainer, StorageAccountRegenerateKeyParameters,
                                       StorageAccountUpdateParameters)

from tests.helpers import arm_bodies as b

ACCOUNT = b.storage_account()
ACCOUNT_NAME = ACCOUNT["name"]
CLOSED = b.storage_account(allowBlobPublicAccess=False)


def test_storage_account_get_patch_and_lists(emulator, clients):
    emulator.seed([CLOSED, b.storage_account("synthother", group="rg-other")])
    storage = clients.storage(b.SUBSCRIPTION)

    account = storage.storage_accounts.get_properties(b.RG, ACCOUNT_NAME)
    assert account.allow_blob_public_access is False
    assert account.tags == {"data-classification": "synthetic"}

    updated = storage.storage_accounts.update(
        b.RG, ACCOUNT_NAME, StorageAccountUpdateParameters(allow_blob_public_access=True))
    assert updated.allow_blob_public_access is True
    assert updated.minimum_tls_version == "TLS1_2"  # PATCH merged, not replaced
    assert emulator.arm.get(ACCOUNT["id"])["properties"]["allowBlobPublicAccess"] is True

    by_group = [a.name for a in storage.storage_accounts.list_by_resource_group(b.RG)]
    everywhere = sorted(a.name for a in storage.storage_accounts.list())
    assert by_group == [ACCOUNT_NAME]
    assert everywhere == ["synthother", ACCOUNT_NAME]


def test_arm_ids_are_matched_case_insensitively(emulator, clients):
    emulator.seed([ACCOUNT])
    account = clients.storage(b.SUBSCRIPTION).storage_accounts.get_properties("RG-SYNTHETIC", ACCOUNT_NAME.upper())
    assert account.id == ACCOUNT["id"]  # spelled as ARM stored it


def test_if_match_is_honoured_and_etags_change_on_write(emulator, clients):
    emulator.seed([CLOSED])
    storage = clients.storage(b.SUBSCRIPTION)
    before = emulator.arm.etags[ACCOUNT["id"].lower()]
    with pytest.raises(HttpResponseError) as refused:
        storage.storage_accounts.update(b.RG, ACCOUNT_NAME, StorageAccountUpdateParameters(allow_blob_public_access=True),
                                        headers={"If-Match": 'W/"someone-elses"'})
    assert refused.value.status_code == 412
    assert emulator.arm.get(ACCOUNT["id"])["properties"]["allowBlobPublicAccess"] is False
    storage.storage_accounts.update(b.RG, ACCOUNT_NAME, StorageAccountUpdateParameters(allow_blob_public_access=True),
                                    headers={"If-Match": before})
    assert emulator.arm.etags[ACCOUNT["id"].lower()] != before


def test_keys_regenerate_and_user_delegation_revocation(emulator, clients, owner):
    emulator.seed([ACCOUNT])
    storage = clients.storage(b.SUBSCRIPTION)
    # Reading the keys is an Owner's: the app's role has no listKeys (tests/emulator/test_authorization.py).
    listed = owner.storage(b.SUBSCRIPTION).storage_accounts.list_keys(b.RG, ACCOUNT_NAME)
    keys = {k.key_name: k.value for k in listed.keys_property}
    regenerated = storage.storage_accounts.regenerate_key(
        b.RG, ACCOUNT_NAME, StorageAccountRegenerateKeyParameters(key_name="key1"))
    after = {k.key_name: k.value for k in regenerated.keys_property}
    assert after["key1"] != keys["key1"] and after["key2"] == keys["key2"]
    assert "key1" in emulator.arm.get(ACCOUNT["id"])["properties"]["keyCreationTime"]

    storage.storage_accounts.revoke_user_delegation_keys(b.RG, ACCOUNT_NAME)
    assert ACCOUNT["id"].lower() in emulator.arm.user_delegation_keys_revoked


def test_containers_list_get_patch(emulator, clients):
    emulator.seed([ACCOUNT, b.container(ACCOUNT["id"], "training", "Container"), b.container(ACCOUNT["id"], "eval")])
    containers = clients.storage(b.SUBSCRIPTION).blob_containers
    assert sorted(c.name for c in containers.list(b.RG, ACCOUNT_NAME)) == ["eval", "training"]
    assert containers.get(b.RG, ACCOUNT_NAME, "training").public_access == "Container"
    patched = containers.update(b.RG, ACCOUNT_NAME, "training", BlobContainer(public_access="None"))
    assert patched.public_access == "None"
    assert containers.get(b.RG, ACCOUNT_NAME, "training").public_access == "None"
    with pytest.raises(ResourceNotFoundError) as missing:
        containers.get(b.RG, ACCOUNT_NAME, "nope")
    assert missing.value.error.code == "ContainerNotFound"


def test_unknown_resource_gets_arms_404_body(emulator, clients):
    with pytest.raises(ResourceNotFoundError) as missing:
        clients.storage(b.SUBSCRIPTION).storage_accounts.get_properties(b.RG, "ghost")
    assert missing.value.status_code == 404
    assert missing.value.error.code == "ResourceNotFound"
    assert "ghost" in missing.value.error.message


def test_nsg_put_is_long_running_and_rules_show_in_their_nsg(emulator, clients, owner):
    nsg = b.nsg(rules=[b.security_rule("allow-training", 200)])
    emulator.seed([nsg])
    network = clients.network(b.SUBSCRIPTION)

    fetched = network.network_security_groups.get(b.RG, nsg["name"])
    assert [r.name for r in fetched.security_rules] == ["allow-training"]
    assert not fetched.default_security_rules  # seeded without: returned as seeded

    rule = network.security_rules.begin_create_or_update(
        b.RG, nsg["name"], "deny-internet",
        SecurityRule(protocol="*", source_port_range="*", destination_port_range="*",
                     source_address_prefix="Internet", destination_address_prefix="*",
                     access="Deny", priority=150, direction="Inbound")).result()
    assert rule.provisioning_state == "Succeeded"
    after = network.network_security_groups.get(b.RG, nsg["name"])
    assert sorted(r.name for r in after.security_rules) == ["allow-training", "deny-internet"]
    assert after.etag != fetched.etag
    assert network.security_rules.get(b.RG, nsg["name"], "deny-internet").priority == 150

    network.security_rules.begin_delete(b.RG, nsg["name"], "deny-internet").result()
    assert [r.name for r in network.security_rules.list(b.RG, nsg["name"])] == ["allow-training"]

    fetched.security_rules[0].access = "Deny"  # a whole-NSG PUT is an Owner's: the app writes rules only
    replaced = owner.network(b.SUBSCRIPTION).network_security_groups.begin_create_or_update(
        b.RG, nsg["name"], fetched).result()
    assert replaced.security_rules[0].access == "Deny"
    assert [n.name for n in network.network_security_groups.list_all()] == [nsg["name"]]
    assert [n.name for n in network.network_security_groups.list(b.RG)] == [nsg["name"]]


def test_nsg_created_by_put_gets_azures_default_rules(emulator, owner):
    from azure.mgmt.network.models import NetworkSecurityGroup

    created = owner.network(b.SUBSCRIPTION).network_security_groups.begin_create_or_update(
        b.RG, "nsg-new", NetworkSecurityGroup(location="westeurope")).result()
    assert {r.name for r in created.default_security_rules} >= {"DenyAllInBound", "AllowVnetInBound"}


def test_rule_priority_collision_is_refused_like_azure(emulator, clients):
    nsg = b.nsg(rules=[b.security_rule("allow-training", 200)])
    emulator.seed([nsg])
    with pytest.raises(HttpResponseError) as refused:
        clients.network(b.SUBSCRIPTION).security_rules.begin_create_or_update(
            b.RG, nsg["name"], "clash",
            SecurityRule(protocol="*", source_port_range="*", destination_port_range="*",
                         source_address_prefix="*", destination_address_prefix="*",
                         access="Deny", priority=200, direction="Inbound")).result()
    assert refused.value.status_code == 400
    assert refused.value.error.code == "SecurityRuleConflict"


def test_security_rule_put_with_stale_etag_gets_412(emulator, clients):
    nsg = b.nsg(rules=[b.security_rule("allow-training", 200)])
    emulator.seed([nsg])
    network = clients.network(b.SUBSCRIPTION)
    rule = network.security_rules.get(b.RG, nsg["name"], "allow-training")
    emulator.arm.concurrent_write(nsg["id"])
    rule.access = "Deny"
    with pytest.raises(HttpResponseError) as refused:
        network.security_rules.begin_create_or_update(b.RG, nsg["name"], "allow-training", rule,
                                                      headers={"If-Match": rule.etag}).result()
    assert refused.value.status_code == 412
    assert emulator.arm.get(nsg["id"])["properties"]["securityRules"][0]["properties"]["access"] == "Allow"


def test_role_assignments_get_list_delete_and_builtin_definitions(emulator, clients):
    account_scope = ACCOUNT["id"]
    on_account = b.role_assignment(account_scope, "11111111-1111-4111-8111-111111111111", b.STORAGE_BLOB_DATA_READER,
                                   name="a0000000-0000-4000-8000-000000000001")
    on_group = b.role_assignment(b.RG_ID, "22222222-2222-4222-8222-222222222222", b.CONTRIBUTOR,
                                 name="a0000000-0000-4000-8000-000000000002")
    elsewhere = b.role_assignment(f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-other",
                                  "33333333-3333-4333-8333-333333333333", b.CONTRIBUTOR,
                                  name="a0000000-0000-4000-8000-000000000003")
    emulator.seed([ACCOUNT, on_account, on_group, elsewhere])
    authorization = clients.authorization(b.SUBSCRIPTION)

    by_id = authorization.role_assignments.get_by_id(on_account["id"])
    assert by_id.principal_id == "11111111-1111-4111-8111-111111111111"
    by_name = authorization.role_assignments.get(account_scope, on_account["name"])
    assert by_name.role_definition_id.endswith(b.STORAGE_BLOB_DATA_READER)

    at_or_above = {a.name for a in authorization.role_assignments.list_for_scope(account_scope, filter="atScope()")}
    assert at_or_above == {on_account["name"], on_group["name"]}
    below_group = {a.name for a in authorization.role_assignments.list_for_scope(b.RG_ID)}
    assert below_group == {on_account["name"], on_group["name"]}
    for_principal = {a.name for a in authorization.role_assignments.list_for_scope(
        f"/subscriptions/{b.SUBSCRIPTION}", filter="principalId eq '33333333-3333-4333-8333-333333333333'")}
    assert for_principal == {elsewhere["name"]}

    reader = authorization.role_definitions.get(f"/subscriptions/{b.SUBSCRIPTION}", b.STORAGE_BLOB_DATA_READER)
    assert reader.role_name == "Storage Blob Data Reader"
    assert reader.permissions[0].data_actions == [
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]

    deleted = authorization.role_assignments.delete_by_id(on_account["id"])
    assert deleted.principal_id == "11111111-1111-4111-8111-111111111111"
    with pytest.raises(ResourceNotFoundError):
        authorization.role_assignments.get_by_id(on_account["id"])


def test_recorded_arm_bodies_load_and_come_back_as_recorded(emulator, shared):
    for path in sorted((shared / "recorded-arm").glob("*.json")):
        recorded = json.loads(path.read_text())
        emulator.reset()
        emulator.seed([recorded])
        items = recorded["value"] if "value" in recorded else [recorded]
        assert items, path.name
        for item in items:
            assert emulator.arm.get(item["id"]) == item, f"{path.name}: {item['id']}"


def test_recorded_storage_account_via_the_sdk(emulator, clients, shared):
    recorded = json.loads((shared / "recorded-arm" / "custodian-storage-account.json").read_text())
    emulator.seed([recorded])
    subscription, group = recorded["id"].split("/")[2], recorded["id"].split("/")[4]
    account = clients.storage(subscription).storage_accounts.get_properties(group, recorded["name"])
    assert account.allow_blob_public_access == recorded["properties"]["allowBlobPublicAccess"]
    assert account.network_rule_set.default_action == recorded["properties"]["networkAcls"]["defaultAction"]


def test_malformed_seed_is_rejected_with_its_place(emulator):
    from localazure.arm import SeedError

    with pytest.raises(SeedError, match=r"resources\[1\]\.type"):
        emulator.seed([ACCOUNT, {**ACCOUNT, "type": "Microsoft.Storage/storageAccounts/blobServices/containers"}])
    with pytest.raises(SeedError, match=r"resources\[0\]\.id"):
        emulator.seed([{"type": "Microsoft.Storage/storageAccounts"}])


def test_unsupported_api_version_is_refused(emulator, clients):
    import requests

    emulator.seed([ACCOUNT])
    answer = requests.get(f"{emulator.endpoint}{ACCOUNT['id']}?api-version=2019-04-01",
                          headers={"Authorization": "Bearer x"}, verify=str(emulator.ca_bundle))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidApiVersionParameter"
    unauthenticated = requests.get(f"{emulator.endpoint}{ACCOUNT['id']}?api-version=2026-09-01",
                                   verify=str(emulator.ca_bundle))
    assert unauthenticated.status_code == 401


# -- fault injection: the SDK's own retry policy meets ARM's bad days --------------------

def test_throttling_with_retry_after_is_retried_by_the_sdk(emulator, clients):
    emulator.seed([ACCOUNT])
    throttle = emulator.faults.add("status", path="storageaccounts/synthtrain01$", status=429, retry_after=0, times=2)
    account = clients.storage(b.SUBSCRIPTION).storage_accounts.get_properties(b.RG, ACCOUNT_NAME)
    assert account.name == ACCOUNT_NAME
    assert throttle.fired == 2
    assert [x.status for x in emulator.traffic] == [429, 429, 200]


def test_server_errors_are_injected_per_call_count(emulator, clients):
    emulator.seed([ACCOUNT])
    failure = emulator.faults.add("status", path="storageaccounts/synthtrain01$", method="PATCH",
                                  status=503, skip=1, times=None)
    storage = clients.storage(b.SUBSCRIPTION).storage_accounts
    storage.update(b.RG, ACCOUNT_NAME, StorageAccountUpdateParameters(allow_blob_public_access=True))
    assert failure.fired == 0 and failure.seen == 1
    with pytest.raises(HttpResponseError) as failed:
        storage.update(b.RG, ACCOUNT_NAME, StorageAccountUpdateParameters(allow_blob_public_access=False),
                       retry_total=1, retry_backoff_factor=0)
    assert failed.value.status_code == 503
    assert failure.fired == 1  # the app's clients never resend a write after a 5xx (containment.adapters.arm_retry)


def test_the_apps_clients_resend_a_throttled_write_and_retry_failed_reads(emulator, clients):
    emulator.seed([ACCOUNT])
    storage = clients.storage(b.SUBSCRIPTION).storage_accounts
    emulator.faults.add("status", path="storageaccounts/synthtrain01$", method="PATCH", status=429, retry_after=0,
                        times=1)  # throttled before ARM processed it: safe to send again
    emulator.faults.add("status", path="storageaccounts/synthtrain01$", method="GET", status=503, times=1)
    storage.update(b.RG, ACCOUNT_NAME, StorageAccountUpdateParameters(allow_blob_public_access=False),
                   retry_backoff_factor=0)
    assert storage.get_properties(b.RG, ACCOUNT_NAME, retry_backoff_factor=0).allow_blob_public_access is False
    assert [(x.method, x.status) for x in emulator.traffic] == [("PATCH", 429), ("PATCH", 200), ("GET", 503),
                                                               ("GET", 200)]


def test_a_fault_after_the_call_comes_once_arm_has_made_the_change(emulator, clients):
    emulator.seed([ACCOUNT])
    lost = emulator.faults.add("status", path="storageaccounts/synthtrain01$", method="PATCH", status=504,
                               after=True, times=1)
    storage = clients.storage(b.SUBSCRIPTION).storage_accounts
    with pytest.raises(HttpResponseError) as failed:
        storage.update(b.RG, ACCOUNT_NAME, StorageAccountUpdateParameters(allow_blob_public_access=False))
    assert failed.value.status_code == 504 and lost.fired == 1
    assert emulator.arm.get(ACCOUNT["id"])["properties"]["allowBlobPublicAccess"] is False  # applied all the same
    assert [(m, s) for m, _, s in emulator.applied_writes] == [("PATCH", 200)]
    assert [x.status for x in emulator.traffic] == [504]  # what the caller saw
    with pytest.raises(ValueError, match="only status and drop"):
        emulator.faults.add("slow", after=True)


def test_dropped_connection_and_slow_answer(emulator, clients):
    emulator.seed([ACCOUNT])
    emulator.faults.add("drop", path="storageaccounts/synthtrain01$", times=None)
    with pytest.raises(ServiceResponseError):
        clients.storage(b.SUBSCRIPTION).storage_accounts.get_properties(
            b.RG, ACCOUNT_NAME, retry_total=0)
    emulator.faults.clear()
    emulator.faults.add("slow", path="storageaccounts/synthtrain01$", delay=1.0)
    with pytest.raises(ServiceResponseError):
        clients.storage(b.SUBSCRIPTION).storage_accounts.get_properties(
            b.RG, ACCOUNT_NAME, retry_total=0, read_timeout=0.2)


def test_unknown_fault_kind_is_refused(emulator):
    with pytest.raises(ValueError, match="fault kind"):
        emulator.faults.add("explode")
