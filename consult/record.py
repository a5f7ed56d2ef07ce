"""A consultation's record as its readers may see it: staff, the stylist or the customer.

One place decides what each role sees (the private notes never reach the customer); the API,
the websocket's welcome and the export all use it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from .media.stills import Stills, still_json
from .recording.attachments import attachment_json
from .recording.export import ExportFile, Progress, write_bundle, write_export
from .recording.recordings import RecordingFiles
from .recording.store import Consultation, Store
from .signaling.messages import as_dict, chat_sent

__all__ = [
    "consultation_json",
    "earlier_json",
    "export_files",
    "record_json",
    "write_customer_zip",
    "write_record_zip",
]


def consultation_json(c: Consultation, *, role: str) -> dict[str, Any]:
    """What ``role`` (staff, stylist, customer) may see of a consultation."""
    body: dict[str, Any] = {
        "id": c.id,
        "customer_name": c.customer_name,
        "scheduled_at": c.scheduled_at.isoformat() if c.scheduled_at else None,
        "status": c.status,
        "created_at": c.created_at.isoformat(),
        "last_activity_at": c.last_activity_at.isoformat(),
        "summary": c.summary,
        "summary_updated_at": _iso(c.summary_updated_at),
        "based_on": c.based_on,
        "repair_of": c.repair_of,
    }
    if role in ("staff", "stylist"):
        # The stylist's private notes: never to the customer.
        body["notes"] = c.notes
        body["notes_updated_at"] = _iso(c.notes_updated_at)
        body["customer_email"] = c.customer_email
        body["customer_language"] = c.customer_language
        #: Whose it is: the stylist's account (None: unassigned).
        body["assigned_to"] = c.assigned_to
        body["customer_id"] = c.customer_id
    if role == "staff":
        body["customer_ref"] = c.customer_ref
    return body


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


#: How many of the earlier consultation's photos a "same again" starts with.
KEY_STILLS = 6


async def earlier_json(store: Store, consultation: Consultation) -> dict[str, Any] | None:
    """For a "same again": the earlier consultation's agreed design and key photos (the
    customer's camera photos and chat photos, newest first). Never its private notes."""
    if not consultation.based_on:
        return None
    earlier = await store.get_consultation(consultation.based_on)
    stills = [s for s in await store.list_stills(earlier.id) if s.source != "video"]
    return {
        "id": earlier.id,
        "created_at": earlier.created_at.isoformat(),
        "scheduled_at": earlier.scheduled_at.isoformat() if earlier.scheduled_at else None,
        "summary": earlier.summary,
        "stills": [still_json(s) for s in stills[:KEY_STILLS]],
        # The shades the customer chose last time: what "the same again" most often means.
        "chosen": (await store.swatch_log.board(earlier.id)).chosen,
    }


async def record_json(
    store: Store, consultation: Consultation, *, role: str, with_paths: bool = False
) -> dict[str, Any]:
    """The consultation with its stills (newest first; derived images name their
    ``parent_id``), the swatches shown and chosen, and the chat transcript (in order).

    ``with_paths`` adds each still's and recording's ``file_path`` in its folder, for the export.
    """
    body = consultation_json(consultation, role=role)
    body["stills"] = [
        still_json(s) | ({"file_path": s.file} if with_paths else {})
        for s in await store.list_stills(consultation.id)
    ]
    board = await store.swatch_log.board(consultation.id)
    body["swatches_shown"] = board.shown
    body["swatches_chosen"] = board.chosen
    body["earlier"] = await earlier_json(store, consultation)
    body["recordings"] = [
        r.to_json() | ({"file_path": r.file} if with_paths else {})
        for r in await store.recordings.of(consultation.id)
    ]
    by_id = {s["id"]: s for s in body["stills"]}
    attachments = await store.attachments.of(consultation.id)
    body["messages"] = [
        as_dict(
            chat_sent(
                m,
                by_id.get(m.still_id or ""),
                attachment_json(attachments[m.attachment_id])
                if m.attachment_id in attachments
                else None,
            )
        )
        for m in await store.messages(consultation.id)
    ]
    # Aftercare check-ins: their photos are among the stills (source "checkin"); the customer
    # sees those sent to them, not what the salon has yet to send.
    body["checkins"] = [
        c.to_json()
        for c in await store.checkins.of(consultation.id)
        if role != "customer" or c.state != "scheduled"
    ]
    if with_paths:
        for message in body["messages"]:
            if "attachment" in message:
                message["attachment"]["file_path"] = attachments[message["attachment"]["id"]].file
    return body


async def write_record_zip(
    store: Store,
    stills: Stills,
    recordings: RecordingFiles,
    consultation: Consultation,
    *,
    role: str,
    out: Path,
    progress: Progress | None = None,
    private_notes: bool = True,
) -> Path:
    """The record as ``role`` may see it, written to ``out`` as a ZIP (in an executor);
    without the stylist's private notes if not ``private_notes`` (a copy to hand over)."""
    record = await record_json(store, consultation, role=role, with_paths=True)
    if not private_notes:
        record.pop("notes", None)
        record.pop("notes_updated_at", None)
    files = export_files(record, stills, recordings)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, write_export, record, files, out, progress)


async def write_customer_zip(
    store: Store,
    stills: Stills,
    recordings: RecordingFiles,
    consultations: list[Consultation],
    *,
    role: str,
    out: Path,
) -> Path:
    """Every consultation of a customer as one ZIP: each one's export (as ``role`` may see
    it) in a folder of its own, named by its date and id."""
    parts = []
    for consultation in consultations:
        part = out.with_name(f"{consultation.id}.zip")
        await write_record_zip(store, stills, recordings, consultation, role=role, out=part)
        parts.append((f"{consultation.created_at:%Y-%m-%d}-{consultation.id}", part))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, write_bundle, parts, out)


def export_files(
    record: dict[str, Any], stills: Stills, recordings: RecordingFiles
) -> list[ExportFile]:
    """Point each still of ``record`` at its original inside the archive (``originals/...``),
    each attachment at its file (``attachments/...``), each recording at its file
    (``recordings/...``), and list the files to put there."""
    files = []
    for still in record["stills"]:
        extension = "png" if still["media_type"] == "image/png" else "jpg"
        name = f"originals/{still['id']}.{extension}"
        files.append(ExportFile(stills.path(still.pop("file_path")), name))
        still["file"] = name
    # Voice messages, clips and files: kept in the same folder, put under attachments/.
    for message in record["messages"]:
        attachment = message.get("attachment")
        if attachment is not None:
            path = attachment.pop("file_path")
            name = f"attachments/{attachment['id']}.{path.rsplit('.', 1)[1]}"
            files.append(ExportFile(stills.path(path), name))
            attachment["file"] = name
    for recording in record["recordings"]:
        path = recordings.path(recording.pop("file_path"))
        if not path.is_file():
            # On another node's storage (or not restored): the rest of the record still goes.
            recording["missing"] = True
            continue
        name = f"recordings/{path.name}"
        files.append(ExportFile(path, name))
        recording["file"] = name
    return files
