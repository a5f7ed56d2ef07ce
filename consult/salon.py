"""The salon's opening hours and away message: when nobody is there to answer.

Pure logic over an ``Hours`` value; the store keeps it and the hub uses it to tell a customer
who opens their link or writes while the stylist is away and the salon is closed when it opens.
No hours set means always open (no away message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DAYS", "Hours", "Salon", "parse_hours"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_INTERVALS = 3

Interval = tuple[time, time]


@dataclass(frozen=True)
class Hours:
    timezone: str = "UTC"
    #: Opening intervals per day ("mon".."sun"), each [open, close) in the salon's time zone.
    days: dict[str, list[Interval]] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def configured(self) -> bool:
        return any(self.days.values())

    def is_open(self, now: datetime) -> bool:
        if not self.configured:
            return True
        local = now.astimezone(self.zone)
        return any(
            start <= local.time() < end for start, end in self.days.get(DAYS[local.weekday()], [])
        )

    def next_opening(self, now: datetime) -> datetime | None:
        """The next time the salon opens after ``now`` (aware), or None if it never does."""
        if not self.configured:
            return None
        local = now.astimezone(self.zone)
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            for start, _end in sorted(self.days.get(DAYS[day.weekday()], [])):
                opening = datetime.combine(day, start, tzinfo=self.zone)
                if opening > local:
                    return opening
        return None


@dataclass(frozen=True)
class Salon:
    hours: Hours = field(default_factory=Hours)
    away_message: str = ""

    def status(self, now: datetime) -> dict[str, object]:
        """What a customer's page needs: open now, the next opening, the away message."""
        opening = self.hours.next_opening(now)
        return {
            "open": self.hours.is_open(now),
            "next_open": opening.isoformat() if opening else None,
            "away_message": self.away_message,
            "timezone": self.hours.timezone,
        }

    def to_json(self) -> dict[str, object]:
        return {
            "timezone": self.hours.timezone,
            "hours": {
                day: [[s.strftime("%H:%M"), e.strftime("%H:%M")] for s, e in intervals]
                for day, intervals in self.hours.days.items()
            },
            "away_message": self.away_message,
        }


def parse_hours(timezone: str, hours: dict[str, list[list[str]]]) -> Hours:
    """Validate and build ``Hours``; ValueError says what is wrong."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None
    days: dict[str, list[Interval]] = {}
    for day, intervals in hours.items():
        if day not in DAYS:
            raise ValueError(f"unknown day {day!r}: use {', '.join(DAYS)}")
        if len(intervals) > MAX_INTERVALS:
            raise ValueError(f"at most {MAX_INTERVALS} opening intervals a day")
        parsed = []
        for interval in intervals:
            if len(interval) != 2:
                raise ValueError("an interval is [open, close], e.g. ['09:00', '18:00']")
            try:
                start, end = (time.fromisoformat(t) for t in interval)
            except (TypeError, ValueError):
                raise ValueError(f"{day}: times are HH:MM, e.g. 09:30") from None
            if not start < end:
                raise ValueError(f"{day}: {interval[0]} must be before {interval[1]}")
            parsed.append((start, end))
        days[day] = sorted(parsed)
    return Hours(timezone, days)
