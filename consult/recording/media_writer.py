"""A Matroska/WebM file written from encoded frames, on a thread of its own.

The packet path (the event loop) only appends frames to a batch; ``flush()`` (the adapter's
tick, every 0.2 s) hands the batch to the thread in one queue put. A put per frame woke the
thread 80 times a second per file, and each wake-up took the GIL from the event loop while it
forwarded packets: that hand-off, not the muxing, was most of what recording cost
(docs/media.md, Recording's cost). The thread muxes them with PyAV (libavformat's Matroska
muxer: nothing is decoded or encoded) and keeps the file safe:

- the muxer closes a cluster at least every second (``cluster_time_limit``), and writes a
  cluster only once it is complete, so the file on disk is always a header and whole clusters;
- ``max_interleave_delta`` bounds what the muxer holds back to interleave tracks (a camera
  turned off must not keep the audio in memory);
- the file is flushed and fsynced every ``FSYNC_EVERY`` seconds: a SIGKILL or power cut loses
  at most that much and the batch not handed over yet, and the rest plays (Matroska needs no
  index or duration to play; the next start finishes such a file, see ``recording_files``).

A write that fails (a full disk) ends the thread; ``done`` then holds the error and the
frames still queued are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import av

from ..media.recorder import TrackFormat

__all__ = ["BATCH_FRAMES", "FSYNC_EVERY", "FrameWriter", "Written", "container_of"]

logger = logging.getLogger(__name__)

#: Seconds between fsyncs of a file being written: what a crash may lose at most.
FSYNC_EVERY = 1.0
#: Frames a batch holds at most before it is handed over without waiting for ``flush()`` (a
#: late tick must not let a batch grow without bound).
BATCH_FRAMES = 256
_MS = fractions.Fraction(1, 1000)
MUXER_OPTIONS = {
    "cluster_time_limit": "1000",
    "cluster_size_limit": str(4 * 1024 * 1024),
    "max_interleave_delta": "1000000",
}


def container_of(tracks: tuple[TrackFormat, ...]) -> tuple[str, str, str]:
    """(libavformat format, file extension, media type): WebM for VP8 and Opus, Matroska for
    H.264 (which WebM does not allow)."""
    if all(t.codec in ("vp8", "opus") for t in tracks):
        video = any(t.kind == "video" for t in tracks)
        return "webm", "webm", "video/webm" if video else "audio/webm"
    return "matroska", "mkv", "video/x-matroska"


@dataclass(frozen=True)
class Written:
    """A finished file: its media type and how long it plays (the last frame's time)."""

    media_type: str
    extension: str
    duration_s: float
    frames: int


_STOP = object()
#: A frame as handed over: (track index, pts in ms, data, key frame).
_Item = tuple[int, int, bytes, bool]


class FrameWriter:
    """Writes one file at ``path`` (created on ``open``); ``close()`` finishes it."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self._label = label
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._batch: list[_Item] = []
        #: The thread has taken the last item (``_STOP``): nothing more will come.
        self._stopped = False
        loop = asyncio.get_running_loop()
        self._loop = loop
        #: The file as finished (None: nothing was written), or the error that stopped it.
        self.done: asyncio.Future[Written | None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name=f"record {label}", daemon=True)
        self._thread.start()
        self._closing = False

    def open(self, tracks: tuple[TrackFormat, ...]) -> None:
        self.flush()
        self._queue.put(tracks)

    def write(self, track: int, pts_ms: int, data: bytes, key: bool) -> None:
        """Add a frame to the batch (``data`` is kept, not copied)."""
        batch = self._batch
        batch.append((track, pts_ms, data, key))
        if len(batch) >= BATCH_FRAMES:
            self.flush()

    def flush(self) -> None:
        """Hand the batch to the thread (one queue put), unless it failed or is empty."""
        batch = self._batch
        if batch:
            self._batch = []
            if not self.done.done():
                self._queue.put(batch)

    def close(self) -> asyncio.Future[Written | None]:
        """Finish the file with every frame written (safe to call twice); the future is
        ``done``."""
        if not self._closing:
            self._closing = True
            self.flush()
            self._queue.put(_STOP)
        return self.done

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        result: Written | None = None
        error: BaseException | None = None
        try:
            result = self._write_all()
        except BaseException as exc:  # reported through done, never lost in the thread
            error = exc
            logger.warning("%s: writing the recording failed: %s", self._label, exc)
            self._loop.call_soon_threadsafe(self._finish, None, error)
            if not self._stopped:
                while self._queue.get() is not _STOP:
                    pass  # drop what is queued until the adapter closes
            return
        self._loop.call_soon_threadsafe(self._finish, result, error)

    def _finish(self, result: Written | None, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is not None:
            self.done.set_exception(error)
        else:
            self.done.set_result(result)

    def _items(self) -> Iterator[Any]:
        """What the adapter handed over, in order, batches taken apart, up to ``_STOP``."""
        get = self._queue.get
        while (item := get()) is not _STOP:
            if type(item) is list:
                yield from item
            else:
                yield item
        self._stopped = True

    def _write_all(self) -> Written | None:
        items = self._items()
        tracks: tuple[TrackFormat, ...] | None = next(items, None)
        if tracks is None:
            return None
        fmt, extension, media_type = container_of(tracks)
        # Matroska's header needs a video's size: H.264's is in its first key frame's SPS (the
        # recorder's first frame of the file).
        early: list[_Item] = []
        for index, track in enumerate(tracks):
            if track.kind == "video" and not (track.width and track.height):
                for item in items:
                    early.append(item)
                    if item[0] == index:
                        break
                width, height = _size_of(track.codec, early[-1][2] if early else b"")
                tracks = tuple(
                    replace(t, width=width, height=height) if i == index else t
                    for i, t in enumerate(tracks)
                )
        file = _File(self.path.open("xb"))
        frames = 0
        last_pts = 0
        try:
            container = av.open(file, "w", format=fmt, options=MUXER_OPTIONS)
            streams = [_add_stream(container, track) for track in tracks]
            synced = time.monotonic()
            try:
                for index, pts, data, key in itertools.chain(early, items):
                    packet = av.Packet(data)
                    packet.stream = streams[index]
                    packet.time_base = _MS
                    packet.pts = packet.dts = pts
                    packet.is_keyframe = key
                    container.mux(packet)
                    frames += 1
                    last_pts = max(last_pts, pts)
                    if time.monotonic() - synced >= FSYNC_EVERY:
                        file.flush()
                        os.fsync(file.fileno())
                        synced = time.monotonic()
            finally:
                container.close()
            file.flush()
            os.fsync(file.fileno())
        except Exception:
            # PyAV reports a failed write as its own error: the disk's (ENOSPC) is the cause.
            if file.error is not None:
                raise file.error from None
            raise
        finally:
            file.close()
        return Written(media_type, extension, last_pts / 1000, frames)


class _File:
    """The file libavformat writes to, keeping the first write error (PyAV's own error hides
    its errno)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self._raw.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        try:
            self._raw.flush()
        except OSError as exc:
            self.error = self.error or exc
            raise

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a full disk: what could be written was
            self._raw.close()


def _size_of(codec: str, frame: bytes) -> tuple[int, int]:
    """A key frame's picture size, from its SPS (libavcodec's parser: nothing is decoded)."""
    parser = av.CodecContext.create(codec, "r")
    assert isinstance(parser, av.VideoCodecContext)
    parser.parse(frame)
    parser.parse(None)
    return parser.width, parser.height


def _add_stream(container: Any, track: TrackFormat) -> Any:
    if track.kind == "video":
        options: dict[str, Any] = {}
        if track.width and track.height:
            options = {"width": track.width, "height": track.height}
        return container.add_mux_stream(track.codec, **options)
    # An Opus track needs its OpusHead (channels, pre-skip) in the file's header: the libopus
    # encoder's stream writes it (the encoder itself is never fed).
    stream = container.add_stream("libopus", rate=track.rate or 48000)
    stream.layout = "stereo"
    return stream
