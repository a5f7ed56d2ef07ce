"""Booking over HTTP against real servers: availability, free slots, a booking with its link,
reminders and .ics email (a real SMTP server), cancel and move from the customer's link until
the cut-off, bad input; and two nodes on one database (SQLite, then PostgreSQL) booking one
slot at the same instant: one 201, one 409 slot-taken, and nothing left of the loser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.appkeys import DUE_WORK, STORE
from consult.config import Settings
from consult.recording.audit import AuditFilter
from consult.recording.schema import bookings, consultations, customers

from .accounts import add_member
from .booking import AVAILABILITY, a_week_ahead, free, publish
from .conftest import STAFF_KEY, make_settings, node_settings, token_of
from .mail import SALON, body_of, emailing
from .smtp import SmtpServer

SHANGHAI = ZoneInfo("Asia/Shanghai")
STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The test server's: more bookings from one address than the public endpoint allows."""
    return make_settings(tmp_path, booking_burst=100)


async def book(http: aiohttp.ClientSession, start: str, **fields: Any) -> aiohttp.ClientResponse:
    body = {"start": start, "customer_name": "Li Na", "customer_email": "li@example.cn"} | fields
    return await http.post("/api/bookings", json=body)


async def error_of(response: aiohttp.ClientResponse) -> tuple[int, str]:
    body = await response.json()
    return response.status, body["error"]["code"]


async def test_book_from_a_free_slot_then_move_and_cancel_from_the_customers_link(
    http: aiohttp.ClientSession, server: TestServer
) -> None:
    # Nothing published: nothing to book.
    now = datetime.now(UTC).isoformat()
    async with http.get("/api/slots", params={"from": now, "to": now}) as response:
        assert response.status == 400
    await publish(http)
    slots = await free(http)
    assert slots and all(datetime.fromisoformat(s).utcoffset() == timedelta(hours=8) for s in slots)
    start = a_week_ahead(slots)
    # The customer's page sends the time in its own zone: the same instant.
    in_london = datetime.fromisoformat(start).astimezone(ZoneInfo("Europe/London")).isoformat()
    response = await book(http, in_london, customer_zone="Europe/London")
    assert response.status == 201, await response.text()
    made = await response.json()
    booking, link = made["booking"], made["customer_link"]
    assert datetime.fromisoformat(booking["start"]) == datetime.fromisoformat(start)
    assert made["consultation"]["scheduled_at"] is not None
    assert start not in await free(http)
    # Its reminders are due work: the day before and 15 minutes before, email and message.
    due = await server.app[DUE_WORK].items(prefix=f"reminder:{booking['consultation_id']}:")
    assert sorted({i.kind for i in due}) == ["reminder-chat", "reminder-email"] and len(due) == 4
    # Taken: a second booking of it is refused, with nothing made.
    response = await book(http, start, customer_email="other@example.com")
    assert await error_of(response) == (409, "slot-taken")

    customer = {"Authorization": f"Bearer {token_of(link)}"}
    path = f"/api/bookings/{booking['id']}"
    async with http.get(
        f"/api/consultations/{booking['consultation_id']}/booking", headers=customer
    ) as r:
        assert r.status == 200
        assert (await r.json())["booking"]["id"] == booking["id"]
    # Moved a day later by the customer: the old slot is free again, the reminders moved.
    later = next(
        s
        for s in slots
        if datetime.fromisoformat(s) - datetime.fromisoformat(start) >= timedelta(days=1)
    )
    async with http.post(f"{path}/move", json={"start": later}, headers=customer) as r:
        assert r.status == 200, await r.text()
    assert start in await free(http)
    assert later not in await free(http)
    due = await server.app[DUE_WORK].items(
        prefix=f"reminder:{booking['consultation_id']}:", pending=True
    )
    assert {i.payload["scheduled_at"] for i in due} == {
        datetime.fromisoformat(later).astimezone(UTC).isoformat()
    }
    # Cancelled: free again, no reminders left to send.
    async with http.delete(path, headers=customer) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "cancelled"
    assert later in await free(http)
    assert (
        await server.app[DUE_WORK].items(
            prefix=f"reminder:{booking['consultation_id']}:", pending=True
        )
        == []
    )
    async with http.post(f"{path}/move", json={"start": start}, headers=customer) as r:
        assert await error_of(r) == (409, "booking-cancelled")
    # Staff see the booking, cancelled.
    async with http.get("/api/bookings", headers=STAFF) as r:
        listed = (await r.json())["bookings"]
    assert [(b["id"], b["status"], b["customer_name"]) for b in listed] == [
        (booking["id"], "cancelled", "Li Na")
    ]


async def test_bad_bookings_get_clear_errors_and_make_nothing(
    http: aiohttp.ClientSession, server: TestServer
) -> None:
    await publish(http)
    start = a_week_ahead(await free(http))
    for fields, expected in (
        ({"customer_email": "not an address"}, (400, "invalid-email")),
        ({"customer_email": None, "customer_phone": "call me"}, (400, "invalid-phone")),
        ({"customer_email": None}, (400, "invalid-request")),
        ({"customer_name": "  "}, (400, "invalid-request")),
        ({"start": "2026-12-01T10:00:00"}, (400, "invalid-request")),
        ({"start": "tomorrow"}, (400, "invalid-request")),
        ({"customer_zone": "Mars/Olympus"}, (400, "invalid-request")),
        # In the past, off the grid, outside the hours.
        ({"start": (datetime.now(UTC) - timedelta(days=1)).isoformat()}, (409, "slot-taken")),
        (
            {"start": (datetime.fromisoformat(start) + timedelta(minutes=5)).isoformat()},
            (409, "slot-taken"),
        ),
        ({"start": datetime.fromisoformat(start).replace(hour=3).isoformat()}, (409, "slot-taken")),
    ):
        response = await book(http, fields.pop("start", start), **fields)
        assert await error_of(response) == expected, fields
    async with http.put(
        "/api/availability", json=AVAILABILITY | {"slot_minutes": 0}, headers=STAFF
    ) as r:
        assert await error_of(r) == (400, "invalid-request")
    async with http.put("/api/availability", json=AVAILABILITY) as r:
        assert r.status == 401
    database = server.app[STORE].database
    async with database.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(consultations)) == 0
        assert await conn.scalar(sa.select(sa.func.count()).select_from(bookings)) == 0


async def test_the_cut_off_and_who_may_change_a_booking(http: aiohttp.ClientSession) -> None:
    # Bookable from an hour ahead; changeable by the customer until 48 hours before.
    await publish(http, cutoff_hours=48)
    slots = await free(http, days=2)
    soon = slots[0]
    response = await book(http, soon, customer_email=None, customer_phone="+86 138 0013 8000")
    assert response.status == 201, await response.text()
    made = await response.json()
    path = f"/api/bookings/{made['booking']['id']}"
    customer = {"Authorization": f"Bearer {token_of(made['customer_link'])}"}
    async with http.delete(path, headers=customer) as r:
        assert await error_of(r) == (409, "booking-locked")
    # Another consultation's link, or none: not theirs.
    async with http.post("/api/consultations", json={"customer_name": "X"}, headers=STAFF) as r:
        other = await r.json()
    async with http.delete(
        path, headers={"Authorization": f"Bearer {token_of(other['customer_link'])}"}
    ) as r:
        assert r.status == 403
    async with http.delete(
        path, headers={"Authorization": f"Bearer {token_of(other['stylist_link'])}"}
    ) as r:
        assert r.status == 403
    async with http.delete(path) as r:
        assert r.status == 401
    async with http.delete(path, headers=STAFF) as r:
        assert r.status == 200


async def test_the_public_booking_endpoint_is_rate_limited(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    server: TestServer = await aiohttp_server(create_app(make_settings(tmp_path)))
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        await publish(http)
        statuses = []
        for _ in range(7):
            response = await book(http, "2020-01-01T00:00:00+00:00")
            statuses.append(response.status)
        assert statuses[:5] == [409] * 5
        assert statuses[5:] == [429, 429]
        assert (await response.json())["error"]["code"] == "rate-limited"


async def test_the_booking_email_carries_the_link_and_an_invitation(
    aiohttp_server: Callable[..., Any], tmp_path: Path, smtp: SmtpServer
) -> None:
    settings = make_settings(tmp_path, **emailing(smtp))
    server: TestServer = await aiohttp_server(create_app(settings))
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        await publish(http)
        start = a_week_ahead(await free(http))
        response = await book(http, start, customer_language="zh-CN")
        assert response.status == 201
        made = await response.json()
    [message] = await smtp.mailbox.wait(1)
    assert message["To"] == "li@example.cn"
    assert message["From"] == SALON
    assert message["Subject"].startswith("预约成功")
    assert made["customer_link"] in body_of(message)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    [event] = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == datetime.fromisoformat(start)
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=30)
    assert str(event["url"]) == made["customer_link"]
    assert str(event["uid"]) == f"{made['booking']['id']}@consult"


async def test_two_nodes_book_one_slot_at_once(
    aiohttp_server: Callable[..., Any], tmp_path: Path, database_url: str
) -> None:
    nodes: list[TestServer] = []
    for name in ("a", "b"):
        settings = node_settings(tmp_path, name, database_url=database_url)
        nodes.append(await aiohttp_server(create_app(settings)))
    async with (
        aiohttp.ClientSession(base_url=str(nodes[0].make_url(""))) as a,
        aiohttp.ClientSession(base_url=str(nodes[1].make_url(""))) as b,
    ):
        await publish(a)
        start = a_week_ahead(await free(b))
        for attempt in range(3):
            # The same slot, through both nodes at once (a new slot each round).
            slot = (datetime.fromisoformat(start) + timedelta(days=attempt)).isoformat()
            responses = await asyncio.gather(
                book(a, slot, customer_email=f"a{attempt}@example.com"),
                book(b, slot, customer_email=f"b{attempt}@example.com"),
            )
            assert sorted(r.status for r in responses) == [201, 409]
            [loser] = [r for r in responses if r.status == 409]
            assert (await loser.json())["error"]["code"] == "slot-taken"
    async with nodes[0].app[STORE].database.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(bookings)) == 3
        assert await conn.scalar(sa.select(sa.func.count()).select_from(consultations)) == 3
        assert await conn.scalar(sa.select(sa.func.count()).select_from(customers)) == 3


async def test_a_stylists_availability_books_them_and_stylists_see_only_theirs(
    http: aiohttp.ClientSession, server: TestServer
) -> None:
    """Issue 17 with 16: a booking of a stylist's times is assigned to them; a stylist lists
    their own and the unassigned bookings, not a colleague's."""
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    sam = await add_member(server.app, "stylist", "Sam")
    kim = await add_member(server.app, "stylist", "Kim")
    await publish(http)
    for member in (sam, kim):
        body = AVAILABILITY | {"resource": member.id}
        async with http.put("/api/availability", json=body, headers=staff) as r:
            assert r.status == 200, await r.text()
    # A name is no resource any more, nor an unknown account.
    for resource in ("Sam", "0" * 32):
        body = AVAILABILITY | {"resource": resource}
        async with http.put("/api/availability", json=body, headers=staff) as r:
            assert await error_of(r) == (400, "invalid-request")
    start = a_week_ahead(await free(http))
    made = {}
    for who, resource in (("salon", "salon"), ("sam", sam.id), ("kim", kim.id)):
        response = await book(http, start, resource=resource, customer_email=f"{who}@example.org")
        assert response.status == 201, await response.text()
        made[who] = (await response.json())["consultation"]["id"]
    assigned = {}
    for who, cid in made.items():
        async with http.get(f"/api/consultations/{cid}", headers=staff) as r:
            assigned[who] = (await r.json())["assigned_to"]
    assert assigned == {"salon": None, "sam": sam.id, "kim": kim.id}

    async def listed(headers: dict[str, str]) -> set[str]:
        async with http.get("/api/bookings", headers=headers) as r:
            assert r.status == 200, await r.text()
            return {b["consultation_id"] for b in (await r.json())["bookings"]}

    assert await listed(staff) == set(made.values())
    assert await listed(sam.bearer) == {made["salon"], made["sam"]}
    assert await listed(kim.bearer) == {made["salon"], made["kim"]}
    # Sam moves his customer's booking, then cancels it: both in the audit log, by him; Kim's
    # is not his to change.
    async with http.get("/api/bookings", headers=sam.bearer) as r:
        mine = next(b for b in (await r.json())["bookings"] if b["consultation_id"] == made["sam"])
    async with http.get("/api/bookings", headers=kim.bearer) as r:
        kims = next(b for b in (await r.json())["bookings"] if b["consultation_id"] == made["kim"])
    async with http.delete(f"/api/bookings/{kims['id']}", headers=sam.bearer) as r:
        assert r.status == 403
    later = next(s for s in await free(http) if s > start)
    async with http.post(
        f"/api/bookings/{mine['id']}/move", json={"start": later}, headers=sam.bearer
    ) as r:
        assert r.status == 200, await r.text()
    async with http.delete(f"/api/bookings/{mine['id']}", headers=sam.bearer) as r:
        assert r.status == 200, await r.text()
    found = await server.app[STORE].audit.entries(AuditFilter(subject=f"booking:{mine['id']}"))
    assert [(e.actor, e.action) for e in reversed(found.entries)] == [
        (f"api-key:{sam.id}", "moved"), (f"api-key:{sam.id}", "cancelled")
    ]  # fmt: skip
    detail = found.entries[0].detail or {}
    assert detail["consultation"] == made["sam"]
    assert datetime.fromisoformat(str(detail["start"])) == datetime.fromisoformat(later)
