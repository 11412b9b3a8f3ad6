"""The app's clock. Scenario replay sets it to each step's time so that a replayed
incident carries the timestamps it would have had."""
from __future__ import annotations

import re
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


_FRACTION = re.compile(r"\.(\d+)")


def instant(text: object) -> datetime | None:
    """An ARM timestamp as a datetime, or None when it is not one. ARM writes up to 7
    fractional digits (`2026-11-24T10:00:00.1234567Z`); Python reads at most 6. A zone after
    the fraction (`+02:00`) is kept; none is UTC."""
    if not isinstance(text, str) or not text:
        return None
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text.strip(), count=1)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
