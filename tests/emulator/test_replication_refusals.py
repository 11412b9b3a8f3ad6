"""Object replication policies and the account writes they constrain, through the real
storage management client: the emulator takes what ARM takes and refuses what ARM refuses.
Each rule's source is named in localazure/replication.py."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.helpers import arm_bodies as b

SOURCE = b.storage_account("synthtrain01")
DESTINATION = b.storage_account("synthreplica01")
FOREIGN = ("/subscriptions/5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a/resourceGroups/rg-elsewhere/providers/"
           "Microsoft.Storage/storageAccounts/elsewhere01")


def policy_body(source: str, destination: str, rule_id: str | None = None) -> dict:
    rule = {"sourceContainer": "training", "destinationContainer": "replica", "filters": {"prefixMatch": ["train/"]}}
    if rule_id:
        rule["ruleId"] = rule_id
    return {"properties": {"sourceAccount": source, "destinationAccount": destination, "rules": [rule]}}


def refusal(call) -> tuple[int, str]:
    with pytest.raises(HttpResponseError) as refused:
        call()
    return refused.value.status_code, refused.value.error.code


@pytest.fixture
def policies(emulator, owner):
    emulator.seed([SOURCE, DESTINATION])
    return owner.storage(b.SUBSCRIPTION).object_replication_policies


def test_destination_first_then_source_with_the_id_the_destination_returned(policies, emulator):
    made = policies.create_or_update(b.RG, DESTINATION["name"], "default", policy_body(SOURCE["id"], DESTINATION["id"]))
    assert made.policy_id and made.policy_id != "default" and made.rules[0].rule_id
    mirrored = policies.create_or_update(b.RG, SOURCE["name"], made.policy_id,
                                         policy_body(SOURCE["id"], DESTINATION["id"], made.rules[0].rule_id))
    assert mirrored.policy_id == made.policy_id and mirrored.enabled_time is not None
    assert [p.name for p in policies.list(b.RG, SOURCE["name"])] == [made.policy_id]
    assert policies.get(b.RG, SOURCE["name"], made.policy_id).destination_account == DESTINATION["id"]
    policies.delete(b.RG, SOURCE["name"], made.policy_id)
    assert emulator.arm.get(f"{SOURCE['id']}/objectReplicationPolicies/{made.policy_id}") is None
    policies.delete(b.RG, SOURCE["name"], made.policy_id)  # 204: nothing left to delete, not an error


REFUSED = {
    "the source before its destination": (
        lambda p: p.create_or_update(b.RG, SOURCE["name"], "3b1f0c2d-0000-4000-8000-000000000001",
                                     policy_body(SOURCE["id"], DESTINATION["id"], "r1")),
        (400, "InvalidRequestPropertyValue")),
    "'default' on the source": (
        lambda p: p.create_or_update(b.RG, SOURCE["name"], "default", policy_body(SOURCE["id"], DESTINATION["id"])),
        (400, "InvalidRequestPropertyValue")),
    "a new policy ID on the destination": (
        lambda p: p.create_or_update(b.RG, DESTINATION["name"], "3b1f0c2d-0000-4000-8000-000000000002",
                                     policy_body(SOURCE["id"], DESTINATION["id"])),
        (400, "InvalidRequestPropertyValue")),
    "a rule without the destination's rule ID on the source": (
        lambda p: p.create_or_update(b.RG, SOURCE["name"], "3b1f0c2d-0000-4000-8000-000000000003",
                                     policy_body(SOURCE["id"], DESTINATION["id"])),
        (400, "InvalidRequestPropertyValue")),
    "a destination in another tenant while cross-tenant replication is off": (
        lambda p: p.create_or_update(b.RG, SOURCE["name"], "3b1f0c2d-0000-4000-8000-000000000004",
                                     policy_body(SOURCE["id"], FOREIGN, "r1")),
        (403, "CrossTenantObjectReplicationNotAllowed")),
    "a destination named without its resource ID while cross-tenant replication is off": (
        lambda p: p.create_or_update(b.RG, SOURCE["name"], "3b1f0c2d-0000-4000-8000-000000000005",
                                     policy_body(SOURCE["id"], "elsewhere01", "r1")),
        (403, "CrossTenantObjectReplicationNotAllowed")),
    "a policy that names neither side as this account": (
        lambda p: p.create_or_update(b.RG, SOURCE["name"], "default", policy_body(FOREIGN, DESTINATION["id"])),
        (400, "InvalidRequestPropertyValue")),
}


@pytest.mark.parametrize("case", REFUSED)
def test_arm_refuses(policies, emulator, case):
    call, expected = REFUSED[case]
    assert refusal(lambda: call(policies)) == expected
    assert [k for k in emulator.arm.snapshot() if "/objectreplicationpolicies/" in k.lower()] == []


def test_a_foreign_destination_is_taken_where_the_source_allows_cross_tenant_replication(emulator, owner):
    allowing = b.storage_account("synthtrain02", allowCrossTenantReplication=True)
    emulator.seed([allowing])
    policies = owner.storage(b.SUBSCRIPTION).object_replication_policies
    made = policies.create_or_update(b.RG, allowing["name"], "4c2e1d3f-0000-4000-8000-000000000001",
                                     policy_body(allowing["id"], FOREIGN, "r1"))
    assert made.destination_account == FOREIGN
    # ... and then the account may not turn cross-tenant replication off while it stands.
    accounts = owner.storage(b.SUBSCRIPTION).storage_accounts
    assert refusal(lambda: accounts.update(b.RG, allowing["name"], {"properties": {"allowCrossTenantReplication": False}})
                   ) == (409, "CrossTenantObjectReplicationPoliciesExist")
    policies.delete(b.RG, allowing["name"], made.policy_id)
    accounts.update(b.RG, allowing["name"], {"properties": {"allowCrossTenantReplication": False}})
    assert emulator.arm.get(allowing["id"])["properties"]["allowCrossTenantReplication"] is False


def test_sas_and_key_policies_are_served_and_taken_on_patch_as_arm_takes_them(emulator, owner):
    emulator.seed([SOURCE])
    accounts = owner.storage(b.SUBSCRIPTION).storage_accounts
    accounts.update(b.RG, SOURCE["name"], {"properties": {
        "sasPolicy": {"sasExpirationPeriod": "1.12:00:00", "expirationAction": "Log"},
        "keyPolicy": {"keyExpirationPeriodInDays": 30}}})
    read = accounts.get_properties(b.RG, SOURCE["name"])
    assert (read.sas_policy.sas_expiration_period, read.sas_policy.expiration_action) == ("1.12:00:00", "Log")
    assert read.key_policy.key_expiration_period_in_days == 30 and read.key_creation_time.key1 is not None
    for bad in ({"sasPolicy": {"sasExpirationPeriod": "36h", "expirationAction": "Log"}},
                {"sasPolicy": {"sasExpirationPeriod": "1.00:00:00", "expirationAction": "Deny"}},
                {"keyPolicy": {"keyExpirationPeriodInDays": "thirty"}}):
        assert refusal(lambda: accounts.update(b.RG, SOURCE["name"], {"properties": bad})) == (
            400, "InvalidRequestPropertyValue"), bad


def test_no_sas_or_key_policy_while_a_key_has_no_creation_time(emulator, owner):
    legacy = b.storage_account("synthlegacy01", keyCreationTime={"key1": None, "key2": None})
    emulator.seed([legacy])
    accounts = owner.storage(b.SUBSCRIPTION).storage_accounts
    for policy in ({"keyPolicy": {"keyExpirationPeriodInDays": 30}},
                   {"sasPolicy": {"sasExpirationPeriod": "0.01:00:00", "expirationAction": "Log"}}):
        assert refusal(lambda: accounts.update(b.RG, legacy["name"], {"properties": policy})) == (
            400, "InvalidRequestPropertyValue")
    # Rotating both keys records their creation times; then the policy is taken.
    for name in ("key1", "key2"):
        accounts.regenerate_key(b.RG, legacy["name"], {"keyName": name})
    accounts.update(b.RG, legacy["name"], {"properties": {"keyPolicy": {"keyExpirationPeriodInDays": 30}}})
