"""Chat over the websocket: stored before delivered, in order, idempotent, read receipts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.config import Settings

from .client import CallClient

pytestmark = pytest.mark.timeout(60)


def chats(welcome: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(m["seq"], m["from"], m["text"]) for m in welcome["history"] if m["type"] == "chat"]


async def test_messages_are_numbered_delivered_in_order_and_acknowledged(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await stylist.connect()
    for i, text in enumerate(["Hi!", "Something in nude?", "你好"]):
        await customer.send({"type": "chat", "text": text, "id": f"c{i}"})
    got = [await stylist.expect("chat") for _ in range(3)]
    acks = [await customer.expect("chat") for _ in range(3)]
    assert [(m["seq"], m["from"], m["text"], m["id"]) for m in got] == [
        (1, "customer", "Hi!", "c0"),
        (2, "customer", "Something in nude?", "c1"),
        (3, "customer", "你好", "c2"),
    ]
    assert [m["seq"] for m in acks] == [1, 2, 3]
    assert all(m["at"] for m in got)
    await stylist.send({"type": "chat", "text": "Yes", "id": "s0"})
    assert (await customer.expect("chat"))["seq"] == 4


async def test_a_resend_after_a_reconnect_is_not_stored_twice(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await stylist.connect()
    await customer.send({"type": "chat", "text": "Same again please", "id": "m-1"})
    first = await stylist.expect("chat")
    # The page lost its connection before it saw the acknowledgement, and sends it again.
    await customer.close()
    again: CallClient = clients("customer", consultation["customer_link"])
    welcome = await again.connect()
    assert chats(welcome) == [(1, "customer", "Same again please")]
    await again.send({"type": "chat", "text": "Same again please", "id": "m-1"})
    ack = await again.expect("chat")
    assert ack["seq"] == first["seq"] == 1
    await again.send({"type": "chat", "text": "and a top coat", "id": "m-2"})
    # The stylist sees the next message, never the duplicate.
    assert (await stylist.expect("chat"))["seq"] == 2


async def test_read_receipts_reach_the_sender_and_survive_a_reconnect(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await stylist.connect()
    for i in range(3):
        await customer.send({"type": "chat", "text": f"m{i}", "id": f"m{i}"})
    for _ in range(3):
        await stylist.expect("chat")
    await stylist.send({"type": "read", "seq": 2})
    assert await customer.expect("read") == {"type": "read", "seq": 2, "by": "stylist"}
    await stylist.send({"type": "read", "seq": 1})  # marks never go back
    assert (await customer.expect("read"))["seq"] == 2
    await stylist.send({"type": "read", "seq": 99})  # nor past the last message
    assert (await customer.expect("read"))["seq"] == 3
    await customer.close()
    again: CallClient = clients("customer", consultation["customer_link"])
    welcome = await again.connect()
    marks = [m for m in welcome["history"] if m["type"] == "read"]
    assert marks == [{"type": "read", "seq": 3, "by": "stylist"}]


async def test_chat_while_the_partner_is_away_and_after_a_server_restart(
    aiohttp_server: Callable[..., Any],
    server: TestServer,
    settings: Settings,
    clients: Any,
    consultation: dict[str, Any],
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    await customer.connect()
    await customer.send({"type": "chat", "text": "Are you there?", "id": "a"})
    assert (await customer.expect("chat"))["seq"] == 1
    await customer.close()
    await server.close()

    restarted: TestServer = await aiohttp_server(create_app(settings))
    token = consultation["stylist_link"].rsplit("/", 1)[1]
    stylist = CallClient(
        customer.session, str(restarted.make_url("/ws").with_query(token=token)), "stylist"
    )
    try:
        welcome = await stylist.connect()
        assert welcome["peer"] == "absent"
        assert chats(welcome) == [(1, "customer", "Are you there?")]
        await stylist.send({"type": "chat", "text": "Yes, see you at 3", "id": "b"})
        assert (await stylist.expect("chat"))["seq"] == 2
    finally:
        await stylist.close()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "chat", "text": "", "id": "x"},
        {"type": "chat", "text": "x" * 2001, "id": "x"},
        {"type": "chat", "text": "hi"},
        {"type": "chat", "text": "hi", "id": ""},
        {"type": "chat", "text": "hi", "id": "x" * 65},
        {"type": "chat", "text": 5, "id": "x"},
        {"type": "read", "seq": -1},
        {"type": "read", "seq": "3"},
    ],
)
async def test_bad_chat_messages_get_an_error_and_store_nothing(
    clients: Any, consultation: dict[str, Any], message: dict[str, Any]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    await customer.connect()
    await customer.send(message)
    assert (await customer.expect("error"))["code"] == "malformed"
    await customer.send({"type": "chat", "text": "still here", "id": "ok"})
    assert (await customer.expect("chat"))["seq"] == 1


async def test_the_record_holds_the_transcript(
    clients: Any, consultation: dict[str, Any], http: Any, staff: dict[str, str]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    await customer.connect()
    await customer.send({"type": "chat", "text": "Hello", "id": "h"})
    await customer.expect("chat")
    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        record = await r.json()
    assert [(m["seq"], m["from"], m["text"]) for m in record["messages"]] == [
        (1, "customer", "Hello")
    ]


async def test_a_photo_sent_in_the_chat_is_kept_like_a_still(
    clients: Any, consultation: dict[str, Any], http: Any
) -> None:
    import hashlib

    import cv2
    import numpy as np

    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await stylist.connect()
    _ok, jpeg = cv2.imencode(".jpg", np.full((300, 400, 3), (80, 120, 200), np.uint8))
    data = bytes(jpeg)
    token = consultation["customer_link"].rsplit("/", 1)[1]
    url = f"/api/consultations/{consultation['id']}/chat-photos"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
    async with http.post(url, params={"id": "p1"}, data=data, headers=headers) as r:
        assert r.status == 201, await r.text()
        sent = (await r.json())["message"]
    got = await stylist.expect("chat")
    assert got["seq"] == sent["seq"] == 1 and got["from"] == "customer"
    still = got["still"]
    assert (still["source"], still["width"], still["height"]) == ("chat", 400, 300)
    async with http.get(still["url"], params={"token": token}) as r:
        assert (
            hashlib.sha256(await r.read()).hexdigest()
            == still["sha256"]
            == hashlib.sha256(data).hexdigest()
        )
    # Sent again with the same id (a retry after a lost answer): one message, one still.
    async with http.post(url, params={"id": "p1"}, data=data, headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["message"]["seq"] == 1
    async with http.get(f"/api/consultations/{consultation['id']}", params={"token": token}) as r:
        record = await r.json()
    assert len(record["stills"]) == 1 and record["messages"][0]["still"]["id"] == still["id"]
    # The same limits and checks as a capture's photo.
    async with http.post(url, params={"id": "p2"}, data=data[:300], headers=headers) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "corrupt-image")
    async with http.post(url, data=data, headers=headers) as r:
        assert r.status == 400
    welcome = await CallClient(http, stylist.ws_url, "stylist").connect()
    assert [m.get("still", {}).get("id") for m in welcome["history"] if m["type"] == "chat"] == [
        still["id"]
    ]


async def test_a_flood_of_messages_is_rate_limited_and_the_connection_stays(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    await customer.connect()
    for i in range(150):
        await customer.send({"type": "read", "seq": i})
    assert (await customer.expect("error"))["code"] == "rate-limited"
    await asyncio.sleep(1.5)  # the bucket refills
    await customer.send({"type": "chat", "text": "sorry", "id": "calm"})
    ack = await customer.expect("chat")
    assert ack["text"] == "sorry"
