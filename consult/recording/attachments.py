"""Voice messages, video clips and files sent in the chat: received, checked, kept.

An upload is streamed to a staged file of the stills folder while it is hashed and counted
(over the kind's byte limit it stops there), its type is decided from its bytes
(``consult.attachments``: magic numbers, and PyAV for audio and video), and only then is it
fsynced and renamed into place, ``<consultation id>/<attachment id>.<ext>`` beside the stills,
and its row written. A refused, failed or abandoned upload leaves nothing behind; the start-up
sweep of the stills folder knows these files (``Store.still_files``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..attachments import Kind, Limits, Probe, check, is_media, probe, safe_name, sniff
from ..errors import NotFound, PayloadTooLarge, StorageFailed, UnsupportedMedia
from ..roles import Role
from .database import Database
from .files import StillFiles
from .schema import attachments, consultations

__all__ = ["Attachment", "AttachmentLog", "Attachments", "attachment_json"]

#: Enough of the head for every magic number ``sniff`` knows.
HEAD_BYTES = 16


@dataclass(frozen=True)
class Attachment:
    id: str
    consultation_id: str
    sender: Role
    kind: Kind
    media_type: str
    name: str
    bytes: int
    sha256: str
    duration: float | None
    width: int | None
    height: int | None
    #: Path inside the stills folder.
    file: str
    created_at: datetime


def attachment_json(attachment: Attachment) -> dict[str, Any]:
    """An attachment as the protocol shows it; pages add their token to the URL."""
    return {
        "id": attachment.id,
        "kind": attachment.kind,
        "media_type": attachment.media_type,
        "name": attachment.name,
        "bytes": attachment.bytes,
        "sha256": attachment.sha256,
        "duration": attachment.duration,
        "width": attachment.width,
        "height": attachment.height,
        "created_at": attachment.created_at.isoformat(),
        "url": f"/api/attachments/{attachment.id}",
    }


class AttachmentLog:
    """The ``attachments`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, attachment: Attachment) -> None:
        async with self._db.begin() as conn:
            await conn.execute(attachments.insert().values(**dataclasses.asdict(attachment)))
            await conn.execute(
                consultations.update()
                .where(consultations.c.id == attachment.consultation_id)
                .values(last_activity_at=attachment.created_at)
            )

    async def get(self, attachment_id: str) -> Attachment:
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(attachments.select().where(attachments.c.id == attachment_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("No such attachment.")
        return Attachment(**row)

    async def of(self, consultation_id: str) -> dict[str, Attachment]:
        """The consultation's attachments by id."""
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    attachments.select().where(attachments.c.consultation_id == consultation_id)
                )
            ).mappings()
            return {row["id"]: Attachment(**row) for row in rows}

    async def remove(self, attachment_id: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(attachments.delete().where(attachments.c.id == attachment_id))

    async def files(self) -> set[str]:
        async with self._db.connect() as conn:
            return set((await conn.execute(sa.select(attachments.c.file))).scalars())


class Attachments:
    """Receiving and serving attachments: the files in the stills folder, the rows in ``log``."""

    def __init__(self, log: AttachmentLog, files: StillFiles, limits: Limits | None = None) -> None:
        self.log = log
        self._files = files
        self.limits = limits or Limits()

    async def receive(
        self,
        consultation_id: str,
        sender: Role,
        kind: Kind,
        name: str,
        chunks: AsyncIterator[bytes],
        content_length: int | None,
    ) -> Attachment:
        """Store an upload of ``kind``, or raise and leave nothing behind."""
        limit = self.limits.max_bytes(kind)
        if content_length is not None and content_length > limit:
            raise PayloadTooLarge(f"A {kind} message is limited to {limit // (1024 * 1024)} MB.")
        loop = asyncio.get_running_loop()
        staged, f = await loop.run_in_executor(None, self._files.stage)
        placed: str | None = None
        try:
            digest = hashlib.sha256()
            size = 0
            head = b""
            with f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(
                            f"A {kind} message is limited to {limit // (1024 * 1024)} MB."
                        )
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    await loop.run_in_executor(None, f.write, chunk)
            if size == 0:
                raise UnsupportedMedia("The upload is empty.")
            fmt = sniff(head)
            found: Probe | None = None
            if fmt is not None and is_media(fmt) and kind != "file":
                found = await loop.run_in_executor(None, probe, staged, fmt)
            media_type = check(kind, fmt, size, found, self.limits)
            assert fmt is not None  # check() refuses what nothing recognised
            attachment_id = secrets.token_hex(12)
            filename = safe_name(name, fmt, kind, fallback=f"{kind}-{attachment_id[:8]}")
            placed = await loop.run_in_executor(
                None,
                self._files.place,
                staged,
                consultation_id,
                f"{attachment_id}.{filename.rsplit('.', 1)[1]}",
            )
            attachment = Attachment(
                id=attachment_id,
                consultation_id=consultation_id,
                sender=sender,
                kind=kind,
                media_type=media_type,
                name=filename,
                bytes=size,
                sha256=digest.hexdigest(),
                duration=round(found.duration, 3) if found is not None else None,
                width=found.width if found is not None else None,
                height=found.height if found is not None else None,
                file=placed,
                created_at=datetime.now(UTC),
            )
            await self.log.add(attachment)
            return attachment
        except OSError as exc:
            self._discard(staged, placed)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
                raise StorageFailed() from exc
            raise
        except BaseException:
            # Cancelled (the client went away), refused or failed: nothing stays behind.
            self._discard(staged, placed)
            raise

    async def discard(self, attachment: Attachment) -> None:
        """Take back an attachment no message carries (a second upload of the same message)."""
        await self.log.remove(attachment.id)
        self._files.remove(attachment.file)

    def path(self, attachment: Attachment) -> Path:
        return self._files.path(attachment.file)

    def _discard(self, staged: Path, placed: str | None) -> None:
        staged.unlink(missing_ok=True)
        if placed is not None:
            self._files.remove(placed)
