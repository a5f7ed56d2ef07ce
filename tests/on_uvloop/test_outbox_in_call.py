"""The outbox (consult/media/outbox.py) in a call through the server, on uvloop as the service
runs: asyncio's own loop reads one datagram per turn, so a frame's packets would never meet
in an outbox there."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import uvloop
from aiohttp.test_utils import TestServer

from consult.media.forward import RelayProtocol

from ..calls import in_call_with, peer_of
from ..fake_camera import HANDS, load_photo
from ..media import PhotoTrack

pytestmark = pytest.mark.timeout(90)


def relay_of(
    server: TestServer, consultation: dict[str, Any], role: str, kind: str
) -> RelayProtocol:
    return peer_of(server, consultation, role).relays[kind]  # type: ignore[index]


async def test_a_frames_packets_leave_in_one_system_call_and_the_socket_closes_with_the_call(
    clients: Any, consultation: dict[str, Any], server: TestServer
) -> None:
    """The outbox (consult/media/outbox.py) sends what one turn of the loop forwarded to a
    peer in as few calls as GSO allows: aiortc's senders, like browsers, put a frame's packets
    on the wire together. The peer's audio and video share it (BUNDLE), and its socket (a dup
    of aioice's) is closed when the peer's connection is."""
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    hand = load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg")
    customer, stylist = await in_call_with(clients, consultation, PhotoTrack(hand, 640, 480))
    video = relay_of(server, consultation, "stylist", "video")
    audio = relay_of(server, consultation, "stylist", "audio")
    outbox = video.outbox
    assert outbox is not None and audio.outbox is outbox
    before = outbox.datagrams, outbox.sends
    await asyncio.sleep(2)
    datagrams, sends = outbox.datagrams - before[0], outbox.sends - before[1]
    # The customer's frames are several packets each, and each frame takes one send.
    assert video.packets_sent - before[0] > 100
    assert outbox.gso
    assert sends < 0.8 * datagrams, f"{datagrams} datagrams in {sends} sends"
    await stylist.send({"type": "bye"})
    await stylist.closed()
    while (await customer.expect("peer"))["state"] != "left":
        pass
    deadline = time.monotonic() + 10
    while outbox._socket.fileno() != -1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert outbox._socket.fileno() == -1
