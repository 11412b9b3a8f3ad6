"""CONTAINMENT_ALLOWED_PRINCIPALS, read one way wherever it decides: may this principal hold
data roles on protected scopes now, or list their keys when it did? An entry may carry an
expiry; once it has passed the principal is treated as any other, and the finding says the
entry expired. A grant is judged now (it stands until removed); a key listing at the event's
time, so an event delivered late is judged by the entry as it stood when the keys were listed."""
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
    at: datetime | None = None  # when what is judged happened; None: now

    @property
    def allowed(self) -> bool:
        return self.listed and (self.until is None or (self.at or clock.now()) < self.until)

    @property
    def expired(self) -> str | None:
        """When the principal's entry expired (ISO 8601), where it has."""
        return clock.iso(self.until) if self.listed and not self.allowed and self.until else None

    @property
    def note(self) -> str:
        return (f"principal {self.principal} is on CONTAINMENT_ALLOWED_PRINCIPALS"
                + (f" until {clock.iso(self.until)}" if self.until else ""))


def allowance(principal: str | None, settings: Settings, at: datetime | None = None) -> Allowance:
    key = (principal or "").lower()
    return Allowance(key, key in settings.allowed_principals, settings.allowed_principals.get(key), at)
