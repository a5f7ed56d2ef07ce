"""The asyncio adapter of a call's recording: each participant's received RTP, as it comes,
into a ``recorder.Recorder`` core, and the core's frames to a ``FrameWriter`` thread.

A ``ParticipantTape`` is a sink of the participant's ``Reception``s (video and audio), beside
the partner's relay: it sees every packet before renumbering and every sender report. The
``Forwarder`` attaches it to whichever receptions the participant has (a page that offers
again gets new ones), so recording is one more use of the forwarding seam. On the packet path
a tape only notes the packet and its arrival time; on each tick (``TICK``) it runs the core
over what came since, in order (the core's times are the arrivals noted, so it decides as it
would have packet by packet), and hands the frames to the writer's thread in one batch. No
disk I/O on the event loop, no thread woken per frame, and the core's work done in one run
while its code and data are warm, not between two forwarded packets (docs/media.md,
Recording's cost).

Events of ``CallRecording``: ``failed`` (the exception) when a file cannot be written (a full
disk): the hub stops the recording and tells both pages; the call goes on. ``codec-changed``
(once) when a participant's video came in another codec than its file's (a page that offered
again with another): the hub finishes these files and goes on recording in new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

from ..recording.media_writer import FrameWriter, Written
from ..recording.recordings import RecordingFiles
from ..roles import Role
from .forward import Forwarder, Kind
from .internals import Reception
from .packets import CodecKey
from .recorder import OpenFile, Recorder, RequestKeyframe, WriteFrame
from .relay import Rtp

__all__ = ["TICK", "CallRecording", "ParticipantTape"]

logger = logging.getLogger(__name__)

#: How often the cores take the packets noted since the last tick and are told the time
#: passes (gaps become losses, waits end), and the frames go to the writers' threads.
TICK = 0.2
#: Packets noted at most before the core takes them without waiting for the tick.
NOTED_PACKETS = 1024


@dataclass(frozen=True, slots=True)
class _Report:
    """A sender report noted among the packets (its place in their order matters)."""

    kind: Kind
    ssrc: int
    ntp: float
    rtp_time: int
    at: float


class ParticipantTape:
    """One participant's file: its receptions' packets through a ``Recorder`` to a writer."""

    def __init__(self, role: Role, origin: float, writer: FrameWriter) -> None:
        self.role = role
        self.core = Recorder(origin)
        self.writer = writer
        self._receptions: dict[Kind, Reception] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        #: Packets (kind, ssrc, codec, packet, arrival) and reports since the core last ran.
        self._noted: list[tuple[Kind, int, CodecKey, Rtp, float] | _Report] = []

    def use(self, receptions: Mapping[Kind, Reception]) -> None:
        """Record these receptions (the participant's current ones) and no others."""
        for kind, reception in list(self._receptions.items()):
            if receptions.get(kind) is not reception:
                reception.detach(self)
                del self._receptions[kind]
        for kind, reception in receptions.items():
            if kind not in self._receptions:
                self._receptions[kind] = reception
                reception.attach(self)

    async def partner_packet(
        self, reception: Reception, ssrc: int, codec: CodecKey, packet: Rtp
    ) -> None:
        noted = self._noted
        noted.append(
            ("video" if reception.kind == "video" else "audio", ssrc, codec, packet, time.time())
        )
        if len(noted) >= NOTED_PACKETS:
            self._run_core()

    def sender_report(self, reception: Reception, ssrc: int, ntp: float, rtp_time: int) -> None:
        kind: Kind = "video" if reception.kind == "video" else "audio"
        self._noted.append(_Report(kind, ssrc, ntp, rtp_time, time.time()))

    def tick(self) -> None:
        self._run_core()
        self.core.tick(time.time())
        self._act()
        self.writer.flush()

    def stop(self) -> asyncio.Future[Written | None]:
        """Stop taking packets, write what is complete and finish the file."""
        self.use({})
        self._run_core()
        self.core.stop(time.time())
        self._act()
        for task in self._tasks:
            task.cancel()
        return self.writer.close()

    def _run_core(self) -> None:
        """The packets and reports noted since the last run, through the core in order."""
        noted, self._noted = self._noted, []
        core = self.core
        for item in noted:
            if isinstance(item, _Report):
                core.sender_report(item.kind, item.ssrc, item.ntp, item.rtp_time, item.at)
            else:
                core.packet(*item)
        self._act()

    def _act(self) -> None:
        core, writer = self.core, self.writer
        while (action := core.next_action()) is not None:
            if type(action) is WriteFrame:
                writer.write(action.track, action.pts_ms, action.data, action.key)
            elif isinstance(action, OpenFile):
                writer.open(action.tracks)
            elif isinstance(action, RequestKeyframe):
                video = self._receptions.get("video")
                if video is not None:
                    task = asyncio.ensure_future(video.request_keyframe())
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            # CloseFile: ``stop()`` closes the writer after the core's last frames.


class CallRecording(AsyncIOEventEmitter):
    """Both participants' files of one recording, from ``start()`` to ``stop()``."""

    def __init__(
        self,
        label: str,
        forwarder: Forwarder,
        files: RecordingFiles,
        recording_ids: Mapping[Role, str],
    ) -> None:
        super().__init__()
        self.label = label
        self._forwarder = forwarder
        self._files = files
        self.recording_ids = dict(recording_ids)
        self.tapes: dict[Role, ParticipantTape] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = False
        self._codec_changed = False

    def start(self) -> None:
        origin = time.time()
        for role, recording_id in self.recording_ids.items():
            writer = FrameWriter(self._files.staged(recording_id), f"{self.label}/{role}")
            writer.done.add_done_callback(self._writer_done)
            tape = self.tapes[role] = ParticipantTape(role, origin, writer)
            self._forwarder.record(role, tape)
        self._ticker = asyncio.ensure_future(self._tick())

    async def stop(self) -> dict[Role, Written | BaseException | None]:
        """Finish both files: each one's result, or the error that stopped it."""
        self._stopping = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for role in self.tapes:
            self._forwarder.record(role, None)
        futures = {role: tape.stop() for role, tape in self.tapes.items()}
        results: dict[Role, Written | BaseException | None] = {}
        for role, future in futures.items():
            try:
                results[role] = await asyncio.shield(future)
            except Exception as exc:
                results[role] = exc
        return results

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            for tape in self.tapes.values():
                tape.tick()
                if tape.core.codec_changed and not self._codec_changed:
                    self._codec_changed = True
                    self.emit("codec-changed")

    def _writer_done(self, future: asyncio.Future[Written | None]) -> None:
        if self._stopping or future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self.emit("failed", error)
