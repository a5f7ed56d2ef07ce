"""The conversation service: messages stored and delivered with no call, to every subscriber;
the conversation page's websocket (/ws/conversation); the away notice once per closed period."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.appkeys import BUS, CONVERSATIONS, STORE
from consult.conversation import AwayNoticed, Posted, ReadMoved, Subscription, away_period
from consult.recording.store import ChatMessage
from consult.salon import DAYS, Hours, Salon

from .client import CallClient
from .conftest import token_of

pytestmark = pytest.mark.timeout(60)

Open = Callable[[str, str], CallClient]


@pytest.fixture
def conversation_clients(server: TestServer, http: aiohttp.ClientSession, clients: Any) -> Open:
    """A side's conversation page with no call: ``/ws/conversation`` (closed with the test)."""

    def make(role: str, link: str) -> CallClient:
        client: CallClient = clients(role, link)
        client.ws_url = str(server.make_url("/ws/conversation").with_query(token=token_of(link)))
        return client

    return make


def test_the_away_period_is_named_by_the_next_opening() -> None:
    now = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # a Monday, 20:00
    salon = Salon(Hours("UTC", {"mon": [(time(9), time(18))], "tue": [(time(9), time(18))]}))
    assert away_period(salon, now) == "2026-12-01T09:00:00+00:00"
    assert away_period(salon, now.replace(hour=10)) is None
    # The same closed night is one period; the next night another.
    assert away_period(salon, now + timedelta(hours=3)) == away_period(salon, now)
    assert away_period(salon, now + timedelta(days=1)) != away_period(salon, now)
    assert away_period(Salon(), now) is None  # no hours: always open
    never = Salon(Hours("UTC", {"mon": []}))
    assert away_period(never, now) is None  # no interval at all: not configured, open


def test_who_gets_which_event() -> None:
    from consult.conversation import LinksRevoked, Subscription

    customer, staff = Subscription("a", "customer"), Subscription(None, "staff")
    away = AwayNoticed("a", "Closed", None)
    read = ReadMoved("a", "stylist", 3, 0)
    assert customer.wants(away) and customer.wants(read) and customer.wants(LinksRevoked("a"))
    assert not customer.wants(ReadMoved("b", "stylist", 3, 0))  # another conversation
    assert staff.wants(read) and staff.wants(ReadMoved("b", "stylist", 1, 0))
    assert not staff.wants(away)  # the customer's notice is the customer's
    assert not Subscription("a", "stylist").wants(away)


async def test_a_customer_writes_with_no_call_and_the_stylist_reads_it_later(
    conversation_clients: Open, clients: Any, consultation: dict[str, Any]
) -> None:
    customer = conversation_clients("customer", consultation["customer_link"])
    opened = await customer.connect("conversation")
    assert opened["role"] == "customer" and opened["history"] == []
    assert (
        opened["consultation"]["id"] == consultation["id"] and "notes" not in opened["consultation"]
    )
    await customer.send({"type": "chat", "text": "Can I book a refill?", "id": "c1"})
    ack = await customer.expect("chat")
    assert (ack["seq"], ack["from"], ack["id"]) == (1, "customer", "c1")
    # Only chat and read on this socket.
    await customer.send({"type": "offer", "sdp": "v=0"})
    assert (await customer.expect("error"))["code"] == "unknown-type"

    # The stylist's console (a call) joins later and has it; its answer reaches the page.
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    welcome = await stylist.connect()
    assert [m["text"] for m in welcome["history"] if m["type"] == "chat"] == [
        "Can I book a refill?"
    ]
    await stylist.send({"type": "read", "seq": 1})
    assert await customer.expect("read") == {"type": "read", "seq": 1, "by": "stylist"}
    await stylist.send({"type": "chat", "text": "Yes, Tuesday 3pm?", "id": "s1"})
    answer = await customer.expect("chat")
    assert (answer["seq"], answer["from"], answer["text"]) == (2, "stylist", "Yes, Tuesday 3pm?")
    assert (await stylist.expect("chat"))["seq"] == 2  # its own copy: the acknowledgement
    # A resend after a reconnect: acknowledged, stored once.
    again = conversation_clients("customer", consultation["customer_link"])
    reopened = await again.connect("conversation")
    assert [m["seq"] for m in reopened["history"] if m["type"] == "chat"] == [1, 2]
    await again.send({"type": "chat", "text": "Can I book a refill?", "id": "c1"})
    assert (await again.expect("chat"))["seq"] == 1
    await again.send({"type": "chat", "text": "Tuesday is fine", "id": "c2"})
    assert (await stylist.expect("chat"))["seq"] == 3


async def test_revoked_links_end_the_conversation_page(
    conversation_clients: Open, consultation: dict[str, Any], http: Any, staff: dict[str, str]
) -> None:
    customer = conversation_clients("customer", consultation["customer_link"])
    await customer.connect("conversation")
    async with http.post(
        f"/api/consultations/{consultation['id']}/revoke-links", headers=staff
    ) as r:
        assert r.status == 200
    assert (await customer.expect("error"))["code"] == "revoked"
    assert await customer.closed() == 4403


async def test_bad_messages_on_the_conversation_socket_get_errors(
    conversation_clients: Open, consultation: dict[str, Any], server: TestServer, http: Any
) -> None:
    customer = conversation_clients("customer", consultation["customer_link"])
    await customer.connect("conversation")
    for bad in ("not json", {"type": "chat", "text": ""}, {"type": "read", "seq": -2}):
        await customer.send(bad)
        assert (await customer.expect("error"))["code"] == "malformed"
    for i in range(150):
        await customer.send({"type": "read", "seq": i})
    assert (await customer.expect("error"))["code"] == "rate-limited"
    # A link that is not valid: told, and closed like the call's socket.
    ws = await http.ws_connect(server.make_url("/ws/conversation").with_query(token="nope"))
    assert (await ws.receive_json())["code"] == "invalid-token"
    await ws.receive()
    assert ws.close_code == 4401


async def test_subscribers_get_events_and_who_was_present(
    server: TestServer, consultation: dict[str, Any], conversation_clients: Open
) -> None:
    """What 15C's "a staff message posted while the customer is away" hook reads: ``present``."""
    conversations = server.app[CONVERSATIONS]
    cid = consultation["id"]
    async with conversations.subscribe(None, "staff") as everything:
        posted = await conversations.post(cid, "stylist", "s1", "Hello?")
        event = await asyncio.wait_for(anext(everything), 5)
        assert isinstance(event, Posted) and event == posted
        assert posted.new and "customer" not in posted.present and posted.unread == 0

        customer = conversation_clients("customer", consultation["customer_link"])
        await customer.connect("conversation")
        posted = await conversations.post(cid, "stylist", "s2", "Are you there?")
        assert posted.present == frozenset({"customer"})
        assert (await customer.expect("chat"))["text"] == "Are you there?"
        assert await asyncio.wait_for(anext(everything), 5) == posted

        await customer.send({"type": "chat", "text": "Yes!", "id": "c1"})
        event = await asyncio.wait_for(anext(everything), 5)
        assert isinstance(event, Posted) and event.unread == 1
        moved = await conversations.read(cid, "stylist", 3)
        # Three messages and a read: the summary's fourth version.
        assert moved == ReadMoved(cid, "stylist", 3, 0, version=4)
        assert await asyncio.wait_for(anext(everything), 5) == moved
        # Sent again: returned, not delivered again (the next event is the next message).
        again = await conversations.post(cid, "stylist", "s2", "Are you there?")
        assert not again.new and again.message.seq == 2
        following = await conversations.post(cid, "stylist", "s3", "See you")
        assert await asyncio.wait_for(anext(everything), 5) == following


async def _events_until(subscription: Any, seq: int) -> list[Any]:
    """The subscription's events up to the message numbered ``seq``."""
    events = []
    while not (events and isinstance(events[-1], Posted) and events[-1].message.seq == seq):
        events.append(await asyncio.wait_for(anext(subscription), 5))
    return events


async def test_the_away_notice_comes_once_per_closed_period(
    http: Any,
    staff: dict[str, str],
    server: TestServer,
    consultation: dict[str, Any],
    conversation_clients: Open,
) -> None:
    other_day = DAYS[(datetime.now(UTC) + timedelta(days=2)).weekday()]
    body = {"timezone": "UTC", "hours": {other_day: [["09:00", "10:00"]]},
            "away_message": "Closed, back soon."}  # fmt: skip
    async with http.put("/api/salon", json=body, headers=staff) as r:
        assert r.status == 200
    customer = conversation_clients("customer", consultation["customer_link"])
    opened = await customer.connect("conversation")
    assert opened["salon"]["open"] is False
    async with server.app[CONVERSATIONS].subscribe(consultation["id"], "staff") as staff_side:
        await customer.send({"type": "chat", "text": "Hello?", "id": "1"})
        await customer.expect("chat")
        away = await customer.expect("away")
        assert away["message"] == "Closed, back soon." and away["next_open"]
        await customer.send({"type": "chat", "text": "Anyone?", "id": "2"})
        await customer.expect("chat")
        await customer.send({"type": "read", "seq": 2})
        await customer.expect("read")
        assert customer.messages.empty()  # no second notice in the same closed period
        # Staff never get the customer's notice.
        events = await _events_until(staff_side, 2)
        assert [type(e) for e in events] == [Posted, Posted]
        assert not any(isinstance(e, AwayNoticed) for e in events)


async def test_shutdown_closes_conversation_and_inbox_sockets_with_going_away(
    conversation_clients: Open,
    consultation: dict[str, Any],
    server: TestServer,
    http: Any,
    staff: dict[str, str],
) -> None:
    customer = conversation_clients("customer", consultation["customer_link"])
    await customer.connect("conversation")
    async with http.post("/api/session", json={"staff_key": staff["Authorization"][7:]}) as r:
        assert r.status == 200
    inbox = CallClient(http, str(server.make_url("/ws/inbox")), "staff")
    await inbox.connect(None)
    await server.close()
    assert await customer.closed() == 1001
    assert await inbox.closed() == 1001


def _posted(seq: int, *, here: bool = True, at: datetime | None = None) -> Posted:
    message = ChatMessage("c1", seq, f"m{seq}", "customer", "hi", at or datetime.now(UTC))
    return Posted(message, None, True, 0, frozenset(), here=here)


async def _queued(subscription: Subscription) -> list[int]:
    """The messages queued for the subscription (which ends)."""
    subscription.end()
    return [e.message.seq async for e in subscription if isinstance(e, Posted)]


async def test_a_subscriber_gets_each_message_once_from_where_it_is() -> None:
    page = Subscription("c1", "customer")
    page.start_after(2)  # its history
    for seq in (1, 2, 3, 3, 4, 2):
        page.offer(_posted(seq))
    assert page.cursor("c1") == 4
    # Its history read late (what it holds was delivered already): the place never goes back.
    page.start_after(3)
    assert page.cursor("c1") == 4
    assert await _queued(page) == [3, 4]


async def test_the_inbox_is_not_told_again_of_what_was_there_before_it_opened() -> None:
    inbox = Subscription(None, "staff")
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    # Read again after a link to another node was made: stored before the inbox opened.
    inbox.offer(_posted(7, here=False, at=long_ago))
    assert inbox.cursor("c1") is None
    # A new message (here, or read after a hint) is its first of that conversation.
    inbox.offer(_posted(8, here=False))
    inbox.offer(_posted(9))
    assert await _queued(inbox) == [8, 9]


async def test_messages_posted_at_once_reach_a_subscriber_in_order_once(
    server: TestServer, consultation: dict[str, Any]
) -> None:
    """Concurrent posts finish out of order: a subscriber that sees a later one first is
    handed the earlier ones from the store, and not again when their own post delivers them."""
    conversations = server.app[CONVERSATIONS]
    cid = consultation["id"]
    async with conversations.subscribe(cid, "stylist") as page:
        await conversations.history(cid, page)
        await asyncio.gather(
            *(conversations.post(cid, "customer", f"c{i}", f"hi {i}") for i in range(30))
        )
        got = [await asyncio.wait_for(anext(page), 5) for _ in range(30)]
        assert [e.message.seq for e in got if isinstance(e, Posted)] == list(range(1, 31))
        await conversations.post(cid, "stylist", "s", "and one more")
        following = await asyncio.wait_for(anext(page), 5)
        assert isinstance(following, Posted) and following.message.seq == 31


async def test_a_node_alone_shares_nothing(
    server: TestServer, consultation: dict[str, Any], conversation_clients: Open
) -> None:
    """No other live node: no link, no hint, no presence row; who is present is this node's."""
    store, conversations = server.app[STORE], server.app[CONVERSATIONS]
    customer = conversation_clients("customer", consultation["customer_link"])
    await customer.connect("conversation")
    posted = await conversations.post(consultation["id"], "stylist", "s1", "Hello")
    assert posted.present == frozenset({"customer"})
    assert not server.app[BUS].peered and server.app[BUS].links() == (0, 0)
    assert (
        await store.presence.elsewhere(consultation["id"], "elsewhere", datetime.now(UTC)) == set()
    )
