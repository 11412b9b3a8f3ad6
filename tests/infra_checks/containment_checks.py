"""The project's own checkov checks for infra/ (loaded with --external-checks-dir by
tests/test_infra.py): what this app's deployment must never do, checked on the Bicep.

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


class StorageNoPublicBlobAccess(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(name="Storage accounts forbid anonymous (public) blob access: allowBlobPublicAccess is false",
                         id="CKV_SDC_1", categories=(CheckCategories.GENERAL_SECURITY,),
                         supported_resources=("Microsoft.Storage/storageAccounts",))

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        return CheckResult.PASSED if _properties(conf).get("allowBlobPublicAccess") is False else CheckResult.FAILED


class StorageNoSharedKey(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(name="Storage accounts accept Entra ID only: allowSharedKeyAccess is false",
                         id="CKV_SDC_2", categories=(CheckCategories.IAM,),
                         supported_resources=("Microsoft.Storage/storageAccounts",))

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        return CheckResult.PASSED if _properties(conf).get("allowSharedKeyAccess") is False else CheckResult.FAILED


class FunctionAppHttpsOnly(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(name="Function apps are HTTPS only: httpsOnly is true",
                         id="CKV_SDC_3", categories=(CheckCategories.NETWORKING,),
                         supported_resources=("Microsoft.Web/sites",))

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        return CheckResult.PASSED if _properties(conf).get("httpsOnly") is True else CheckResult.FAILED


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


StorageNoPublicBlobAccess()
StorageNoSharedKey()
FunctionAppHttpsOnly()
CustomRoleNoWildcardNoKeys()
