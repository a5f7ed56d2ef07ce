"""When an appointment's reminders are due, in the salon's time zone (pure).

Two reminders, each configurable (``ReminderPlan``): the day before at ``day_before`` local
time (10:00 by default), and ``before`` the appointment (15 minutes by default). Each is
scheduled as due work when the appointment is made or moved (consult/reminders.py); one that
is due before the appointment was booked is not sent (the customer has just booked it), nor
the day-before one in the last ``TOO_LATE`` before the appointment (the service was down at
its time, and the other reminder is near).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["REMIND_AT", "TOO_LATE", "ReminderName", "ReminderPlan", "remind_at", "reminder_prefix",
           "reminder_times", "still_useful"]  # fmt: skip

REMIND_AT = time(10, 0)
TOO_LATE = timedelta(hours=2)

ReminderName = Literal["day-before", "before"]


@dataclass(frozen=True)
class ReminderPlan:
    #: Local time on the day before; None: no reminder the day before.
    day_before: time | None = REMIND_AT
    #: How long before the appointment; None: none then.
    before: timedelta | None = timedelta(minutes=15)


def remind_at(scheduled_at: datetime, zone: ZoneInfo, at: time = REMIND_AT) -> datetime:
    day_before = scheduled_at.astimezone(zone).date() - timedelta(days=1)
    return datetime.combine(day_before, at, tzinfo=zone)


def reminder_times(
    scheduled_at: datetime, booked_at: datetime, zone: ZoneInfo, plan: ReminderPlan
) -> dict[ReminderName, datetime]:
    """The reminders an appointment made at ``booked_at`` gets, and when each is due."""
    times: dict[ReminderName, datetime] = {}
    if plan.day_before is not None:
        at = remind_at(scheduled_at, zone, plan.day_before)
        if booked_at < at < scheduled_at - TOO_LATE:
            times["day-before"] = at
    if plan.before is not None and plan.before > timedelta(0):
        at = scheduled_at - plan.before
        if booked_at < at:
            times["before"] = at
    return times


def still_useful(name: ReminderName, scheduled_at: datetime, now: datetime) -> bool:
    """Whether a reminder run late (the service was down at its time) is still worth sending."""
    if name == "day-before":
        return now < scheduled_at - TOO_LATE
    return now < scheduled_at


def reminder_prefix(consultation_id: str) -> str:
    """The start of every due-work key of the consultation's reminders."""
    return f"reminder:{consultation_id}:"
