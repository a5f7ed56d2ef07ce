"""The forwarding seam: how one participant's received media reaches the other.

Packets (the default): each participant's outgoing stream is a ``relay.Relay`` (the pure core
that decides everything) driven by a ``RelayProtocol`` (its asyncio adapter). While the partner
is away, aiortc's sender encodes the ``Outlet``'s placeholder (a card, silence); once the partner's
stream arrives (from a key frame on, for video), the outlet holds and the partner's decrypted
RTP packets are re-sent on our sender's SSRC with payload type, sequence numbers, timestamps
and VP8 picture ids rewritten so the receiver sees one continuous stream. Nothing is decoded
unless someone taps an ``Inlet`` for frames (a stream still), and only while they do.

Frames (``CONSULT_FORWARDING=frames``, and per direction when the two legs share no video
codec): each received track is read by an ``Inlet`` and decoded, and the ``Outlet`` carries the
partner's frames, re-stamped on one clock, for aiortc's sender to encode again.

The ``Forwarder`` derives which of these applies from which peers exist; signaling only calls
``Forwarder.add/remove``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import av
from aiortc import RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame
from pyee.asyncio import AsyncIOEventEmitter

from ..roles import ROLES, Role, partner_of
from .internals import Emission, Reception, key_of
from .outbox import Outbox
from .packets import CodecKey
from .placeholder import AUDIO_RATE, ENCODED_CODECS, card_frame, encoded_card, silence_frame
from .relay import (
    CodecMismatch,
    FormatChanged,
    HoldPlaceholder,
    OwnKeyframe,
    Relay,
    RequestKeyframe,
    Rtp,
    Send,
    SenderInfo,
    SendRemb,
)

if TYPE_CHECKING:
    from .peer import ServerPeer
    from .recording import ParticipantTape

Frame = AudioFrame | VideoFrame

__all__ = ["Forwarder", "Inlet", "Outlet", "RelayProtocol", "Tap"]

logger = logging.getLogger(__name__)

Kind = Literal["audio", "video"]
VIDEO_CLOCK = 90000
#: Placeholder frame rate: a still card needs few frames, and each one costs an encode.
PLACEHOLDER_FPS = 10
#: How long an outlet waits for the partner's next frame before it fills in.
STALL = {"audio": 0.1, "video": 1.0}
#: Frames a tap holds before dropping the oldest: a slow consumer sees fresh media, not a backlog.
TAP_DEPTH = {"audio": 10, "video": 2}


class Tap:
    """A bounded, drop-oldest feed of one inlet's frames to one consumer."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue(maxsize)
        self.closed = False
        self.dropped = 0

    def put(self, frame: Frame | None) -> None:
        if self.closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(frame)

    async def get(self) -> Frame | None:
        """The next frame, or None once the tap is closed."""
        if self.closed and self._queue.empty():
            return None
        return await self._queue.get()

    def close(self) -> None:
        if not self.closed:
            self.put(None)
            self.closed = True


class Inlet:
    """Reads one received track until it ends and hands every frame to the current taps."""

    def __init__(
        self, track: MediaStreamTrack, label: str, reception: Reception | None = None
    ) -> None:
        self.kind: Kind = "audio" if track.kind == "audio" else "video"
        self.frames = 0
        #: The track's RTP below the jitter buffer (packet forwarding); None: frames only.
        self.reception = reception
        self._track = track
        self._label = label
        self._taps: set[Tap] = set()
        self._task = asyncio.ensure_future(self._run())

    @property
    def live(self) -> bool:
        return not self._task.done()

    def tap(self) -> Tap:
        """Frames from now on (decoding starts, at a key frame, if it was off)."""
        tap = Tap(TAP_DEPTH[self.kind])
        if self.live:
            self._taps.add(tap)
            if self.reception is not None:
                self.reception.start_decoding()
        else:
            tap.close()
        return tap

    def untap(self, tap: Tap) -> None:
        self._taps.discard(tap)
        tap.close()
        if not self._taps and self.reception is not None:
            self.reception.stop_decoding()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        try:
            while True:
                frame = await self._track.recv()
                if not isinstance(frame, AudioFrame | VideoFrame):
                    continue  # received tracks carry decoded frames; packets are not ours
                self.frames += 1
                for tap in self._taps:
                    tap.put(frame)
        except MediaStreamError:
            logger.debug("%s %s track ended after %d frames", self._label, self.kind, self.frames)
        finally:
            for tap in self._taps:
                tap.close()
            self._taps.clear()


class Outlet(MediaStreamTrack):
    """An outgoing track: the partner's frames while attached to an inlet, else a placeholder."""

    def __init__(self, kind: Kind, waiting_text: str) -> None:
        super().__init__()
        self.kind = kind
        self.waiting_text = waiting_text
        self._inlet: Inlet | None = None
        self._tap: Tap | None = None
        self._start: float | None = None
        self._audio_pts = 0
        self._video_pts = -1
        self._last_video: VideoFrame | None = None
        self._released = asyncio.Event()
        self._released.set()
        #: The card pre-encoded for our leg's codec (set by its RelayProtocol); None: frames.
        self.encoded: tuple[bytes, ...] | None = None
        self._card_index = 0

    @property
    def source(self) -> Inlet | None:
        return self._inlet

    def restart_card(self) -> None:
        """The next encoded card frame is its key frame."""
        self._card_index = 0

    @property
    def held(self) -> bool:
        return not self._released.is_set()

    def hold(self, held: bool) -> None:
        """Stop giving frames (the partner's packets are forwarded instead), or go on."""
        if held:
            self._released.clear()
        else:
            self._card_index = 0
            self._released.set()

    def use(self, inlet: Inlet | None) -> None:
        """Carry ``inlet``'s frames from the next frame on (None: the placeholder)."""
        if inlet is self._inlet:
            return
        self._last_video = None
        self._card_index = 0
        if self._inlet is not None and self._tap is not None:
            self._inlet.untap(self._tap)
        self._inlet = inlet
        self._tap = inlet.tap() if inlet is not None else None

    def stop(self) -> None:
        self.use(None)
        super().stop()
        self._released.set()

    async def recv(self) -> Frame | av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        while not self._released.is_set():
            await self._released.wait()  # nothing to encode while packets are forwarded
            if self.readyState != "live":
                raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        while True:
            tap = self._tap
            if tap is None:
                return await self._placeholder()
            try:
                # asyncio.timeout, not wait_for: no task of its own for every frame.
                async with asyncio.timeout(STALL[self.kind]):
                    frame = await tap.get()
            except TimeoutError:
                # The partner is there but sends nothing (a camera turned off, a stalled
                # network): hold their last picture, as a call does; the card means "not here".
                if self._last_video is not None:
                    return self._stamp(self._last_video)
                return await self._placeholder()
            if frame is not None:
                if isinstance(frame, VideoFrame):
                    self._last_video = frame
                return self._stamp(frame)
            if tap is self._tap:  # the inlet ended under us
                self.use(None)
            if self.readyState != "live":
                raise MediaStreamError

    def _elapsed(self) -> float:
        assert self._start is not None
        return time.monotonic() - self._start

    def _stamp(self, frame: Frame) -> Frame:
        # One clock for placeholder and partner: the receiver sees one continuous stream.
        if self.kind == "video":
            self._video_pts = max(self._video_pts + 1, int(self._elapsed() * VIDEO_CLOCK))
            frame.pts = self._video_pts
            frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        else:
            assert isinstance(frame, AudioFrame)
            now_pts = int(self._elapsed() * AUDIO_RATE)
            if now_pts - self._audio_pts > AUDIO_RATE // 10:  # fell behind (loss, stall): catch up
                self._audio_pts = now_pts
            frame.pts = self._audio_pts
            frame.time_base = fractions.Fraction(1, frame.sample_rate)
            self._audio_pts += frame.samples * AUDIO_RATE // frame.sample_rate
        return frame

    async def _placeholder(self) -> Frame | av.Packet[Any]:
        if self.kind == "video":
            due = (self._video_pts + 1) / VIDEO_CLOCK + 1 / PLACEHOLDER_FPS
            await asyncio.sleep(max(0.0, due - self._elapsed()))
            if self.encoded is not None:
                packet = av.Packet(self.encoded[self._card_index % len(self.encoded)])
                self._card_index += 1
                self._video_pts = max(self._video_pts + 1, int(self._elapsed() * VIDEO_CLOCK))
                packet.pts = self._video_pts
                packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
                return packet
            return self._stamp(card_frame(self.waiting_text))
        due = self._audio_pts / AUDIO_RATE
        await asyncio.sleep(max(0.0, due - self._elapsed()))
        return self._stamp(silence_frame())


class RelayProtocol(AsyncIOEventEmitter):
    """The asyncio adapter of one outgoing stream's ``relay.Relay`` (as aioquic's
    ``QuicConnectionProtocol`` is of its ``QuicConnection``): it feeds the core what aiortc's
    sender and the partner's ``Reception`` hand over, and carries out its actions: packets on
    the wire, key-frame requests and REMB to the partner, the outlet held or released.

    Events: ``mismatch`` (the partner sends a codec this leg lacks: re-encode instead),
    ``format`` (the partner's key frames changed size or SPS: a camera switched).
    """

    def __init__(self, transceiver: RTCRtpTransceiver, outlet: Outlet, label: str) -> None:
        super().__init__()
        self.kind: Kind = "audio" if transceiver.kind == "audio" else "video"
        self.label = label
        self._outlet = outlet
        self._emission = Emission(transceiver, self)
        codecs = self._emission.codecs
        own = codecs[0].key.name if codecs else ""
        if self.kind == "video" and own in ENCODED_CODECS:
            outlet.encoded = encoded_card(outlet.waiting_text, own)
        self.core = Relay(self.kind, codecs, connected=self._emission.connected)
        self.source: Reception | None = None
        self._tasks: set[asyncio.Future[object]] = set()

    @property
    def packets_sent(self) -> int:
        """RTP packets this stream put on the wire: the placeholder's and forwarded ones."""
        return self.core.packets

    @property
    def outbox(self) -> Outbox | None:
        """Where this stream's packets wait for the end of the loop's turn (shared by the
        peer's streams); None before the first packet, or on a TURN relay."""
        return self._emission.outbox

    @property
    def forwarding(self) -> bool:
        """Whether the partner's packets are going out now (not the placeholder)."""
        return self.core.forwarding

    def can_forward(self, reception: Reception) -> bool:
        """Whether the receiving leg negotiated the codec the partner sends."""
        sent = reception.sent_codec
        return sent is not None and any(c.key == key_of(sent) for c in self.core.codecs)

    def use(self, source: Reception | None) -> None:
        """Forward ``source``'s packets from its next key frame on (None: the placeholder)."""
        if source is self.source:
            return
        if self.source is not None:
            self.source.detach(self)
        self.source = source
        if source is not None:
            source.attach(self)
        self.core.use(source, time.monotonic())
        self._spawn(self._act_soon())

    def request_keyframe(self) -> None:
        """Ask the stream's source for a key frame now (as a PLI from the receiver would)."""
        self.core.keyframe_request(time.monotonic())
        self._spawn(self._act_soon())

    def close(self) -> None:
        self.use(None)
        for task in self._tasks:
            task.cancel()

    # --- what the partner's Reception and our Emission hand over ------------------------------

    def partner_packet(self, reception: Reception, ssrc: int, codec: CodecKey, packet: Rtp) -> None:
        core = self.core
        now = time.monotonic()
        if not core.connected and self._emission.connected:
            core.set_connected(now)
        core.partner_packet(reception, ssrc, codec, packet, now)
        self._act()

    async def own_packet(self, packet: Rtp) -> None:
        self.core.own_packet(packet, time.monotonic())
        self._act()

    async def nack(self, lost: list[int]) -> None:
        self.core.nack(lost, time.monotonic())
        self._act()

    async def keyframe_request(self) -> None:
        self.core.keyframe_request(time.monotonic())
        self._act()

    async def remb(self, bitrate: int) -> None:
        self.core.remb(bitrate)
        self._act()

    def sender_info(self, ntp: float) -> SenderInfo | None:
        return self.core.sender_info(ntp, time.monotonic(), time.time())

    def sender_report(self, reception: Reception, ssrc: int, ntp: float, rtp_time: int) -> None:
        """The partner's sender reports are not forwarded: our leg's are our sender's."""

    # --- the core's actions -------------------------------------------------------------------

    async def _act_soon(self) -> None:
        """The actions of a change made from outside the packet path (the Forwarder's
        wiring, a key-frame request): carried out once that caller is done, not inside it."""
        self._act()

    def _act(self) -> None:
        """Carry out the core's actions: packets go out at once, in the packet path's own
        call; the rare RTCP to the partner (PLI, REMB) is sent on its own."""
        core = self.core
        emission = self._emission
        while (action := core.next_action()) is not None:
            if type(action) is Send:
                emission.send(action.packet, action.rtx)
            elif isinstance(action, RequestKeyframe):
                if isinstance(action.source, Reception):
                    self._spawn(action.source.request_keyframe())
            elif isinstance(action, SendRemb):
                if isinstance(action.source, Reception):
                    self._spawn(action.source.send_remb(action.bitrate))
            elif isinstance(action, OwnKeyframe):
                self._outlet.restart_card()
                emission.force_own_keyframe()
            elif isinstance(action, HoldPlaceholder):
                self._outlet.hold(action.held)
                if action.held:
                    emission.release_encoder()
            elif isinstance(action, CodecMismatch):
                logger.warning("%s: partner sends %s, not negotiated here", self.label,
                               action.codec.name)  # fmt: skip
                self.emit("mismatch")
            elif isinstance(action, FormatChanged):
                logger.info("%s: the partner's picture changed: %s", self.label, action.format)
                self.emit("format", action.format)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Forwarder:
    """One consultation's media wiring: each participant's outlets use the partner's inlets.

    The wiring is derived from which peers are connected and which tracks they send, and is
    recomputed on every change, so there is no switch state to get out of step.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self._peers: dict[Role, ServerPeer] = {}
        #: While the call is recorded: each participant's tape, fed by its receptions.
        self._tapes: dict[Role, ParticipantTape] = {}

    def record(self, role: Role, tape: ParticipantTape | None) -> None:
        """Feed ``role``'s received packets to ``tape`` (None: stop), whichever peer it has."""
        old = self._tapes.pop(role, None)
        if old is not None and old is not tape:
            old.use({})
        if tape is not None:
            self._tapes[role] = tape
        self._wire()

    def peer(self, role: Role) -> ServerPeer | None:
        return self._peers.get(role)

    def steer(self, peer: ServerPeer) -> None:
        """Before ``peer`` answers: put the codec the partner already sends first, so packets
        can flow between the two legs."""
        partner = self._peers.get(partner_of(peer.role))
        sent = partner.sent_codec("video") if partner is not None else None
        peer.preferred_video = key_of(sent) if sent is not None else None

    def add(self, peer: ServerPeer) -> None:
        """Make ``peer`` the one for its role (the caller closes any peer it replaces). It may
        have answered already (the hub answers first, so a refused offer changes nothing)."""
        self._peers[peer.role] = peer
        peer.on("inlet", lambda _inlet: self._wire())
        peer.on("ready", self._wire)
        peer.on("mismatch", self._wire)
        peer.on("closed", lambda: self.remove(peer))
        self._wire()

    def remove(self, peer: ServerPeer) -> None:
        if self._peers.get(peer.role) is peer:
            del self._peers[peer.role]
            self._wire()

    def _wire(self) -> None:
        for role, tape in self._tapes.items():
            peer = self._peers.get(role)
            inlets = peer.inlets if peer is not None else {}
            tape.use({k: i.reception for k, i in inlets.items() if i.reception is not None})
        for role in ROLES:
            peer = self._peers.get(role)
            if peer is None:
                continue
            partner = self._peers.get(partner_of(role))
            for kind, outlet in peer.outlets.items():
                inlet = partner.inlets.get(kind) if partner is not None else None
                if inlet is not None and not inlet.live:
                    inlet = None
                relay = peer.relays.get(kind)
                reception = inlet.reception if inlet is not None else None
                packets: Reception | None = None
                frames = inlet
                if peer.forwarding == "packets" and inlet is not None:
                    if relay is None or reception is None or not peer.ready:
                        frames = None  # not negotiated yet: the placeholder until it is
                    elif relay.can_forward(reception):
                        packets, frames = reception, None
                self._apply(role, kind, outlet, relay, packets, frames)

    def _apply(
        self,
        role: Role,
        kind: Kind,
        outlet: Outlet,
        relay: RelayProtocol | None,
        packets: Reception | None,
        frames: Inlet | None,
    ) -> None:
        before = (relay.source if relay is not None else None, outlet.source)
        if relay is not None:
            relay.use(packets)
        outlet.use(frames)
        if before != (packets, frames):
            how = (
                "partner's packets" if packets else "partner's frames" if frames else "placeholder"
            )
            logger.info("%s: %s %s <- %s", self._label, role, kind, how)
