"""The emulator's Key Vault: vaults, access policies and keys through ARM, over HTTPS on the
SDK pipeline (containment.adapters.arm.rest), with the resource provider's refusals
(localazure/key_vault.py names each source)."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from containment.adapters import arm
from containment.adapters.arm import ResourceGone
from tests.helpers import arm_bodies as b

VERSION = "2024-11-01"
READER = "1d2e3f40-0000-4000-8000-00000000aa01"
STRANGER = "1d2e3f40-0000-4000-8000-00000000bad0"


def _call(owner, method, path, body=None):
    return arm.rest(owner, method, path, VERSION, body)


def _refusal(owner, method, path, body) -> tuple[int, str]:
    with pytest.raises(HttpResponseError) as refused:
        _call(owner, method, path, body)
    return refused.value.status_code, refused.value.error.code


def test_vaults_read_and_list_by_subscription_and_group(emulator, owner):
    vault = b.key_vault()
    other = b.key_vault("kv-elsewhere", group="rg-other")
    emulator.seed([vault, other, b.vault_key(vault)])
    assert _call(owner, "GET", vault["id"]) == vault
    names = lambda path: sorted(v["name"] for v in arm.list_at(owner, path, VERSION))  # noqa: E731
    assert names(f"/subscriptions/{b.SUBSCRIPTION}/providers/Microsoft.KeyVault/vaults") == ["kv-elsewhere",
                                                                                            "kv-synthetic-keys"]
    assert names(f"{b.RG_ID}/providers/Microsoft.KeyVault/vaults") == ["kv-synthetic-keys"]
    with pytest.raises(ResourceGone):
        _call(owner, "GET", vault["id"].replace("kv-synthetic-keys", "kv-nowhere"))


def test_keys_are_read_through_arm_with_their_enabled_attribute(emulator, owner):
    vault = b.key_vault()
    emulator.seed([vault, b.vault_key(vault, "cmk-on"), b.vault_key(vault, "cmk-off", enabled=False)])
    assert _call(owner, "GET", f"{vault['id']}/keys/cmk-off")["properties"]["attributes"]["enabled"] is False
    listed = arm.list_at(owner, f"{vault['id']}/keys", VERSION)
    assert {k["name"]: k["properties"]["attributes"]["enabled"] for k in listed} == {"cmk-on": True, "cmk-off": False}
    with pytest.raises(ResourceGone):
        _call(owner, "GET", f"{vault['id']}/keys/cmk-gone")


def test_put_creates_a_vault_with_the_spec_defaults_and_patch_replaces_what_it_names(emulator, owner):
    path = f"{b.RG_ID}/providers/Microsoft.KeyVault/vaults/kv-new"
    made = _call(owner, "PUT", path, {"location": "westeurope", "properties": {
        "tenantId": b.TENANT, "sku": {"family": "A", "name": "standard"}}})
    assert made["properties"]["vaultUri"] == "https://kv-new.vault.azure.net"
    assert (made["properties"]["enableSoftDelete"], made["properties"]["softDeleteRetentionInDays"]) == (True, 90)
    assert "enablePurgeProtection" not in made["properties"]
    acls = {"bypass": "AzureServices", "defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}
    patched = _call(owner, "PATCH", path, {"properties": {"networkAcls": acls, "enablePurgeProtection": True}})
    assert patched["properties"]["networkAcls"] == acls and patched["properties"]["enablePurgeProtection"] is True
    assert _call(owner, "GET", path)["properties"]["sku"] == {"family": "A", "name": "standard"}


def test_refusals(emulator, owner):
    vault = b.key_vault(softDeleteRetentionInDays=30)
    emulator.seed([vault])
    # Purge protection cannot be switched off (Azure/azure-rest-api-specs#18106).
    assert _refusal(owner, "PATCH", vault["id"], {"properties": {"enablePurgeProtection": False}}) == (400, "BadRequest")
    # The retention accepts 7-90 days, and is fixed once the vault exists.
    for days in (6, 91, 60):
        assert _refusal(owner, "PATCH", vault["id"], {"properties": {"softDeleteRetentionInDays": days}})[0] == 400
    # A PUT needs location, properties.tenantId and properties.sku (read from the spec subset).
    fresh = f"{b.RG_ID}/providers/Microsoft.KeyVault/vaults/kv-bad"
    assert _refusal(owner, "PUT", fresh, {"location": "westeurope", "properties": {"tenantId": b.TENANT}})[0] == 400
    # An access policy entry needs tenantId, objectId and permissions, in the vault's tenant.
    policies = f"{vault['id']}/accessPolicies/add"
    for entry in ({"tenantId": b.TENANT, "objectId": READER},
                  b.access_policy(READER, ["get"], tenant="00000000-0000-0000-0000-0000000000aa")):
        assert _refusal(owner, "PUT", policies, {"properties": {"accessPolicies": [entry]}})[0] == 400
    assert _call(owner, "GET", vault["id"])["properties"] == vault["properties"]  # nothing refused was applied


def test_access_policies_add_replace_and_remove(emulator, owner):
    vault = b.key_vault(policies=[b.access_policy(READER, ["get", "unwrapKey", "wrapKey"])])
    emulator.seed([vault])
    base = f"{vault['id']}/accessPolicies"
    answer = _call(owner, "PUT", f"{base}/add", {"properties": {"accessPolicies": [
        b.access_policy(STRANGER, ["unwrapKey"]), b.access_policy(READER, ["decrypt"])]}})
    assert answer["id"] == f"{vault['id']}/accessPolicies/" and answer["type"] == "Microsoft.KeyVault/vaults/accessPolicies"
    held = lambda: {p["objectId"]: p["permissions"]["keys"]  # noqa: E731
                    for p in _call(owner, "GET", vault["id"])["properties"]["accessPolicies"]}
    assert held() == {READER: ["get", "unwrapKey", "wrapKey", "decrypt"], STRANGER: ["unwrapKey"]}
    _call(owner, "PUT", f"{base}/replace", {"properties": {"accessPolicies": [b.access_policy(READER, ["get"])]}})
    assert held()[READER] == ["get"]
    _call(owner, "PUT", f"{base}/remove", {"properties": {"accessPolicies": [b.access_policy(STRANGER, ["unwrapKey"])]}})
    assert held() == {READER: ["get"]}
