"""Two participants in a call through the real server, and what tests ask of it: shared by the
test modules (a test module never imports another)."""

from __future__ import annotations

from typing import Any

import aiohttp
import cv2
import numpy as np
from aiohttp.test_utils import TestServer

from consult.appkeys import HUB
from consult.media.peer import ServerPeer

from .client import CallClient


def assert_live(frames: list[tuple[float, int]], minimum: int) -> None:
    numbers = [n for _, n in frames]
    assert len(numbers) >= minimum, f"only {len(numbers)} partner frames"
    assert numbers == sorted(numbers), "partner frames out of order"


async def in_call(clients: Any, consultation: dict[str, Any]) -> tuple[CallClient, CallClient]:
    """Customer first, then the stylist; returns once each has the other's video."""
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await customer.start_media()
    await stylist.connect()
    assert (await customer.expect("peer"))["state"] == "joined"
    await stylist.start_media()
    await customer.wait_for(lambda: len(customer.partner_frames("stylist")) >= 5)
    await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 5)
    return customer, stylist


async def agree_both(customer: CallClient, stylist: CallClient) -> None:
    """The stylist asks to record, both agree; returns once both are told it is on."""
    await stylist.send({"type": "record", "action": "ask"})
    for client in (customer, stylist):
        asked = await client.expect("recording")
        assert (asked["state"], asked["by"], asked["agreed"]) == ("asked", "stylist", [])
    await stylist.send({"type": "record", "action": "agree"})
    await customer.expect("recording")  # the stylist agreed
    await customer.send({"type": "record", "action": "agree"})
    for client in (customer, stylist):
        while (message := await client.expect("recording"))["state"] == "asked":
            pass
        assert message["state"] == "on"


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return bytes(data)


async def in_call_with(
    clients: Any, consultation: dict[str, Any], video: Any
) -> tuple[CallClient, CallClient]:
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await customer.start_media(video)
    await stylist.connect()
    await stylist.start_media()
    await stylist.wait_for(lambda: any(not s.card for s in stylist.received.video), 15)
    return customer, stylist


async def upload(
    http: aiohttp.ClientSession, url: str, token: str, body: bytes, kind: str = "image/png"
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": kind}
    async with http.post(url, data=body, headers=headers) as r:
        return r.status, await r.json()


def peer_of(server: TestServer, consultation: dict[str, Any], role: str) -> ServerPeer:
    call = server.app[HUB].call(consultation["id"])
    assert call is not None
    peer = call.forwarder.peer(role)  # type: ignore[arg-type]
    assert peer is not None
    return peer
