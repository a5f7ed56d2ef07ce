"""Bookable slots (pure): laid out in the salon's wall-clock time, across daylight-saving
changes, with exceptions, notice and days ahead; properties over random availabilities."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consult.salon import DAYS
from consult.slots import Availability, can_change, is_bookable, parse_availability, slots

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
#: Monday 30 November 2026, 08:00 in Shanghai.
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=SHANGHAI)

WEEKDAYS = parse_availability(
    {day: [["09:00", "12:00"], ["13:00", "17:00"]] for day in DAYS[:5]},
    slot_minutes=45,
    buffer_minutes=15,
    days_ahead=14,
    exceptions={"2026-12-02": [], "2026-12-05": [["10:00", "11:00"]]},
    notice_minutes=60,
    cutoff_hours=24,
)


def week(av: Availability, zone: ZoneInfo, now: datetime = NOW) -> list[datetime]:
    return slots(av, zone, now, now + timedelta(days=7), now)


def test_a_day_of_slots_with_buffers() -> None:
    found = week(WEEKDAYS, SHANGHAI)
    monday = [at.astimezone(SHANGHAI).strftime("%H:%M") for at in found if at.day == 30]
    # Slot 45 + buffer 15, each ending within its interval; 09:00 is an hour after 08:00.
    assert monday == ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    later = week(WEEKDAYS, SHANGHAI, NOW + timedelta(minutes=1))
    assert next(at.astimezone(SHANGHAI).hour for at in later if at.day == 30) == 10
    assert all(at.tzinfo is not None for at in found)


def test_exceptions_close_a_day_or_open_one() -> None:
    days = {at.astimezone(SHANGHAI).date() for at in week(WEEKDAYS, SHANGHAI)}
    assert date(2026, 12, 2) not in days  # a holiday
    saturday = [at for at in week(WEEKDAYS, SHANGHAI) if at.astimezone(SHANGHAI).day == 5]
    assert [at.astimezone(SHANGHAI).time() for at in saturday] == [time(10, 0)]
    assert date(2026, 12, 6) not in days  # Sunday: no pattern


def test_days_ahead_and_the_past() -> None:
    far = slots(WEEKDAYS, SHANGHAI, NOW, NOW + timedelta(days=60), NOW)
    assert max(far).astimezone(SHANGHAI).date() == date(2026, 12, 14)
    assert slots(WEEKDAYS, SHANGHAI, NOW - timedelta(days=3), NOW, NOW) == []
    start = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
    assert is_bookable(WEEKDAYS, SHANGHAI, start, NOW)
    assert not is_bookable(WEEKDAYS, SHANGHAI, start + timedelta(minutes=5), NOW)
    assert not is_bookable(WEEKDAYS, SHANGHAI, start, start - timedelta(minutes=30))
    # The cut-off: a day before.
    assert can_change(WEEKDAYS, start, start - timedelta(hours=25))
    assert not can_change(WEEKDAYS, start, start - timedelta(hours=23))


def test_a_salon_in_shanghai_and_a_customer_in_london_across_a_dst_change() -> None:
    # London goes back to GMT on Sunday 25 October 2026; Shanghai has no daylight saving.
    now = datetime(2026, 10, 21, 8, 0, tzinfo=SHANGHAI)
    av = parse_availability(
        {day: [["16:00", "18:00"]] for day in DAYS},
        slot_minutes=60, buffer_minutes=0, days_ahead=10, exceptions={},
        notice_minutes=0, cutoff_hours=24,
    )  # fmt: skip
    found = slots(av, SHANGHAI, now, now + timedelta(days=10), now)
    # The salon's 16:00 every day...
    assert {at.astimezone(SHANGHAI).time() for at in found} == {time(16, 0), time(17, 0)}
    # ...is 09:00 in London before the change and 08:00 after it.
    in_london = {
        at.astimezone(SHANGHAI).date(): at.astimezone(LONDON)
        for at in found
        if at.astimezone(SHANGHAI).hour == 16
    }
    assert in_london[date(2026, 10, 24)].hour == 9
    assert in_london[date(2026, 10, 26)].hour == 8
    # A slot given back by a page in London (its own offset) is the same slot.
    booked = datetime(2026, 10, 26, 8, 0, tzinfo=LONDON)
    assert is_bookable(av, SHANGHAI, booked, now)
    assert booked.astimezone(SHANGHAI).hour == 16


def test_a_salon_whose_own_clocks_change() -> None:
    av = parse_availability(
        {"sun": [["00:00", "04:00"]]},
        slot_minutes=30, buffer_minutes=0, days_ahead=30, exceptions={},
        notice_minutes=0, cutoff_hours=0,
    )  # fmt: skip
    now = datetime(2027, 3, 20, tzinfo=UTC)
    # Spring: 01:00-02:00 does not happen in London on 28 March 2027.
    spring = [a for a in slots(av, LONDON, now, now + timedelta(days=9), now) if a.day == 28]
    walls = [at.astimezone(LONDON).strftime("%H:%M") for at in spring]
    assert walls == ["00:00", "00:30", "02:00", "02:30", "03:00", "03:30"]
    assert len(set(spring)) == len(spring)
    # Autumn: 01:00-02:00 happens twice on 31 October 2027: one slot each, the first.
    now = datetime(2027, 10, 25, tzinfo=UTC)
    autumn = slots(av, LONDON, now, now + timedelta(days=7), now)
    assert len(autumn) == 8
    assert all(b - a >= timedelta(minutes=30) for a, b in itertools.pairwise(autumn))


def test_bad_availability_is_refused() -> None:
    base = {"slot_minutes": 30, "buffer_minutes": 0, "days_ahead": 7, "exceptions": {},
            "notice_minutes": 0, "cutoff_hours": 24}  # fmt: skip
    for weekly, changes in (
        ({"mon": [["18:00", "09:00"]]}, {}),
        ({"someday": []}, {}),
        ({}, {"slot_minutes": 0}),
        ({}, {"days_ahead": 1000}),
        ({}, {"exceptions": {"25/12/2026": []}}),
    ):
        with pytest.raises(ValueError):
            parse_availability(weekly, **(base | changes))  # type: ignore[arg-type]


ZONES = st.sampled_from(
    [ZoneInfo(z) for z in ("Asia/Shanghai", "Europe/London", "America/New_York", "UTC",
                           "Australia/Lord_Howe")]
)  # fmt: skip


@st.composite
def availabilities(draw: st.DrawFn) -> Availability:
    weekly = {}
    for day in draw(st.sets(st.sampled_from(DAYS), max_size=7)):
        start = draw(st.integers(0, 22 * 60))
        end = draw(st.integers(start + 5, 24 * 60 - 1))
        weekly[day] = [[f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}"]]
    return parse_availability(
        weekly,
        slot_minutes=draw(st.integers(5, 180)),
        buffer_minutes=draw(st.integers(0, 60)),
        days_ahead=draw(st.integers(1, 40)),
        exceptions={},
        notice_minutes=draw(st.integers(0, 600)),
        cutoff_hours=24,
    )


@settings(max_examples=150, deadline=None)
@given(
    av=availabilities(),
    zone=ZONES,
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31),
                     timezones=st.just(UTC)),
    span=st.integers(1, 20),
)  # fmt: skip
def test_every_slot_is_on_offer_free_of_overlaps_and_within_its_interval(
    av: Availability, zone: ZoneInfo, now: datetime, span: int
) -> None:
    end = now + timedelta(days=span)
    found = slots(av, zone, now, end, now)
    assert found == sorted(set(found))
    for at in found:
        assert now + av.notice <= at < end
        local = at.astimezone(zone)
        assert local.date() <= now.astimezone(zone).date() + timedelta(days=av.days_ahead)
        # Starts within one of its day's intervals, on a wall time that exists.
        wall = local.replace(tzinfo=None)
        assert any(
            s <= wall.time() and wall + av.slot <= datetime.combine(wall.date(), e)
            for s, e in av.intervals(wall.date())
        )
        assert is_bookable(av, zone, at, now)
    # Slots never overlap in real time, unless the clocks went back between them.
    for a, b in itertools.pairwise(found):
        if a.utcoffset() == b.utcoffset():
            assert b - a >= av.slot
    # Splitting the range splits the answer.
    middle = now + (end - now) / 2
    assert slots(av, zone, now, middle, now) + slots(av, zone, middle, end, now) == found
