"""The asyncio adapter of a call's recording: each participant's received RTP, as it comes,
into a ``recorder.Recorder`` core, and the core's frames to a ``FrameWriter`` thread.

A ``ParticipantTape`` is a sink of the participant's ``Reception``s (video and audio), beside
the partner's relay: it sees every packet before renumbering and every sender report. The
``Forwarder`` attaches it to whichever receptions the participant has (a page that offers
again gets new ones), so recording is one more use of the forwarding seam. On the packet path
a tape only runs the core and adds frames to the writer's batch, handed to the writer's thread
on each tick (``TICK``): no disk I/O on the event loop, and no thread woken per frame.

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

#: How often the cores are told the time passes (gaps become losses, waits end), and the
#: frames since the last tick go to the writers' threads.
TICK = 0.2


class ParticipantTape:
    """One participant's file: its receptions' packets through a ``Recorder`` to a writer."""

    def __init__(self, role: Role, origin: float, writer: FrameWriter) -> None:
        self.role = role
        self.core = Recorder(origin)
        self.writer = writer
        self._receptions: dict[Kind, Reception] = {}
        self._tasks: set[asyncio.Future[Any]] = set()

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

    def partner_packet(self, reception: Reception, ssrc: int, codec: CodecKey, packet: Rtp) -> None:
        self.core.packet(
            "video" if reception.kind == "video" else "audio", ssrc, codec, packet, time.time()
        )
        self._act()

    def sender_report(self, reception: Reception, ssrc: int, ntp: float, rtp_time: int) -> None:
        kind: Kind = "video" if reception.kind == "video" else "audio"
        self.core.sender_report(kind, ssrc, ntp, rtp_time, time.time())
        self._act()

    def tick(self) -> None:
        self.core.tick(time.time())
        self._act()
        self.writer.flush()

    def stop(self) -> asyncio.Future[Written | None]:
        """Stop taking packets, write what is complete and finish the file."""
        self.use({})
        self.core.stop(time.time())
        self._act()
        for task in self._tasks:
            task.cancel()
        return self.writer.close()

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
