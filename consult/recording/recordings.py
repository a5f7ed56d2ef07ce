"""Recordings of calls: their rows (``Store.recordings``) and their files.

Layout under the recordings folder (``DATA/recordings``, beside ``DATA/stills``)::

    <consultation id>/<recording id>.webm|.mkv   a finished recording
    .staging/<node>/<recording id>.part          a recording being written by that service

A recording's row is made (status ``recording``, ``file`` the staged name) before its first
byte is written; when it ends the file is fsynced, hashed, renamed into place and its folder
fsynced, and only then is the row completed with the byte count and SHA-256. A service that
dies while recording leaves the staged file and the row: at the next start ``recover()``
copies the file's packets into a finished file (a stream copy, nothing decoded: the copy gets
the index and duration the killed writer never wrote), places it and completes the row; a
staged file with nothing playable in it is removed with its row. Each service stages in a
folder of its own (``<node>``: an id kept in its data folder), so where several services share
the recordings folder one that starts never takes another's live recording for a dead one.
Synchronous file work (``RecordingFiles``): call from an executor.

Deleting a consultation's recordings: with the consultation, through the deletion journal
(consult/recording/deletion.py: rows, then files, the finished ones and the staged ones of any
node writing one). A live recording of the consultation is
stopped first (``Hub.end``): a writer on another node would otherwise write on into a file
already unlinked, and find no row at its end.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import av

from ..errors import NotFound
from ..roles import Role
from .database import Database
from .files import StillFiles
from .schema import recordings

__all__ = [
    "Finished",
    "Recording",
    "RecordingFiles",
    "Recordings",
    "ended_at",
    "recover",
]

logger = logging.getLogger(__name__)

Status = Literal["recording", "complete"]
MEDIA_TYPES = {"webm": "video/webm", "mkv": "video/x-matroska"}


@dataclass(frozen=True)
class Recording:
    id: str
    consultation_id: str
    role: Role
    session: str
    status: Status
    started_at: datetime
    file: str
    ended_at: datetime | None = None
    duration_s: float | None = None
    media_type: str | None = None
    bytes: int | None = None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "session": self.session,
            "started_at": self.started_at.isoformat(),
            "duration_s": self.duration_s,
            "media_type": self.media_type,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Finished:
    """A file in place: where, how large, its hash, what it is and how long it plays."""

    file: str
    bytes: int
    sha256: str
    media_type: str
    duration_s: float


class Recordings:
    """The recordings table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def begin(self, recording: Recording) -> None:
        async with self._db.begin() as conn:
            await conn.execute(recordings.insert().values(**_row(recording)))

    async def complete(self, recording_id: str, finished: Finished, ended_at: datetime) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                recordings.update()
                .where(recordings.c.id == recording_id)
                .values(
                    status="complete",
                    ended_at=ended_at,
                    file=finished.file,
                    bytes=finished.bytes,
                    sha256=finished.sha256,
                    media_type=finished.media_type,
                    duration_s=finished.duration_s,
                )
            )

    async def discard(self, recording_id: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(recordings.delete().where(recordings.c.id == recording_id))

    async def get(self, recording_id: str) -> Recording:
        async with self._db.connect() as conn:
            row = (
                (
                    await conn.execute(
                        recordings.select().where(
                            recordings.c.id == recording_id, recordings.c.status == "complete"
                        )
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("No such recording.")
        return Recording(**row)

    async def of(self, consultation_id: str) -> list[Recording]:
        """The consultation's finished recordings, oldest first."""
        async with self._db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        recordings.select()
                        .where(
                            recordings.c.consultation_id == consultation_id,
                            recordings.c.status == "complete",
                        )
                        .order_by(recordings.c.started_at, recordings.c.role)
                    )
                )
                .mappings()
                .all()
            )
        return [Recording(**row) for row in rows]

    async def unfinished(self) -> list[Recording]:
        """Rows of recordings a stopped service was writing."""
        async with self._db.connect() as conn:
            rows = (
                (await conn.execute(recordings.select().where(recordings.c.status == "recording")))
                .mappings()
                .all()
            )
        return [Recording(**row) for row in rows]


def _row(recording: Recording) -> dict[str, Any]:
    return {k: getattr(recording, k) for k in recordings.c.keys()}  # noqa: SIM118 (column names)


class RecordingFiles:
    def __init__(self, root: Path, node: str) -> None:
        # The same staged-then-placed discipline as stills, in a folder of its own (the stills'
        # start-up sweep removes files no still row names).
        self._files = StillFiles(root)
        self.root = self._files.root
        self.staging = self._files.staging / node

    def prepare(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)

    def ours(self, recording: Recording) -> bool:
        """Whether this service was writing ``recording`` (its staged file is in our folder)."""
        return (self.root / recording.file).parent == self.staging

    def staged(self, recording_id: str) -> Path:
        return self.staging / f"{recording_id}.part"

    def path(self, relative: str) -> Path:
        return self._files.path(relative)

    def place(
        self, recording_id: str, consultation_id: str, extension: str, duration_s: float
    ) -> Finished:
        staged = self.staged(recording_id)
        size, digest = _hash(staged)
        file = self._files.place(staged, consultation_id, f"{recording_id}.{extension}")
        return Finished(file, size, digest, MEDIA_TYPES[extension], duration_s)

    def discard(self, recording_id: str) -> None:
        self.staged(recording_id).unlink(missing_ok=True)

    def recover(self, recording: Recording) -> Finished | None:
        """Finish a recording a dead service was writing (None: nothing in it plays)."""
        staged = self.staged(recording.id)
        if not staged.exists():
            return None
        fixed = staged.with_suffix(".fixed")
        try:
            extension, duration = _remux(staged, fixed)
        except OSError as exc:
            # No room for a copy (the disk that stopped the recording is full): the file as
            # written plays too, without an index.
            fixed.unlink(missing_ok=True)
            try:
                extension, duration = _probe(staged)
            except (av.error.FFmpegError, OSError, ValueError):
                logger.warning("recording %s cannot be recovered: %s", recording.id, exc)
                return None
        except (av.error.FFmpegError, ValueError) as exc:
            logger.warning("recording %s cannot be recovered: %s", recording.id, exc)
            fixed.unlink(missing_ok=True)
            return None
        else:
            if duration is not None:
                os.replace(fixed, staged)
            fixed.unlink(missing_ok=True)
        if duration is None:
            return None
        return self.place(recording.id, recording.consultation_id, extension, duration)


async def recover(rows: Recordings, files: RecordingFiles) -> int:
    """At start-up: finish what this service was writing when it stopped; how many."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, files.prepare)
    recovered = 0
    for recording in await rows.unfinished():
        if not files.ours(recording):
            continue
        finished = await loop.run_in_executor(None, files.recover, recording)
        if finished is None:
            await loop.run_in_executor(None, files.discard, recording.id)
            await rows.discard(recording.id)
            continue
        await rows.complete(recording.id, finished, ended_at(recording, finished))
        logger.warning(
            "recording %s was cut short; recovered %.1f s", recording.id, finished.duration_s
        )
        recovered += 1
    return recovered


def _hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _probe(source: Path) -> tuple[str, float | None]:
    """The file's extension and its last packet's time, reading packets only."""
    with av.open(str(source)) as inp:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        webm = all(s.codec_context.name in ("vp8", "opus") for s in streams)
        last: float | None = None
        for packet in inp.demux(streams):
            if packet.pts is not None and packet.time_base is not None:
                at = float(packet.pts * packet.time_base)
                last = at if last is None else max(last, at)
    return ("webm" if webm else "mkv"), last


def _remux(source: Path, target: Path) -> tuple[str, float | None]:
    """Copy every packet of ``source`` into a new file (same format, finished properly)."""
    with av.open(str(source)) as inp:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        webm = all(s.codec_context.name in ("vp8", "opus") for s in streams)
        fmt, extension = ("webm", "webm") if webm else ("matroska", "mkv")
        last: float | None = None
        with av.open(str(target), "w", format=fmt) as out:
            mapping = {s.index: out.add_stream_from_template(s) for s in streams}
            for packet in inp.demux(streams):
                if packet.dts is None or packet.stream.index not in mapping:
                    continue
                if packet.pts is not None and packet.time_base is not None:
                    at = float(packet.pts * packet.time_base)
                    last = at if last is None else max(last, at)
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
    return extension, last


def ended_at(recording: Recording, finished: Finished) -> datetime:
    return recording.started_at + timedelta(seconds=finished.duration_s)
