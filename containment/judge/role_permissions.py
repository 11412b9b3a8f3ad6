"""What a role definition lets its holder do to protected blob data, and to the vault keys that
encrypt it. Pure.

Azure RBAC matches operation strings case-insensitively, with `*` matching any run of
characters (including '/'); a permission grants an operation when one of its `actions`
(`dataActions`) matches and none of its `notActions` (`notDataActions`) does, and a role
grants what any of its permission blocks grants.
"""
from __future__ import annotations

import re
from functools import lru_cache

from containment.core.ids import KEY_VAULT, STORAGE_ACCOUNT, MalformedResourceId, parse_resource_id
from containment.judge.customer_keys import KEY_ACCESS, STORAGE_NEEDS

BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
# Control-plane operations that hand out the data without a data role: the account keys,
# and SAS tokens signed with them.
KEY_PATHS = (
    "Microsoft.Storage/storageAccounts/listKeys/action",
    "Microsoft.Storage/storageAccounts/ListAccountSas/action",
)


# Key Vault data actions on keys that reach, or lock, the data a vault's key encrypts: the one
# table access policies are judged by too (containment.judge.customer_keys.KEY_ACCESS).
VAULT_KEY_PATHS = tuple(action for _, action, _ in KEY_ACCESS)
STORAGE_KEY_PATHS = tuple(action for name, action, _ in KEY_ACCESS if name in STORAGE_NEEDS)


@lru_cache(maxsize=1024)
def _pattern(permission: str) -> re.Pattern:
    return re.compile("^" + ".*".join(re.escape(part) for part in permission.split("*")) + "$", re.IGNORECASE)


def matches(permission: str, operation: str) -> bool:
    return bool(_pattern(permission).match(operation))


def grants(permissions: list[dict], operation: str, *, data: bool) -> bool:
    allow, deny = ("dataActions", "notDataActions") if data else ("actions", "notActions")
    for block in permissions or []:
        if not isinstance(block, dict):
            continue
        if any(matches(p, operation) for p in block.get(allow) or []) and \
                not any(matches(p, operation) for p in block.get(deny) or []):
            return True
    return False


def blob_paths(role_definition: dict) -> list[str]:
    """Every way the role reaches blob data in a storage account, in words for the evidence."""
    permissions = (role_definition.get("properties") or {}).get("permissions") or []
    paths = [f"dataActions grant {BLOB_READ}"] if grants(permissions, BLOB_READ, data=True) else []
    return paths + [f"actions grant {operation}" for operation in KEY_PATHS if grants(permissions, operation, data=False)]


def key_paths(role_definition: dict, operations: tuple[str, ...] = VAULT_KEY_PATHS) -> list[str]:
    """Every way the role reaches the keys of a vault (VAULT_KEY_PATHS, or those `operations`),
    in words for the evidence."""
    permissions = (role_definition.get("properties") or {}).get("permissions") or []
    return [f"dataActions grant {operation}" for operation in operations if grants(permissions, operation, data=True)]


def data_paths(role_definition: dict, scope: str | None = None, covered: list[str] | None = None) -> list[str]:
    """Every way the role, assigned at `scope`, reaches the protected resources it covers, in
    words for the evidence; [] if none. Blob paths count over a storage account (or a scope that
    may hold one), key paths over a vault (or a scope that may hold one); with no scope given, both."""
    kinds = reaches(scope, covered or []) if scope is not None else {"storage", "vault"}
    return ((blob_paths(role_definition) if "storage" in kinds else [])
            + (key_paths(role_definition) if "vault" in kinds else []))


def reaches(scope: str, covered: list[str]) -> set[str]:
    """What an assignment at `scope` reaches among what it covers: the account, or the vault,
    it is scoped to (or within); above them, what each covered resource is, a scope (a protected
    resource group, a management group) counting as both."""
    kinds: set[str] = set()
    for item in [scope] if _kind(scope) else covered:
        kinds |= {_kind(item)} if _kind(item) else {"storage", "vault"}
    return kinds


def _kind(resource_id: str) -> str | None:
    """"storage" for an account or anything in it, "vault" for a vault or anything in it, else None."""
    try:
        resource = parse_resource_id(resource_id)
    except MalformedResourceId:  # a management-group or root scope
        return None
    top = "/".join((resource.provider or "",) + resource.types[:1]).lower()
    return {STORAGE_ACCOUNT.lower(): "storage", KEY_VAULT.lower(): "vault"}.get(top)
