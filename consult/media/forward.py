"""The forwarding seam: how one participant's received media reaches the other.

Packets (the default): each participant's outgoing stream is a ``Relay``. While the partner is
away, aiortc's sender encodes the ``Outlet``'s placeholder (a card, silence); once the partner's
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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import av
from aiortc import RTCRtpCodecParameters
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from ..roles import ROLES, Role, partner_of
from .internals import Emission, Reception, RtpPacket, key_of
from .packets import Renumber, is_keyframe_start, vp8_picture_id, vp8_with_picture_id
from .placeholder import AUDIO_RATE, ENCODED_CODECS, card_frame, encoded_card, silence_frame

if TYPE_CHECKING:
    from .peer import ServerPeer

Frame = AudioFrame | VideoFrame

__all__ = ["Forwarder", "Inlet", "Outlet", "Relay", "Tap"]

logger = logging.getLogger(__name__)

Kind = Literal["audio", "video"]
VIDEO_CLOCK = 90000
#: Placeholder frame rate: a still card needs few frames, and each one costs an encode.
PLACEHOLDER_FPS = 10
#: How long an outlet waits for the partner's next frame before it fills in.
STALL = {"audio": 0.1, "video": 1.0}
#: Frames a tap holds before dropping the oldest: a slow consumer sees fresh media, not a backlog.
TAP_DEPTH = {"audio": 10, "video": 2}
#: While waiting for a switched-in partner's key frame, ask again this often.
KEYFRAME_RETRY = 0.25


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
        #: The card pre-encoded for our leg's codec (set by a Relay); None: frames to encode.
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
                frame = await asyncio.wait_for(tap.get(), STALL[self.kind])
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


_OWN = "own"


class Relay:
    """One participant's outgoing stream at the packet level.

    Its source is our own encoder (the outlet's placeholder) or a partner's ``Reception``.
    ``use(reception)`` arms the switch: the placeholder goes on until the partner's first key
    frame (requested at once, and again every ``KEYFRAME_RETRY``), then the outlet holds and
    the partner's packets go out. ``use(None)`` releases the outlet, whose next card frame is
    its key frame and starts the placeholder's next segment. One ``Renumber`` numbers them all.
    """

    def __init__(self, emission: Emission, outlet: Outlet, label: str) -> None:
        self.kind = emission.kind
        self.label = label
        self._emission = emission
        self._outlet = outlet
        codecs = emission.codecs
        #: Our leg's VP8 payload types: their picture ids are renumbered too.
        self._vp8 = {c.payloadType for c in codecs if c.name.lower() == "vp8"}
        self._own_codec = codecs[0].name if codecs else ""
        if self.kind == "video" and self._own_codec.lower() in ENCODED_CODECS:
            outlet.encoded = encoded_card(outlet.waiting_text, self._own_codec.lower())
        clock = (
            codecs[0].clockRate if codecs else (VIDEO_CLOCK if self.kind == "video" else AUDIO_RATE)
        )
        self._renumber = Renumber(clock)
        self.source: Reception | None = None
        self._forwarding = False
        self._payload_types: dict[int, int | None] = {}
        self._asked_at = 0.0
        self._asked_connected = False
        self._mismatched = False
        #: Called when the source sends a codec this leg lacks (the Forwarder rewires).
        self.on_mismatch: Callable[[], None] = lambda: None
        self._tasks: set[asyncio.Future[object]] = set()
        #: (armed at, first partner packet sent at) per switch, for tests and benchmarks.
        self.switches: list[list[float | None]] = []
        self.forwarded = 0
        emission.own = self._own
        emission.on_keyframe_request = self._keyframe_request
        emission.on_bitrate = self._bitrate

    @property
    def packets_sent(self) -> int:
        """RTP packets this stream put on the wire: the placeholder's and forwarded ones."""
        return self._emission.packets

    @property
    def forwarding(self) -> bool:
        """Whether the partner's packets are going out now (not the placeholder)."""
        return self._forwarding

    def can_forward(self, reception: Reception) -> bool:
        """Whether the receiving leg negotiated the codec the partner sends."""
        sent = reception.sent_codec
        return sent is not None and any(key_of(c) == key_of(sent) for c in self._emission.codecs)

    def use(self, source: Reception | None) -> None:
        if source is self.source:
            return
        if self.source is not None:
            self.source.consumers.discard(self._forward)
        self.source = source
        self._payload_types = {}
        self._mismatched = False
        if self._forwarding:  # back to the placeholder until the new source's key frame
            self._forwarding = False
            self._outlet.hold(False)
            self._emission.force_own_keyframe()
        if source is not None:
            source.consumers.add(self._forward)
            self.switches.append([time.monotonic(), None])
            self._asked_connected = self._emission.connected
            self._ask_keyframe()

    def close(self) -> None:
        self.use(None)
        for task in self._tasks:
            task.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ask_keyframe(self) -> None:
        if self.source is not None and self.kind == "video":
            self._asked_at = time.monotonic()
            self._spawn(self.source.request_keyframe())

    def _keyframe_request(self) -> bool:
        """A PLI/FIR from the receiver: the partner's encoder answers it while forwarding."""
        if self._forwarding and self.source is not None:
            self._ask_keyframe()
            return True
        self._outlet.restart_card()
        return False

    def _bitrate(self, bitrate: int) -> None:
        """REMB from the receiver: the partner's sender should not send more than it takes."""
        if self._forwarding and self.source is not None:
            self._spawn(self.source.send_remb(bitrate))

    def _out_payload_type(self, codec: RTCRtpCodecParameters) -> int | None:
        in_pt = codec.payloadType or 0
        pt = self._payload_types.get(in_pt, -1)
        if pt == -1:
            key = key_of(codec)
            pt = next((c.payloadType for c in self._emission.codecs if key_of(c) == key), None)
            self._payload_types[in_pt] = pt
        return pt

    def _own(self, packet: RtpPacket) -> bool:
        """Our encoder's packet: renumber it into the stream, or refuse it while forwarding."""
        if self._forwarding:
            return False
        now = time.monotonic()
        if self._renumber.source is not _OWN:
            if not is_keyframe_start(self._own_codec, packet.payload):
                self._emission.force_own_keyframe()
                return False
            self._renumber.start(
                _OWN,
                packet.sequence_number,
                packet.timestamp,
                self._picture_id(packet.payload, self._own_codec),
                now,
            )
            packet.marker = packet.marker or int(self.kind == "audio")
        return self._renumbered(packet, now)

    async def _forward(self, packet: RtpPacket, codec: RTCRtpCodecParameters) -> None:
        """The partner's packet (decrypted, not depacketized): out on our SSRC."""
        source = self.source
        out_pt = self._out_payload_type(codec)
        if out_pt is None:  # the receiving leg cannot take this codec: re-encode instead
            if not self._mismatched:
                self._mismatched = True
                logger.warning("%s: partner sends %s, not negotiated here", self.label, codec.name)
                self.on_mismatch()
            return
        now = time.monotonic()
        segment = (id(source), packet.ssrc)
        if self._renumber.source != segment or not self._forwarding:
            if not self._emission.connected:
                return  # a key frame now would be lost: ask again once we can send
            switch = self.switches[-1] if self.switches else None
            if switch is not None and switch[1] is None and not self._asked_connected:
                switch[0] = max(switch[0] or now, now)  # the switch starts when we can send
                self._asked_connected = True
                self._ask_keyframe()
            if not is_keyframe_start(codec.name, packet.payload):
                if now - self._asked_at > KEYFRAME_RETRY:
                    self._ask_keyframe()
                return
            self._renumber.start(
                segment,
                packet.sequence_number,
                packet.timestamp,
                self._picture_id(packet.payload, codec.name),
                now,
            )
            if not self._forwarding:
                self._forwarding = True
                self._outlet.hold(True)
                self._emission.release_encoder()
            if self.switches and self.switches[-1][1] is None:
                self.switches[-1][1] = now
        mapped = self._renumber.map(packet.sequence_number, packet.timestamp, now)
        if mapped is None:
            return
        payload = packet.payload
        if out_pt in self._vp8:
            found = vp8_picture_id(payload)
            if found is not None:
                payload = vp8_with_picture_id(payload, self._renumber.map_picture_id(*found))
        self.forwarded += 1
        await self._emission.forward(
            out_pt,
            packet.marker,
            mapped[0],
            mapped[1],
            payload,
            packet.padding_size,
            packet.extensions.audio_level,
            # The sender's own send time: the receiver's delay-based estimate (REMB, relayed
            # back to the sender) then covers the sender's uplink as well as our downlink.
            packet.extensions.abs_send_time,
        )

    @staticmethod
    def _picture_id(payload: bytes, codec_name: str) -> int | None:
        found = vp8_picture_id(payload) if codec_name.lower() == "vp8" else None
        return found[0] if found else None

    def _renumbered(self, packet: RtpPacket, now: float) -> bool:
        mapped = self._renumber.map(packet.sequence_number, packet.timestamp, now)
        if mapped is None:
            return False
        packet.sequence_number, packet.timestamp = mapped
        if packet.payload_type in self._vp8:
            found = vp8_picture_id(packet.payload)
            if found is not None:
                pic = self._renumber.map_picture_id(*found)
                packet.payload = vp8_with_picture_id(packet.payload, pic)
        return True


class Forwarder:
    """One consultation's media wiring: each participant's outlets use the partner's inlets.

    The wiring is derived from which peers are connected and which tracks they send, and is
    recomputed on every change, so there is no switch state to get out of step.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self._peers: dict[Role, ServerPeer] = {}

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
        peer.on("ready", self._on_ready)
        peer.on("closed", lambda: self.remove(peer))
        if peer.ready:
            self._on_ready()
        else:
            self._wire()

    def _on_ready(self) -> None:
        for peer in self._peers.values():
            for relay in peer.relays.values():
                relay.on_mismatch = self._wire
        self._wire()

    def remove(self, peer: ServerPeer) -> None:
        if self._peers.get(peer.role) is peer:
            del self._peers[peer.role]
            self._wire()

    def _wire(self) -> None:
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
        relay: Relay | None,
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
