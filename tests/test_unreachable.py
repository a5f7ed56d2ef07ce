"""A participant whose media cannot reach the server (a network that drops UDP, no TURN):
both sides are told within the media timeout, the websocket stays (the chat works), and an
offer that gets through says so. Real aiortc peers; the blocked network is simulated in the
client (tests/test_turn.py drops UDP for real, in a network namespace)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from consult.appkeys import HUB
from consult.config import Settings

from .client import CallClient

pytestmark = pytest.mark.timeout(90)

UNREACHABLE = {"type": "media", "role": "customer", "state": "unreachable"}
CONNECTED = {"type": "media", "role": "customer", "state": "connected"}
STYLIST_CONNECTED = {"type": "media", "role": "stylist", "state": "connected"}


async def test_both_sides_are_told_and_a_new_offer_that_gets_through_clears_it(
    clients: Any, consultation: dict[str, Any]
) -> None:
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    customer: CallClient = clients("customer", consultation["customer_link"])
    await stylist.connect()
    await stylist.start_media()
    assert await stylist.expect("media") == STYLIST_CONNECTED
    await customer.connect()
    # The customer learns the stylist's media is fine as it joins.
    assert await customer.expect("media") == STYLIST_CONNECTED

    await customer.start_media(silenced=True)
    assert customer.offer_sent_at is not None
    assert await stylist.expect("media", timeout=30) == UNREACHABLE
    told_after = time.monotonic() - customer.offer_sent_at
    assert await customer.expect("media") == UNREACHABLE
    # Seconds, not the minute aioice takes to give up; and not before the timeout.
    assert Settings().media_timeout <= told_after < Settings().media_timeout + 5

    # The websocket carries on: the chat works, no media-failed close.
    await customer.send({"type": "chat", "text": "no video here", "id": "c1"})
    assert (await stylist.expect("chat"))["text"] == "no video here"
    assert customer.close_code is None

    # The customer moves to another network and offers again: media gets through.
    await customer.close_media()
    await customer.start_media()
    assert await stylist.expect("media") == CONNECTED
    assert await customer.expect("media") == CONNECTED
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 5)


async def test_a_stylist_who_joins_later_is_told(
    clients: Any, consultation: dict[str, Any]
) -> None:
    customer: CallClient = clients("customer", consultation["customer_link"])
    await customer.connect()
    await customer.start_media(silenced=True)
    assert await customer.expect("media", timeout=30) == UNREACHABLE

    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    assert (await stylist.connect())["peer"] == "present"
    assert await stylist.expect("media") == UNREACHABLE


async def test_a_connection_that_fails_before_it_ever_connected_keeps_the_websocket(
    clients: Any, consultation: dict[str, Any], server: Any
) -> None:
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    customer: CallClient = clients("customer", consultation["customer_link"])
    await stylist.connect()
    await customer.connect()
    await customer.start_media(wrong_fingerprint=True)
    assert customer.offer_sent_at is not None
    assert await stylist.expect("media") == UNREACHABLE
    # As it failed, not after the media timeout.
    assert time.monotonic() - customer.offer_sent_at < Settings().media_timeout
    assert await customer.expect("media") == UNREACHABLE
    await customer.wait_for(lambda: server.app[HUB].stats()["peers"] == 0)
    # Past the re-offer grace, no media-failed close: the chat still works.
    await asyncio.sleep(Settings().reoffer_grace + 1)
    await customer.send({"type": "chat", "text": "still here", "id": "c2"})
    assert (await stylist.expect("chat"))["text"] == "still here"
    assert customer.close_code is None
