"""containment.core.clock.instant: the one reader of ARM and log timestamps."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from containment.core.clock import instant


@pytest.mark.parametrize("text, expected", [
    ("2026-11-24T10:00:00.1234567Z", datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=timezone.utc)),  # ARM's 7 digits
    ("2026-11-24T10:00:00.1234567+02:00", datetime(2026, 11, 24, 8, 0, 0, 123456, tzinfo=timezone.utc)),
    ("2026-11-24T10:00:00Z", datetime(2026, 11, 24, 10, tzinfo=timezone.utc)),
    ("2026-11-24T10:00:00", datetime(2026, 11, 24, 10, tzinfo=timezone.utc)),  # no zone: UTC
    ("2026-11-24", datetime(2026, 11, 24, tzinfo=timezone.utc)),  # a SAS's se may be a date
    ("tomorrow", None), ("", None), (None, None), (42, None),
])
def test_a_timestamp_is_read_with_its_zone_and_anything_else_is_none(text, expected):
    assert instant(text) == expected
