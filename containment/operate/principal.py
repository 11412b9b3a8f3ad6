"""Who is asking, and what they may do: the principal App Service Authentication presents,
and the app roles (infra/: the Entra app registration) it holds.

The platform authenticates the caller with Microsoft Entra ID and hands the app
`X-MS-CLIENT-PRINCIPAL`, base64 JSON `{auth_typ, claims: [{typ, val}], name_typ, role_typ}`;
"external requests aren't allowed to set these headers, so they're present only if App
Service sets them" (https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities).
That holds only where the platform's authentication runs, so in Azure the app trusts the
header only when App Service says authentication is on (`WEBSITE_AUTH_ENABLED`), and
refuses everything otherwise; anywhere else only in local development against the emulator
(LOCAL_AZURE_ENDPOINT, loopback only), where whoever calls presents the principal
explicitly (tests, the replay, `func start`). A name header alone is never an identity.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Mapping

# The app roles, each the least power for one kind of act (infra/ declares them).
READ, APPROVE, RELEASE, EXEMPT, BREAK_GLASS, ASSESS, MUTE = (
    "Containment.Read", "Containment.Approve", "Containment.Release", "Containment.Exempt", "Containment.BreakGlass",
    "Containment.Assess", "Containment.Mute")
ROLES = (READ, APPROVE, RELEASE, EXEMPT, BREAK_GLASS, ASSESS, MUTE)
# Claim types after App Service's default claim mapping (the page above).
_OBJECT_ID = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_NAMES = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
          "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
_ROLE_TYPES = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
HEADER = "x-ms-client-principal"
MAX_HEADER = 16 * 1024  # a token's claims; anything larger is not App Service's header


class Unauthenticated(Exception):
    """No principal the app can trust: 401, before any storage or ARM call."""


@dataclass(frozen=True)
class Principal:
    object_id: str
    name: str
    roles: frozenset[str]
    identity_provider: str

    def holds(self, role: str) -> bool:
        return role in self.roles

    def as_actor(self) -> dict[str, Any]:
        """How a record names the person: object ID first (names can be reused), name, roles."""
        return {"object_id": self.object_id, "name": self.name, "roles": sorted(self.roles),
                "identity_provider": self.identity_provider}


def in_azure(environ: Mapping[str, str]) -> bool:
    """Whether the app runs on App Service / Functions in Azure, which sets WEBSITE_INSTANCE_ID
    (https://learn.microsoft.com/azure/app-service/reference-app-settings)."""
    return bool(environ.get("WEBSITE_INSTANCE_ID"))


def authenticate(headers: Mapping[str, str], environ: Mapping[str, str]) -> Principal:
    """The caller's principal, or Unauthenticated naming why (fail closed)."""
    if in_azure(environ):
        if environ.get("WEBSITE_AUTH_ENABLED", "").lower() != "true":
            raise Unauthenticated("App Service Authentication is not enabled on this app: operator requests are "
                                  "refused until it is (infra/ deploys it)")
    elif not environ.get("LOCAL_AZURE_ENDPOINT"):
        # Neither App Service with its authentication nor local development against the
        # emulator: nothing vouches for the header, so nothing is trusted (fail closed).
        raise Unauthenticated("no platform authentication: outside Azure, operator requests are accepted only "
                              "in local development (LOCAL_AZURE_ENDPOINT set)")
    lowered = {key.lower(): value for key, value in headers.items()}
    raw = lowered.get(HEADER)
    if not raw:
        raise Unauthenticated("no authenticated principal (X-MS-CLIENT-PRINCIPAL): sign in through Microsoft "
                              "Entra ID; a name header alone is not an identity")
    return parse(raw)


def parse(raw: str) -> Principal:
    if len(raw) > MAX_HEADER:
        raise Unauthenticated(f"the principal header is {len(raw)} characters; at most {MAX_HEADER}")
    try:
        document = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise Unauthenticated("the principal header is not base64 JSON") from None
    claims = document.get("claims") if isinstance(document, dict) else None
    if not isinstance(claims, list) or not all(isinstance(c, dict) and isinstance(c.get("typ"), str)
                                               and isinstance(c.get("val"), str) for c in claims):
        raise Unauthenticated("the principal header has no claims")

    def first(types) -> str | None:
        return next((c["val"] for c in claims if c["typ"] in types and c["val"]), None)

    object_id = first(_OBJECT_ID)
    if not object_id:
        raise Unauthenticated("the principal has no object ID claim")
    role_types = {document.get("role_typ"), *_ROLE_TYPES} - {None}
    name_types = (document.get("name_typ"), *_NAMES)
    return Principal(object_id=object_id.lower()[:64], name=(first(name_types) or object_id)[:256],
                     roles=frozenset(c["val"] for c in claims if c["typ"] in role_types and c["val"] in ROLES),
                     identity_provider=str(document.get("auth_typ") or "")[:64])


def header_for(object_id: str, name: str, roles: list[str] | tuple[str, ...]) -> str:
    """The header as App Service would present this principal: what local callers (tests,
    the replay's `as`) send, since nothing else authenticates them there."""
    claims = [{"typ": _OBJECT_ID[0], "val": object_id}, {"typ": "name", "val": name},
              *({"typ": "roles", "val": role} for role in roles)]
    document = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode()).decode()
