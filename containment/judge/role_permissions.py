"""What a role definition lets its holder do to protected blob data. Pure.

Azure RBAC matches operation strings case-insensitively, with `*` matching any run of
characters (including '/'); a permission grants an operation when one of its `actions`
(`dataActions`) matches and none of its `notActions` (`notDataActions`) does, and a role
grants what any of its permission blocks grants.
"""
from __future__ import annotations

import re
from functools import lru_cache

BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
# Control-plane operations that hand out the data without a data role: the account keys,
# and SAS tokens signed with them.
KEY_PATHS = (
    "Microsoft.Storage/storageAccounts/listKeys/action",
    "Microsoft.Storage/storageAccounts/ListAccountSas/action",
)


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


def data_paths(role_definition: dict) -> list[str]:
    """Every way the role reaches blob data, in words for the evidence; [] if none."""
    permissions = (role_definition.get("properties") or {}).get("permissions") or []
    paths = []
    if grants(permissions, BLOB_READ, data=True):
        paths.append(f"dataActions grant {BLOB_READ}")
    for operation in KEY_PATHS:
        if grants(permissions, operation, data=False):
            paths.append(f"actions grant {operation}")
    return paths
