"""Small ARM resource bodies, in the shape a GET returns them, for tests to seed."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-111122223333"
OTHER_SUBSCRIPTION = "9f2c3a10-5b6d-4e7f-8a9b-444455556666"
RG = "rg-synthetic"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG}"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
# Keys rotated yesterday (real time): within any key age limit a test's clock sets.
KEYS_ROTATED = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def storage_account(name: str = "synthtrain01", *, tags: dict | None = None, subscription: str = SUBSCRIPTION,
                    group: str = RG, **properties) -> dict:
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}",
        "name": name,
        "type": "Microsoft.Storage/storageAccounts",
        "location": "westeurope",
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS", "tier": "Standard"},
        "tags": {"data-classification": "synthetic"} if tags is None else tags,
        "properties": {
            "provisioningState": "Succeeded",
            # allowBlobPublicAccess absent, as accounts made with older API versions return it:
            # its containers' own levels decide (containment.judge.storage).
            "allowSharedKeyAccess": False,
            "allowCrossTenantReplication": False,
            "minimumTlsVersion": "TLS1_2",
            "publicNetworkAccess": "Enabled",
            "supportsHttpsTrafficOnly": True,
            "networkAcls": {"bypass": "AzureServices", "defaultAction": "Deny", "ipRules": [],
                            "virtualNetworkRules": []},
            # Key and SAS posture as the posture rules want it (containment.judge.storage).
            "keyCreationTime": {"key1": KEYS_ROTATED, "key2": KEYS_ROTATED},
            "sasPolicy": {"sasExpirationPeriod": "0.01:00:00", "expirationAction": "Block"},
            "keyPolicy": {"keyExpirationPeriodInDays": 60},
            **properties,
        },
    }


def container(account_id: str, name: str = "training", public_access: str = "None") -> dict:
    return {
        "id": f"{account_id}/blobServices/default/containers/{name}",
        "name": name,
        "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
        "etag": '"0x8DCAFE0000000001"',
        "properties": {"publicAccess": public_access, "hasImmutabilityPolicy": False, "hasLegalHold": False},
    }


def security_rule(name: str, priority: int, *, source: str = "10.20.0.0/16", access: str = "Allow",
                  direction: str = "Inbound", port: str = "443") -> dict:
    return {
        "name": name,
        "properties": {
            "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": port,
            "sourceAddressPrefix": source, "destinationAddressPrefix": "*",
            "access": access, "priority": priority, "direction": direction,
        },
    }


def nsg(name: str = "nsg-synthetic-data", rules: list[dict] = (), *, tags: dict | None = None,
        group: str = RG) -> dict:
    nsg_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/networkSecurityGroups/{name}"
    return {
        "id": nsg_id,
        "name": name,
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": "westeurope",
        "etag": 'W/"00000000-0000-0000-0000-000000000001"',
        "tags": {"data-classification": "synthetic"} if tags is None else tags,
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": "5f0c6a7e-3f4a-4b0e-9d0a-6c1c2f3e4d5a",
            "securityRules": [
                {**rule, "id": f"{nsg_id}/securityRules/{rule['name']}",
                 "type": "Microsoft.Network/networkSecurityGroups/securityRules",
                 "etag": 'W/"00000000-0000-0000-0000-000000000001"',
                 "properties": {**rule["properties"], "provisioningState": "Succeeded"}}
                for rule in rules
            ],
        },
    }


def role_assignment(scope: str, principal_id: str, role_guid: str, *, name: str,
                    principal_type: str = "ServicePrincipal") -> dict:
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
            "principalId": principal_id,
            "principalType": principal_type,
            "scope": scope,
            "createdOn": "2026-11-20T09:00:00.0000000Z",
            "updatedOn": "2026-11-20T09:00:00.0000000Z",
            "createdBy": "3c1a2b4d-0000-4000-8000-000000000042",
            "updatedBy": "3c1a2b4d-0000-4000-8000-000000000042",
        },
    }


STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def replication_policy(source: dict, destination: str, policy_id: str = "2a20bb73-5717-4635-985a-5d4cf777438f",
                       *, on: dict | None = None, containers: tuple[str, str] = ("training", "replica")) -> dict:
    """An object replication policy as a GET on the account `on` (default: the source) returns
    it: the shape of the storage spec's StorageAccountCreateObjectReplicationPolicyOnSource example."""
    holder = on or source
    return {
        "id": f"{holder['id']}/objectReplicationPolicies/{policy_id}",
        "name": policy_id,
        "type": "Microsoft.Storage/storageAccounts/objectReplicationPolicies",
        "properties": {
            "policyId": policy_id,
            "enabledTime": "2026-11-20T09:00:00.0000000Z",
            "sourceAccount": source["id"],
            "destinationAccount": destination,
            "rules": [{"ruleId": "d5d18a48-8801-4554-aeaa-74faf65f5ef9", "sourceContainer": containers[0],
                       "destinationContainer": containers[1], "filters": {"prefixMatch": ["train/"]}}],
        },
    }


WORKSPACE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-monitoring/providers/Microsoft.OperationalInsights/workspaces/log-containment"
OTHER_WORKSPACE = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-scratch/providers/Microsoft.OperationalInsights/workspaces/log-elsewhere"
# A built-in policy definition: "Storage accounts should prevent shared key access".
POLICY_DEFINITION = "/providers/Microsoft.Authorization/policyDefinitions/8c6a50c6-9ffd-4ae7-986f-5fa6111f9a54"


def diagnostic_setting(account_id: str, name: str = "synthetic-data-containment", *, workspace: str = WORKSPACE,
                       categories: tuple[str, ...] = ("StorageRead", "StorageWrite", "StorageDelete")) -> dict:
    """A blob service's diagnostic setting as DiagnosticSettings_Get returns it (the shape
    infra/app/storage-logs.bicep deploys)."""
    return {
        "id": f"{account_id}/blobServices/default/providers/Microsoft.Insights/diagnosticSettings/{name}",
        "name": name,
        "type": "Microsoft.Insights/diagnosticSettings",
        "properties": {"workspaceId": workspace,
                       "logs": [{"category": category, "enabled": True} for category in categories]},
    }


def policy_assignment(scope: str, name: str = "deny-shared-key", *, enforcement: str = "Default",
                      identity: bool = False) -> dict:
    body = {
        "id": f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/policyAssignments",
        "properties": {"displayName": "Storage accounts should prevent shared key access",
                       "policyDefinitionId": POLICY_DEFINITION, "scope": scope, "enforcementMode": enforcement,
                       "instanceId": "e4b0f5a1-7b6c-4d2e-9f3a-1c2b3d4e5f60", "parameters": {}},
    }
    if identity:
        body["location"] = "westeurope"
        body["identity"] = {"type": "SystemAssigned", "principalId": "4d3c2b1a-0f9e-4d8c-8b7a-6f5e4d3c2b1a",
                            "tenantId": TENANT}
    return body


def policy_exemption(scope: str, assignment_id: str, name: str = "waive-shared-key", *,
                     expires_on: str | None = None) -> dict:
    properties = {"policyAssignmentId": assignment_id, "exemptionCategory": "Waiver",
                  "displayName": "legacy loader needs shared keys"}
    if expires_on:
        properties["expiresOn"] = expires_on
    return {"id": f"{scope}/providers/Microsoft.Authorization/policyExemptions/{name}", "name": name,
            "type": "Microsoft.Authorization/policyExemptions", "properties": properties}


KEY_PERMISSIONS_FOR_STORAGE = ["get", "wrapKey", "unwrapKey"]  # what Storage needs of its CMK (customer-managed keys docs)


def access_policy(object_id: str, keys: list[str], *, tenant: str = TENANT) -> dict:
    return {"tenantId": tenant, "objectId": object_id, "permissions": {"keys": list(keys), "secrets": [],
                                                                      "certificates": []}}


def key_vault(name: str = "kv-synthetic-keys", *, tags: dict | None = None, group: str = RG,
              subscription: str = SUBSCRIPTION, policies: list[dict] = (), **properties) -> dict:
    """A vault as Vaults_Get returns it (the keyvault spec's getVault.json example), private and
    purge-protected unless the test says otherwise."""
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.KeyVault/vaults/{name}",
        "name": name,
        "type": "Microsoft.KeyVault/vaults",
        "location": "westeurope",
        "tags": {} if tags is None else tags,
        "properties": {
            "sku": {"family": "A", "name": "standard"},
            "tenantId": TENANT,
            "accessPolicies": list(policies),
            "vaultUri": f"https://{name}.vault.azure.net",
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": 90,
            "enablePurgeProtection": True,
            "enableRbacAuthorization": False,
            "publicNetworkAccess": "Enabled",
            "networkAcls": {"bypass": "AzureServices", "defaultAction": "Deny", "ipRules": [],
                            "virtualNetworkRules": []},
            "provisioningState": "Succeeded",
            **properties,
        },
    }


def vault_key(vault: dict, name: str = "cmk-synthtrain01", *, enabled: bool = True) -> dict:
    """A key as Keys_Get returns it through ARM (the keyvault spec's getKey.json example)."""
    return {
        "id": f"{vault['id']}/keys/{name}",
        "name": name,
        "type": "Microsoft.KeyVault/vaults/keys",
        "location": vault["location"],
        "properties": {
            "attributes": {"enabled": enabled, "created": 1763629200, "updated": 1763629200,
                           "recoveryLevel": "Recoverable"},
            "kty": "RSA", "keyOps": ["encrypt", "decrypt", "wrapKey", "unwrapKey"], "keySize": 2048,
            "keyUri": f"{vault['properties']['vaultUri']}/keys/{name}",
            "keyUriWithVersion": f"{vault['properties']['vaultUri']}/keys/{name}/0123456789abcdef0123456789abcdef",
        },
    }


def customer_keyed(account: dict, vault: dict, key: str = "cmk-synthtrain01", *,
                   principal_id: str = "6a1b2c3d-0000-4000-8000-0000000000c1") -> dict:
    """The account encrypted with a key of the vault, through its system-assigned identity
    (storage spec 2026-09-01 `Encryption.keyvaultproperties`; the identity as ARM returns it)."""
    account = {**account, "identity": {"type": "SystemAssigned", "principalId": principal_id, "tenantId": TENANT}}
    account["properties"] = {**account["properties"], "encryption": {
        "keySource": "Microsoft.Keyvault", "requireInfrastructureEncryption": False,
        "keyvaultproperties": {"keyvaulturi": vault["properties"]["vaultUri"] + "/", "keyname": key, "keyversion": ""},
        "services": {"blob": {"enabled": True, "keyType": "Account"}, "file": {"enabled": True, "keyType": "Account"}}}}
    return account
