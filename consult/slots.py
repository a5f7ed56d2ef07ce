"""Bookable slots from the salon's published availability (pure: no I/O, no clock).

Staff publish, for the salon or per stylist (a named resource until accounts exist), a weekly
pattern of intervals in the salon's time zone, the slot length, a buffer between slots, how
many days ahead customers may book, exceptions (a date's own intervals: none is a day off or
a holiday), how long before a slot a booking must be made, and the cut-off after which a
booking can no longer be cancelled or moved by the customer.

Slots are laid out in the salon's wall-clock time, from each interval's start, every slot
length plus buffer, while the slot ends within the interval. Across a daylight-saving change
a wall time that does not exist (the hour skipped in spring) has no slot, and one that comes
twice (autumn) has one, the first. Times handed out are aware; the customer's page shows them
in the customer's own zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .salon import DAYS, parse_hours

__all__ = [
    "SALON",
    "Availability",
    "Interval",
    "can_change",
    "is_bookable",
    "parse_availability",
    "slots",
]

Interval = tuple[time, time]
MAX_DAYS_AHEAD = 366
MAX_EXCEPTIONS = 400
#: The resource of the salon as a whole (the per-stylist seam: a stylist's name otherwise).
SALON = "salon"


@dataclass(frozen=True)
class Availability:
    weekly: dict[str, list[Interval]] = field(default_factory=dict)
    slot: timedelta = timedelta(minutes=30)
    buffer: timedelta = timedelta(0)
    days_ahead: int = 14
    #: A date's own intervals, instead of its weekday's; [] closes it.
    exceptions: dict[date, list[Interval]] = field(default_factory=dict)
    #: A slot can be booked until this long before it starts.
    notice: timedelta = timedelta(hours=1)
    #: The customer can cancel or move a booking until this long before it starts.
    cutoff: timedelta = timedelta(hours=24)

    @property
    def configured(self) -> bool:
        return any(self.weekly.values()) or any(self.exceptions.values())

    def intervals(self, day: date) -> list[Interval]:
        if day in self.exceptions:
            return self.exceptions[day]
        return self.weekly.get(DAYS[day.weekday()], [])

    def to_json(self) -> dict[str, Any]:
        def spans(intervals: list[Interval]) -> list[list[str]]:
            return [[s.strftime("%H:%M"), e.strftime("%H:%M")] for s, e in intervals]

        return {
            "weekly": {day: spans(i) for day, i in self.weekly.items()},
            "slot_minutes": int(self.slot.total_seconds() // 60),
            "buffer_minutes": int(self.buffer.total_seconds() // 60),
            "days_ahead": self.days_ahead,
            "exceptions": {d.isoformat(): spans(i) for d, i in sorted(self.exceptions.items())},
            "notice_minutes": int(self.notice.total_seconds() // 60),
            "cutoff_hours": self.cutoff.total_seconds() / 3600,
        }


def parse_availability(
    weekly: dict[str, list[list[str]]],
    *,
    slot_minutes: int,
    buffer_minutes: int,
    days_ahead: int,
    exceptions: dict[str, list[list[str]]],
    notice_minutes: int,
    cutoff_hours: float,
) -> Availability:
    """Validate and build; ValueError says what is wrong."""
    if not 5 <= slot_minutes <= 8 * 60:
        raise ValueError("slot_minutes is from 5 to 480")
    if not 0 <= buffer_minutes <= 240:
        raise ValueError("buffer_minutes is from 0 to 240")
    if not 1 <= days_ahead <= MAX_DAYS_AHEAD:
        raise ValueError(f"days_ahead is from 1 to {MAX_DAYS_AHEAD}")
    if not 0 <= notice_minutes <= 30 * 24 * 60:
        raise ValueError("notice_minutes is from 0 to 43200 (30 days)")
    if not 0 <= cutoff_hours <= 30 * 24:
        raise ValueError("cutoff_hours is from 0 to 720 (30 days)")
    if len(exceptions) > MAX_EXCEPTIONS:
        raise ValueError(f"at most {MAX_EXCEPTIONS} exceptions")
    days = parse_hours("UTC", weekly).days
    parsed: dict[date, list[Interval]] = {}
    for text, intervals in exceptions.items():
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"an exception's date is YYYY-MM-DD, not {text!r}") from None
        parsed[day] = parse_hours("UTC", {DAYS[day.weekday()]: intervals}).days[DAYS[day.weekday()]]
    return Availability(
        weekly=days,
        slot=timedelta(minutes=slot_minutes),
        buffer=timedelta(minutes=buffer_minutes),
        days_ahead=days_ahead,
        exceptions=parsed,
        notice=timedelta(minutes=notice_minutes),
        cutoff=timedelta(hours=cutoff_hours),
    )


def _on_the_clock(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant the salon's clocks show ``wall`` (naive); None if they never do (the hour
    skipped in spring). Of a wall time shown twice, the first."""
    aware = wall.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return aware


def _day_slots(av: Availability, zone: ZoneInfo, day: date) -> Iterator[datetime]:
    step = av.slot + av.buffer
    for start, end in av.intervals(day):
        wall, closes = datetime.combine(day, start), datetime.combine(day, end)
        while wall + av.slot <= closes:
            at = _on_the_clock(wall, zone)
            if at is not None:
                yield at
            wall += step


def slots(
    av: Availability, zone: ZoneInfo, start: datetime, end: datetime, now: datetime
) -> list[datetime]:
    """The slots starting in [start, end) that can be booked at ``now``: from ``notice``
    ahead of it, on the days ahead it opens (today and the next ``days_ahead``, in the
    salon's time zone). Aware, ascending."""
    today = now.astimezone(zone).date()
    first = max(today, start.astimezone(zone).date() - timedelta(days=1))
    last = min(today + timedelta(days=av.days_ahead), end.astimezone(zone).date() + timedelta(1))
    earliest = max(start, now + av.notice)
    found: list[datetime] = []
    day = first
    while day <= last:
        found.extend(at for at in _day_slots(av, zone, day) if earliest <= at < end)
        day += timedelta(days=1)
    return sorted(found)


def is_bookable(av: Availability, zone: ZoneInfo, start: datetime, now: datetime) -> bool:
    """Whether a slot starts exactly at ``start`` and can be booked at ``now``."""
    return start in slots(av, zone, start, start + timedelta(seconds=1), now)


def can_change(av: Availability, start: datetime, now: datetime) -> bool:
    """Whether the customer may still cancel or move the booking at ``start``."""
    return now < start - av.cutoff
