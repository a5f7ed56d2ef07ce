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
  A check every 0.75 s for every peer is also the largest cost of a call apart from its
  packets (a STUN transaction in Python, with its HMAC, CRC and timer): ``install()`` replaces
  ``query_consent`` with one that checks at RFC 7675's own pace (``CONSENT_REFRESH``) while
  the peer's authenticated SRTP keeps arriving, and every ``CONSENT_INTERVAL`` once none came
  for ``MEDIA_SILENCE`` (or once a check went unanswered). Consent is still only ever given
  by a STUN response; the media only says that the peer is there, so that the fast checks
  are needed only when it may not be. A peer that vanishes is checked ``MEDIA_SILENCE``
  later at most than before.
- Packet-level forwarding (``relay.Relay``, driven by ``forward.RelayProtocol``) needs RTP
  below aiortc's jitter buffer and a way to put packets on a sender's SSRC. ``Reception``
  replaces a receiver's ``_handle_rtp_packet`` (statistics for its receiver reports, NACKs
  upstream, RTX unwrapping, and decoding only while someone wants frames, through aiortc's own
  jitter buffer and decoder thread) and hands each packet to the attached ``PacketSink``s
  (and, through ``_handle_rtcp_packet``, each RTCP sender report: a recording's clock);
  ``Emission`` puts a proxy transport under a sender (``setTransport``) so every RTP/RTCP
  packet it sends passes through its ``EmissionHandler`` (which renumbers or refuses it),
  rewrites the sender reports with the handler's counts, and hands NACK/PLI/FIR/REMB to it.
- The packet fast path: ``install()`` makes aioice's ``StunProtocol`` hand SRTP (RFC 7983: a
  first byte of 128-191) on without trying to parse it as STUN first, and, on a peer whose
  receivers are ``Reception``s, to that peer's ``_Wire`` at once: SRTP unprotected with the
  DTLS transport's own session, only the header parsed (``relay.parse_rtp``), the packet
  routed by SSRC to its ``Reception`` and on to the partner's relay and its ``Emission``,
  which protects it and puts it in the ICE pair's ``Outbox`` (sent when the loop's turn ends,
  a frame's packets in one system call: media/outbox.py), all in the one call (no queue, no
  task switch, no ``RtpPacket``, no per-packet coroutines of aioice or aiortc). aioice's
  ``connection_lost`` also closes the outboxes.
  RTCP, DTLS and STUN take aioice's and aiortc's own path. SRTP is libsrtp's, called through
  pylibsrtp's own cffi binding on the session aiortc made (``_Srtp``): pylibsrtp's
  ``protect``/``unprotect`` allocate and check per call, which cost more than the cipher.
- ``install()`` also makes aiortc's clock cheaper per packet.
- ``prefer_codecs()`` reorders a transceiver's negotiated codecs before the answer is written.

``check()`` (run at start-up and by tests/test_internals.py) fails loudly when a new version
moves any of this.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import ipaddress
import logging
import queue
import random
import struct
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, cast

import aioice.ice
import aioice.stun
import aiortc.clock
import aiortc.rtcdtlstransport
import pylibsrtp
import pylibsrtp._binding  # type: ignore[import-not-found]  # pylibsrtp's cffi module
from aiortc import (
    RTCDtlsTransport,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.codecs import depayload, is_rtx
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcdtlstransport import RtpRouter
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpreceiver import StreamStatistics, TimestampMapper
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
    unpack_remb_fci,
)

from .outbox import DatagramTransport, Outbox
from .packets import CodecKey, Gaps, codec_key, is_keyframe_start
from .relay import Codec, Rtp, SenderInfo, parse_rtp

__all__ = [
    "CONSENT_FAILURES",
    "CONSENT_INTERVAL",
    "CONSENT_REFRESH",
    "MEDIA_SILENCE",
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
#: Seconds between consent checks while the peer's media keeps arriving (RFC 7675's 5 s,
#: randomised the same way).
CONSENT_REFRESH = 5.0
#: A peer none of whose media came for this long is silent: checked every CONSENT_INTERVAL
#: from then on (a browser sends audio every 20 ms, muted or not; a silence that was only a
#: network's hiccup costs one STUN check). Also how often a flowing peer is looked at.
MEDIA_SILENCE = 0.25

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
    RTCDtlsTransport: (
        "_rtp_header_extensions_map",
        "_rtp_router",
        "_rx_srtp",
        "_tx_srtp",
        "_state",
    ),
    HeaderExtensionsMap: ("_HeaderExtensionsMap__ids",),
    aioice.ice.Connection: ("_nominated",),
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
    (RTCDtlsTransport, "_handle_rtp_data"): ["self", "data", "arrival_time_ms"],
    (RtpRouter, "route_rtp"): ["self", "packet"],
    (aioice.ice.StunProtocol, "datagram_received"): ["self", "data", "addr"],
    (aioice.ice.StunProtocol, "send_data"): ["self", "data", "addr"],
    (aioice.ice.StunProtocol, "connection_lost"): ["self", "exc"],
    (aioice.ice.Connection, "data_received"): ["self", "data", "component"],
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
    sources = {cls: inspect.getsource(cls) for cls in _PRIVATE}
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
    stun = inspect.getsource(aioice.ice.StunProtocol)
    if (
        "self.receiver.data_received(data, self.local_candidate.component)" not in stun
        or "self.transport.sendto(data, addr)" not in stun
    ):
        raise RuntimeError(
            "aioice's StunProtocol no longer hands data to its Connection or sends with "
            "transport.sendto: consult/media/internals.py must be updated for this aioice version"
        )
    binding = pylibsrtp._binding.lib
    if (
        not callable(getattr(binding, "srtp_protect", None))
        or not callable(getattr(binding, "srtp_unprotect", None))
        or "self._srtp = ffi.gc(srtp" not in inspect.getsource(pylibsrtp.Session)
    ):
        raise RuntimeError(
            "pylibsrtp's Session no longer keeps its libsrtp session in _srtp, or its binding "
            "lost srtp_protect/srtp_unprotect: consult/media/internals.py must be updated"
        )
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
    connect = getattr(aioice.ice.Connection, "connect", None)
    if (
        consent is None
        or connect is None
        or "asyncio.create_task(self.query_consent())" not in inspect.getsource(connect)
        or not callable(getattr(aioice.ice.Connection, "build_request", None))
        or "retransmissions=0" not in inspect.getsource(consent)
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
    aioice.ice.StunProtocol.datagram_received = _datagram_received  # type: ignore[method-assign]
    aioice.ice.StunProtocol.connection_lost = _connection_lost  # type: ignore[method-assign]
    aioice.ice.Connection.query_consent = _query_consent  # type: ignore[method-assign]
    _installed = True


_aioice_datagram_received = aioice.ice.StunProtocol.datagram_received


def _jitter(seconds: float) -> float:
    """``seconds`` randomised from 0.8 to 1.2 times, as RFC 7675 and aioice do."""
    return seconds * (0.8 + 0.4 * random.random())


async def _query_consent(self: aioice.ice.Connection) -> None:
    """aioice's ``query_consent`` (RFC 7675), at ``CONSENT_REFRESH`` while the peer's media
    arrives and at ``CONSENT_INTERVAL`` otherwise (the module's docstring says why)."""
    # Consent checks only start once connect() has the remote password.
    assert self.remote_password is not None
    failures = 0
    checked, refresh = time.monotonic(), _jitter(CONSENT_REFRESH)
    pause = _jitter(CONSENT_INTERVAL)
    while True:
        await asyncio.sleep(pause)
        now = time.monotonic()
        wire: _Wire | None = getattr(self, _WIRE, None)
        flowing = wire is not None and now - wire.last_media() < MEDIA_SILENCE
        if flowing and not failures and now - checked < refresh:
            pause = MEDIA_SILENCE  # looked at again soon: a silence is checked at once
            continue
        checked, refresh = now, _jitter(CONSENT_REFRESH)
        pause = _jitter(CONSENT_INTERVAL)
        for pair in self._nominated.values():
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request,
                    pair.remote_addr,
                    integrity_key=self.remote_password.encode("utf8"),
                    retransmissions=0,
                )
                failures = 0
            except aioice.stun.TransactionError:
                failures += 1
            if failures >= CONSENT_FAILURES:
                logger.info("consent to send expired: %s", self.local_username)
                self._query_consent_task = None
                await self.close()
                return


def _datagram_received(
    self: aioice.ice.StunProtocol, data: bytes | str, addr: tuple[Any, ...]
) -> None:
    """aioice's ``StunProtocol.datagram_received``, which parses every datagram as STUN first
    (an exception per media packet), with SRTP/SRTCP told apart by its first byte (RFC 7983)
    and SRTP taken by the peer's ``_Wire`` when it has one."""
    if isinstance(data, bytes) and data and 127 < data[0] < 192:
        connection = self.receiver
        wire: _Wire | None = getattr(connection, _WIRE, None)
        if wire is None or not wire.receive(data):
            connection.data_received(data, self.local_candidate.component)
        return
    _aioice_datagram_received(self, data, addr)


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


#: The attribute of an aioice Connection that holds its peer's ``_Wire``.
_WIRE = "_consult_wire"


@dataclass(slots=True)
class _Probe:
    """What aiortc's RTP router reads of a packet."""

    ssrc: int
    payload_type: int


class _Wire:
    """One server peer's SRTP, taken at the datagram (BUNDLE: every stream of the peer is on
    one DTLS transport and one ICE connection). Made by the peer's first ``Reception`` to get
    a packet, so the transport is the one aiortc settled on."""

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._ids: HeaderExtensions = dtls._rtp_header_extensions_map._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
        self._router: RtpRouter = dtls._rtp_router
        self._rx: _Srtp | None = None
        self._receptions: dict[RTCRtpReceiver, Reception] = {}
        self._routes: dict[int, Reception] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        setattr(dtls.transport._connection, _WIRE, self)

    @classmethod
    def adopt(cls, reception: Reception, receiver: RTCRtpReceiver) -> None:
        dtls: RTCDtlsTransport = receiver.transport
        wire: _Wire | None = getattr(dtls.transport._connection, _WIRE, None)
        if wire is None or wire._dtls is not dtls:
            wire = cls(dtls)
        wire._receptions[receiver] = reception

    def last_media(self) -> float:
        """When (monotonic) the peer's last authenticated media packet came; 0: none yet."""
        return max((r.last_packet_at for r in self._receptions.values()), default=0.0)

    def receive(self, data: bytes) -> bool:
        """Take one SRTP datagram; False if it is not for a Reception (RTCP, or a receiver
        of aiortc's own): aiortc's path takes it then, still encrypted."""
        if 191 < data[1] < 224:
            return False
        rx = self._rx
        if rx is None:
            session = self._dtls._rx_srtp
            if session is None:
                return False
            rx = self._rx = _Srtp(session)
        plain = rx.unprotect(data)
        if plain is None:
            return True  # as aiortc: dropped
        data = plain
        ids = self._ids
        parsed = parse_rtp(data, ids.abs_send_time, ids.audio_level)
        if parsed is None:
            return True
        ssrc, packet = parsed
        reception = self._routes.get(ssrc)
        if reception is None:
            receiver = self._router.route_rtp(_Probe(ssrc, packet.payload_type))  # type: ignore[arg-type]
            if receiver is None:
                return True  # as aiortc: nobody's
            reception = self._receptions.get(receiver)  # type: ignore[call-overload]
            if reception is None:
                # Decrypted already (SRTP refuses a replay): aiortc's path from the plaintext.
                _spawn(self._tasks, self._dtls._handle_rtp_data(data, _current_ms()))
                return True
            self._routes[ssrc] = reception
        reception.receive(ssrc, packet)
        return True


_ffi = pylibsrtp._binding.ffi
_lib = pylibsrtp._binding.lib
#: The largest datagram the fast path protects or unprotects, as pylibsrtp's own buffer.
_SRTP_BUFFER = 1500
#: What protection may add.
_SRTP_TRAILER: int = pylibsrtp.SRTP_MAX_TRAILER_LEN


class _Srtp:
    """A libsrtp session (pylibsrtp's, made by aiortc's DTLS transport) called as the packet
    path needs it: the packet is assembled in a buffer of our own and protected in place, and
    nothing but the result is allocated. pylibsrtp's ``protect``/``unprotect`` allocate and
    check per call, which cost more than the cipher (``scripts/bench_relay.py``)."""

    __slots__ = ("_buffer", "_cdata", "_size", "_srtp", "session")

    def __init__(self, session: pylibsrtp.Session) -> None:
        self.session = session  # holds the libsrtp session, freed with it
        self._srtp = session._srtp[0]
        self._cdata = _ffi.new("char[]", _SRTP_BUFFER)
        self._buffer = _ffi.buffer(self._cdata)
        self._size = _ffi.new("int *")

    def unprotect(self, data: bytes) -> bytes | None:
        """The RTP packet in SRTP ``data``; None if it fails (authentication, a replay)."""
        n = len(data)
        if n > _SRTP_BUFFER:
            return None
        self._buffer[0:n] = data
        size = self._size
        size[0] = n
        if _lib.srtp_unprotect(self._srtp, self._cdata, size):
            return None
        return self._buffer[0 : size[0]]  # type: ignore[no-any-return]

    def protect(
        self, header: bytes, extension: bytes, payload: bytes, padding: int
    ) -> bytes | None:
        """SRTP of the RTP packet ``header`` + ``extension`` + ``payload`` + ``padding``
        bytes of padding (RFC 3550: zeros, then their count); None if it is too long or
        libsrtp refuses it."""
        buffer = self._buffer
        start = len(header)
        buffer[0:start] = header
        if extension:
            end = start + len(extension)
            buffer[start:end] = extension
            start = end
        end = start + len(payload) + padding
        if end > _SRTP_BUFFER - _SRTP_TRAILER:
            return None
        buffer[start : end - padding] = payload
        if padding:
            buffer[end - padding : end] = bytes(padding - 1) + bytes([padding])
        size = self._size
        size[0] = end
        if _lib.srtp_protect(self._srtp, self._cdata, size):
            return None
        return buffer[0 : size[0]]  # type: ignore[no-any-return]


#: The attribute of an aioice StunProtocol that holds its outboxes, by remote address.
_OUTBOXES = "_consult_outboxes"


def _outbox(protocol: Any, remote: Any) -> Outbox | None:
    """The outbox to ``remote`` on ``protocol``'s socket (one for all of a peer's senders:
    BUNDLE), or None for a TURN relay's protocol."""
    if type(protocol) is not aioice.ice.StunProtocol:
        return None
    outboxes: dict[Any, Outbox] | None = getattr(protocol, _OUTBOXES, None)
    if outboxes is None:
        outboxes = {}
        setattr(protocol, _OUTBOXES, outboxes)
    outbox = outboxes.get(remote)
    if outbox is None:
        # asyncio's and uvloop's datagram transports have the write buffer typeshed omits.
        transport = cast(DatagramTransport, protocol.transport)
        outbox = outboxes[remote] = Outbox.of(transport, remote)
    return outbox


_aioice_connection_lost = aioice.ice.StunProtocol.connection_lost


def _connection_lost(self: aioice.ice.StunProtocol, exc: Exception | None) -> None:
    """aioice's ``connection_lost``, which also closes the outboxes' sockets (``dup``s of
    the transport's): the port is free once aioice is done with it."""
    for outbox in getattr(self, _OUTBOXES, {}).values():
        outbox.close()
    _aioice_connection_lost(self, exc)


def _spawn(tasks: set[asyncio.Future[Any]], coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` on its own: for what the packet path does rarely and must not wait for."""
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


class PacketSink(Protocol):
    """Who takes a Reception's packets and sender reports: the partner's relay
    (``forward.RelayProtocol``), and while the call is recorded the participant's tape
    (``recording.ParticipantTape``). Called in the packet path, synchronously."""

    def partner_packet(self, reception: Reception, ssrc: int, codec: CodecKey, packet: Rtp) -> None:
        """``packet`` is the sink's own (it may rewrite it)."""

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
        self._nack = Gaps() if kind == "video" else None
        self._sinks: list[PacketSink] = []
        #: By payload type: the codec aiortc negotiated, whether it is RTX, and its key
        #: (read once, not per packet; renewed when aiortc's codec for it changes).
        self._types: dict[int, tuple[RTCRtpCodecParameters, bool, CodecKey]] = {}
        self._audio = kind == "audio"
        self.ssrc: int | None = None
        #: When (monotonic) the last packet of the stream came: the peer's media is flowing.
        self.last_packet_at = 0.0
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
        self._tasks: set[asyncio.Future[Any]] = set()
        self._adopted = False
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
        """aiortc's path, for the packets that come before this peer's ``_Wire`` takes over
        (made here, at the first one) and for any that reach the receiver another way."""
        if not self._adopted:
            self._adopted = True
            _Wire.adopt(self, self._receiver)
        self.receive(packet.ssrc, _rtp_of(packet))

    def receive(self, ssrc: int, packet: Rtp) -> None:
        """One decrypted RTP packet of this receiver's stream (RTX unwrapped here)."""
        receiver = self._receiver
        codecs: dict[int, RTCRtpCodecParameters] = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        codec = codecs.get(packet.payload_type)
        if codec is None:
            self.dropped += 1
            return
        known = self._types.get(packet.payload_type)
        if known is None or known[0] is not codec:
            known = self._types[packet.payload_type] = (codec, is_rtx(codec), key_of(codec))
        now = time.monotonic()
        if known[1]:
            apt = codec.parameters.get("apt")
            base = codecs.get(apt) if isinstance(apt, int) else None
            rtx_of = receiver._RTCRtpReceiver__rtx_ssrc.get(ssrc)  # type: ignore[attr-defined]
            payload = packet.payload
            if (
                base is None
                or self.ssrc is None
                or len(payload) < 2
                or (rtx_of is not None and rtx_of != self.ssrc)
            ):
                self.dropped += 1
                return
            # As aiortc's unwrap_rtx: the original sequence number leads the payload.
            assert isinstance(apt, int)
            packet.payload_type, packet.sequence_number = apt, (payload[0] << 8) | payload[1]
            packet.payload, packet.padding_size = payload[2:], 0
            ssrc = self.ssrc
            codec = base
            known = self._types.get(apt)
            if known is None or known[0] is not codec:
                known = self._types[apt] = (codec, False, key_of(codec))
        elif ssrc != self.ssrc:
            if self.ssrc is not None and now - self.last_packet_at < SSRC_TAKEOVER:
                self.dropped += 1  # a second stream on one m-line: not ours to forward
                return
            self.ssrc = ssrc
            if self._nack is not None:
                self._nack = Gaps()
        self.last_packet_at = now
        self._codec = codec
        self.packets += 1
        if packet.marker or self._audio:
            self.frames += 1
        streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        stats = streams.get(ssrc)
        if stats is None:
            stats = streams[ssrc] = StreamStatistics(codec.clockRate)
        # aiortc's statistics read only the sequence number and timestamp.
        stats.add(packet)  # type: ignore[arg-type]
        if self._nack is not None and self._nack.add(packet.sequence_number):
            _spawn(self._tasks, receiver._send_rtcp_nack(ssrc, sorted(self._nack.missing)))
        if self._jitter is not None:
            self._decode(ssrc, packet, codec)
        sinks = self._sinks
        if sinks:
            key = known[2]
            if len(sinks) == 1:
                sinks[0].partner_packet(self, ssrc, key, packet)
                return
            # Each sink gets its own packet (the relay rewrites it; a tape keeps it a while),
            # and the sinks are those of now (a sink's action may rewire the call).
            own = [packet, *(copy.copy(packet) for _ in sinks[1:])]
            for sink, mine in zip(tuple(sinks), own, strict=True):
                sink.partner_packet(self, ssrc, key, mine)

    async def _rtcp(self, packet: Any) -> None:
        await self._original_rtcp(packet)
        if isinstance(packet, RtcpSrPacket) and packet.ssrc == self.ssrc:
            info = packet.sender_info
            for sink in self._sinks:
                sink.sender_report(self, packet.ssrc, _unix(info.ntp_timestamp), info.rtp_timestamp)

    def _decode(self, ssrc: int, packet: Rtp, codec: RTCRtpCodecParameters) -> None:
        assert self._jitter is not None
        if self._await_key:
            if not is_keyframe_start(codec.name, packet.payload):
                return
            self._await_key = False
        rtp = RtpPacket(
            packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp, ssrc,
            packet.payload,
        )  # fmt: skip
        try:
            rtp._data = depayload(codec, packet.payload) if packet.payload else b""  # type: ignore[attr-defined]
        except ValueError:
            return
        pli, frame = self._jitter.add(rtp)
        if pli:
            _spawn(self._tasks, self.request_keyframe())
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
        self._nominated: dict[int, Any] = self._real.transport._connection._nominated
        self._tx: _Srtp | None = None
        # The nominated pair, and its outbox (None: a TURN relay's).
        self._pair: Any = None
        self.outbox: Outbox | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
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

    def send(self, packet: Rtp, rtx: bool = False) -> None:
        """Send ``packet`` on our SSRC (RTX SSRC if ``rtx``) with our mid, its audio level
        and abs-send-time (now if it has none); the header is packed here, not by aiortc, and
        the packet protected in place and put in the ICE pair's outbox (sent when this turn
        of the loop ends), as this runs for every packet."""
        real = self._real
        # aiortc's _send_rtp, without its coroutines (and aioice's): not connected yet or any
        # more is what its ConnectionError meant, and that was dropped too.
        pair = self._nominated.get(1)
        if real._state is not DtlsState.CONNECTED or pair is None:
            return
        tx = self._tx
        if tx is None:
            tx = self._tx = _Srtp(real._tx_srtp)
        extension = self._extension(packet.audio_level, packet.abs_send_time)
        padding = packet.padding_size
        header = _RTP_HEADER.pack(
            0x80 | (0x10 if extension else 0) | (0x20 if padding else 0),
            (packet.marker << 7) | packet.payload_type,
            packet.sequence_number,
            packet.timestamp,
            self.rtx_ssrc if rtx else self.ssrc,
        )
        data = tx.protect(header, extension, packet.payload, padding)
        if data is None:
            return
        if pair is not self._pair:
            self._pair = pair
            # A TURN relay has no socket to send on directly (the server's own peers use
            # none: media/ice.py).
            protocol = pair.protocol
            self.outbox = _outbox(protocol, pair.remote_addr)
        if self.outbox is not None:
            self.outbox.put(data)
        else:
            _spawn(self._tasks, pair.protocol.send_data(data, pair.remote_addr))

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
    """What the relay core needs of aiortc's packet. Audio level and the sender's own send
    time are kept: the far receiver's delay-based estimate (REMB, relayed back to the sender)
    then covers the sender's uplink."""
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
