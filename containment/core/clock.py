"""The app's clock. Scenario replay sets it to each step's time so that a replayed
incident carries the timestamps it would have had."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

_source: Callable[[], datetime] | None = None


def now() -> datetime:
    return _source() if _source is not None else datetime.now(timezone.utc)


def iso(moment: datetime | None = None) -> str:
    moment = moment or now()
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def set_source(source: Callable[[], datetime] | None) -> None:
    global _source
    _source = source
