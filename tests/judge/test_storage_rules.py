"""The storage exposure rules, the actions that contain them, and the decision that joins them.

Every rule registered by containment.judge.storage has a case below (a test fails when one is
added without one); every action's change, applied as ARM applies a PATCH (RFC 7396 merge),
must clear its rule's finding."""
from __future__ import annotations

import copy

import pytest

from containment.act.carry_out import still_exposed
from containment.core.events import ACTION_SUCCESS
from containment.core.findings import Finding
from containment.core.ids import BLOB_CONTAINER, STORAGE_ACCOUNT, parse_resource_id
from containment.core.records import PlannedAction
from containment.core.settings import SettingsError
from containment.judge.rule import Context
from containment.judge.scope import Protection, protection_of
from containment.plan.action import State
from containment.plan.decisions import CONTAIN, Decision, decide
from containment.plan.registry import ACTIONS, RULES, VOCABULARY, action_for, judge
from tests.helpers.arm_bodies import KEYS_ROTATED
from tests.helpers.settings import load_settings

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-synthetic"
ACCOUNT_ID = f"{RG}/providers/Microsoft.Storage/storageAccounts/synthtrain01"
CONTAINER_ID = f"{ACCOUNT_ID}/blobServices/default/containers/training"
DEFAULTS = load_settings({})
TAGGED = Context(DEFAULTS, Protection(tagged=True, protected_scope=None))


def account(tags: dict | None = None, **properties) -> dict:
    """A compliant synthetic-data account; keyword properties override (None removes one)."""
    body = {
        "id": ACCOUNT_ID, "name": "synthtrain01", "type": STORAGE_ACCOUNT,
        "tags": {"data-classification": "synthetic"} if tags is None else tags,
        "properties": {
            "allowBlobPublicAccess": False, "allowSharedKeyAccess": False, "allowCrossTenantReplication": False,
            "minimumTlsVersion": "TLS1_2", "publicNetworkAccess": "Enabled",
            "networkAcls": {"bypass": "AzureServices", "defaultAction": "Deny", "ipRules": [],
                            "virtualNetworkRules": []},
            "keyCreationTime": {"key1": KEYS_ROTATED, "key2": KEYS_ROTATED},
            "sasPolicy": {"sasExpirationPeriod": "1.00:00:00", "expirationAction": "Block"},
            "keyPolicy": {"keyExpirationPeriodInDays": 60},
        },
    }
    for name, value in properties.items():
        if value is None:
            body["properties"].pop(name)
        else:
            body["properties"][name] = value
    return body


def container(public_access: str | None = "None", container_id: str = CONTAINER_ID) -> dict:
    properties = {} if public_access is None else {"publicAccess": public_access}
    return {"id": container_id, "name": container_id.rsplit("/", 1)[1], "type": BLOB_CONTAINER,
            "properties": properties}


def open_network(**acls) -> dict:
    return {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": [], **acls}


def findings(body: dict, context: Context = TAGGED) -> list[Finding]:
    return judge(body["type"], body, context)


def merge_patch(target, patch):
    """RFC 7396, as ARM applies a PATCH body to a resource."""
    if not isinstance(patch, dict):
        return patch
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- each rule: compliant gives nothing, exposed gives exactly its finding ---------------------

CASES = {
    "storage_blob_public_access_allowed": (
        account(allowBlobPublicAccess=True),
        "the account allows anonymous read access to blobs (any container set to public is readable by anyone "
        "on the internet)",
        {"allowBlobPublicAccess": True}),
    "storage_network_open_to_internet": (
        account(networkAcls=open_network()),
        "the account accepts connections from any network",
        {"publicNetworkAccess": "Enabled", "networkAcls.defaultAction": "Allow"}),
    "storage_shared_key_access_allowed": (
        account(allowSharedKeyAccess=True),
        "account keys and the SAS tokens signed with them can read the data",
        {"allowSharedKeyAccess": True}),
    "storage_cross_tenant_replication_allowed": (
        account(allowCrossTenantReplication=True),
        "object replication to accounts in other tenants is allowed",
        {"allowCrossTenantReplication": True}),
    "storage_tls_below_1_2": (
        account(minimumTlsVersion="TLS1_1"),
        "the account accepts TLS1.1 connections",
        {"minimumTlsVersion": "TLS1_1"}),
    "storage_container_public_access": (
        container("Container"),
        "the container lets anyone read its blobs and the list of them without credentials",
        {"publicAccess": "Container"}),
    "storage_sas_expiry_policy_missing": (
        account(sasPolicy=None),
        "the account has no SAS expiration policy: a SAS signed for any length of time is accepted (at most 24 hours "
        "(CONTAINMENT_SAS_MAX_EXPIRY_HOURS) expected)",
        {"sasPolicy": None, "max_sas_expiry": "24 hours (CONTAINMENT_SAS_MAX_EXPIRY_HOURS)"}),
    "storage_key_expiry_policy_missing": (
        account(keyPolicy=None),
        "the account has no key expiration policy: nothing reminds anyone to rotate its access keys",
        {"keyPolicy": None}),
    "storage_keys_older_than_limit": (
        account(keyCreationTime={"key1": "2021-03-01T08:00:00.0000000Z", "key2": KEYS_ROTATED}),
        "access key(s) key1 not rotated within 90 days (CONTAINMENT_KEY_MAX_AGE_DAYS): every SAS signed with them "
        "stays valid until it expires",
        {"old_keys": {"key1": "created 2021-03-01T08:00:00.0000000Z"},
         "keyCreationTime": {"key1": "2021-03-01T08:00:00.0000000Z", "key2": KEYS_ROTATED},
         "max_key_age": "90 days (CONTAINMENT_KEY_MAX_AGE_DAYS)"}),
}


def test_every_storage_rule_has_a_case_here():
    registered = {r.id for r in RULES.values() if r.check.__module__ == "containment.judge.storage"}
    assert registered == set(CASES) | {"storage_scope_tag_removed"}


@pytest.mark.parametrize("body", [account(), container("None"), container(None)], ids=["account", "container",
                                                                                       "container-no-access"])
def test_a_compliant_resource_has_no_findings(body):
    assert findings(body) == []


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_an_exposed_resource_gives_exactly_that_finding_with_its_evidence(rule_id):
    body, summary, evidence = CASES[rule_id]
    rule = RULES[rule_id]
    # Which rules are weaknesses is decided, and tested, in test_weaknesses.py.
    assert findings(body) == [Finding(rule_id, rule.severity, body["id"], summary, evidence, weakness=rule.weakness)]


def test_a_container_with_blob_level_access_is_exposed():
    [finding] = findings(container("Blob"))
    assert finding.summary == "the container lets anyone read its blobs without credentials"
    assert finding.evidence == {"publicAccess": "Blob"}


@pytest.mark.parametrize("version", ["TLS1_0", "TLS1_1"])
def test_tls_below_1_2_names_the_version(version):
    [finding] = findings(account(minimumTlsVersion=version))
    assert finding.summary == f"the account accepts {version.replace('_', '.')} connections"


@pytest.mark.parametrize("properties", [
    {"publicNetworkAccess": "Disabled", "networkAcls": open_network()},
    {"publicNetworkAccess": "Enabled", "networkAcls": open_network(defaultAction="Deny")},
], ids=["public-access-disabled", "default-deny"])
def test_a_network_closed_either_way_is_not_open(properties):
    assert findings(account(**properties)) == []


# --- the storage API's defaults for absent properties -----------------------------------------

def test_absent_allow_shared_key_access_means_allowed():
    [finding] = findings(account(allowSharedKeyAccess=None))
    assert (finding.rule, finding.evidence) == ("storage_shared_key_access_allowed", {"allowSharedKeyAccess": None})


def test_absent_minimum_tls_version_means_tls_1_0():
    [finding] = findings(account(minimumTlsVersion=None))
    assert finding.rule == "storage_tls_below_1_2"
    assert (finding.summary, finding.evidence) == ("the account accepts TLS1.0 connections",
                                                   {"minimumTlsVersion": "TLS1_0"})


def test_absent_blob_public_access_and_cross_tenant_replication_mean_off():
    assert findings(account(allowBlobPublicAccess=None, allowCrossTenantReplication=None)) == []


def test_absent_public_network_access_with_default_allow_is_open():
    [finding] = findings(account(publicNetworkAccess=None, networkAcls=open_network()))
    assert finding.rule == "storage_network_open_to_internet"
    assert finding.evidence == {"publicNetworkAccess": "Enabled", "networkAcls.defaultAction": "Allow"}


def test_an_account_with_no_properties_at_all_is_open_on_every_default():
    body = {"id": ACCOUNT_ID, "type": STORAGE_ACCOUNT}
    assert sorted(f.rule for f in findings(body)) == [
        "storage_key_expiry_policy_missing", "storage_keys_older_than_limit", "storage_network_open_to_internet",
        "storage_sas_expiry_policy_missing", "storage_shared_key_access_allowed", "storage_tls_below_1_2"]


# --- the scope tag ----------------------------------------------------------------------------

PROTECTING_RG = load_settings({"CONTAINMENT_PROTECTED_SCOPES": RG})


def scope_findings(tags: dict, settings=PROTECTING_RG) -> list[Finding]:
    body = account(tags=tags)
    protection = protection_of(parse_resource_id(body["id"]), body["tags"], settings)
    return findings(body, Context(settings, protection))


def test_removing_the_tag_under_a_protected_scope_is_a_finding():
    [finding] = scope_findings({"owner": "ml-team"})
    assert finding == Finding(
        "storage_scope_tag_removed", "high", ACCOUNT_ID,
        f"the account lies under protected scope {RG} but no longer carries the tag data-classification=synthetic",
        {"tags": {"owner": "ml-team"}, "expected_tag": "data-classification=synthetic"}, weakness=True)


def test_the_tag_under_a_protected_scope_is_no_finding_whatever_the_case_of_its_name():
    assert scope_findings({"Data-Classification": " synthetic "}) == []


def test_an_untagged_account_outside_any_protected_scope_is_no_finding():
    assert scope_findings({"owner": "ml-team"}, settings=DEFAULTS) == []


# --- actions ----------------------------------------------------------------------------------

def test_every_action_fixes_registered_rules_on_the_same_resource_type():
    """Or, for a rule that judges an event (a key listing: ResourceActionSuccess), on the
    resource its finding names, which is the action's type."""
    for action in ACTIONS.values():
        for rule in action.fixed_rules:  # none: used by egress severity mapping only
            assert rule in RULES, action.name
            assert RULES[rule].resource_type in (*action.resource_types, ACTION_SUCCESS), action.name
            assert action_for(rule) is action


def test_rotating_the_keys_contains_both_key_listing_rules():
    assert ACTIONS["rotate_account_keys"].fixed_rules == ("storage_keys_listed_by_unallowed_principal",
                                                          "storage_sas_listed_by_unallowed_principal")
    assert {"storage_keys_listed_by_unallowed_principal",
            "storage_sas_listed_by_unallowed_principal"} <= VOCABULARY.containable_rules


PATCHING = [action for action in ACTIONS.values()  # the storage actions that fix a rule of the state by a PATCH
            if set(action.resource_types) & {STORAGE_ACCOUNT, BLOB_CONTAINER} and action.fixes
            and RULES[action.fixed_rules[0]].resource_type in action.resource_types]


def change(action_name: str, body: dict) -> dict:
    """The PATCH body an action plans for this current state."""
    [write] = ACTIONS[action_name].plan(State(body), parse_resource_id(body["id"]), DEFAULTS)
    assert (write.method, write.resource_id) == ("PATCH", body["id"])
    return write.body


def exposed_now(action_name: str, body: dict) -> bool:
    return still_exposed(ACTIONS[action_name], State(body), DEFAULTS)


def test_every_patching_action_declares_read_and_write_on_its_resource_type_only():
    for action in PATCHING:
        [kind] = action.resource_types
        assert set(action.permissions) == {f"{kind}/read", f"{kind}/write"}


EXPOSED = [  # each action against its rule's exposed case, then against the absent-property defaults
    *(pytest.param(action.name, CASES[action.fixes][0], id=action.name) for action in PATCHING),
    pytest.param("disable_shared_key_access", account(allowSharedKeyAccess=None), id="shared-key-absent"),
    pytest.param("require_tls_1_2", account(minimumTlsVersion=None), id="tls-absent"),
    pytest.param("lock_account_network", account(publicNetworkAccess=None, networkAcls=None),
                 id="network-settings-absent"),
    pytest.param("make_container_private", container("Blob"), id="container-blob-level"),
]


@pytest.mark.parametrize("action_name, exposed", EXPOSED)
def test_an_actions_change_merged_into_an_exposed_body_clears_the_exposure(action_name, exposed):
    action = ACTIONS[action_name]
    before = copy.deepcopy(exposed)
    assert exposed_now(action_name, exposed)

    after = merge_patch(exposed, change(action_name, exposed))

    assert not exposed_now(action_name, after)
    assert action.fixes not in {f.rule for f in findings(after)}
    assert exposed == before  # change() reads the current body, never edits it
    changed = {k for k in after["properties"] if after["properties"].get(k) != exposed["properties"].get(k)}
    assert len(changed) == 1, f"{action_name} changed {changed}"


def test_deny_by_default_keeps_the_ip_and_network_rules_and_bypass():
    acls = open_network(
        bypass="AzureServices, Logging, Metrics",
        ipRules=[{"value": "203.0.113.0/24", "action": "Allow"}],
        virtualNetworkRules=[{"id": f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.Network/"
                                    "virtualNetworks/vnet-train/subnets/training", "action": "Allow"}],
        resourceAccessRules=[{"tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                              "resourceId": f"/subscriptions/{SUB}/providers/Microsoft.Synapse/workspaces/*"}],
    )
    exposed = account(networkAcls=acls)
    before = copy.deepcopy(exposed)

    planned = change("lock_account_network", exposed)

    # The storage RP replaces networkAcls as a whole on PATCH (a deep merge would hide a missing
    # copy), so the body sent must itself carry every rule and the bypass.
    assert planned == {"properties": {"networkAcls": {**acls, "defaultAction": "Deny"}}}
    assert exposed == before  # the current body is not changed in place


# --- decide() ---------------------------------------------------------------------------------

def finding(rule_id: str, resource_id: str = ACCOUNT_ID) -> Finding:
    return Finding(rule_id, RULES[rule_id].severity, resource_id, "summary", {})


def settings(mode: str = "dry-run", auto_contain: str | None = None):
    environ = {"CONTAINMENT_MODE": mode}
    if auto_contain is not None:
        environ["CONTAINMENT_AUTO_CONTAIN"] = auto_contain
    return load_settings(environ)


def test_no_findings_is_compliant():
    assert decide([], settings("enforce")) == Decision("compliant", "no rule found an exposure")


def test_a_finding_not_auto_contained_is_reported_with_no_plan():
    found = findings(account(allowSharedKeyAccess=True))
    assert decide(found, settings("enforce")) == Decision(
        "reported", "recorded only (not chosen for automatic containment): storage_shared_key_access_allowed",
        tuple(found))


def test_dry_run_would_contain_and_says_nothing_changed():
    found = findings(container("Container"))
    assert decide(found, settings("dry-run")) == Decision(
        "would-contain", "contain storage_container_public_access (CONTAINMENT_MODE is dry-run: nothing changed)",
        tuple(found), (PlannedAction("make_container_private", CONTAINER_ID),))


def test_enforce_decides_to_contain():
    found = findings(account(allowBlobPublicAccess=True))
    decision = decide(found, settings("enforce"))
    assert (decision.outcome, decision.reason) == (CONTAIN, "contain storage_blob_public_access_allowed")
    assert decision.plan == (PlannedAction("disable_blob_public_access", ACCOUNT_ID),)


def test_the_reason_names_the_contained_and_the_reported_rules():
    found = findings(account(allowBlobPublicAccess=True, allowSharedKeyAccess=True, minimumTlsVersion="TLS1_0",
                             allowCrossTenantReplication=True))
    decision = decide(found, settings("enforce", "storage_tls_below_1_2,storage_blob_public_access_allowed"))
    assert decision.reason == (
        "contain storage_blob_public_access_allowed, storage_tls_below_1_2; recorded only (not chosen for "
        "automatic containment): storage_cross_tenant_replication_allowed, storage_shared_key_access_allowed")
    assert [step.action for step in decision.plan] == ["disable_blob_public_access", "require_tls_1_2"]
    assert decision.findings == tuple(found)  # every finding is kept, contained or not


def test_the_plan_is_de_duplicated_per_action_and_target():
    other = CONTAINER_ID.replace("synthtrain01", "synthtrain02")  # another account's: no account write covers both
    found = [finding("storage_container_public_access", CONTAINER_ID),
             finding("storage_container_public_access", other),
             finding("storage_container_public_access", CONTAINER_ID)]
    decision = decide(found, settings("enforce"))
    assert decision.plan == (PlannedAction("make_container_private", CONTAINER_ID),
                             PlannedAction("make_container_private", other))
    assert decision.reason == "contain storage_container_public_access"
    assert len(decision.findings) == 3


def test_an_auto_contained_rule_with_no_action_is_not_said_to_be_missing_from_the_setting():
    try:
        chosen = settings("enforce", "storage_scope_tag_removed")
    except SettingsError as error:  # refusing such a setting would be a fix too
        assert "storage_scope_tag_removed" in str(error)
        return
    decision = decide([finding("storage_scope_tag_removed")], chosen)
    assert decision.outcome == "reported" and "storage_scope_tag_removed" in decision.reason
    assert "not in CONTAINMENT_AUTO_CONTAIN" not in decision.reason


@pytest.mark.parametrize("created, rotated", [
    ({}, ["key1", "key2"]),  # never rotated (ARM omits the times): both
    ({"key1": "2026-11-24T10:00:00.1234567Z", "key2": "2026-01-01T00:00:00Z"}, ["key2"]),  # key1 done, answer lost
    ({"key1": "2026-11-24T10:00:01Z", "key2": "2026-11-24T10:00:02Z"}, []),  # both after the exposure: contained
])
def test_key_rotation_plans_only_the_keys_older_than_the_exposure(created, rotated):
    body = {**account(), "properties": {"keyCreationTime": created}}
    state = State(body, {"exposed_at": "2026-11-24T10:00:00Z"})
    action = ACTIONS["rotate_account_keys"]
    target = parse_resource_id(ACCOUNT_ID)
    assert [w.body["keyName"] for w in action.plan(state, target, DEFAULTS)] == rotated
    assert still_exposed(action, state, DEFAULTS) is bool(rotated)


@pytest.mark.parametrize("value", ["Synthetic", " SYNTHETIC ", "synthe\u200btic", "ｓｙｎｔｈｅｔｉｃ"])
def test_a_tag_value_differing_only_in_case_width_or_invisible_characters_still_protects(value):
    assert protection_of(parse_resource_id(ACCOUNT_ID), {"Data-Classification": value}, DEFAULTS).tagged


def test_a_sas_expiration_period_that_cannot_be_read_is_a_finding_that_says_so():
    policy = {"sasExpirationPeriod": "a fortnight", "expirationAction": "Log"}
    [finding] = [f for f in judge(STORAGE_ACCOUNT, account(sasPolicy=policy), TAGGED)
                 if f.rule == "storage_sas_expiry_policy_missing"]
    assert "'a fortnight' cannot be read as days.hours:minutes:seconds" in finding.summary
    assert finding.evidence["sasPolicy"] == policy
