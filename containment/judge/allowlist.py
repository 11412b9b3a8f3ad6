"""CONTAINMENT_ALLOWED_PRINCIPALS, read one way wherever it decides: may this principal hold
data roles on protected scopes, or list their keys, now? An entry may carry an expiry; once
it has passed the principal is treated as any other, and the finding says the entry expired."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from containment.core import clock
from containment.core.settings import Settings


@dataclass(frozen=True)
class Allowance:
    principal: str
    listed: bool
    until: datetime | None = None  # the entry's expiry; None: none (or not listed)

    @property
    def allowed(self) -> bool:
        return self.listed and (self.until is None or clock.now() < self.until)

    @property
    def expired(self) -> str | None:
        """When the principal's entry expired (ISO 8601), where it has."""
        return clock.iso(self.until) if self.listed and not self.allowed and self.until else None

    @property
    def note(self) -> str:
        return (f"principal {self.principal} is on CONTAINMENT_ALLOWED_PRINCIPALS"
                + (f" until {clock.iso(self.until)}" if self.until else ""))


def allowance(principal: str | None, settings: Settings) -> Allowance:
    key = (principal or "").lower()
    return Allowance(key, key in settings.allowed_principals, settings.allowed_principals.get(key))
