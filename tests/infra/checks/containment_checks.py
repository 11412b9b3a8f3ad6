"""The project's own checkov checks for infra/ (loaded with --external-checks-dir by
tests/infra/test_infra.py): what this app's deployment must never do, checked on the Bicep.

Each check fails a resource unless the safe value is stated explicitly: a default that
depends on the API version is not a guarantee.
"""
from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


def _properties(conf: dict[str, Any]) -> dict[str, Any]:
    properties = conf.get("properties")
    return properties if isinstance(properties, dict) else {}


class PropertyStated(BaseResourceCheck):
    """A resource's property must be stated, with the safe value."""

    def __init__(self, check_id: str, name: str, category: CheckCategories, resource: str, prop: str,
                 safe: Any) -> None:
        self.prop, self.safe = prop, safe
        super().__init__(name=name, id=check_id, categories=(category,), supported_resources=(resource,))

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        return CheckResult.PASSED if _properties(conf).get(self.prop) is self.safe else CheckResult.FAILED


_KEY_ACTIONS = ("microsoft.storage/storageaccounts/listkeys/action",
                "microsoft.storage/storageaccounts/listaccountsas/action",
                "microsoft.storage/storageaccounts/listservicesas/action")


class CustomRoleNoWildcardNoKeys(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(name="Custom roles list their actions: no wildcard, no data actions, nothing that reads "
                              "storage account keys or signs SAS (listKeys, ListAccountSas, ListServiceSas)",
                         id="CKV_SDC_4", categories=(CheckCategories.IAM,),
                         supported_resources=("Microsoft.Authorization/roleDefinitions",))

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        permissions = _properties(conf).get("permissions")
        if not isinstance(permissions, list) or not permissions:
            return CheckResult.FAILED
        for block in permissions:
            if not isinstance(block, dict):
                return CheckResult.FAILED
            actions = block.get("actions")
            if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
                return CheckResult.FAILED  # a list this check cannot read is not a list it can vouch for
            if any("*" in a or a.lower() in _KEY_ACTIONS for a in actions):
                return CheckResult.FAILED
            if block.get("dataActions"):
                return CheckResult.FAILED
        return CheckResult.PASSED


PropertyStated("CKV_SDC_1", "Storage accounts forbid anonymous (public) blob access: allowBlobPublicAccess is false",
               CheckCategories.GENERAL_SECURITY, "Microsoft.Storage/storageAccounts", "allowBlobPublicAccess", False)
PropertyStated("CKV_SDC_2", "Storage accounts accept Entra ID only: allowSharedKeyAccess is false",
               CheckCategories.IAM, "Microsoft.Storage/storageAccounts", "allowSharedKeyAccess", False)
PropertyStated("CKV_SDC_3", "Function apps are HTTPS only: httpsOnly is true",
               CheckCategories.NETWORKING, "Microsoft.Web/sites", "httpsOnly", True)
CustomRoleNoWildcardNoKeys()


class ImmutableRetention(BaseResourceCheck):
    """Evidence nobody can quietly change: a container's time-based retention policy states
    its period and allows no appends to the blobs it protects
    (https://learn.microsoft.com/azure/storage/blobs/immutable-time-based-retention-policy-overview)."""

    def __init__(self) -> None:
        super().__init__(name="Time-based retention policies state their period and forbid protected append writes",
                         id="CKV_SDC_6", categories=(CheckCategories.BACKUP_AND_RECOVERY,),
                         supported_resources=("Microsoft.Storage/storageAccounts/blobServices/containers/"
                                              "immutabilityPolicies",))

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        properties = _properties(conf)
        period = properties.get("immutabilityPeriodSinceCreationInDays")
        stated = isinstance(period, str) and bool(period) or isinstance(period, int) and period > 0
        appends = properties.get("allowProtectedAppendWrites") is False
        return CheckResult.PASSED if stated and appends else CheckResult.FAILED


ImmutableRetention()

