"""A participant written only from the wire protocol (docs/protocol.md): websocket + aiortc."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from consult.media import internals

from . import wire
from .media import (
    SOURCES,
    PatternTrack,
    ToneTrack,
    audio_level,
    decode_pattern,
    is_waiting_card,
)


@dataclass(frozen=True)
class VideoSample:
    at: float  # time.monotonic() on arrival
    pattern: tuple[int, int] | None  # (source, frame number) drawn in it, if any
    width: int
    height: int
    card: bool  # the server's "waiting" card


@dataclass(frozen=True)
class RtpSample:
    at: float
    ssrc: int
    payload_type: int
    seq: int
    ts: int
    marker: int


@dataclass
class Received:
    video: list[VideoSample] = field(default_factory=list)
    audio_levels: list[float] = field(default_factory=list)
    #: Every RTP packet the client's receivers got (before aiortc's jitter buffer), by kind.
    rtp: dict[str, list[RtpSample]] = field(default_factory=lambda: {"audio": [], "video": []})


class CallClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws_url: str,
        role: str,
        *,
        video_size: tuple[int, int] = (320, 240),
        video_codecs: tuple[str, ...] = (),
        host_addresses: tuple[str, ...] = ("127.0.0.1",),
        use_ice_servers: bool = False,
    ) -> None:
        self.session = session
        self.ws_url = ws_url
        self.role = role
        self.video_size = video_size
        #: Offer only these video codecs (mime types, e.g. "video/H264"); empty: aiortc's own.
        self.video_codecs = video_codecs
        #: The addresses of our host candidates.
        self.host_addresses = host_addresses
        #: Use the welcome's ``ice_servers``, as a page does (else none: host candidates only).
        self.use_ice_servers = use_ice_servers
        #: Drop received RTP packets for which this returns True (simulated loss), by kind.
        self.drop_received: dict[str, Callable[[RtpPacket], bool]] = {}
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pc: RTCPeerConnection | None = None
        self.welcome: dict[str, Any] | None = None
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received = Received()
        self.offer_sent_at: float | None = None
        self.close_code: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: asyncio.Task[None] | None = None
        self.video_track: MediaStreamTrack | None = None

    async def connect(self, first: str | None = "welcome") -> dict[str, Any]:
        """Open the websocket and wait for its ``first`` message (``/ws``: the welcome,
        ``/ws/conversation``: ``conversation``; ``/ws/inbox`` sends none first)."""
        self.ws = await self.session.ws_connect(self.ws_url)
        self._reader = asyncio.ensure_future(self._read())
        self.welcome = await self.expect(first) if first is not None else {}
        return self.welcome

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self.messages.put(json.loads(msg.data))
        self.close_code = self.ws.close_code

    async def send(self, message: dict[str, Any] | str) -> None:
        assert self.ws is not None
        await self.ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def expect(self, type_: str, timeout: float = 10) -> dict[str, Any]:
        """The next message of ``type_``; other messages before it are dropped."""
        return await self.expect_any((type_,), timeout)

    async def expect_any(self, types: tuple[str, ...], timeout: float = 10) -> dict[str, Any]:
        """The next message of any of ``types``; other messages before it are dropped."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.messages.get()
                if message["type"] in types:
                    return message

    async def closed(self, timeout: float = 10) -> int | None:
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def start_media(
        self,
        video: MediaStreamTrack | None = None,
        *,
        audio: MediaStreamTrack | None = None,
        silenced: bool = False,
        wrong_fingerprint: bool = False,
    ) -> None:
        """Offer audio and video (complete, non-trickle) and apply the answer. ``silenced``:
        no packet of this connection reaches the network (``silence_media``) from the start;
        ``wrong_fingerprint``: the offer names another certificate, so ICE connects and the
        DTLS handshake fails (a connection that fails before it ever connected)."""
        servers = self.welcome["ice_servers"] if self.use_ice_servers and self.welcome else []
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[RTCIceServer(**server) for server in servers])
        )
        self.video_track = video or PatternTrack(SOURCES[self.role], *self.video_size)
        self.pc.addTrack(audio or ToneTrack())
        self.pc.addTrack(self.video_track)
        self.pc.on("track", self._on_track)
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video" and self.video_codecs:
                capabilities = RTCRtpSender.getCapabilities("video").codecs
                order = (*self.video_codecs, "video/rtx")
                transceiver.setCodecPreferences(
                    sorted(
                        (c for c in capabilities if c.mimeType in order),
                        key=lambda c: order.index(c.mimeType),
                    )
                )
            wire.intercept_received(
                transceiver.receiver, functools.partial(self._on_rtp, transceiver.kind)
            )
        with internals.host_addresses(self.host_addresses):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        if silenced:
            self.silence_media()
        self.offer_sent_at = time.monotonic()
        offer = self.pc.localDescription.sdp
        if wrong_fingerprint:
            offer = re.sub(
                r"(a=fingerprint:sha-256 )[0-9A-F:]+", r"\g<1>" + "00:" * 31 + "00", offer
            )
        await self.send({"type": "offer", "sdp": offer})
        answer = await self.expect("answer")
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    def _on_rtp(self, kind: str, packet: RtpPacket) -> bool:
        drop = self.drop_received.get(kind)
        if drop is not None and drop(packet):
            return False
        self.received.rtp[kind].append(
            RtpSample(
                time.monotonic(),
                packet.ssrc,
                packet.payload_type,
                packet.sequence_number,
                packet.timestamp,
                packet.marker,
            )
        )
        return True

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.received.video.append(
                        VideoSample(
                            time.monotonic(),
                            decode_pattern(frame),
                            frame.width,
                            frame.height,
                            is_waiting_card(frame),
                        )
                    )
                else:
                    self.received.audio_levels.append(audio_level(frame))
        except MediaStreamError:
            pass

    def partner_frames(self, partner: str, since: float = 0.0) -> list[tuple[float, int]]:
        source = SOURCES[partner]
        return [
            (s.at, s.pattern[1])
            for s in self.received.video
            if s.pattern and s.pattern[0] == source and s.at >= since
        ]

    def placeholder_frames(self, since: float = 0.0) -> int:
        return sum(1 for s in self.received.video if s.card and s.at >= since)

    async def wait_for(self, predicate: Any, timeout: float = 15) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)

    def selected_candidates(self) -> tuple[str, str] | None:
        """The types of the local and remote candidates media goes through ("host", "relay"...),
        once ICE has chosen; aioice has no public way to tell."""
        assert self.pc is not None
        transport = self.pc.getTransceivers()[0].receiver.transport.transport
        pair = transport._connection._nominated.get(1)
        return (pair.local_candidate.type, pair.remote_candidate.type) if pair else None

    def silence_media(self) -> None:
        """From now on nothing of this peer connection reaches the network or comes back from
        it (its UDP sockets stay open: no ICMP, no DTLS close), as when a network drops UDP
        while the websocket carries on. aioice has no public hook for it."""
        assert self.pc is not None
        for transceiver in self.pc.getTransceivers():
            connection = transceiver.receiver.transport.transport._connection
            for protocol in connection._protocols:
                protocol.datagram_received = lambda data, addr: None
                protocol.transport.sendto = lambda data, addr=None: None

    def stop_sending_media(self) -> None:
        """From now on this peer's RTP no longer leaves (its tracks as if frozen), while its
        RTCP, DTLS and STUN still do, and it still answers consent checks."""
        assert self.pc is not None
        for transceiver in self.pc.getTransceivers():
            connection = transceiver.receiver.transport.transport._connection
            for protocol in connection._protocols:
                send = protocol.transport.sendto

                def sendto(data: bytes, addr: Any = None, send: Any = send) -> None:
                    if 127 < data[0] < 192 and not 191 < data[1] < 224:
                        return  # RTP
                    send(data, addr)

                protocol.transport.sendto = sendto

    async def close_media(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def close(self) -> None:
        await self.close_media()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
