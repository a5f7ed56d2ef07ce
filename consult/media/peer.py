"""The server's peer connection with one participant.

States: ``new`` -> ``connecting`` -> ``connected`` -> ``closed``, with ``failed`` before
``closed`` when ICE or DTLS fails. Events: ``statechange`` (the new state), ``inlet`` (a
received track is being read), ``ready`` (the answer is made: codecs and relays are known),
``mismatch`` (the partner sends a video codec our leg lacks: the wiring must change),
``closed`` (once, after everything is released).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import Literal, cast

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpCodecParameters, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCTransportStats,
)
from pyee.asyncio import AsyncIOEventEmitter

from ..config import Bitrates, Forwarding
from ..errors import InvalidSdp
from ..roles import Role, partner_of
from . import internals, sdp
from .forward import Inlet, Kind, Outlet, RelayProtocol
from .packets import CodecKey

__all__ = ["PeerState", "PeerStats", "ServerPeer"]

logger = logging.getLogger(__name__)

PeerState = Literal["new", "connecting", "connected", "failed", "closed"]

#: aiortc's connection states that ours follows; "closed" is ours to reach, after cleanup.
_FOLLOWED: dict[str, PeerState] = {
    "connecting": "connecting",
    "connected": "connected",
    "failed": "failed",
}

WAITING_TEXT: dict[Role, str] = {
    "customer": "Waiting for the customer",
    "stylist": "Waiting for your stylist",
}


@dataclass
class PeerStats:
    """What went over one participant's connection with the server, since it began.

    ``in``: from the participant to the server; ``out``: from the server to the participant.
    Losses ``out`` are what the participant reported in its RTCP receiver reports.
    """

    bytes_in: int = 0
    bytes_out: int = 0
    packets_in: dict[Kind, int] = field(default_factory=dict)
    packets_out: dict[Kind, int] = field(default_factory=dict)
    lost_in: dict[Kind, int] = field(default_factory=dict)
    lost_out: dict[Kind, int] = field(default_factory=dict)
    frames_in: dict[Kind, int] = field(default_factory=dict)
    #: Seconds, from the last receiver report; None before the first.
    round_trip: float | None = None


class ServerPeer(AsyncIOEventEmitter):
    def __init__(
        self,
        role: Role,
        *,
        label: str,
        configuration: RTCConfiguration,
        media_addresses: tuple[str, ...] = (),
        bitrates: Bitrates | None = Bitrates(),  # noqa: B008 (frozen)
        max_sdp_bytes: int = 32 * 1024,
        forwarding: Forwarding = "packets",
    ) -> None:
        super().__init__()
        self.role = role
        self.forwarding: Forwarding = forwarding
        #: The video codec to put first in the answer (the partner's), set by the Forwarder.
        self.preferred_video: CodecKey | None = None
        #: Our outgoing streams at the packet level, once the answer is made ("packets" only).
        self.relays: dict[Kind, RelayProtocol] = {}
        self.ready = False
        self.label = f"{label}/{role}"
        self.inlets: dict[Kind, Inlet] = {}
        self._unused_inlets: list[Inlet] = []
        # What this participant receives: the partner's media, or a card naming the partner.
        waiting = WAITING_TEXT[partner_of(role)]
        self.outlets: dict[Kind, Outlet] = {
            "audio": Outlet("audio", waiting),
            "video": Outlet("video", waiting),
        }
        self._media_addresses = media_addresses
        self._bitrates = bitrates
        self._max_sdp_bytes = max_sdp_bytes
        self._state: PeerState = "new"
        #: Whether media ever got through: a peer that fails before is an unreachable network.
        self.was_connected = False
        #: The counts as the connection ended, kept for the totals (consult/metrics.py).
        self.final_stats: PeerStats | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._pc = RTCPeerConnection(configuration)
        self._pc.on("track", self._on_track)
        self._pc.on("connectionstatechange", self._on_connection_state)

    @property
    def state(self) -> PeerState:
        return self._state

    async def answer(self, offer: str) -> str:
        """Answer ``offer`` (complete, non-trickle) and return our answer, also complete."""
        sdp.check_offer(offer, max_bytes=self._max_sdp_bytes)
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, ... on bad SDP
            raise InvalidSdp(f"The offer cannot be used: {exc or type(exc).__name__}.") from None
        if self.forwarding == "packets":
            for transceiver in self._pc.getTransceivers():
                preferred = self.preferred_video if transceiver.kind == "video" else None
                internals.prefer_codecs(
                    transceiver, functools.partial(codec_rank, preferred=preferred)
                )
        for transceiver in self._pc.getTransceivers():
            outlet = next((o for o in self.outlets.values() if o.kind == transceiver.kind), None)
            if outlet is not None and transceiver.sender.track is None:
                self._pc.addTrack(outlet)
        with internals.host_addresses(self._media_addresses):
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        answer = self._pc.localDescription.sdp
        if self.forwarding == "packets" and self._close_task is None:
            for transceiver in self._pc.getTransceivers():
                outlet = next(
                    (o for o in self.outlets.values() if o is transceiver.sender.track), None
                )
                if outlet is not None and outlet.kind not in self.relays:
                    kind: Kind = "audio" if outlet.kind == "audio" else "video"
                    relay = RelayProtocol(transceiver, outlet, f"{self.label} {outlet.kind}")
                    relay.on("mismatch", functools.partial(self.emit, "mismatch"))
                    self.relays[kind] = relay
        self.ready = True
        self.emit("ready")
        return sdp.add_video_bitrates(answer, self._bitrates) if self._bitrates else answer

    def sent_codec(self, kind: Kind) -> RTCRtpCodecParameters | None:
        """The codec the participant sends for ``kind``, once its offer is answered."""
        inlet = self.inlets.get(kind)
        if inlet is not None and inlet.reception is not None and self.ready:
            return inlet.reception.sent_codec
        return None

    async def request_keyframe(self) -> bool:
        """Ask the participant's browser for a video keyframe (RTCP PLI)."""
        inlet = self.inlets.get("video")
        if inlet is not None and inlet.reception is not None:
            return await inlet.reception.request_keyframe()
        for transceiver in self._pc.getTransceivers():
            if transceiver.kind == "video":
                return await internals.request_keyframe(transceiver.receiver)
        return False

    async def stats(self) -> PeerStats:
        """The connection's counts, from aiortc's ``getStats()``."""
        if self.final_stats is not None:
            return self.final_stats
        stats = PeerStats()
        rtts: list[float] = []
        for report in (await self._pc.getStats()).values():
            match report:
                case RTCTransportStats():
                    # One bundled transport carries both kinds.
                    stats.bytes_in += report.bytesReceived
                    stats.bytes_out += report.bytesSent
                case RTCInboundRtpStreamStats(kind=kind):
                    _add(stats.packets_in, kind, report.packetsReceived)
                    _add(stats.lost_in, kind, max(report.packetsLost, 0))
                case RTCOutboundRtpStreamStats(kind=kind):
                    _add(stats.packets_out, kind, report.packetsSent)
                case RTCRemoteInboundRtpStreamStats(kind=kind):
                    _add(stats.lost_out, kind, max(report.packetsLost, 0))
                    if report.roundTripTime is not None:  # before the first report
                        rtts.append(report.roundTripTime)
        for kind, relay in self.relays.items():
            # Forwarded packets bypass aiortc's sender, which counts only its own.
            stats.packets_out[kind] = relay.packets_sent
        for kind, inlet in self.inlets.items():
            # Forwarding packets decodes nothing: count the frames the packets carried.
            reception = inlet.reception
            stats.frames_in[kind] = reception.frames if reception is not None else inlet.frames
        stats.round_trip = max(rtts) if rtts else None
        return stats

    async def close(self) -> None:
        """Release the connection, its tracks and readers; safe to call again and concurrently."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        for relay in self.relays.values():
            relay.close()
        for outlet in self.outlets.values():
            outlet.stop()
        try:
            self.final_stats = await self.stats()
        except Exception:  # counts are nice to have; closing is not optional
            logger.exception("%s: reading the final counts failed", self.label)
        await self._pc.close()
        inlets = [*self.inlets.values(), *self._unused_inlets]
        await asyncio.gather(*(inlet.close() for inlet in inlets))
        self._set_state("closed")
        self.emit("closed")

    def _on_track(self, track: MediaStreamTrack) -> None:
        # Every received track gets a reader, even one we do not forward: aiortc would buffer
        # an unread track without bound.
        reception = None
        if self.forwarding == "packets":
            transceiver = next(
                (t for t in self._pc.getTransceivers() if t.receiver.track is track), None
            )
            if transceiver is not None:
                reception = internals.Reception(transceiver, track.kind)
        inlet = Inlet(track, self.label, reception)
        if inlet.kind in self.inlets:
            logger.warning("%s: a second %s track, read and dropped", self.label, inlet.kind)
            self._unused_inlets.append(inlet)
            return
        self.inlets[inlet.kind] = inlet
        self.emit("inlet", inlet)

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        if state in _FOLLOWED:
            self._set_state(_FOLLOWED[state])
        if state in ("failed", "closed") and self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())

    def _set_state(self, state: PeerState) -> None:
        if state == self._state or self._state == "closed":
            return
        logger.info("%s: peer %s -> %s", self.label, self._state, state)
        self._state = state
        self.was_connected = self.was_connected or state == "connected"
        self.emit("statechange", state)


def _add(counts: dict[Kind, int], kind: str, value: int) -> None:
    if kind in ("audio", "video"):
        key = cast(Kind, kind)
        counts[key] = counts.get(key, 0) + value


def codec_rank(key: CodecKey, preferred: CodecKey | None) -> int:
    """Answer order: the partner's codec, then VP8, then H.264 packetization-mode 1
    (constrained baseline, what Safari needs), then anything else; Opus first for audio."""
    if preferred is not None and key == preferred:
        return 0
    if key.name in ("vp8", "opus"):
        return 1
    if key.name == "h264" and key.packetization_mode == "1":
        return 2
    return 3
