"""The Key Vault rules and the plans of their actions, pure: which vault settings are weak or
exposed, and what each containment write sends."""
from __future__ import annotations

import pytest

from containment.core.ids import KEY_VAULT, parse_resource_id
from containment.judge.rule import Context
from containment.judge.scope import Protection
from containment.plan.action import State
from containment.plan.registry import ACTIONS, judge
from containment.plan.restore import access_policies_by_person
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

SETTINGS = load_settings({})

STRANGER = "1d2e3f40-0000-4000-8000-00000000bad0"
IDENTITY = "6a1b2c3d-0000-4000-8000-0000000000c1"
PIPELINE = "1d2e3f40-0000-4000-8000-00000000aa01"
ACCOUNT = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a"


def rules_of(vault: dict, settings: dict | None = None, **facts) -> dict:
    context = Context(load_settings(settings or {}), Protection(tagged=False, protected_scope=None), facts)
    return {finding.rule: finding for finding in judge(KEY_VAULT, vault, context)}


def test_a_private_purge_protected_vault_is_compliant():
    assert rules_of(b.key_vault(policies=[b.access_policy(IDENTITY, ["get", "wrapKey", "unwrapKey"])]),
                    encryption_identities={IDENTITY: ACCOUNT}) == {}


@pytest.mark.parametrize("properties, open_", [
    ({"networkAcls": {"defaultAction": "Allow"}}, True),
    ({"networkAcls": None}, True),  # the firewall is off by default
    ({"networkAcls": {"defaultAction": "Allow"}, "publicNetworkAccess": "Disabled"}, False),  # overrides the rules
    ({"networkAcls": {"defaultAction": "Allow"}, "publicNetworkAccess": "disabled"}, False),
    ({"networkAcls": {"defaultAction": "Deny"}}, False),
])
def test_network_open(properties, open_):
    assert ("key_vault_network_open" in rules_of(b.key_vault(**properties))) is open_


@pytest.mark.parametrize("properties, words", [
    ({"enablePurgeProtection": False}, "purge protection is off"),
    ({"enablePurgeProtection": None}, "purge protection is off"),
    ({"enableSoftDelete": False}, "soft delete is off"),
    ({"softDeleteRetentionInDays": 30}, "kept 30 days, fewer than 90"),
])
def test_purge_protection_and_soft_delete(properties, words):
    finding = rules_of(b.key_vault(**properties))["key_vault_purge_protection_off"]
    assert (finding.severity, finding.weakness) == ("medium", True) and words in finding.summary


def test_the_retention_minimum_is_a_setting():
    vault = b.key_vault(softDeleteRetentionInDays=30)
    assert rules_of(vault, {"CONTAINMENT_VAULT_MIN_SOFT_DELETE_DAYS": "30"}) == {}


def test_key_access_for_a_principal_neither_allowed_nor_the_accounts_identity_is_a_critical_exposure():
    stranger = b.access_policy(STRANGER, ["get", "unwrapKey"])
    secrets_only = {**b.access_policy("1d2e3f40-0000-4000-8000-00000000cc01", []), "permissions": {"secrets": ["get"]}}
    vault = b.key_vault(policies=[b.access_policy(IDENTITY, ["get", "wrapKey", "unwrapKey"]),
                                  b.access_policy(PIPELINE, ["all"]), stranger, secrets_only])
    found = rules_of(vault, {"CONTAINMENT_ALLOWED_PRINCIPALS": PIPELINE}, encryption_identities={IDENTITY: ACCOUNT},
                     keyed_accounts=[ACCOUNT])
    finding = found["key_vault_key_access_by_unallowed_principal"]
    assert (finding.severity, finding.weakness) == ("critical", False)
    assert finding.evidence["entries"] == [stranger] and finding.evidence["principals"] == [STRANGER]
    assert "customer-managed key of /subscriptions/s" in finding.summary


@pytest.mark.parametrize("permission", ["unwrapKey", "decrypt", "release", "backup", "delete", "purge", "update",
                                        "all", "UNWRAPKEY"])
def test_each_key_operation_that_reaches_or_locks_the_data_counts(permission):
    vault = b.key_vault(policies=[b.access_policy(STRANGER, [permission])])
    assert "key_vault_key_access_by_unallowed_principal" in rules_of(vault)


def test_reading_wrapping_listing_or_signing_alone_is_not_key_access_and_rbac_vaults_ignore_access_policies():
    # get is the key's metadata and public key; wrapKey is what the public key does anyway.
    assert rules_of(b.key_vault(policies=[b.access_policy(STRANGER, ["get", "wrapKey", "encrypt", "list", "sign",
                                                                     "verify", "create", "rotate"])])) == {}
    assert rules_of(b.key_vault(policies=[b.access_policy(STRANGER, ["all"])], enableRbacAuthorization=True)) == {}


def test_an_encryption_identitys_entry_is_never_removed_and_what_it_holds_beyond_storage_is_reported():
    """Any account whose key the vault holds, protected or not: removing its identity's entry
    locks that account's data."""
    own = b.access_policy(IDENTITY, ["get", "wrapKey", "unwrapKey", "purge"])
    finding = rules_of(b.key_vault(policies=[own]),
                       encryption_identities={IDENTITY: ACCOUNT})["key_vault_key_access_by_unallowed_principal"]
    assert finding.evidence["entries"] == [] and finding.evidence["identity_grants"] == {IDENTITY: ["purge"]}
    assert "reported, not removed" in finding.summary
    assert ACTIONS["remove_key_vault_access_policy"].unavailable(finding, SETTINGS)  # recorded only
    stranger = b.access_policy(STRANGER, ["unwrapKey"])
    both = rules_of(b.key_vault(policies=[own, stranger]),
                    encryption_identities={IDENTITY: ACCOUNT})["key_vault_key_access_by_unallowed_principal"]
    assert both.evidence["entries"] == [stranger] and ACTIONS["remove_key_vault_access_policy"].unavailable(both, SETTINGS) is None
    # Another identity of the same account has no allowance: only the one its encryption names.
    assert rules_of(b.key_vault(policies=[b.access_policy(IDENTITY, ["unwrapKey"])]),
                    encryption_identities={"6a1b2c3d-0000-4000-8000-0000000000c2": ACCOUNT}) != {}


def test_only_the_identity_the_accounts_encryption_names_is_its_way_to_the_key():
    from containment.judge.customer_keys import encryption_identity

    chosen = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cmk"
    account = {"identity": {"type": "SystemAssigned,UserAssigned", "principalId": "SYSTEM",
                            "userAssignedIdentities": {chosen.upper(): {"principalId": "CMK"},
                                                       f"{chosen}-other": {"principalId": "OTHER"}}},
               "properties": {"encryption": {"identity": {"userAssignedIdentity": chosen}}}}
    assert encryption_identity(account) == "cmk"
    account["properties"]["encryption"] = {}
    assert encryption_identity(account) == "system"
    assert encryption_identity({}) is None


def _state(vault: dict, **facts) -> State:
    return State(vault, facts)


def test_the_network_lock_keeps_rules_adds_allowed_ipv4_networks_and_trusted_services():
    vault = b.key_vault(networkAcls={"bypass": "None", "defaultAction": "Allow", "ipRules": [{"value": "10.20.0.0/16"}],
                                     "virtualNetworkRules": [{"id": "/subnet"}]})
    settings = load_settings({"CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16,192.0.2.0/24,2001:db8::/48"})
    [write] = ACTIONS["lock_key_vault_network"].plan(_state(vault), parse_resource_id(vault["id"]), settings)
    assert (write.method, write.resource_id) == ("PATCH", vault["id"])
    assert write.body == {"properties": {"networkAcls": {
        "bypass": "AzureServices", "defaultAction": "Deny", "virtualNetworkRules": [{"id": "/subnet"}],
        "ipRules": [{"value": "10.20.0.0/16"}, {"value": "192.0.2.0/24"}]}}}


def test_the_access_policy_removal_sends_the_named_entries_as_held():
    stranger = b.access_policy(STRANGER, ["get", "unwrapKey", "list"])
    vault = b.key_vault(policies=[b.access_policy(IDENTITY, ["get"]), stranger])
    findings = [{"rule": "key_vault_key_access_by_unallowed_principal", "evidence": {"principals": [STRANGER]}}]
    action, state = ACTIONS["remove_key_vault_access_policy"], _state(vault, findings=findings)
    [write] = action.plan(state, parse_resource_id(vault["id"]), load_settings({}))
    assert (write.method, write.resource_id) == ("PUT", f"{vault['id']}/accessPolicies/remove")
    assert write.body == {"properties": {"accessPolicies": [stranger]}}
    assert action.exposed(state, load_settings({})) is True
    gone = _state(b.key_vault(policies=[b.access_policy(IDENTITY, ["get"])]), findings=findings)
    assert action.exposed(gone, load_settings({})) is False
    assert not action.on_request  # which entries comes from a decision's findings


def test_purge_protection_always_waits_for_a_person_and_turns_soft_delete_on_with_it():
    action = ACTIONS["enable_key_vault_purge_protection"]
    vault = b.key_vault(enablePurgeProtection=False, enableSoftDelete=False)
    target = parse_resource_id(vault["id"])
    assert "irreversible" in action.approval(target, load_settings({}))
    [write] = action.plan(_state(vault), target, load_settings({}))
    assert write.body == {"properties": {"enablePurgeProtection": True, "enableSoftDelete": True}}
    assert action.exposed(_state(b.key_vault()), load_settings({})) is False


def test_a_removed_entry_is_handed_to_a_person_as_the_exact_add_request():
    stranger = b.access_policy(STRANGER, ["unwrapKey"])
    before = b.key_vault(policies=[b.access_policy(IDENTITY, ["get"]), stranger])
    after = b.key_vault(policies=[b.access_policy(IDENTITY, ["get"])])
    [step] = access_policies_by_person(before, after)
    assert step["method"] == "PUT" and step["body"] == {"properties": {"accessPolicies": [stranger]}}
    assert step["url"] == f"https://management.azure.com{before['id']}/accessPolicies/add?api-version=2024-11-01"
    assert step["az"].startswith("az rest --method put --url ")
    assert access_policies_by_person(after, after) == []


def test_the_permissions_are_exactly_what_the_writes_need():
    assert set(ACTIONS["lock_key_vault_network"].permissions) == {"Microsoft.KeyVault/vaults/read",
                                                                  "Microsoft.KeyVault/vaults/write"}
    assert set(ACTIONS["remove_key_vault_access_policy"].permissions) == {
        "Microsoft.KeyVault/vaults/read", "Microsoft.KeyVault/vaults/accessPolicies/write"}


def test_the_network_lock_keeps_a_bypass_of_none_unless_storage_needs_it_and_an_absent_one_is_azure_services():
    vault = b.key_vault(networkAcls={"bypass": "None", "defaultAction": "Allow"})
    target, settings = parse_resource_id(vault["id"]), load_settings({})
    lock = ACTIONS["lock_key_vault_network"]
    finding = {"rule": "key_vault_network_open", "evidence": {"encrypts": []}}
    [write] = lock.plan(_state(vault, findings=[finding]), target, settings)
    assert write.body["properties"]["networkAcls"]["bypass"] == "None"
    keyed = {"rule": "key_vault_network_open", "evidence": {"encrypts": [ACCOUNT]}}
    for state in (_state(vault, findings=[keyed]), _state(vault)):  # a person's request: the findings do not say
        [write] = lock.plan(state, target, settings)
        assert write.body["properties"]["networkAcls"]["bypass"] == "AzureServices"
    [write] = lock.plan(_state(b.key_vault(networkAcls=None), findings=[finding]), target, settings)
    assert write.body["properties"]["networkAcls"]["bypass"] == "AzureServices"


def test_vault_actions_are_moot_on_a_vault_created_again_under_the_same_id():
    judged = {**b.key_vault(), "systemData": {"createdAt": "2026-01-01T00:00:00Z"}}
    again = {**judged, "systemData": {"createdAt": "2026-06-01T00:00:00Z"}}
    target = parse_resource_id(judged["id"])
    for name in ("lock_key_vault_network", "remove_key_vault_access_policy", "enable_key_vault_purge_protection"):
        moot = ACTIONS[name].moot
        assert "created again" in moot(_state(again, target=target, recorded={target.key: judged}), load_settings({}))
        assert moot(_state(judged, target=target, recorded={target.key: judged}), load_settings({})) is None
        assert moot(_state(b.key_vault(), target=target, recorded={target.key: b.key_vault()}), load_settings({})) is None


def test_a_retention_only_finding_leaves_purge_protection_nothing_to_change():
    action = ACTIONS["enable_key_vault_purge_protection"]
    retention = rules_of(b.key_vault(softDeleteRetentionInDays=7))["key_vault_purge_protection_off"]
    assert action.unavailable(retention, SETTINGS) == ("the retention is fixed when a vault is created; purge protection is "
                                             "already on")
    assert action.unavailable(rules_of(b.key_vault(enablePurgeProtection=False))["key_vault_purge_protection_off"], SETTINGS) is None


def test_a_vault_release_compares_and_restores_only_its_network():
    from containment.plan.restore import differences, undo

    target = parse_resource_id(b.key_vault()["id"])
    before = b.key_vault(enablePurgeProtection=False)
    del before["properties"]["networkAcls"]
    locked = b.key_vault(enablePurgeProtection=False)
    assert differences(before, locked, target) == ["networkAcls"]
    assert undo(before, locked, {**locked, "tags": {"x": "y"}}, target).restore == ["networkAcls"]
