"""The load of `scripts/bench_calls.py`: what a participant receives, measured from RTP alone
(``Stream``), and the cheap participant (``RawLeg``) that lets one core drive a whole core of
server.

A ``RawLeg`` is a real WebRTC participant for the server: aiortc makes its connection (offer,
ICE, DTLS: once per leg, as a browser would), and from then on the leg does its media itself.
It sends its clip as SRTP it protects with the DTLS-negotiated keys (pylibsrtp, aiortc's own
sessions), straight from the ICE pair's UDP socket: VP8 packetised as browsers do (payload
descriptor with a 15-bit picture id, packets of at most 1200 bytes cut as libwebrtc cuts them
(equal, the last few one byte larger), the marker on a frame's last one, mid and abs-send-time
extensions, a frame's packets sent together as libwebrtc's pacer bursts them) and Opus every
20 ms with its audio level.
What arrives is read before aioice and aiortc see it: STUN and DTLS go on to aioice (consent
checks are answered), SRTP is unprotected and only its 12-byte header is read, RTCP is dropped
(like the aiortc load, this load answers no NACK or PLI: its media is pre-encoded).
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import pylibsrtp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import HeaderExtensions, RtpPacket

from consult.media import internals
from consult.media.packets import vp8_frame_data
from tests import wire

FPS = 30
#: Pre-encoded frames (5 s); a frame's hash names it within a loop.
LOOP = 150
#: The most VP8 bitstream one packet carries (libwebrtc splits a frame into equal packets).
VP8_CHUNK = 1200
_HEADER = struct.Struct("!BBHII")
_EXTENSION = struct.Struct("!HH")
#: VP8 payload descriptor: X, S on a frame's first packet; I; a 15-bit picture id.
_DESCRIPTOR = struct.Struct("!BBH")


@dataclass
class Clip:
    frames: list[bytes]  # VP8 frames, in order
    index: dict[str, int]  # sha1 of a frame's bytes -> its number
    #: Each frame split as a sender packetises it (filled on first use).
    chunks: list[list[bytes]] = field(default_factory=list)

    def packets(self, number: int) -> list[bytes]:
        if not self.chunks:
            self.chunks = [split_about_equally(frame) for frame in self.frames]
        return self.chunks[number]


def split_about_equally(frame: bytes, most: int = VP8_CHUNK) -> list[bytes]:
    """``frame`` in as few packets of at most ``most`` bytes as it takes, as libwebrtc's
    ``RtpPacketizer::SplitAboutEqually`` cuts it: equal, but the last ``len % count`` one
    byte larger (so a frame's datagrams are of two sizes, as a browser's are)."""
    count = -(-len(frame) // most)
    size, larger = divmod(len(frame), count)
    chunks, at = [], 0
    for i in range(count):
        end = at + size + (1 if i >= count - larger else 0)
        chunks.append(frame[at:end])
        at = end
    return chunks


@dataclass
class Stream:
    """What one participant receives of one kind, measured from RTP alone: frames are
    reassembled from their packets (by timestamp, up to the marker) and recognised by the hash
    of their bitstream; the sender's send time of that frame gives the latency."""

    clip: Clip | None = None
    sent_at: dict[int, float] | None = None
    measuring: bool = False
    frames: int = 0
    completed: int = 0
    unknown: int = 0
    latencies: list[float] = field(default_factory=list)
    seqs: set[int] = field(default_factory=set)
    _pending: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)
    _base: int | None = None
    _last: int = 0
    _ssrc: int | None = None

    def unwrap(self, seq: int) -> int:
        if self._base is None:
            self._base, self._last = seq, seq
            return seq
        delta = ((seq - (self._last & 0xFFFF) + 0x8000) & 0xFFFF) - 0x8000
        self._last += delta
        return self._last

    def add(self, ssrc: int, sequence: int, timestamp: int, marker: int, payload: bytes) -> None:
        if self._ssrc is None:
            self._ssrc = ssrc
        if ssrc != self._ssrc:
            return  # RTX
        seq = self.unwrap(sequence)
        if self.measuring:
            self.seqs.add(seq)
        if self.clip is None:
            return
        data = vp8_frame_data(payload)
        if data is None:
            return
        self._pending.setdefault(timestamp, []).append((seq, data))
        if marker:
            parts = self._pending.pop(timestamp)
            if len(self._pending) > 60:
                self._pending.clear()
            frame = b"".join(d for _, d in sorted(parts))
            number = self.clip.index.get(hashlib.sha1(frame).hexdigest())
            if not self.measuring:
                return
            self.completed += 1
            if number is None:
                self.unknown += 1
                return
            self.frames += 1
            sent = self.sent_at.get(number) if self.sent_at is not None else None
            if sent is not None:
                self.latencies.append((time.monotonic() - sent) * 1000)

    def add_packet(self, packet: RtpPacket) -> bool:
        """The aiortc load's receivers: measure ``packet``, then drop it (False): nothing is
        depacketised or decoded."""
        self.add(packet.ssrc, packet.sequence_number, packet.timestamp, packet.marker,
                 packet.payload)  # fmt: skip
        return False

    def lost(self) -> tuple[int, int]:
        if not self.seqs:
            return 0, 0
        expected = max(self.seqs) - min(self.seqs) + 1
        return expected - len(self.seqs), expected


class _Idle(MediaStreamTrack):
    """A track that never gives a frame: aiortc's sender sends nothing of its own."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        await asyncio.get_running_loop().create_future()


class LoopbackLeg:
    """A load participant's aiortc connection: offered and answered on loopback only, as the
    benchmarks never send a packet off the machine. ``_negotiated`` runs once both
    descriptions are set (a leg that does its own media starts it there)."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

    async def offer(self) -> str:
        with internals.host_addresses(["127.0.0.1"]):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        with internals.host_addresses(["127.0.0.1"]):
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._negotiated()
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self._negotiated()

    def _negotiated(self) -> None:
        pass


class RawLeg(LoopbackLeg):
    """One participant of the cheap load (the module's docstring)."""

    def __init__(self, clip: Clip, tone: list[bytes]) -> None:
        super().__init__()
        self.clip = clip
        self.tone = tone
        #: When each frame of the clip last went out (its first packet): the latency's start.
        self.sent_at: dict[int, float] = {}
        self.video = Stream()
        self.audio = Stream()
        self.send_drops = 0
        self.unprotect_errors = 0
        self.pc.addTrack(_Idle("audio"))
        self.pc.addTrack(_Idle("video"))
        self._connected = asyncio.Event()
        self.pc.on("connectionstatechange", self._state)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._task: asyncio.Future[None] | None = None
        self._wire: wire.SrtpWire | None = None

    def _state(self) -> None:
        if self.pc.connectionState == "connected":
            self._connected.set()

    def expect_partner(self, partner: RawLeg) -> None:
        self.video.clip, self.video.sent_at = partner.clip, partner.sent_at

    def _negotiated(self) -> None:
        self._task = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        await self._connected.wait()
        transceivers = {t.kind: t for t in self.pc.getTransceivers()}
        dtls = transceivers["video"].sender.transport
        self._wire = wire_ = wire.srtp_wire(dtls)
        ext_map = dtls._rtp_header_extensions_map
        pts = {}
        for kind, transceiver in transceivers.items():
            codec = next(c for c in transceiver._codecs if not is_rtx(c))
            if kind == "video" and codec.name != "VP8":
                raise RuntimeError(f"the load sends VP8; the answer chose {codec.name}")
            pts[codec.payloadType] = self.video if kind == "video" else self.audio
        self._streams = pts
        video, audio = transceivers["video"], transceivers["audio"]
        self._video_pt = next(p for p, s in pts.items() if s is self.video)
        self._audio_pt = next(p for p, s in pts.items() if s is self.audio)
        self._video_ssrc, self._audio_ssrc = video.sender._ssrc, audio.sender._ssrc
        self._video_mid = video.mid
        self._ext_map = ext_map
        values = HeaderExtensions()
        values.mid, values.audio_level = audio.mid, (False, 30)
        self._audio_extension = self._extension(values)
        protocol = wire_.protocol
        self._aioice = type(protocol).datagram_received.__get__(protocol)
        protocol.datagram_received = self._datagram  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        self._start_at = loop.time()
        self._seq = {"video": 0, "audio": 0}
        self._frame = self._audio_n = 0
        self._video_tick()
        self._audio_tick()

    def _extension(self, values: HeaderExtensions) -> bytes:
        profile, value = self._ext_map.set(values)
        return _EXTENSION.pack(profile, len(value) >> 2) + value if value else b""

    def _send(self, data: bytes) -> None:
        assert self._wire is not None
        try:
            self._wire.socket.sendto(self._wire.tx.protect(data), self._wire.remote)
        except (BlockingIOError, ConnectionError):
            self.send_drops += 1

    def _video_tick(self) -> None:
        n = self._frame
        number = n % LOOP
        values = HeaderExtensions()
        values.mid = self._video_mid
        values.abs_send_time = int(time.time() * (1 << 18)) & 0xFFFFFF
        extension = self._extension(values)
        first = 0x90 if extension else 0x80
        chunks = self.clip.packets(number)
        last = len(chunks) - 1
        seq = self._seq["video"]
        timestamp = (n * (90000 // FPS)) & 0xFFFFFFFF
        picture = n & 0x7FFF
        self.sent_at[number] = time.monotonic()
        for i, chunk in enumerate(chunks):
            descriptor = _DESCRIPTOR.pack(0x90 if i == 0 else 0x80, 0x80, 0x8000 | picture)
            header = _HEADER.pack(
                first, (0x80 if i == last else 0) | self._video_pt, (seq + i) & 0xFFFF, timestamp,
                self._video_ssrc,
            )  # fmt: skip
            self._send(header + extension + descriptor + chunk)
        self._seq["video"] = seq + len(chunks)
        self._frame = n + 1
        self._timers["video"] = asyncio.get_running_loop().call_at(
            self._start_at + self._frame / FPS, self._video_tick
        )

    def _audio_tick(self) -> None:
        n = self._audio_n
        seq = self._seq["audio"]
        header = _HEADER.pack(
            0x90 if self._audio_extension else 0x80, self._audio_pt, seq & 0xFFFF,
            (n * 960) & 0xFFFFFFFF, self._audio_ssrc,
        )  # fmt: skip
        self._send(header + self._audio_extension + self.tone[n % len(self.tone)])
        self._seq["audio"] = seq + 1
        self._audio_n = n + 1
        self._timers["audio"] = asyncio.get_running_loop().call_at(
            self._start_at + self._audio_n * 0.02, self._audio_tick
        )

    def _datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        first = data[0]
        if not 127 < first < 192:
            self._aioice(data, addr)  # STUN (consent), DTLS
            return
        if 191 < data[1] < 224:
            return  # RTCP: feedback this load does not answer
        assert self._wire is not None
        try:
            data = self._wire.rx.unprotect(data)
        except pylibsrtp.Error:
            self.unprotect_errors += 1
            return
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        stream = self._streams.get(second & 0x7F)
        if stream is None:
            return  # RTX
        start = 12 + 4 * (first & 0x0F)
        if first & 0x10:
            start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
        end = len(data) - data[-1] if first & 0x20 else len(data)
        stream.add(ssrc, sequence, timestamp, second >> 7, data[start:end])

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        if self._task is not None:
            self._task.cancel()
        if self._wire is not None:
            self._wire.socket.close()
        await self.pc.close()
