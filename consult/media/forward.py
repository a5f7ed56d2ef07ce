"""The forwarding seam: how one participant's received media reaches the other.

This version forwards decoded frames: each received track is read by an ``Inlet`` for as long as
it lives (aiortc buffers unread frames without bound), and each participant's outgoing tracks
are ``Outlet``s that carry the partner's frames when there are some, and a placeholder
otherwise, re-stamped on one clock so the stream stays continuous across switches. aiortc's
sender re-encodes them. A later version forwards RTP packets instead, behind the same
``Forwarder`` interface; signaling does not know which one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from typing import TYPE_CHECKING, Literal

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from ..roles import ROLES, Role, partner_of
from .placeholder import AUDIO_RATE, card_frame, silence_frame

if TYPE_CHECKING:
    from .peer import ServerPeer

Frame = AudioFrame | VideoFrame

__all__ = ["Forwarder", "Inlet", "Outlet", "Tap"]

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

    def __init__(self, track: MediaStreamTrack, label: str) -> None:
        self.kind: Kind = "audio" if track.kind == "audio" else "video"
        self.frames = 0
        self._track = track
        self._label = label
        self._taps: set[Tap] = set()
        self._task = asyncio.ensure_future(self._run())

    @property
    def live(self) -> bool:
        return not self._task.done()

    def tap(self) -> Tap:
        tap = Tap(TAP_DEPTH[self.kind])
        if self.live:
            self._taps.add(tap)
        else:
            tap.close()
        return tap

    def untap(self, tap: Tap) -> None:
        self._taps.discard(tap)
        tap.close()

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

    @property
    def source(self) -> Inlet | None:
        return self._inlet

    def use(self, inlet: Inlet | None) -> None:
        """Carry ``inlet``'s frames from the next frame on (None: the placeholder)."""
        if inlet is self._inlet:
            return
        self._last_video = None
        if self._inlet is not None and self._tap is not None:
            self._inlet.untap(self._tap)
        self._inlet = inlet
        self._tap = inlet.tap() if inlet is not None else None

    def stop(self) -> None:
        self.use(None)
        super().stop()

    async def recv(self) -> Frame:
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

    async def _placeholder(self) -> Frame:
        if self.kind == "video":
            due = (self._video_pts + 1) / VIDEO_CLOCK + 1 / PLACEHOLDER_FPS
            await asyncio.sleep(max(0.0, due - self._elapsed()))
            return self._stamp(card_frame(self.waiting_text))
        due = self._audio_pts / AUDIO_RATE
        await asyncio.sleep(max(0.0, due - self._elapsed()))
        return self._stamp(silence_frame())


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

    def add(self, peer: ServerPeer) -> None:
        """Make ``peer`` the one for its role (the caller closes any peer it replaces)."""
        self._peers[peer.role] = peer
        peer.on("inlet", lambda _inlet: self._wire())
        peer.on("closed", lambda: self.remove(peer))
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
                if outlet.source is not inlet:
                    logger.info(
                        "%s: %s %s <- %s",
                        self._label,
                        role,
                        kind,
                        "partner" if inlet is not None else "placeholder",
                    )
                    outlet.use(inlet)
