from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from consult.salon import Salon, parse_hours

from .client import CallClient

WEEK = {"mon": [["09:00", "12:00"], ["13:00", "18:00"]], "sat": [["10:00", "14:00"]]}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_open_and_next_opening_in_the_salons_time_zone() -> None:
    hours = parse_hours("Asia/Shanghai", WEEK)
    # 2026-11-30 is a Monday; 09:30 in Shanghai is 01:30 UTC.
    assert hours.is_open(at("2026-11-30T01:30:00+00:00"))
    assert not hours.is_open(at("2026-11-30T04:30:00+00:00"))  # 12:30 lunch
    assert hours.next_opening(at("2026-11-30T04:30:00+00:00")) == at("2026-11-30T13:00:00+08:00")
    # Monday evening: next is Saturday 10:00.
    assert hours.next_opening(at("2026-11-30T11:00:00+00:00")) == at("2026-12-05T10:00:00+08:00")
    # Saturday after closing: next Monday 09:00.
    assert hours.next_opening(at("2026-12-05T07:00:00+00:00")) == at("2026-12-07T09:00:00+08:00")


def test_no_hours_means_always_open() -> None:
    salon = Salon()
    status = salon.status(datetime.now(UTC))
    assert status["open"] is True and status["next_open"] is None


def test_closed_all_week_has_no_next_opening() -> None:
    hours = parse_hours("UTC", {"mon": []})
    assert not hours.configured and hours.is_open(datetime.now(UTC))


@pytest.mark.parametrize(
    ("zone", "days", "reason"),
    [
        ("Mars/Olympus", {}, "time zone"),
        ("UTC", {"funday": []}, "unknown day"),
        ("UTC", {"mon": [["18:00", "09:00"]]}, "before"),
        ("UTC", {"mon": [["09:00"]]}, "interval"),
        ("UTC", {"mon": [["9am", "5pm"]]}, "HH:MM"),
        ("UTC", {"mon": [["09:00", "10:00"]] * 4}, "at most"),
    ],
)
def test_bad_hours_are_refused(zone: str, days: dict[str, list[list[str]]], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_hours(zone, days)


async def test_a_customer_writing_to_a_closed_salon_is_told_when_it_opens(
    http: Any, staff: dict[str, str], clients: Any, consultation: dict[str, Any]
) -> None:
    from datetime import timedelta

    from consult.salon import DAYS

    # Open only on a day that is not today (in UTC), 09:00-10:00.
    other_day = DAYS[(datetime.now(UTC) + timedelta(days=2)).weekday()]
    body = {"timezone": "UTC", "hours": {other_day: [["09:00", "10:00"]]},
            "away_message": "We are closed now and will answer when we open."}  # fmt: skip
    async with http.put("/api/salon", json=body, headers=staff) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["hours"] == {other_day: [["09:00", "10:00"]]}
    async with http.get("/api/salon", headers=staff) as r:
        assert (await r.json())["away_message"].startswith("We are closed")

    customer: CallClient = clients("customer", consultation["customer_link"])
    welcome = await customer.connect()
    salon = welcome["salon"]
    assert salon["open"] is False and salon["next_open"].endswith("09:00:00+00:00")
    assert salon["away_message"].startswith("We are closed")
    await customer.send({"type": "chat", "text": "Hello?", "id": "1"})
    await customer.expect("chat")
    away = await customer.expect("away")
    assert away["message"].startswith("We are closed") and away["next_open"] == salon["next_open"]

    # With the stylist there, nobody is away.
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await stylist.connect()
    await customer.send({"type": "chat", "text": "Oh hi", "id": "2"})
    await customer.expect("chat")
    await customer.send({"type": "read", "seq": 2})
    assert (await customer.expect("read"))["seq"] == 2
    assert customer.messages.empty()


async def test_only_staff_set_the_hours(
    http: Any, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    token = consultation["stylist_link"].rsplit("/", 1)[1]
    good = {"timezone": "UTC", "hours": {}}
    async with http.put("/api/salon", json=good, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 401
    for bad in ({"timezone": "Nowhere/Land", "hours": {}},
                {"timezone": "UTC", "hours": {"mon": [["10:00", "09:00"]]}},
                {"timezone": "UTC", "hours": {"mon": "all day"}}):  # fmt: skip
        async with http.put("/api/salon", json=bad, headers=staff) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid-request"), bad


async def test_the_lobby_can_ask_whether_the_salon_is_open(
    http: Any, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    token = consultation["customer_link"].rsplit("/", 1)[1]
    async with http.get("/api/salon/status", params={"token": token}) as r:
        assert r.status == 200
        assert (await r.json())["open"] is True  # no hours set: always open
    async with http.get("/api/salon/status") as r:
        assert r.status == 401
    async with http.get("/api/salon/status", params={"token": "nope"}) as r:
        assert r.status == 401
