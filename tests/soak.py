"""Join/leave cycles against a running server, for scripts/soak.py and the leak test.

Each cycle is a customer that connects, offers, waits until its media is connected, says bye
and closes, against a stylist who stays in the call: the server builds and tears down a peer,
its readers and the stylist's switch to the customer and back each time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from consult.media.internals import host_addresses

__all__ = ["SoakResult", "metrics", "run_cycles"]


@dataclass
class SoakResult:
    cycles: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def joins_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0


async def one_cycle(session: aiohttp.ClientSession, ws_url: str) -> None:
    async with session.ws_connect(ws_url) as ws:
        welcome = await ws.receive_json(timeout=10)
        assert welcome["type"] == "welcome", welcome
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sink = MediaBlackhole()  # read what the server sends: never leave a track unread
        pc.on("track", sink.addTrack)
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                connected.set()

        try:
            pc.addTrack(AudioStreamTrack())
            pc.addTrack(VideoStreamTrack())
            with host_addresses(["127.0.0.1"]):
                await pc.setLocalDescription(await pc.createOffer())
            await ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
            while True:
                message = await ws.receive_json(timeout=10)
                if message["type"] == "answer":
                    break
            await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))
            await sink.start()
            await asyncio.wait_for(connected.wait(), 10)
            await ws.send_json({"type": "bye"})
        finally:
            await sink.stop()
            await pc.close()


async def run_cycles(
    session: aiohttp.ClientSession, ws_urls: list[str], cycles: int
) -> SoakResult:
    """``cycles`` join/leave cycles spread over the consultations of ``ws_urls`` (customer
    links), one at a time per consultation, all consultations at once."""
    result = SoakResult()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(cycles):
        queue.put_nowait(i)

    async def worker(ws_url: str) -> None:
        while not queue.empty():
            queue.get_nowait()
            try:
                await one_cycle(session, ws_url)
                result.cycles += 1
            except Exception as exc:  # a soak counts failures, it does not stop on them
                result.errors.append(f"{type(exc).__name__}: {exc}")

    start = time.monotonic()
    await asyncio.gather(*(worker(url) for url in ws_urls))
    result.seconds = time.monotonic() - start
    return result


async def metrics(session: aiohttp.ClientSession, staff_key: str) -> dict[str, float]:
    """The server's /metrics as {name: value} (unlabelled samples only)."""
    async with session.get("/metrics", headers={"Authorization": f"Bearer {staff_key}"}) as r:
        text = await r.text()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values
