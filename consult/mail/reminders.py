"""When an appointment's reminder is due: the day before, in the salon's time zone (pure).

The reminder goes at ``REMIND_AT`` local time on the day before the appointment, or later
that day (the service was down then), but not in the last ``TOO_LATE`` before the appointment,
nor for an appointment booked after that moment (the customer has just booked it).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["REMIND_AT", "TOO_LATE", "candidates", "remind_at", "reminder_due"]

REMIND_AT = time(10, 0)
TOO_LATE = timedelta(hours=2)


def remind_at(scheduled_at: datetime, zone: ZoneInfo) -> datetime:
    day_before = scheduled_at.astimezone(zone).date() - timedelta(days=1)
    return datetime.combine(day_before, REMIND_AT, tzinfo=zone)


def reminder_due(
    scheduled_at: datetime, booked_at: datetime, zone: ZoneInfo, now: datetime
) -> bool:
    when = remind_at(scheduled_at, zone)
    return booked_at < when <= now < scheduled_at - TOO_LATE


def candidates(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The appointments that can have a reminder due at ``now``: from ``TOO_LATE`` ahead to
    the end of tomorrow (from 10:00) or of today (before): what the store is asked for."""
    local = now.astimezone(zone)
    last_day = local.date() + timedelta(days=1 if local.time() >= REMIND_AT else 0)
    return now + TOO_LATE, datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone)
