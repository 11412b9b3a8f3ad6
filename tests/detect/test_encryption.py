"""Encryption posture of protected accounts and Key Vault data roles over the vaults that hold
their keys, end to end through the function entry points, against the ARM emulator's Key
Vault and Azurite."""
from __future__ import annotations

from tests.helpers import arm_bodies as b
from tests.helpers.events import ACCOUNT_WRITE, write_event

VAULT = b.key_vault()
ACCOUNT = b.customer_keyed(b.storage_account(), VAULT)
KEY = b.vault_key(VAULT)
ROLE_WRITE = "Microsoft.Authorization/roleAssignments/write"
STRANGER = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
PIPELINE = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
ENCRYPTION_RULES = {"storage_customer_key_unavailable", "storage_customer_key_outside_watch",
                    "storage_encryption_not_customer_managed", "storage_infrastructure_encryption_off"}


def account_write(app, emulator, *resources, **settings) -> list:
    emulator.seed(list(resources))
    app.configure(**{"CONTAINMENT_MODE": "enforce", "CONTAINMENT_SUBSCRIPTIONS": b.SUBSCRIPTION, **settings})
    app.deliver(write_event(resources[0]["id"], ACCOUNT_WRITE))
    app.drain()
    return app.records()


def vault_traffic(emulator) -> list[str]:
    return [request.url.split("?")[0].split("/providers/", 1)[-1] for request in emulator.traffic
            if "microsoft.keyvault" in request.url.lower()]


def test_a_disabled_customer_key_is_a_critical_availability_exposure_recorded_with_the_key(app, emulator):
    disabled = b.vault_key(VAULT, enabled=False)
    [record] = account_write(app, emulator, ACCOUNT, VAULT, disabled)
    assert (record.outcome, record.rules, record.severity) == ("reported", ["storage_customer_key_unavailable"],
                                                                "critical")
    [finding] = record.findings
    assert "weakness" not in finding  # an exposure: it starts the incident's Article 33 clock
    assert finding["evidence"]["state"] == "disabled" and finding["evidence"]["key"] == disabled["id"]
    assert finding["evidence"]["vault"] == VAULT["id"]
    # The evidence keeps the vault and the key as read, beside the account.
    assert record.before[disabled["id"]]["properties"]["attributes"]["enabled"] is False
    assert record.before[VAULT["id"]]["properties"]["vaultUri"] == VAULT["properties"]["vaultUri"]
    assert app.writes() == []  # recorded only: making the key usable again is a person's decision


def test_an_enabled_customer_key_is_compliant_for_one_vault_list_and_one_key_read(app, emulator):
    [record] = account_write(app, emulator, ACCOUNT, VAULT, KEY)
    assert record.outcome == "compliant"
    assert set(record.before) == {ACCOUNT["id"]}  # nothing but the account where the key is fine
    assert vault_traffic(emulator) == ["Microsoft.KeyVault/vaults", "Microsoft.KeyVault/vaults/kv-synthetic-keys/keys/"
                                                                    "cmk-synthtrain01"]


def test_a_deleted_customer_key_is_unavailable(app, emulator):
    [record] = account_write(app, emulator, ACCOUNT, VAULT)  # the vault, without the key: ARM answers 404
    assert record.rules == ["storage_customer_key_unavailable"]
    assert record.findings[0]["evidence"]["state"] == "deleted" and "404" in record.findings[0]["evidence"]["why"]


def test_a_key_in_a_vault_outside_the_watched_subscriptions_is_a_weakness(app, emulator):
    elsewhere = b.key_vault(subscription=b.OTHER_SUBSCRIPTION)
    [record] = account_write(app, emulator, ACCOUNT, elsewhere, b.vault_key(elsewhere))
    assert (record.outcome, record.rules) == ("reported", ["storage_customer_key_outside_watch"])
    finding = record.findings[0]
    assert finding["weakness"] is True and finding["evidence"]["vault"] is None
    assert "no vault in the watched subscriptions" in finding["summary"]


def test_a_vault_named_without_a_key_is_not_read_as_a_deleted_key(app, emulator):
    nameless = b.customer_keyed(b.storage_account(), VAULT, key="")
    [record] = account_write(app, emulator, nameless, VAULT, KEY)
    assert record.rules == ["storage_customer_key_outside_watch"]
    assert "names no key" in record.findings[0]["evidence"]["why"]
    assert not any("/keys/" in path for path in vault_traffic(emulator))


def test_microsoft_managed_keys_cost_no_vault_call_and_are_a_finding_only_where_customer_keys_are_required(
        app, emulator):
    managed = b.storage_account(encryption={"keySource": "Microsoft.Storage", "requireInfrastructureEncryption": False})
    [record] = account_write(app, emulator, managed)
    assert record.outcome == "compliant" and vault_traffic(emulator) == []
    app.configure(CONTAINMENT_REQUIRE_CUSTOMER_KEYS="true", CONTAINMENT_REQUIRE_INFRASTRUCTURE_ENCRYPTION="true")
    app.deliver(write_event(managed["id"], ACCOUNT_WRITE, event_id="second-write"))
    record = app.records()[-1]
    assert record.outcome == "reported" and set(record.rules) == {"storage_encryption_not_customer_managed",
                                                                   "storage_infrastructure_encryption_off"}
    assert all(finding["weakness"] for finding in record.findings)


# -- Key Vault data roles over the vault that holds a protected account's key ------------------

def grant(scope: str, principal: str = STRANGER, role: str = CRYPTO_USER) -> dict:
    return b.role_assignment(scope, principal, role, name="a1b2c3d4-0000-4000-8000-0000000000c7")


def role_write(app, emulator, assignment: dict, *others: dict, **settings) -> list:
    emulator.seed([*others, assignment])
    app.configure(CONTAINMENT_MODE="enforce", CONTAINMENT_SUBSCRIPTIONS=b.SUBSCRIPTION, **settings)
    app.deliver(write_event(assignment["id"], ROLE_WRITE))
    app.drain()
    return app.records()


def test_a_crypto_role_on_the_vault_holding_a_protected_key_given_to_a_stranger_is_deleted(app, emulator):
    assignment = grant(VAULT["id"])
    [record] = role_write(app, emulator, assignment, ACCOUNT, VAULT, KEY)
    assert (record.outcome, record.actions) == ("contained", ["delete_role_assignment"])
    evidence = record.findings[0]["evidence"]
    assert evidence["roleName"] == "Key Vault Crypto User" and evidence["covers"] == [VAULT["id"]]
    assert "dataActions grant Microsoft.KeyVault/vaults/keys/unwrap/action" in evidence["data_paths"]
    assert not any("Microsoft.Storage" in path for path in evidence["data_paths"])
    assert emulator.arm.get(assignment["id"]) is None


def test_the_same_role_given_to_the_allowlisted_pipeline_is_compliant(app, emulator):
    [record] = role_write(app, emulator, grant(VAULT["id"], PIPELINE), ACCOUNT, VAULT, KEY,
                          CONTAINMENT_ALLOWED_PRINCIPALS=PIPELINE)
    assert record.outcome == "compliant" and "CONTAINMENT_ALLOWED_PRINCIPALS" in record.reason


def test_the_encryption_role_for_the_protected_accounts_own_identity_is_how_storage_reaches_its_key(app, emulator):
    identity = ACCOUNT["identity"]["principalId"]
    [record] = role_write(app, emulator, grant(VAULT["id"], identity, CRYPTO_SERVICE_ENCRYPTION_USER),
                          ACCOUNT, VAULT, KEY)
    assert record.outcome == "compliant" and f"encryption identity of {ACCOUNT['id']}" in record.reason
    # The same identity with a blob role over a protected account is judged as anyone's.
    blob = b.role_assignment(b.RG_ID, identity, b.STORAGE_BLOB_DATA_READER, name="a1b2c3d4-0000-4000-8000-0000000000c9")
    emulator.seed([blob])
    app.deliver(write_event(blob["id"], ROLE_WRITE))
    app.drain()
    assert app.records()[-1].outcome == "contained"


def test_a_crypto_role_on_a_vault_that_holds_no_protected_key_is_ignored(app, emulator):
    other = b.key_vault("kv-build-secrets")
    [record] = role_write(app, emulator, grant(other["id"]), ACCOUNT, VAULT, other)
    assert record.outcome == "ignored" and "covers no protected resource" in record.reason


def test_a_tagged_vault_is_in_scope_whatever_it_holds_for_one_account_list_before_the_finding(app, emulator):
    tagged = b.key_vault("kv-tagged", tags={"data-classification": "synthetic"})
    [record] = role_write(app, emulator, grant(tagged["id"], role=CRYPTO_SERVICE_ENCRYPTION_USER), tagged)
    assert record.outcome == "contained"
    # Tagged, the vault needs no account to be in scope; the accounts are listed once, to know
    # whether the principal is a keyed account's own identity (it is not).
    assert [r.url.split("?")[0].rsplit("/providers/", 1)[1] for r in emulator.traffic
            if "storageaccounts" in r.url.lower() and r.method == "GET"] == ["Microsoft.Storage/storageAccounts"]


def test_a_crypto_role_on_the_resource_group_covers_the_keyed_vault_and_a_blob_role_lists_no_vault(app, emulator):
    [record] = role_write(app, emulator, grant(b.RG_ID), ACCOUNT, VAULT, KEY)
    assert record.outcome == "contained" and VAULT["id"] in record.findings[0]["evidence"]["covers"]
    app.configure(CONTAINMENT_MODE="dry-run")
    emulator.clear_traffic()
    reader = b.role_assignment(b.RG_ID, STRANGER, b.STORAGE_BLOB_DATA_READER, name="a1b2c3d4-0000-4000-8000-0000000000c8")
    emulator.seed([reader])
    app.deliver(write_event(reader["id"], ROLE_WRITE))
    assert app.records()[-1].outcome == "would-contain" and vault_traffic(emulator) == []


def test_a_crypto_role_on_a_storage_account_reaches_no_blob(app, emulator):
    [record] = role_write(app, emulator, grant(ACCOUNT["id"]), ACCOUNT, VAULT, KEY)
    assert record.outcome == "compliant" and record.reason == "Key Vault Crypto User has no path to blob data"


def test_the_built_in_key_vault_roles_reach_keys_and_no_blob(emulator):
    from containment.judge.role_permissions import blob_paths, key_paths

    roles = {role["properties"]["roleName"]: role for role in emulator.arm.builtin_roles.values()}
    for name in ("Key Vault Administrator", "Key Vault Crypto Officer", "Key Vault Crypto User",
                 "Key Vault Crypto Service Encryption User"):
        assert blob_paths(roles[name]) == [] and any("unwrap" in path for path in key_paths(roles[name])), name
    # read and wrap alone reach nothing (containment.judge.customer_keys.KEY_ACCESS); Key Vault
    # Reader's */read is no finding at all.
    assert key_paths(roles["Key Vault Crypto Service Encryption User"]) == [
        "dataActions grant Microsoft.KeyVault/vaults/keys/unwrap/action"]
    # Key Vault Reader's dataActions, as Microsoft lists them
    # (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/security#key-vault-reader):
    # its */read reaches key metadata only, no finding at all.
    reader = {"properties": {"roleName": "Key Vault Reader", "permissions": [{"actions": [], "dataActions": [
        "Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]}]}}
    assert key_paths(reader) == []
    assert key_paths(roles["Owner"]) == [] and key_paths(roles["Storage Blob Data Owner"]) == []


def test_the_calls_conform_to_the_specs(app, emulator, shared, tmp_path):
    """The account's vault and key reads, and the vault role path, as oav checks them; listing
    storage accounts by subscription (which protected accounts a vault's keys encrypt) is not in
    ../shared's storage spec subset: the one call oav can only call undefined."""
    import json

    from localazure.conformance import validate_traffic

    account_write(app, emulator, ACCOUNT, VAULT, b.vault_key(VAULT, enabled=False))
    role_write(app, emulator, grant(VAULT["id"]))
    assert [r.outcome for r in app.records()] == ["reported", "contained"]
    emulator.write_traffic(tmp_path)
    report = validate_traffic(tmp_path)
    assert report.findings == [], str(report)
    assert {"Vaults_Get", "Vaults_ListBySubscription", "Keys_Get"} <= report.operations_covered
    undefined = {json.loads((tmp_path / name).read_text())["liveRequest"]["url"].split("?")[0]
                 for name in report.undefined}
    assert undefined == {f"{emulator.endpoint}/subscriptions/{b.SUBSCRIPTION}/providers/Microsoft.Storage/"
                         "storageAccounts"}


def test_a_vault_list_that_fails_in_one_subscription_leaves_the_key_unchecked_and_the_other_rules_judged(
        app, emulator):
    emulator.faults.add("status", path=f"/subscriptions/{b.OTHER_SUBSCRIPTION}/providers/Microsoft.KeyVault/vaults$",
                        status=500, times=None)
    [record] = account_write(app, emulator, ACCOUNT, VAULT, KEY,
                             CONTAINMENT_SUBSCRIPTIONS=f"{b.SUBSCRIPTION},{b.OTHER_SUBSCRIPTION}")
    assert record.outcome == "compliant", record.reason  # its vault is listed in the other subscription
    elsewhere = b.key_vault("kv-elsewhere")  # a URI no listed vault has
    moved = b.customer_keyed(b.storage_account("synthtrain02", allowSharedKeyAccess=True), elsewhere)
    emulator.seed([moved])
    app.deliver(write_event(moved["id"], ACCOUNT_WRITE, event_id="moved"))
    app.drain()
    record = app.records()[-1]
    assert "storage_customer_key_outside_watch" in record.rules and len(record.rules) > 1, record.rules
    why = next(f for f in record.findings if f["rule"] == "storage_customer_key_outside_watch")["evidence"]["why"]
    assert b.OTHER_SUBSCRIPTION in why and "could not be listed" in why and "Error" in why


def test_an_encryption_identity_needs_the_key_in_every_vault_its_role_covers(app, emulator):
    identity = ACCOUNT["identity"]["principalId"]
    other = b.key_vault("kv-build-keys", tags={"data-classification": "synthetic"})  # holds no key of the account
    [record] = role_write(app, emulator, grant(b.RG_ID, identity, CRYPTO_SERVICE_ENCRYPTION_USER),
                          ACCOUNT, VAULT, KEY, other)
    assert record.outcome == "contained" and set(record.findings[0]["evidence"]["covers"]) >= {VAULT["id"], other["id"]}


def test_an_encryption_identity_granted_more_than_storage_needs_is_reported_never_removed(app, emulator):
    identity = ACCOUNT["identity"]["principalId"]
    assignment = grant(VAULT["id"], identity, CRYPTO_USER)  # decrypt and backup besides unwrap
    [record] = role_write(app, emulator, assignment, ACCOUNT, VAULT, KEY)
    assert (record.outcome, record.actions) == ("reported", []), record.reason
    assert record.findings[0]["evidence"]["encryption_identity_of"] == ACCOUNT["id"]
    assert "locks that account's data" in record.reason
    assert emulator.arm.get(assignment["id"]) is not None
