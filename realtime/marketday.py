"""The trading day: which session's open and previous close are in force.

One rule for the whole house: the reference data is cached per trading day and
the simulator anchors its prices to one, so both must roll at the same instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
# A trading day starts at the US equity open: before 09:30 New York time the
# latest session (its open and its previous close) is still the previous day's.
SESSION_START = timedelta(hours=9, minutes=30)


def trading_day(now: datetime | None = None) -> date:
    """The trading day in force at ``now``: New York date, rolling at 09:30."""
    now = now or datetime.now(UTC)
    return (now.astimezone(NEW_YORK) - SESSION_START).date()
