"""A data folder with consultations, chat and stills, made through the store as the service
makes them (files placed first, then their rows): for backup tests that need no call."""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consult.recording.attachments import Attachment
from consult.recording.files import StillFiles
from consult.recording.recordings import Finished, Recording
from consult.recording.store import Still, Store
from consult.recording.tokens import TokenSealer, load_seal_key


def sqlite_url(data: Path) -> str:
    return f"sqlite+aiosqlite:///{(data / 'consult.db').resolve()}"


async def fill(data: Path, stills: int = 3, still_bytes: int = 20_000) -> dict[str, str]:
    """One consultation with two chat messages and ``stills`` stills of random bytes; returns
    every still file (path in the stills folder) with its SHA-256."""
    store = await Store.open(sqlite_url(data), TokenSealer(load_seal_key(data)))
    files = StillFiles(data / "stills")
    files.prepare()
    written: dict[str, str] = {}
    try:
        consultation, _links = await store.create_consultation(
            customer_name="Jane", link_ttl=timedelta(days=7)
        )
        for sender, text in (("customer", "hello"), ("stylist", "hi Jane")):
            await store.add_message(consultation.id, sender, secrets.token_hex(4), text)  # type: ignore[arg-type]
        for _ in range(stills):
            capture = await store.create_capture(consultation.id, "stylist")
            still_id = secrets.token_hex(8)
            blob, thumb = os.urandom(still_bytes), os.urandom(1000)
            file = files.write(consultation.id, f"{still_id}.png", blob)
            thumb_file = files.write(consultation.id, f"{still_id}.thumb.jpg", thumb)
            await store.add_still(
                Still(
                    id=still_id,
                    consultation_id=consultation.id,
                    capture_id=capture.id,
                    source="camera",
                    media_type="image/png",
                    width=100,
                    height=100,
                    bytes=len(blob),
                    sha256=hashlib.sha256(blob).hexdigest(),
                    sharpness=1.0,
                    exposure=0.5,
                    quality={},
                    file=file,
                    thumb=thumb_file,
                    created_at=datetime.now(UTC),
                )
            )
            written[file] = hashlib.sha256(blob).hexdigest()
            written[thumb_file] = hashlib.sha256(thumb).hexdigest()
    finally:
        await store.close()
    (data / "staff.key").write_text("staff-key-of-the-salon\n")
    return written


async def add_call_files(data: Path) -> dict[str, str]:
    """To the first consultation of ``data``: a finished recording (its file in the recordings
    folder), one being written (a row with no file placed nor SHA-256 yet), and a chat
    attachment (in the stills folder); returns the placed files with their SHA-256, as
    ``folder/file``."""
    store = await Store.open(sqlite_url(data), TokenSealer(load_seal_key(data)))
    recording_files, still_files = StillFiles(data / "recordings"), StillFiles(data / "stills")
    recording_files.prepare()
    written: dict[str, str] = {}
    try:
        (consultation, *_) = await store.list_consultations()
        now = datetime.now(UTC)
        for status in ("complete", "recording"):
            recording_id = secrets.token_hex(8)
            staged = f".staging/node/{recording_id}.part"
            await store.recordings.begin(
                Recording(recording_id, consultation.id, "customer", "s1", "recording", now, staged)
            )
            if status == "complete":
                blob = os.urandom(30_000)
                file = recording_files.write(consultation.id, f"{recording_id}.webm", blob)
                digest = hashlib.sha256(blob).hexdigest()
                finished = Finished(file, len(blob), digest, "video/webm", 1.5)
                await store.recordings.complete(recording_id, finished, now)
                written[f"recordings/{file}"] = digest
        blob = os.urandom(5_000)
        attachment_id = secrets.token_hex(8)
        file = still_files.write(consultation.id, f"{attachment_id}.pdf", blob)
        digest = hashlib.sha256(blob).hexdigest()
        await store.attachments.add(
            Attachment(attachment_id, consultation.id, "customer", "file", "application/pdf",
                       "care.pdf", len(blob), digest, None, None, None, file, now)
        )  # fmt: skip
        written[f"stills/{file}"] = digest
    finally:
        await store.close()
    return written
