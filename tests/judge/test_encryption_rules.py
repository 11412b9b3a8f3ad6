"""The encryption rules on a protected account (containment.judge.encryption), judged on the
account's body and the customer-key facts the storage assess step gathers; and the Key Vault
key paths of the role rules (containment.judge.role_permissions)."""
from __future__ import annotations

import pytest

from containment.core.ids import STORAGE_ACCOUNT
from containment.judge.customer_keys import KEY_ACCESS
from containment.judge.encryption import KEY_STATES
from containment.judge.role_permissions import data_paths, key_paths, reaches
from containment.judge.rule import Context
from containment.judge.scope import Protection
from containment.plan.decisions import decide
from containment.plan.registry import RULES, action_for, judge
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

VAULT_URI = "https://kv-synthetic.vault.azure.net"
VAULT_ID = f"{b.RG_ID}/providers/Microsoft.KeyVault/vaults/kv-synthetic"
KEY_ID = f"{VAULT_ID}/keys/cmk-train"
ENCRYPTION_RULES = {"storage_customer_key_unavailable", "storage_customer_key_outside_watch",
                    "storage_encryption_not_customer_managed", "storage_infrastructure_encryption_off"}


def cmk_account(**encryption) -> dict:
    return b.storage_account(encryption={
        "keySource": "Microsoft.Keyvault", "requireInfrastructureEncryption": True,
        "keyvaultproperties": {"keyvaulturi": VAULT_URI + "/", "keyname": "cmk-train", "keyversion": ""},
        **encryption})


def key_facts(state: str, **more) -> dict:
    assert state in KEY_STATES
    return {"keyvaulturi": VAULT_URI, "keyname": "cmk-train", "keyversion": None,
            "vault": None if state == "unseen" else VAULT_ID, "key": None if state == "unseen" else KEY_ID,
            "state": state, "why": f"the key is {state}", **more}


def context(environ: dict | None = None, customer_key: dict | None = None) -> Context:
    return Context(load_settings(environ or {}), Protection(tagged=True, protected_scope=None),
                   facts={"customer_key": customer_key})


def rules(body: dict, ctx: Context) -> set[str]:
    return {f.rule for f in judge(STORAGE_ACCOUNT, body, ctx)} & ENCRYPTION_RULES


REQUIRED = {"CONTAINMENT_REQUIRE_CUSTOMER_KEYS": "true", "CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION": "true"}


@pytest.mark.parametrize("state, expected", [
    ("enabled", set()),
    ("disabled", {"storage_customer_key_unavailable"}),
    ("deleted", {"storage_customer_key_unavailable"}),
    ("unseen", {"storage_customer_key_outside_watch"}),
])
def test_a_customer_managed_key_is_judged_by_its_state(state, expected):
    assert rules(cmk_account(), context(REQUIRED, key_facts(state))) == expected


def test_an_unusable_key_is_a_critical_exposure_recorded_only():
    [finding] = judge(STORAGE_ACCOUNT, cmk_account(), context({}, key_facts("disabled")))
    assert (finding.rule, finding.severity, finding.weakness) == ("storage_customer_key_unavailable", "critical", False)
    assert "disabled" in finding.summary and "403" in finding.summary
    assert finding.evidence == {"keyvaulturi": VAULT_URI, "keyname": "cmk-train", "keyversion": None,
                                "vault": VAULT_ID, "key": KEY_ID, "state": "disabled", "why": "the key is disabled"}
    # Recorded only: making the key usable again gives access back, a person's decision.
    assert action_for(finding.rule) is None
    decision = decide([finding], load_settings({"CONTAINMENT_MODE": "enforce"}))
    assert decision.outcome == "reported" and decision.plan == ()


def test_a_key_outside_the_watch_is_a_weakness_that_says_why():
    [finding] = judge(STORAGE_ACCOUNT, cmk_account(), context({}, key_facts("unseen", why="no vault has that URI")))
    assert (finding.severity, finding.weakness) == ("high", True)
    assert "no vault has that URI" in finding.summary and finding.evidence["vault"] is None


def test_microsoft_managed_keys_are_a_finding_only_where_customer_keys_are_required():
    managed = b.storage_account(encryption={"keySource": "Microsoft.Storage", "requireInfrastructureEncryption": True})
    assert rules(managed, context()) == set()  # the default: not required
    [finding] = judge(STORAGE_ACCOUNT, managed, context({"CONTAINMENT_REQUIRE_CUSTOMER_KEYS": "true"}))
    assert (finding.rule, finding.severity, finding.weakness) == ("storage_encryption_not_customer_managed", "medium",
                                                                   True)
    assert finding.evidence == {"keySource": "Microsoft.Storage", "keyvaultproperties": None}
    # No encryption block at all is the spec's default key source: Microsoft-managed.
    bare = b.storage_account()
    assert judge(STORAGE_ACCOUNT, bare, context({"CONTAINMENT_REQUIRE_CUSTOMER_KEYS": "true"}))[0].evidence[
        "keySource"] == "Microsoft.Storage"
    assert rules(cmk_account(), context({"CONTAINMENT_REQUIRE_CUSTOMER_KEYS": "true"}, key_facts("enabled"))) == set()


@pytest.mark.parametrize("value", [False, None])
def test_infrastructure_encryption_is_a_finding_only_where_required(value):
    body = cmk_account(requireInfrastructureEncryption=value)
    assert rules(body, context({}, key_facts("enabled"))) == set()
    [finding] = judge(STORAGE_ACCOUNT, body, context({"CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION": "true"},
                                                     key_facts("enabled")))
    assert (finding.rule, finding.severity, finding.weakness) == ("storage_infrastructure_encryption_off", "low", True)
    assert finding.evidence == {"requireInfrastructureEncryption": value}


def test_the_requirement_settings_take_true_or_false_only():
    assert load_settings({"CONTAINMENT_REQUIRE_CUSTOMER_KEYS": "True"}).require_customer_keys is True
    assert load_settings({}).require_infrastructure_encryption is False
    with pytest.raises(ValueError, match="CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION='yes'"):
        load_settings({"CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION": "yes"})


def test_every_encryption_rule_is_declared_with_the_readmes_severity():
    assert {r.id: (r.severity, r.weakness) for r in RULES.values() if r.id in ENCRYPTION_RULES} == {
        "storage_customer_key_unavailable": ("critical", False),
        "storage_customer_key_outside_watch": ("high", True),
        "storage_encryption_not_customer_managed": ("medium", True),
        "storage_infrastructure_encryption_off": ("low", True)}


# -- Key Vault key paths of a role ------------------------------------------------------------

def role(*data_actions: str, not_data_actions: tuple[str, ...] = ()) -> dict:
    return {"properties": {"roleName": "custom", "permissions": [
        {"actions": [], "notActions": [], "dataActions": list(data_actions), "notDataActions": list(not_data_actions)}]}}


ACCOUNT_ID = b.storage_account()["id"]


def test_key_paths_name_the_key_operations_a_role_grants():
    assert key_paths(role("Microsoft.KeyVault/vaults/keys/unwrap/action")) == [
        "dataActions grant Microsoft.KeyVault/vaults/keys/unwrap/action"]
    # A wildcard grants them all; notDataActions take them away again.
    assert len(key_paths(role("Microsoft.KeyVault/vaults/*"))) == len(KEY_ACCESS)
    # Reading a key, or wrapping with it, alone is no path (containment.judge.customer_keys.KEY_ACCESS).
    assert key_paths(role("Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/wrap/action")) == []
    assert key_paths(role("Microsoft.KeyVault/vaults/keys/*", not_data_actions=("Microsoft.KeyVault/vaults/keys/*",))) \
        == []
    # Secrets and certificates are not keys.
    assert key_paths(role("Microsoft.KeyVault/vaults/secrets/getSecret/action")) == []


@pytest.mark.parametrize("scope, covered, expected", [
    (ACCOUNT_ID, [b.RG_ID, ACCOUNT_ID], {"storage"}),  # at an account: its blobs only, whatever covers it
    (KEY_ID, [b.RG_ID, VAULT_ID], {"vault"}),  # at a key: the vault's keys only
    (b.RG_ID, [ACCOUNT_ID], {"storage"}),
    (b.RG_ID, [VAULT_ID], {"vault"}),
    (b.RG_ID, [b.RG_ID], {"storage", "vault"}),  # a protected group may hold both
    ("/providers/Microsoft.Management/managementGroups/mg", ["/providers/Microsoft.Management/managementGroups/mg "
                                                             "(covers every subscription below it)"],
     {"storage", "vault"}),
])
def test_what_an_assignment_reaches_depends_on_its_scope_and_what_it_covers(scope, covered, expected):
    assert reaches(scope, covered) == expected


def test_a_crypto_role_reaches_nothing_over_a_storage_account_and_a_blob_role_nothing_over_a_vault():
    crypto = role("Microsoft.KeyVault/vaults/keys/decrypt/action")
    blob = role("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read")
    assert data_paths(crypto, ACCOUNT_ID, [ACCOUNT_ID]) == [] and data_paths(blob, VAULT_ID, [VAULT_ID]) == []
    assert data_paths(crypto, VAULT_ID, [VAULT_ID]) == ["dataActions grant Microsoft.KeyVault/vaults/keys/decrypt/action"]
    assert data_paths(blob, ACCOUNT_ID, [ACCOUNT_ID]) and data_paths(crypto) and data_paths(blob)
