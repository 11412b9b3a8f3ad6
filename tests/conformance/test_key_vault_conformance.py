"""The emulator's Key Vault traffic conforms to the keyvault 2024-11-01 spec subset
(localazure/specs), as oav checks it; and the check catches a body that does not."""
from __future__ import annotations

from containment.adapters import arm
from localazure.conformance import validate_traffic
from tests.helpers import arm_bodies as b

VERSION = "2024-11-01"
VAULT = b.key_vault(policies=[b.access_policy("1d2e3f40-0000-4000-8000-00000000aa01", ["get", "unwrapKey"])])


def test_every_key_vault_operation_the_emulator_serves_conforms(emulator, owner, shared, tmp_path):
    emulator.seed([VAULT, b.vault_key(VAULT)])
    arm.rest(owner, "GET", VAULT["id"], VERSION)
    arm.list_at(owner, f"/subscriptions/{b.SUBSCRIPTION}/providers/Microsoft.KeyVault/vaults", VERSION)
    arm.list_at(owner, f"{b.RG_ID}/providers/Microsoft.KeyVault/vaults", VERSION)
    arm.rest(owner, "PATCH", VAULT["id"], VERSION, {"properties": {"networkAcls": {
        "bypass": "AzureServices", "defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}}})
    arm.rest(owner, "PUT", f"{b.RG_ID}/providers/Microsoft.KeyVault/vaults/kv-made", VERSION, {
        "location": "westeurope", "properties": {"tenantId": b.TENANT, "sku": {"family": "A", "name": "standard"},
                                                 "enablePurgeProtection": True}})
    arm.rest(owner, "PUT", f"{VAULT['id']}/accessPolicies/remove", VERSION, {"properties": {"accessPolicies": [
        b.access_policy("1d2e3f40-0000-4000-8000-00000000aa01", ["unwrapKey"])]}})
    arm.rest(owner, "GET", f"{VAULT['id']}/keys/cmk-synthtrain01", VERSION)
    arm.list_at(owner, f"{VAULT['id']}/keys", VERSION)
    assert emulator.write_traffic(tmp_path) > 0
    report = validate_traffic(tmp_path)
    assert report.ok, str(report)
    assert {"Vaults_Get", "Vaults_ListBySubscription", "Vaults_ListByResourceGroup", "Vaults_Update",
            "Vaults_CreateOrUpdate", "Vaults_UpdateAccessPolicy", "Keys_Get", "Keys_List"} <= report.operations_covered


def test_the_check_has_teeth_for_the_key_vault_subset(emulator, owner, shared, tmp_path):
    wrong = b.key_vault(enablePurgeProtection="yes")  # a string where the spec says boolean
    emulator.seed([wrong])
    arm.rest(owner, "GET", wrong["id"], VERSION)
    emulator.write_traffic(tmp_path)
    report = validate_traffic(tmp_path)
    assert not report.ok and not report.undefined
    assert any("enablePurgeProtection" in (f.path or "") + f.message for f in report.findings), str(report)
