"""ARM resource IDs: parsed strictly, compared case-insensitively.

Events spell `resourcegroups`, ARM answers `resourceGroups`; both name the same resource.
Anything that is not a well-formed ARM ID (traversal, query strings, control or
look-alike characters) is refused before it reaches a URL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# ARM names: letters, digits and - _ . ( ) ; resource-provider namespaces are dotted words.
_NAME = r"[A-Za-z0-9_\-.()]+"
_PROVIDER = r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+"
_ID = re.compile(
    rf"^/subscriptions/(?P<subscription>{_GUID})"
    rf"(?:/resourceGroups/(?P<group>{_NAME}))?"
    rf"(?:/providers/(?P<provider>{_PROVIDER})(?P<path>(?:/{_NAME}/{_NAME})+))?$",
    re.IGNORECASE,
)
MAX_LENGTH = 1024


class MalformedResourceId(ValueError):
    pass


@dataclass(frozen=True)
class ResourceId:
    """A parsed ARM ID. `text` keeps the spelling it came with; `key` is for comparing."""

    text: str
    subscription: str
    resource_group: str | None
    provider: str | None
    types: tuple[str, ...]
    names: tuple[str, ...]

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
        segments = [f"/subscriptions/{self.subscription}"]
        if self.resource_group:
            segments.append(f"/resourceGroups/{self.resource_group}")
        segments.append(f"/providers/{self.provider}")
        segments += [f"/{t}/{n}" for t, n in zip(self.types[:keep], self.names[:keep])]
        return parse_resource_id("".join(segments))

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
    match = _ID.match(text)
    if match is None:
        raise MalformedResourceId(f"{text[:200]!r} is not a well-formed ARM resource ID")
    if match["group"] in (".", "..") or any(part in (".", "..") for part in (match["path"] or "").split("/")):
        raise MalformedResourceId(f"{text[:200]!r} has a '.' or '..' segment")
    pairs = (match["path"] or "").strip("/").split("/") if match["path"] else []
    return ResourceId(
        text=text,
        subscription=match["subscription"].lower(),
        resource_group=match["group"],
        provider=match["provider"],
        types=tuple(pairs[0::2]),
        names=tuple(pairs[1::2]),
    )


STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
BLOB_CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
