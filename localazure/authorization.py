"""Who may do what on the emulator, as Azure RBAC decides it: the app's identity holds
exactly the custom roles that infra/ declares (read from the Bicep, not copied), so an
operation the code performs that the deployed role does not grant fails here as in Azure.

- ARM: an operation no role of the caller grants is 403 `AuthorizationFailed`, with ARM's
  message (https://learn.microsoft.com/azure/role-based-access-control/troubleshooting:
  "The client '...' with object id '...' does not have authorization to perform action
  '...' over scope '...' or the scope is invalid.").
- Log Analytics: a query needs `workspaces/query/read` and the table's
  `workspaces/query/<table>/read` (https://learn.microsoft.com/azure/azure-monitor/logs/manage-access);
  without them the API answers 403 `InsufficientAccessError` (unverified code).
- Matching as RBAC matches: case-insensitive, `*` for any run of characters
  (https://learn.microsoft.com/azure/role-based-access-control/role-definitions#actions).
- Not authorised here (unverified): polling a long-running operation's status, and
  publishing to the notification topic (Event Grid data plane: EventGrid Data Sender).

Bearer tokens name principals: `APP_TOKEN` is what the app's local credential presents
(containment.adapters.clients.LocalAzureCredential); `OWNER_TOKEN` is a test's operator,
who may do everything, to arrange what a scenario starts from; `principal:<object id>` is
anyone else, who holds what the role assignments in the emulator's state give them at
the scope of the request (actions less notActions, per permission block, as RBAC grants).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from localazure.refusals import Refused
from localazure.shared import REPO_ROOT

APP_TOKEN = "local-azure-emulator"
OWNER_TOKEN = "local-azure-owner"
APP_OBJECT_ID = "5e1d2c3b-4a59-4687-9a0b-c1d2e3f40506"  # the app's managed identity, locally
OWNER_OBJECT_ID = "0f0f0f0f-0000-4000-8000-00000000beef"
INFRA = REPO_ROOT / "infra"
# The app's custom roles: (Bicep file, resource symbol) as infra/ deploys them.
APP_ROLES = (("app/watch-subscription.bicep", "containmentRole"), ("app/logs-access.bicep", "logReader"))


PRINCIPAL_TOKEN = "principal:"


@dataclass(frozen=True)
class Principal:
    name: str
    object_id: str
    actions: tuple[str, ...]
    # Further permission blocks (actions, notActions) from role definitions.
    blocks: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    # As ARM's events name it (authorization.evidence.principalType); for a `principal:`
    # token, the role assignment that grants the action says (ArmState._caller).
    principal_type: str = "User"

    def may(self, operation: str) -> bool:
        if any(_pattern(action).match(operation) for action in self.actions):
            return True
        return any(any(_pattern(a).match(operation) for a in allowed)
                   and not any(_pattern(n).match(operation) for n in denied) for allowed, denied in self.blocks)


def assigned(object_id: str, definitions: list[dict]) -> Principal:
    """A principal holding the role definitions assigned to it at (or above) a scope."""
    blocks = tuple((tuple(block.get("actions") or ()), tuple(block.get("notActions") or ()))
                   for definition in definitions
                   for block in (definition.get("properties") or {}).get("permissions") or [])
    return Principal(f"principal {object_id}", object_id, (), blocks)


@lru_cache(maxsize=256)
def _pattern(permission: str) -> re.Pattern:
    return re.compile("^" + ".*".join(re.escape(part) for part in permission.split("*")) + "$", re.IGNORECASE)


@lru_cache(maxsize=1)
def app_role_actions() -> tuple[str, ...]:
    """Every action the app's custom roles grant, read from infra/'s Bicep with pycep."""
    from pycep import BicepParser

    actions: list[str] = []
    for relative, symbol in APP_ROLES:
        parsed = BicepParser().parse(file_path=INFRA / relative)
        config = parsed["resources"][symbol]["config"]
        for block in config["properties"]["permissions"]:
            granted = block["actions"]
            if isinstance(granted, str):  # a variable of the same file
                granted = parsed["variables"][granted]["value"]
            actions += [action for action in granted if isinstance(action, str)]
    return tuple(actions)


def default_principals() -> dict[str, Principal]:
    return {
        APP_TOKEN: Principal("the app's managed identity", APP_OBJECT_ID, app_role_actions(),
                             principal_type="ServicePrincipal"),
        OWNER_TOKEN: Principal("a test's operator (Owner)", OWNER_OBJECT_ID, ("*",)),
    }


def authorize(principals: dict[str, Principal], token: str, operation: str | None, scope: str) -> None:
    """Refused (403 AuthorizationFailed) unless the token's principal may perform the operation."""
    if operation is None:
        return
    principal = principals.get(token)
    if principal is not None and principal.may(operation):
        return
    who = principal.object_id if principal is not None else "00000000-0000-0000-0000-000000000000"
    raise Refused(403, "AuthorizationFailed",
                  f"The client '{who}' with object id '{who}' does not have authorization to perform action "
                  f"'{operation}' over scope '{scope}' or the scope is invalid. If access was recently granted, "
                  "please refresh your credentials.")


def authorize_query(principals: dict[str, Principal], token: str, tables: tuple[str, ...]) -> None:
    """Refused (403 InsufficientAccessError, unverified code) unless the token may query these tables."""
    principal = principals.get(token)
    needed = ["Microsoft.OperationalInsights/workspaces/query/read"] + [
        f"Microsoft.OperationalInsights/workspaces/query/{table}/read" for table in tables]
    if principal is None or not all(principal.may(operation) for operation in needed):
        raise Refused(403, "InsufficientAccessError",
                      "The provided credentials have insufficient access to perform the requested operation")
