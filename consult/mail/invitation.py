"""A booking's calendar invitation: an .ics file (RFC 5545, made with icalendar; pure).

One event per booking, its UID the booking's, so a calendar that has it updates it when the
booking moves (a higher SEQUENCE) and removes it when cancelled (METHOD:CANCEL). Times are in
UTC: every calendar shows them in its owner's own zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import icalendar

__all__ = ["invitation"]

PRODID = "-//consult//booking//EN"


def invitation(
    *,
    uid: str,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    url: str,
    now: datetime,
    sequence: int = 0,
    method: Literal["PUBLISH", "CANCEL"] = "PUBLISH",
) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", end.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("summary", summary)
    event.add("description", description)
    event.add("url", url)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data
