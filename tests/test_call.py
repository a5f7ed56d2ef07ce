"""A call through the real server: two aiortc participants over loopback."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from .calls import assert_live, in_call
from .client import CallClient

pytestmark = pytest.mark.timeout(90)


async def test_both_directions_carry_the_partners_frames(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])

    welcome = await customer.connect()
    assert welcome["role"] == "customer"
    assert welcome["peer"] == "absent"
    assert welcome["ice_servers"] == []
    assert welcome["consultation"]["id"] == consultation["id"]
    await customer.start_media()

    # Alone, the customer gets the placeholder card, not silence on the wire.
    await customer.wait_for(lambda: customer.placeholder_frames() >= 3)
    assert customer.partner_frames("stylist") == []

    welcome = await stylist.connect()
    assert welcome["peer"] == "present"
    assert (await customer.expect("peer"))["state"] == "joined"
    await stylist.start_media()

    await customer.wait_for(lambda: len(customer.partner_frames("stylist")) >= 30)
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 30)
    assert_live(customer.partner_frames("stylist"), 30)
    assert_live(stylist.partner_frames("customer"), 30)
    # The partner's audio (a tone) arrives too, not just the server's silence.
    await customer.wait_for(lambda: max(customer.received.audio_levels, default=0) > 1000)
    await stylist.wait_for(lambda: max(stylist.received.audio_levels, default=0) > 1000)
    # Nobody ever receives their own video back.
    assert customer.partner_frames("customer") == []
    assert stylist.partner_frames("stylist") == []


async def test_leave_and_rejoin_switch_back_to_placeholder_and_partner(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer, stylist = await in_call(clients, consultation)

    await stylist.send({"type": "bye"})
    assert await stylist.closed() == 1000
    await stylist.close_media()
    assert (await customer.expect("peer"))["state"] == "left"
    left_at = time.monotonic()
    await customer.wait_for(lambda: customer.placeholder_frames(since=left_at) >= 3)

    again: CallClient = clients("stylist", consultation["stylist_link"])
    assert (await again.connect())["peer"] == "present"
    assert (await customer.expect("peer"))["state"] == "joined"
    rejoined_at = time.monotonic()
    await again.start_media()
    await customer.wait_for(lambda: len(customer.partner_frames("stylist", rejoined_at)) >= 10)
    await again.wait_for(lambda: len(again.partner_frames("customer")) >= 10)
    # The rejoined stylist's video restarts its own numbering: it is the new stream.
    first_new = customer.partner_frames("stylist", rejoined_at)[0][1]
    assert first_new < 100


async def test_second_connection_for_a_role_replaces_the_first(
    clients: Any, consultation: dict[str, Any]
) -> None:
    first: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await first.connect()
    await first.start_media()
    await stylist.connect()
    await stylist.start_media()
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 5)

    second: CallClient = clients("customer", consultation["customer_link"])
    assert (await second.connect())["peer"] == "present"
    error = await first.expect("error")
    assert error["code"] == "replaced"
    assert await first.closed() == 4409
    switched_at = time.monotonic()
    await second.start_media()
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer", switched_at)) >= 10)
    await second.wait_for(lambda: len(second.partner_frames("stylist")) >= 10)


async def test_re_offer_replaces_the_peer_on_the_same_connection(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer, stylist = await in_call(clients, consultation)

    await customer.close_media()
    again_at = time.monotonic()
    await customer.start_media()
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer", again_at)) >= 10)
    await customer.wait_for(lambda: len(customer.partner_frames("stylist", again_at)) >= 10)


async def test_bad_input_gets_an_error_and_the_call_goes_on(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer, stylist = await in_call(clients, consultation)

    cases = [
        ("{not json", "malformed"),
        ("[1, 2, 3]", "malformed"),
        ('{"type": "offer"}', "malformed"),
        ('{"type": "offer", "sdp": 42}', "malformed"),
        ('{"type": "teleport"}', "unknown-type"),
        ('{"type": "offer", "sdp": "v=0\\r\\nthis is not sdp"}', "invalid-sdp"),
        ('{"type": "offer", "sdp": "garbage"}', "invalid-sdp"),
        ('{"type": "chat", "text": "' + "x" * 70_000 + '"}', "too-large"),
    ]
    for raw, code in cases:
        await customer.send(raw)
        error = await customer.expect("error")
        assert error["code"] == code, (raw[:40], error)

    # Still connected, and the media never stopped.
    after = time.monotonic()
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer", after)) >= 10)
    await customer.wait_for(lambda: len(customer.partner_frames("stylist", after)) >= 10)
    assert customer.ws is not None and not customer.ws.closed


async def test_bad_tokens_get_an_error_and_are_closed(
    clients: Any, consultation: dict[str, Any]
) -> None:
    for token in ("", "nope", "x" * 1000):
        client: CallClient = clients("customer", f"http://x/c/{token}")
        client.ws_url = client.ws_url.split("?")[0] + (f"?token={token}" if token else "")
        client.ws = await client.session.ws_connect(client.ws_url)
        client._reader = asyncio.ensure_future(client._read())
        error = await client.expect("error")
        assert error["code"] == "invalid-token"
        assert await client.closed() == 4401


async def test_peer_left_when_partner_vanishes_without_bye(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer, stylist = await in_call(clients, consultation)
    # The stylist's transport goes away without a goodbye.
    assert stylist.ws is not None
    stylist.ws._response.connection.transport.abort()  # type: ignore[union-attr]
    await stylist.close_media()
    assert (await customer.expect("peer", timeout=15))["state"] == "left"
    gone_at = time.monotonic()
    await customer.wait_for(lambda: customer.placeholder_frames(since=gone_at) >= 3)


async def test_revoking_links_disconnects_participants(
    clients: Any, consultation: dict[str, Any], http: Any, staff: dict[str, str]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    await customer.connect()
    await customer.start_media()
    async with http.post(
        f"/api/consultations/{consultation['id']}/revoke-links", headers=staff
    ) as response:
        fresh = await response.json()
    assert (await customer.expect("error"))["code"] == "revoked"
    assert await customer.closed() == 4403
    again: CallClient = clients("customer", fresh["customer_link"])
    assert (await again.connect())["role"] == "customer"


async def test_status_follows_the_room(
    clients: Any, consultation: dict[str, Any], http: Any, staff: dict[str, str]
) -> None:
    async def status() -> str:
        async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
            return str((await r.json())["status"])

    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    assert await status() == "open"
    await stylist.connect()
    assert await status() == "live"
    await stylist.send({"type": "bye"})
    await customer.expect("peer")
    await customer.expect("peer")
    assert await status() == "open"


async def test_shutdown_closes_websockets_with_going_away_and_peers(
    clients: Any, consultation: dict[str, Any], server: Any
) -> None:
    customer, stylist = await in_call(clients, consultation)
    await server.close()
    assert await customer.closed() == 1001
    assert await stylist.closed() == 1001
    # The server's peers are closed: the clients' connections see the other end go away.
    assert customer.pc is not None
    await customer.wait_for(lambda: customer.pc.connectionState in ("failed", "closed"), 60)


async def test_a_huge_message_closes_only_that_connection(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await stylist.connect()
    await customer.send('{"type": "bye", "x": "' + "x" * 300_000 + '"}')
    assert await customer.closed() == 1009  # aiohttp's limit: never read into memory
    assert (await stylist.expect("peer"))["state"] == "left"
    again: CallClient = clients("customer", consultation["customer_link"])
    assert (await again.connect())["peer"] == "present"


async def test_media_that_ends_without_a_new_offer_disconnects_with_media_failed(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer, stylist = await in_call(clients, consultation)
    # The stylist's peer connection ends (DTLS close) while its websocket stays up.
    await stylist.close_media()
    ended = time.monotonic()
    await customer.wait_for(lambda: customer.placeholder_frames(since=ended) >= 1)
    assert (await stylist.expect("error"))["code"] == "media-failed"
    assert await stylist.closed() == 4410
    assert time.monotonic() - ended >= 2.5  # it had its chance to offer again
    assert (await customer.expect("peer"))["state"] == "left"


async def test_the_stylist_asks_for_light_and_sees_the_customers_upload(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer, stylist = await in_call(clients, consultation)
    await stylist.send({"type": "ask", "what": "light"})
    assert await customer.expect("ask") == {"type": "ask", "what": "light"}
    await stylist.send({"type": "ask", "what": "closer"})
    assert (await customer.expect("ask"))["what"] == "closer"
    # What the customer's page measures of its upload reaches the stylist as it was sent.
    video = {"width": 1280, "height": 720, "fps": 30.0, "kbps": 2500.0, "loss": 0.0,
             "limit": "none"}  # fmt: skip
    await customer.send({"type": "stats", "video": video, "rtt_ms": 12.0})
    stats = await stylist.expect("upload-stats")
    assert (stats["video"], stats["rtt_ms"]) == (video, 12.0)
    assert stats["at"]
    # A malformed report is an error, and the call goes on.
    await customer.send({"type": "stats", "video": video | {"loss": 7}})
    assert (await customer.expect("error"))["code"] == "malformed"
    await customer.send({"type": "stats", "video": video, "rtt_ms": None})
    assert (await stylist.expect("upload-stats"))["rtt_ms"] is None
    # Asking is the stylist's; nobody there to ask is an error.
    await customer.send({"type": "ask", "what": "light"})
    assert (await customer.expect("error"))["code"] == "unknown-type"
    await customer.close()
    await stylist.expect("peer")
    await stylist.send({"type": "ask", "what": "light"})
    assert (await stylist.expect("error"))["code"] == "no-customer"
