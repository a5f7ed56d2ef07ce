"""The one place that reaches into aioice and aiortc internals (both pinned in pyproject.toml).

- aioice gathers host candidates from every interface but loopback and has no option to choose
  them: ``host_addresses()`` sets, for the calling task and the tasks it starts, the addresses
  to offer instead, through aioice's module-level ``get_host_addresses``.
- aiortc has no public way to ask a remote sender for a keyframe: ``request_keyframe()`` sends
  an RTCP PLI through the receiver's ``_send_rtcp_pli``.
- aioice ends a connection whose consent (RFC 7675) expired after ``CONSENT_FAILURES``
  unanswered checks ``CONSENT_INTERVAL`` seconds apart: 6 x 5 s, about 30 s for a participant
  whose network went while its websocket stayed up. ``install()`` sets 6 x 0.75 s: consent
  lost after 6 to 8.5 s (each unanswered check also waits its 0.5 s timeout), so with the
  hub's 3 s re-offer grace a partner is told within 15 s (measured: 10-11 s). More frequent
  checks, not fewer of them, and one check is a ~100-byte STUN request. The price: six
  unanswered in a row on a merely bad network (5 % loss each way: about once in 10 days of
  call; 10 %: once in 4 hours), which costs that participant a reconnect.
- Packet-level forwarding (``relay.Relay``, driven by ``forward.RelayProtocol``) needs RTP
  below aiortc's jitter buffer and a way to put packets on a sender's SSRC. ``Reception``
  replaces a receiver's ``_handle_rtp_packet`` (statistics for its receiver reports, NACKs
  upstream, RTX unwrapping, and decoding only while someone wants frames, through aiortc's own
  jitter buffer and decoder thread) and hands each packet to the attached ``PacketSink``s
  (and, through ``_handle_rtcp_packet``, each RTCP sender report: a recording's clock);
  ``Emission`` puts a proxy transport under a sender (``setTransport``) so every RTP/RTCP
  packet it sends passes through its ``EmissionHandler`` (which renumbers or refuses it),
  rewrites the sender reports with the handler's counts, and hands NACK/PLI/FIR/REMB to it.
- ``install()`` also makes aiortc's clock cheaper per packet.
- ``prefer_codecs()`` reorders a transceiver's negotiated codecs before the answer is written.

``check()`` (run at start-up and by tests/test_internals.py) fails loudly when a new version
moves any of this.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import queue
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any, Protocol

import aioice.ice
import aiortc.clock
import aiortc.rtcdtlstransport
from aiortc import (
    RTCDtlsTransport,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.codecs import depayload, is_rtx
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics, TimestampMapper
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensions,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    unpack_remb_fci,
    unwrap_rtx,
)

from .packets import CodecKey, codec_key, is_keyframe_start
from .relay import Codec, Rtp, SenderInfo

__all__ = [
    "CONSENT_FAILURES",
    "CONSENT_INTERVAL",
    "Emission",
    "EmissionHandler",
    "PacketSink",
    "Reception",
    "RtpPacket",
    "check",
    "host_addresses",
    "install",
    "key_of",
    "prefer_codecs",
    "request_keyframe",
]

logger = logging.getLogger(__name__)

#: A received media SSRC silent this long may be taken over by a new one (a restarted sender).
SSRC_TAKEOVER = 1.0

#: Seconds between consent checks (randomised by aioice from 0.8 to 1.2 times), and how many
#: unanswered in a row end the connection.
CONSENT_INTERVAL = 0.75
CONSENT_FAILURES = 6

_offered: ContextVar[tuple[str, ...] | None] = ContextVar("consult_host_addresses", default=None)
_aioice_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    offered = _offered.get()
    if offered is None:
        return list(_aioice_get_host_addresses(use_ipv4, use_ipv6))
    return [a for a in offered if (use_ipv6 if ipaddress.ip_address(a).version == 6 else use_ipv4)]


#: Private attributes (name-mangled) this module reads, by class.
_PRIVATE: dict[type, tuple[str, ...]] = {
    RTCRtpReceiver: (
        "_RTCRtpReceiver__codecs",
        "_RTCRtpReceiver__remote_streams",
        "_RTCRtpReceiver__rtx_ssrc",
        "_RTCRtpReceiver__rtcp_ssrc",
        "_RTCRtpReceiver__decoder_queue",
        "_RTCRtpReceiver__decoder_thread",
    ),
    RTCRtpSender: ("_ssrc", "_rtx_ssrc", "_RTCRtpSender__encoder"),
    RTCRtpTransceiver: ("_codecs",),
    RTCDtlsTransport: ("_rtp_header_extensions_map",),
}
#: Methods this module calls or replaces, with their parameters.
_METHODS: dict[tuple[type, str], list[str]] = {
    (RTCRtpReceiver, "_handle_rtp_packet"): ["self", "packet", "arrival_time_ms"],
    (RTCRtpReceiver, "_handle_rtcp_packet"): ["self", "packet"],
    (RTCRtpReceiver, "_send_rtcp"): ["self", "packet"],
    (RTCRtpReceiver, "_send_rtcp_nack"): ["self", "media_ssrc", "lost"],
    (RTCRtpReceiver, "_send_rtcp_pli"): ["self", "media_ssrc"],
    (RTCRtpSender, "_handle_rtcp_packet"): ["self", "packet"],
    (RTCRtpSender, "_send_keyframe"): ["self"],
    (RTCRtpSender, "setTransport"): ["self", "transport"],
    (RTCDtlsTransport, "_send_rtp"): ["self", "data"],
    (NackGenerator, "add"): ["self", "packet"],
    (StreamStatistics, "add"): ["self", "packet"],
    (JitterBuffer, "add"): ["self", "packet"],
}


def _check_aiortc_packet_path() -> None:
    for (cls, name), params in _METHODS.items():
        method = getattr(cls, name, None)
        if method is None or list(inspect.signature(method).parameters) != params:
            raise RuntimeError(
                f"aiortc {cls.__name__}.{name}({', '.join(params[1:])}) has changed: "
                "consult/media/internals.py must be updated for this aiortc version"
            )
    sources = {
        RTCRtpReceiver: inspect.getsource(RTCRtpReceiver),
        RTCRtpSender: inspect.getsource(RTCRtpSender),
        RTCRtpTransceiver: inspect.getsource(RTCRtpTransceiver),
        RTCDtlsTransport: inspect.getsource(RTCDtlsTransport),
    }
    for cls, names in _PRIVATE.items():
        for name in names:
            plain = name.split("__", 1)[1] if name.startswith(f"_{cls.__name__}__") else None
            needle = f"self.__{plain}" if plain else f"self.{name}"
            if needle not in sources[cls]:
                raise RuntimeError(
                    f"aiortc {cls.__name__} no longer has {needle}: "
                    "consult/media/internals.py must be updated for this aiortc version"
                )
    # The sender sends everything through its transport property, which setTransport sets;
    # the receiver's decoder thread reads (codec, frame) tuples from its queue.
    if "clock.current_ms()" not in inspect.getsource(aiortc.rtcdtlstransport) or not callable(
        getattr(aiortc.clock, "current_ms", None)
    ):
        raise RuntimeError("aiortc's DTLS transport no longer reads clock.current_ms()")
    sender_source = sources[RTCRtpSender]
    if "if self.__encoder is None:" not in sender_source:
        raise RuntimeError("aiortc RTCRtpSender no longer makes its encoder on demand")
    if "await self.transport._send_rtp(" not in sender_source:
        raise RuntimeError("aiortc RTCRtpSender no longer sends through self.transport._send_rtp")
    if "input_q.get()" not in inspect.getsource(
        __import__("aiortc.rtcrtpreceiver", fromlist=["decoder_worker"]).decoder_worker
    ):
        raise RuntimeError("aiortc's decoder_worker no longer reads its input queue")


def check() -> None:
    """Raise if aioice or aiortc no longer have what this module relies on."""
    _check_aiortc_packet_path()
    gather = getattr(aioice.ice.Connection, "gather_candidates", None)
    if gather is None or "get_host_addresses(" not in inspect.getsource(gather):
        raise RuntimeError(
            "aioice.ice.Connection.gather_candidates no longer calls get_host_addresses(): "
            "consult/media/internals.py must be updated for this aioice version"
        )
    consent = getattr(aioice.ice.Connection, "query_consent", None)
    if (
        consent is None
        or not isinstance(getattr(aioice.ice, "CONSENT_INTERVAL", None), int | float)
        or not isinstance(getattr(aioice.ice, "CONSENT_FAILURES", None), int)
        or "CONSENT_INTERVAL" not in (source := inspect.getsource(consent))
        or "CONSENT_FAILURES" not in source
    ):
        raise RuntimeError(
            "aioice.ice.Connection.query_consent no longer reads CONSENT_INTERVAL and "
            "CONSENT_FAILURES: consult/media/internals.py must be updated for this aioice version"
        )
    pli = getattr(RTCRtpReceiver, "_send_rtcp_pli", None)
    if pli is None or list(inspect.signature(pli).parameters) != ["self", "media_ssrc"]:
        raise RuntimeError(
            "aiortc.RTCRtpReceiver._send_rtcp_pli(media_ssrc) is gone: "
            "consult/media/internals.py must be updated for this aiortc version"
        )


_NTP_EPOCH_MS = 2208988800000


def _current_ms() -> int:
    """aiortc.clock.current_ms without datetime arithmetic: aiortc's DTLS transport asks for
    it for every packet it receives, and the datetime version cost ~7% of forwarding."""
    return int(time.time() * 1000) + _NTP_EPOCH_MS


_installed = False


def install() -> None:
    """Route aioice's host address lookup through ``host_addresses()``, shorten its consent
    expiry and use a cheaper ``aiortc.clock.current_ms``. Once per process, at start (the app
    calls it; ``host_addresses()`` too, for processes without one): later calls do nothing."""
    global _installed
    if _installed:
        return
    check()
    aioice.ice.get_host_addresses = _get_host_addresses
    # Typed int by aioice, which multiplies it by a float anyway.
    aioice.ice.CONSENT_INTERVAL = CONSENT_INTERVAL  # type: ignore[assignment]
    aioice.ice.CONSENT_FAILURES = CONSENT_FAILURES
    aiortc.clock.current_ms = _current_ms
    _installed = True


@contextmanager
def host_addresses(addresses: Iterable[str]) -> Iterator[None]:
    """Offer exactly ``addresses`` as host candidates for peers gathered inside this block.

    An empty list keeps aioice's default (every interface but loopback).
    """
    offered = tuple(str(ipaddress.ip_address(a)) for a in addresses)
    install()
    token = _offered.set(offered or None)
    try:
        yield
    finally:
        _offered.reset(token)


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Ask the remote sender of ``receiver``'s stream for a keyframe (RTCP PLI)."""
    sources = receiver.getSynchronizationSources()
    await asyncio.gather(*(receiver._send_rtcp_pli(source.source) for source in sources))
    return bool(sources)


# --- packet-level forwarding ------------------------------------------------------------------


def key_of(codec: RTCRtpCodecParameters) -> CodecKey:
    return codec_key(codec.mimeType, codec.clockRate, codec.channels, codec.parameters)


def media_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The transceiver's negotiated codecs, rtx left out, in the answer's order."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    return [c for c in codecs if not is_rtx(c)]


def prefer_codecs(transceiver: RTCRtpTransceiver, rank: Callable[[CodecKey], int]) -> None:
    """Reorder the negotiated codecs (each followed by its rtx) by ``rank``, lowest first.

    aiortc writes its answer in this order, and browsers send the first codec of the answer.
    """
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    media = sorted((c for c in codecs if not is_rtx(c)), key=lambda c: rank(key_of(c)))
    ordered: list[RTCRtpCodecParameters] = []
    for codec in media:
        ordered.append(codec)
        ordered.extend(
            c for c in codecs if is_rtx(c) and c.parameters.get("apt") == codec.payloadType
        )
    transceiver._codecs = ordered


class PacketSink(Protocol):
    """Who takes a Reception's packets and sender reports: the partner's relay
    (``forward.RelayProtocol``), and while the call is recorded the participant's tape
    (``recording.ParticipantTape``)."""

    async def partner_packet(
        self, reception: Reception, ssrc: int, codec: CodecKey, packet: Rtp
    ) -> None: ...

    def sender_report(self, reception: Reception, ssrc: int, ntp: float, rtp_time: int) -> None:
        """The participant's RTCP sender report: its clock (``ntp``, Unix seconds) at
        ``rtp_time`` of its stream."""


class Reception:
    """The RTP one receiver gets, taken below aiortc's jitter buffer.

    Every packet still feeds the receiver's statistics (so aiortc's receiver reports stay
    right) and our NACKs upstream; RTX is unwrapped; foreign SSRCs and unknown payload types
    are dropped. Then the packet goes to the attached sinks (the partner's relay, a recording's
    tape), and, only while ``decoding``, into a jitter buffer and aiortc's decoder thread
    (frames then reach the track, as before). The stream's RTCP sender reports go to the sinks
    too, after aiortc has read them.
    """

    def __init__(self, transceiver: RTCRtpTransceiver, kind: str) -> None:
        self.kind = kind
        self._transceiver = transceiver
        self._receiver: RTCRtpReceiver = transceiver.receiver
        self._nack = NackGenerator() if kind == "video" else None
        self._sinks: list[PacketSink] = []
        self._keys: dict[int, CodecKey] = {}
        self.ssrc: int | None = None
        self._ssrc_at = 0.0
        self._jitter: JitterBuffer | None = None
        self._mapper = TimestampMapper()
        self._await_key = False
        self._codec: RTCRtpCodecParameters | None = None
        self._keyframe_task: asyncio.Future[bool] | None = None
        self.packets = 0
        #: Frames received (not decoded): video packets that end a frame, audio packets.
        self.frames = 0
        self.dropped = 0
        self.decoded_frames = 0
        self._receiver._handle_rtp_packet = self._handle  # type: ignore[method-assign]
        self._original_rtcp = self._receiver._handle_rtcp_packet
        self._receiver._handle_rtcp_packet = self._rtcp  # type: ignore[method-assign]

    def attach(self, sink: PacketSink) -> None:
        if sink not in self._sinks:
            self._sinks.append(sink)

    def detach(self, sink: PacketSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    @property
    def sent_codec(self) -> RTCRtpCodecParameters | None:
        """The codec the participant sends: the one of its last packet, else the first of
        the answer (what browsers send), once negotiated."""
        if self._codec is not None:
            return self._codec
        codecs = media_codecs(self._transceiver)
        return codecs[0] if codecs else None

    @property
    def codecs(self) -> list[RTCRtpCodecParameters]:
        return media_codecs(self._transceiver)

    @property
    def decoding(self) -> bool:
        return self._jitter is not None

    def start_decoding(self) -> None:
        """Decode from the next key frame on (one is requested)."""
        if self._jitter is None:
            video = self.kind == "video"
            self._jitter = JitterBuffer(capacity=128 if video else 16, is_video=video)
            self._mapper = TimestampMapper()
            self._await_key = video
            if video:
                self._keyframe_task = asyncio.ensure_future(self.request_keyframe())

    def stop_decoding(self) -> None:
        self._jitter = None

    async def request_keyframe(self) -> bool:
        if self.ssrc is None:
            return False
        await self._receiver._send_rtcp_pli(self.ssrc)
        return True

    async def send_remb(self, bitrate: int) -> None:
        """Tell the participant's sender the most it should send (a receiver's estimate)."""
        rtcp_ssrc = self._receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
        if self.ssrc is None or rtcp_ssrc is None:
            return
        packet = RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, [self.ssrc])
        )
        await self._receiver._send_rtcp(packet)

    async def _handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        receiver = self._receiver
        codecs: dict[int, RTCRtpCodecParameters] = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        codec = codecs.get(packet.payload_type)
        if codec is None:
            self.dropped += 1
            return
        now = time.monotonic()
        if is_rtx(codec):
            apt = codec.parameters.get("apt")
            base = codecs.get(apt) if isinstance(apt, int) else None
            apt = apt if isinstance(apt, int) else -1
            rtx_of = receiver._RTCRtpReceiver__rtx_ssrc.get(packet.ssrc)  # type: ignore[attr-defined]
            if (
                base is None
                or self.ssrc is None
                or len(packet.payload) < 2
                or (rtx_of is not None and rtx_of != self.ssrc)
            ):
                self.dropped += 1
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=self.ssrc)
            codec = base
        elif packet.ssrc != self.ssrc:
            if self.ssrc is not None and now - self._ssrc_at < SSRC_TAKEOVER:
                self.dropped += 1  # a second stream on one m-line: not ours to forward
                return
            self.ssrc = packet.ssrc
            if self._nack is not None:
                self._nack = NackGenerator()
        self._ssrc_at = now
        self._codec = codec
        self.packets += 1
        if packet.marker or self.kind == "audio":
            self.frames += 1
        streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        stats = streams.get(packet.ssrc)
        if stats is None:
            stats = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        if self._nack is not None and self._nack.add(packet):
            await receiver._send_rtcp_nack(packet.ssrc, sorted(self._nack.missing))
        if self._sinks:
            key = self._keys.get(packet.payload_type)
            if key is None:
                key = self._keys[packet.payload_type] = key_of(codec)
            for sink in self._sinks:
                await sink.partner_packet(self, packet.ssrc, key, _rtp_of(packet))
        if self._jitter is not None:
            await self._decode(packet, codec)

    async def _rtcp(self, packet: Any) -> None:
        await self._original_rtcp(packet)
        if isinstance(packet, RtcpSrPacket) and packet.ssrc == self.ssrc:
            info = packet.sender_info
            for sink in self._sinks:
                sink.sender_report(self, packet.ssrc, _unix(info.ntp_timestamp), info.rtp_timestamp)

    async def _decode(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> None:
        assert self._jitter is not None
        if self._await_key:
            if not is_keyframe_start(codec.name, packet.payload):
                return
            self._await_key = False
        try:
            packet._data = depayload(codec, packet.payload) if packet.payload else b""  # type: ignore[attr-defined]
        except ValueError:
            return
        pli, frame = self._jitter.add(packet)
        if pli:
            await self.request_keyframe()
        decoder_queue: queue.Queue[Any] = self._receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
        if frame is not None and self._receiver._RTCRtpReceiver__decoder_thread is not None:  # type: ignore[attr-defined]
            frame.timestamp = self._mapper.map(frame.timestamp)
            self.decoded_frames += 1
            decoder_queue.put((codec, frame))


class EmissionHandler(Protocol):
    """Who decides what one sender puts on the wire: ``forward.RelayProtocol``."""

    async def own_packet(self, packet: Rtp) -> None: ...
    async def nack(self, lost: list[int]) -> None: ...
    async def keyframe_request(self) -> None: ...
    async def remb(self, bitrate: int) -> None: ...
    def sender_info(self, ntp: float) -> SenderInfo | None: ...


class _Transport:
    """Stands in for a sender's DTLS transport: what the sender sends goes to its Emission."""

    def __init__(self, emission: Emission, real: RTCDtlsTransport) -> None:
        self._emission = emission
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def _send_rtp(self, data: bytes) -> None:
        await self._emission._from_sender(data)


class Emission:
    """One sender's wire, taken over: what its own encoder makes goes to the handler (which
    renumbers or refuses it), and so does the receiver's feedback (NACK, PLI/FIR, REMB); its
    sender reports are rewritten with the handler's counts; ``send`` puts packets on the wire.
    """

    def __init__(self, transceiver: RTCRtpTransceiver, handler: EmissionHandler) -> None:
        sender: RTCRtpSender = transceiver.sender
        self.kind = transceiver.kind
        self._transceiver = transceiver
        self._sender = sender
        self._handler = handler
        self._real: RTCDtlsTransport = sender.transport
        self.ssrc: int = sender._ssrc
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.mid = transceiver.mid
        self._extensions: dict[Any, tuple[bytes, int | None]] = {}
        self._original_rtcp = sender._handle_rtcp_packet
        sender._handle_rtcp_packet = self._rtcp  # type: ignore[method-assign]
        sender.setTransport(_Transport(self, self._real))  # type: ignore[arg-type]

    @property
    def codecs(self) -> list[Codec]:
        """Our leg's codecs, in the answer's order, each with its RTX payload type."""
        every: list[RTCRtpCodecParameters] = self._transceiver._codecs
        rtx = {c.parameters.get("apt"): c.payloadType for c in every if is_rtx(c) and c.payloadType}
        return [
            Codec(c.payloadType or 0, key_of(c), rtx.get(c.payloadType))
            for c in every
            if not is_rtx(c)
        ]

    @property
    def connected(self) -> bool:
        return bool(self._real.state == "connected")

    def force_own_keyframe(self) -> None:
        self._sender._send_keyframe()

    def release_encoder(self) -> None:
        """Free our encoder while packets are forwarded (several MB for video); aiortc makes
        a new one, which starts with a key frame, when the placeholder is encoded again."""
        self._sender._RTCRtpSender__encoder = None  # type: ignore[attr-defined]

    async def send(self, packet: Rtp, rtx: bool = False) -> None:
        """Send ``packet`` on our SSRC (RTX SSRC if ``rtx``) with our mid, its audio level
        and abs-send-time (now if it has none); the header is packed here, not by aiortc, as
        this runs for every packet."""
        extension = self._extension(packet.audio_level, packet.abs_send_time)
        padding = packet.padding_size
        first = 0x80 | (0x10 if extension else 0) | (0x20 if padding else 0)
        data = _RTP_HEADER.pack(
            first,
            (packet.marker << 7) | packet.payload_type,
            packet.sequence_number,
            packet.timestamp,
            self.rtx_ssrc if rtx else self.ssrc,
        )
        data += extension + packet.payload
        if padding:
            data += bytes(padding - 1) + bytes([padding])
        with suppress(ConnectionError):
            await self._real._send_rtp(data)

    def _extension(self, audio_level: Any, abs_send_time: int | None) -> bytes:
        """Our header extension block with ``abs_send_time`` (one template per level)."""
        template = self._extensions.get(audio_level)
        if template is None:
            ext_map = self._real._rtp_header_extensions_map
            blocks = []
            for stamp in (0, 0xFFFFFF):
                values = HeaderExtensions()
                values.mid = self.mid
                values.abs_send_time = stamp
                values.audio_level = audio_level
                profile, value = ext_map.set(values)
                blocks.append(_EXT_HEADER.pack(profile, len(value) >> 2) + value if value else b"")
            changed = [i for i, (a, b) in enumerate(zip(*blocks, strict=True)) if a != b]
            template = (blocks[0], changed[0] if len(changed) == 3 else None)
            if len(self._extensions) < 512:
                self._extensions[audio_level] = template
        block, at = template
        if at is None:
            return block
        if abs_send_time is None:
            abs_send_time = int(time.time() * (1 << 18)) & 0xFFFFFF
        return block[:at] + (abs_send_time & 0xFFFFFF).to_bytes(3, "big") + block[at + 3 :]

    async def _from_sender(self, data: bytes) -> None:
        if is_rtcp(data):
            with suppress(ConnectionError):
                await self._real._send_rtp(self._fix_reports(data))
            return
        packet = RtpPacket.parse(data, self._real._rtp_header_extensions_map)
        await self._handler.own_packet(_rtp_of(packet))

    def _fix_reports(self, data: bytes) -> bytes:
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            return data
        for packet in packets:
            if isinstance(packet, RtcpSrPacket) and packet.ssrc == self.ssrc:
                # Keep aiortc's NTP time: the receiver's reports quote it back, and aiortc
                # measures the round trip only when they match what it sent.
                ntp = packet.sender_info.ntp_timestamp
                info = self._handler.sender_info(_unix(ntp))
                if info is not None:
                    packet.sender_info = RtcpSenderInfo(
                        ntp_timestamp=ntp,
                        rtp_timestamp=info.rtp_timestamp,
                        packet_count=info.packet_count,
                        octet_count=info.octet_count,
                    )
        return b"".join(bytes(p) for p in packets)

    async def _rtcp(self, packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            await self._handler.nack(packet.lost)
            return
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            await self._handler.keyframe_request()
            return
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if self.ssrc in ssrcs:
                await self._handler.remb(bitrate)
        await self._original_rtcp(packet)


def _rtp_of(packet: RtpPacket) -> Rtp:
    """What the relay core needs of aiortc's packet (each consumer gets its own: the core
    rewrites it). Audio level and the sender's own send time are kept: the far receiver's
    delay-based estimate (REMB, relayed back to the sender) then covers the sender's uplink."""
    extensions = packet.extensions
    return Rtp(
        packet.payload_type,
        packet.marker,
        packet.sequence_number,
        packet.timestamp,
        packet.payload,
        packet.padding_size,
        extensions.audio_level,
        extensions.abs_send_time,
    )


def _unix(ntp: int) -> float:
    """A 64-bit NTP timestamp as a Unix time."""
    return (ntp >> 32) - 2208988800 + (ntp & 0xFFFFFFFF) / (1 << 32)


_RTP_HEADER = struct.Struct("!BBHLL")
_EXT_HEADER = struct.Struct("!HH")
