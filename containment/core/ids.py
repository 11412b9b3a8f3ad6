"""ARM resource IDs: parsed strictly, compared case-insensitively.

Events spell `resourcegroups`, ARM answers `resourceGroups`; both name the same resource.
Anything that is not a well-formed ARM ID (traversal, query strings, control or
look-alike characters) is refused before it reaches a URL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# ARM names: letters, digits and - _ . ( ) ; resource-provider namespaces are dotted words.
_NAME = re.compile(r"[A-Za-z0-9_\-.()]+")
_PROVIDER = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+")
MAX_LENGTH = 1024


class MalformedResourceId(ValueError):
    pass


@dataclass(frozen=True)
class ResourceId:
    """A parsed ARM ID. `text` keeps the spelling it came with; `key` is for comparing.

    Extension resources (a role assignment on a storage account) have more than one
    `/providers/` segment: the type and names come from the last one, and `scope` is
    everything before it."""

    text: str
    subscription: str
    resource_group: str | None
    provider: str | None
    types: tuple[str, ...]
    names: tuple[str, ...]
    scope: str

    @property
    def key(self) -> str:
        return self.text.lower()

    @property
    def type(self) -> str:
        """`Microsoft.Storage/storageAccounts/blobServices/containers`, as spelled."""
        return "/".join((self.provider or "",) + self.types)

    def is_type(self, resource_type: str) -> bool:
        return self.type.lower() == resource_type.lower()

    @property
    def name(self) -> str:
        return self.names[-1] if self.names else ""

    def ancestor(self, levels: int) -> "ResourceId":
        """The resource `levels` type/name pairs up (a container's account is 2 up)."""
        keep = len(self.types) - levels
        if keep < 1:
            raise ValueError(f"{self.text} has no resource {levels} levels up")
        pairs = "".join(f"/{t}/{n}" for t, n in zip(self.types[:keep], self.names[:keep]))
        return parse_resource_id(f"{self.scope}/providers/{self.provider}{pairs}")

    def is_within(self, scope: str) -> bool:
        """True when this resource is the scope or lies under it (case-insensitive)."""
        scope = scope.rstrip("/").lower()
        return self.key == scope or self.key.startswith(scope + "/")


def parse_resource_id(text: object) -> ResourceId:
    if not isinstance(text, str):
        raise MalformedResourceId(f"a resource ID must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise MalformedResourceId(f"resource ID is {len(text)} characters long; ARM IDs are at most {MAX_LENGTH}")
    if not text.isascii():
        raise MalformedResourceId(f"resource ID {text[:120]!r} has non-ASCII characters")
    segments = text.split("/")
    if any(part in (".", "..") for part in segments):
        raise _refused(text, "it has a '.' or '..' segment")
    if segments[0] != "" or len(segments) < 3 or segments[1].lower() != "subscriptions" \
            or not _GUID.fullmatch(segments[2]):
        raise _refused(text, "it must start /subscriptions/<subscription GUID>")
    rest = segments[3:]
    group = None
    if rest[:1] and rest[0].lower() == "resourcegroups":
        if len(rest) < 2 or not _NAME.fullmatch(rest[1]):
            raise _refused(text, "no well-formed resource group name")
        group, rest = rest[1], rest[2:]
    provider, types, names, scope_length = None, [], [], 3 + (2 if group else 0)
    while rest:
        if rest[0].lower() != "providers" or len(rest) < 4 or not _PROVIDER.fullmatch(rest[1]):
            raise _refused(text, "expected /providers/<Namespace>/<type>/<name>")
        scope_length = len(segments) - len(rest)
        provider, pairs = rest[1], rest[2:]
        end = next((i for i in range(0, len(pairs), 2) if pairs[i].lower() == "providers"), len(pairs))
        own, rest = pairs[:end], pairs[end:]
        if len(own) % 2 or not all(_NAME.fullmatch(part) for part in own):
            raise _refused(text, "a type without a name, or a name with characters ARM does not allow")
        types, names = own[0::2], own[1::2]
    return ResourceId(
        text=text,
        subscription=segments[2].lower(),
        resource_group=group,
        provider=provider,
        types=tuple(types),
        names=tuple(names),
        scope="/".join(segments[:scope_length]),
    )


def _refused(text: str, detail: str) -> MalformedResourceId:
    return MalformedResourceId(f"{text[:200]!r} is not a well-formed ARM resource ID: {detail}")


STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
NSG = "Microsoft.Network/networkSecurityGroups"
SECURITY_RULE = "Microsoft.Network/networkSecurityGroups/securityRules"
DEFAULT_SECURITY_RULE = "Microsoft.Network/networkSecurityGroups/defaultSecurityRules"
BLOB_CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
REPLICATION_POLICY = "Microsoft.Storage/storageAccounts/objectReplicationPolicies"
KEY_VAULT = "Microsoft.KeyVault/vaults"
VAULT_KEY = "Microsoft.KeyVault/vaults/keys"
VAULT_ACCESS_POLICY = "Microsoft.KeyVault/vaults/accessPolicies"  # .../accessPolicies/{add|replace|remove}
POLICY_ASSIGNMENT = "Microsoft.Authorization/policyAssignments"
POLICY_EXEMPTION = "Microsoft.Authorization/policyExemptions"
DIAGNOSTIC_SETTING = "Microsoft.Insights/diagnosticSettings"  # an extension resource: {resource}/providers/...


def short(resource_id: str) -> str:
    """An ARM ID as a person reads it: without the subscription and provider boilerplate,
    keeping the scope of an extension resource (a role assignment on an account)."""
    if not resource_id:
        return "(unparsed event)"
    scope, *providers = resource_id.split("/providers/")
    parts = [part.split("/", 1)[1] if "/" in part else part for part in providers]
    if not parts:
        return resource_id
    if providers[0].lower().startswith("microsoft.authorization/"):  # assigned at a group or subscription
        group = scope.split("/")[4] if scope.count("/") >= 4 else None
        parts.insert(0, f"resourceGroups/{group}" if group else "subscription")
    return " > ".join(parts)
