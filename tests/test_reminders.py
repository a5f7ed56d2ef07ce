"""When a reminder is due: the day before at 10:00 in the salon's time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from consult.mail.reminders import candidates, remind_at, reminder_due

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
APPOINTMENT = datetime(2026, 12, 2, 15, 0, tzinfo=SHANGHAI)
BOOKED = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)


def local(day: int, hour: int, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=zone)


def test_due_from_ten_the_day_before_in_the_salons_zone() -> None:
    assert remind_at(APPOINTMENT, SHANGHAI) == local(1, 10)
    assert not reminder_due(APPOINTMENT, BOOKED, SHANGHAI, local(1, 9, 59))
    assert reminder_due(APPOINTMENT, BOOKED, SHANGHAI, local(1, 10))
    # Still due later (the service was down at 10:00), until shortly before the appointment.
    assert reminder_due(APPOINTMENT, BOOKED, SHANGHAI, local(2, 12, 59))
    assert not reminder_due(APPOINTMENT, BOOKED, SHANGHAI, local(2, 13))


def test_the_day_is_the_salons_not_utcs() -> None:
    # 01:00 in Shanghai on the 2nd is 17:00 UTC on the 1st: the day before is still the 1st.
    early = datetime(2026, 12, 2, 1, 0, tzinfo=SHANGHAI)
    assert remind_at(early, SHANGHAI) == local(1, 10)
    # The same instant seen from London is the evening of the 1st: the day before is the 30th.
    assert remind_at(early, LONDON) == datetime(2026, 11, 30, 10, 0, tzinfo=LONDON)


def test_none_for_an_appointment_booked_after_the_reminder_time() -> None:
    booked_late = local(1, 18)
    assert not reminder_due(APPOINTMENT, booked_late, SHANGHAI, local(1, 18, 5))


def test_across_a_daylight_saving_change() -> None:
    # London goes back to GMT on 25 October 2026: the reminder stays at 10:00 local.
    appointment = datetime(2026, 10, 26, 9, 0, tzinfo=LONDON)
    at = remind_at(appointment, LONDON)
    assert (at.hour, at.day, at.utcoffset()) == (10, 25, timedelta(0))


def test_the_store_is_asked_for_every_appointment_that_can_be_due_and_few_more() -> None:
    # Before 10:00 only today's appointments can be due; from 10:00 tomorrow's too.
    start, end = candidates(local(1, 9, 30), SHANGHAI)
    assert (start, end) == (local(1, 11, 30), local(2, 0))
    start, end = candidates(local(1, 10, 0), SHANGHAI)
    assert (start, end) == (local(1, 12, 0), local(3, 0))
    booked = local(1, 0) - timedelta(days=30)
    for now in (local(1, 9, 30), local(1, 10), local(1, 23, 59)):
        start, end = candidates(now, SHANGHAI)
        for hours in range(0, 96):
            appointment = local(1, 0) + timedelta(hours=hours, minutes=30)
            if reminder_due(appointment, booked, SHANGHAI, now):
                assert start <= appointment < end, (now, appointment)
