"""Operators as App Service Authentication presents them (containment.operate.principal):
what a test sends where the platform would have authenticated the person."""
from __future__ import annotations

from containment.operate.principal import ROLES, header_for

ONCALL_ID = "2f1e0d9c-8b7a-4c6d-9e5f-4a3b2c1d0e9f"


def operator(name: str = "sec-oncall@contoso.example", object_id: str = ONCALL_ID,
             roles: tuple[str, ...] = ROLES) -> dict[str, str]:
    """The request headers of an authenticated operator (every app role unless told)."""
    return {"x-ms-client-principal": header_for(object_id, name, roles), "x-ms-client-principal-name": name,
            "x-ms-client-principal-id": object_id}


ONCALL = operator()
