"""Key Vaults holding synthetic data's keys, end to end through the `key_vault_write` function
and the drift sweep, against the ARM emulator and Azurite: which vaults are in scope (the
customer-managed key of a protected account, a tag), what is contained, and what release
puts back or hands to a person."""
from __future__ import annotations

import json

from containment.detect import customer_keys
from containment.judge.customer_keys import customer_key_of
from tests.helpers import arm_bodies as b
from tests.helpers.events import write_event
from tests.helpers.operators import ONCALL

VAULT_WRITE = "Microsoft.KeyVault/vaults/write"
POLICY_WRITE = "Microsoft.KeyVault/vaults/accessPolicies/write"
STRANGER = "1d2e3f40-0000-4000-8000-00000000bad0"
PIPELINE = "1d2e3f40-0000-4000-8000-00000000aa01"  # an allowed principal
OPEN = {"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [{"value": "198.51.100.0/24"}],
        "virtualNetworkRules": []}


def keyed(vault: dict, account_name: str = "synthtrain01", **account) -> dict:
    """A protected account whose customer-managed key the vault holds (untagged vault)."""
    return b.customer_keyed(b.storage_account(account_name, **account), vault)


def written(app, emulator, resources: list[dict], vault: dict, operation: str = VAULT_WRITE, **settings) -> list:
    emulator.seed(resources)
    app.configure(**{"CONTAINMENT_MODE": "enforce", **settings})
    app.deliver(write_event(vault["id"], operation))
    app.drain()
    return app.records()


def test_customer_keys_link_a_vault_and_the_protected_accounts_it_encrypts_both_ways(app, emulator):
    vault = b.key_vault()
    account = keyed(vault)
    unprotected = b.customer_keyed(b.storage_account("scratch01", tags={}), vault)
    elsewhere = b.key_vault("kv-other-subscription", subscription=b.OTHER_SUBSCRIPTION)
    emulator.seed([vault, account, unprotected, elsewhere, b.storage_account("synthplain01")])
    app.configure(CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    runtime = app.runtime
    assert customer_keys.watched_subscriptions(runtime) == [b.SUBSCRIPTION]
    assert sorted((a["id"], protected) for a, protected in customer_keys.accounts_keyed_in(vault, runtime)) == [
        (unprotected["id"], False), (account["id"], True)]
    held, why = customer_keys.vault_holding(customer_key_of(account), runtime)
    assert held["id"] == vault["id"] and vault["id"] in why
    foreign = customer_key_of(b.customer_keyed(b.storage_account("synthtrain02"), elsewhere))
    held, why = customer_keys.vault_holding(foreign, runtime)  # its subscription is not watched
    assert held is None and "another subscription or tenant" in why


def test_an_open_vault_holding_a_protected_accounts_key_is_locked_keeping_trusted_services_and_allowed_networks(
        app, emulator):
    vault = b.key_vault(networkAcls=OPEN)  # untagged: in scope because of the key it holds
    account = keyed(vault)
    [record] = written(app, emulator, [vault, account], vault, CONTAINMENT_ALLOWED_CIDRS="10.20.0.0/16,2001:db8::/48",
                       CONTAINMENT_AUTO_CONTAIN="key_vault_network_open")
    assert (record.outcome, record.actions, record.rules) == ("contained", ["lock_key_vault_network"],
                                                              ["key_vault_network_open"])
    acls = emulator.arm.get(vault["id"])["properties"]["networkAcls"]
    # Storage reaches its key through the trusted-services bypass; the vault's own rule and the
    # allowed IPv4 network stay reachable (Key Vault IP rules are IPv4 only).
    assert acls == {"bypass": "AzureServices", "defaultAction": "Deny", "virtualNetworkRules": [],
                    "ipRules": [{"value": "198.51.100.0/24"}, {"value": "10.20.0.0/16"}]}
    assert record.before[vault["id"]]["properties"]["networkAcls"] == OPEN
    assert record.before[account["id"]] == account  # why the vault was in scope, kept as evidence


def test_release_puts_the_vault_network_back_from_the_recorded_state(app, emulator):
    import function_app
    from localazure.functions_host import call_http

    vault = b.key_vault(networkAcls=OPEN)
    [record] = written(app, emulator, [vault, keyed(vault)], vault, CONTAINMENT_AUTO_CONTAIN="key_vault_network_open")
    response = call_http(function_app.app, "POST", "release", {"resourceId": record.resource_id,
                                                               "decision": record.key}, ONCALL)
    assert response.status_code == 202, response.get_body()
    app.drain()
    assert emulator.arm.get(vault["id"])["properties"]["networkAcls"] == OPEN


def test_a_private_purge_protected_vault_is_compliant(app, emulator):
    vault = b.key_vault(policies=[b.access_policy(PIPELINE, ["get", "unwrapKey"])])
    [record] = written(app, emulator, [vault, keyed(vault)], vault, CONTAINMENT_ALLOWED_PRINCIPALS=PIPELINE)
    assert (record.outcome, record.actions) == ("compliant", [])
    assert app.writes() == []


def test_an_access_policy_for_an_unknown_principal_is_removed_whole_and_a_person_puts_it_back(app, emulator, owner):
    import function_app
    from localazure.functions_host import call_http

    identity = "6a1b2c3d-0000-4000-8000-0000000000c1"  # the account's own managed identity: Storage's access
    stranger = b.access_policy(STRANGER, ["get", "unwrapKey", "decrypt"])
    own = b.access_policy(identity, b.KEY_PERMISSIONS_FOR_STORAGE)
    vault = b.key_vault(policies=[own, stranger])
    [record] = written(app, emulator, [vault, keyed(vault)], vault, POLICY_WRITE)
    assert (record.outcome, record.actions, record.severity) == ("contained", ["remove_key_vault_access_policy"],
                                                                 "critical")
    assert record.findings[0]["evidence"]["entries"] == [stranger]
    assert emulator.arm.get(vault["id"])["properties"]["accessPolicies"] == [own]
    [write] = app.writes()
    assert (write.method, write.url.split("?")[0].rsplit("/", 2)[1:]) == ("PUT", ["accessPolicies", "remove"])
    assert record.before[vault["id"]]["properties"]["accessPolicies"] == [own, stranger]  # recorded whole

    response = call_http(function_app.app, "POST", "release", {"resourceId": record.resource_id,
                                                               "decision": record.key}, ONCALL)
    body = json.loads(response.get_body())
    app.drain()
    assert emulator.arm.get(vault["id"])["properties"]["accessPolicies"] == [own]  # the app gives nothing back
    [step] = body["restore_by_person"]
    assert step["url"] == f"https://management.azure.com{vault['id']}/accessPolicies/add?api-version=2024-11-01"
    assert step["body"] == {"properties": {"accessPolicies": [stranger]}}
    from containment.adapters import arm
    arm.rest(owner, "PUT", step["url"].split("?")[0].removeprefix("https://management.azure.com"), "2024-11-01",
             step["body"])
    assert emulator.arm.get(vault["id"])["properties"]["accessPolicies"] == [own, stranger]


def test_purge_protection_off_waits_for_a_person_saying_it_is_irreversible(app, emulator):
    vault = b.key_vault(enablePurgeProtection=False, tags={"data-classification": "synthetic"})
    [record] = written(app, emulator, [vault], vault, CONTAINMENT_AUTO_CONTAIN="key_vault_purge_protection_off")
    assert (record.outcome, record.rules) == ("pending-approval", ["key_vault_purge_protection_off"])
    assert "irreversible" in record.reason
    assert app.writes() == [] and emulator.arm.get(vault["id"]) == vault


def test_a_short_soft_delete_retention_is_the_same_finding(app, emulator):
    vault = b.key_vault(softDeleteRetentionInDays=7, tags={"data-classification": "synthetic"})
    [record] = written(app, emulator, [vault], vault, CONTAINMENT_VAULT_MIN_SOFT_DELETE_DAYS="30")
    assert (record.outcome, record.rules) == ("reported", ["key_vault_purge_protection_off"])
    assert "kept 7 days, fewer than 30" in record.findings[0]["summary"]


def test_a_vault_holding_no_protected_key_and_untagged_is_ignored(app, emulator):
    vault = b.key_vault(networkAcls=OPEN, policies=[b.access_policy(STRANGER, ["all"])])
    [record] = written(app, emulator, [vault, b.storage_account("synthplain01")], vault)
    assert record.outcome == "ignored" and "holds no protected account's customer-managed key" in record.reason


def test_the_drift_sweep_judges_the_vaults_it_lists(app, emulator):
    import function_app
    from localazure.functions_host import fire_timer

    vault = b.key_vault(policies=[b.access_policy(STRANGER, ["unwrapKey"])])
    emulator.seed([vault, keyed(vault)])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    assert fire_timer(function_app.app, "drift_sweep").error is None
    app.drain()
    contained = [r for r in app.records() if r.outcome == "contained"]
    assert [(r.resource_id, r.actions) for r in contained] == [(vault["id"], ["remove_key_vault_access_policy"])]
    assert emulator.arm.get(vault["id"])["properties"]["accessPolicies"] == []


def test_in_a_tagged_vault_an_unprotected_accounts_encryption_identity_keeps_its_access(app, emulator):
    """Its data is outside scope: removing the entry Storage reaches its key through would lock
    it. A stranger's entry beside it is removed."""
    vault = b.key_vault(tags={"data-classification": "synthetic"})
    scratch = b.customer_keyed(b.storage_account("scratch01", tags={}), vault,
                               principal_id="6a1b2c3d-0000-4000-8000-0000000000d1")
    own = b.access_policy("6a1b2c3d-0000-4000-8000-0000000000d1", b.KEY_PERMISSIONS_FOR_STORAGE)
    stranger = b.access_policy(STRANGER, ["unwrapKey"])
    vault["properties"]["accessPolicies"] = [own, stranger]
    [record] = written(app, emulator, [vault, scratch], vault, POLICY_WRITE,
                       CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    assert (record.outcome, record.actions) == ("contained", ["remove_key_vault_access_policy"])
    assert record.findings[0]["evidence"]["entries"] == [stranger]
    assert emulator.arm.get(vault["id"])["properties"]["accessPolicies"] == [own]


def test_an_encryption_identity_holding_purge_too_is_reported_and_its_entry_stays(app, emulator):
    vault = b.key_vault()
    account = keyed(vault)
    own = b.access_policy(account["identity"]["principalId"], [*b.KEY_PERMISSIONS_FOR_STORAGE, "purge"])
    vault["properties"]["accessPolicies"] = [own]
    [record] = written(app, emulator, [vault, account], vault, POLICY_WRITE)
    assert (record.outcome, record.actions) == ("reported", []), record.reason
    assert "nothing to act from" in record.reason and app.writes() == []


def test_release_of_a_vault_that_had_no_network_rules_opens_it_as_it_was(app, emulator):
    import function_app
    from localazure.functions_host import call_http

    vault = b.key_vault()
    del vault["properties"]["networkAcls"]  # the firewall off: every network
    [record] = written(app, emulator, [vault, keyed(vault)], vault, CONTAINMENT_AUTO_CONTAIN="key_vault_network_open")
    assert record.outcome == "contained"
    response = call_http(function_app.app, "POST", "release", {"resourceId": record.resource_id,
                                                               "decision": record.key}, ONCALL)
    assert response.status_code == 202, response.get_body()
    app.drain()
    release = app.records()[-1]
    assert (release.operation, release.outcome) == ("release", "reported"), release.reason  # not failed NotVerified
    assert emulator.arm.get(vault["id"])["properties"]["networkAcls"] == {
        "defaultAction": "Allow", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []}


def test_a_retention_only_finding_is_recorded_not_held_for_a_write_that_changes_nothing(app, emulator):
    vault = b.key_vault(softDeleteRetentionInDays=7, tags={"data-classification": "synthetic"})
    [record] = written(app, emulator, [vault], vault, CONTAINMENT_AUTO_CONTAIN="key_vault_purge_protection_off")
    assert (record.outcome, record.actions) == ("reported", []), record.reason
    assert "the retention is fixed when a vault is created; purge protection is already on" in record.reason


def test_a_vault_list_that_fails_is_that_collections_failure_and_the_sweep_goes_on(app, emulator):
    import function_app
    from localazure.functions_host import fire_timer

    vault = b.key_vault(policies=[b.access_policy(STRANGER, ["unwrapKey"])])
    open_account = b.storage_account("synthopen01", allowBlobPublicAccess=True)
    emulator.seed([vault, keyed(vault), open_account])
    emulator.faults.add("status", path=r"/providers/Microsoft.KeyVault/vaults$", method="GET", status=500,
                        times=None)
    app.configure(CONTAINMENT_MODE="dry-run", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    assert fire_timer(function_app.app, "drift_sweep").error is None
    failed = [r for r in app.records() if r.outcome == "failed"]
    assert [r.resource_id for r in failed] == [f"/subscriptions/{b.SUBSCRIPTION}/providers/Microsoft.KeyVault/vaults"]
    assert any(r.operation == "drift_sweep" and r.resource_id != failed[0].resource_id and r.outcome != "failed"
               for r in app.records())  # the sweep went on: what it listed after the vaults is judged


def test_the_sweep_lists_the_accounts_once_for_every_vault_it_judges(app, emulator):
    import function_app
    from localazure.functions_host import fire_timer

    vaults = [b.key_vault(f"kv-synthetic-{n}") for n in range(3)]
    emulator.seed([*vaults, keyed(vaults[0])])
    app.configure(CONTAINMENT_MODE="dry-run", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION)
    emulator.clear_traffic()
    assert fire_timer(function_app.app, "drift_sweep").error is None
    listed = [r for r in emulator.traffic if r.method == "GET" and
              r.url.split("?")[0].lower().endswith("/providers/microsoft.storage/storageaccounts")]
    assert len(listed) == 1  # one listing per run: the inventory, the vaults and the policies all read it
