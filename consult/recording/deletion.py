"""Deleting what the salon keeps (issue 17): a still, a message, a consultation with everything
of it, a customer with everything of theirs.

Crash safety: the rows go in one transaction that also writes the files they named into a
journal (``file_removals``), with the audit entry; the files are removed after it commits, and
their journal rows with them. A service killed in between finds the journal at its next start
(``remove_pending``) and finishes: a deletion is never half done. The rows are either all there
(the transaction did not commit: nothing happened) or all gone, with their files on the
journal until they are gone too.

The database's ``ON DELETE CASCADE`` takes a consultation's links, captures, stills (a
check-in's photos are stills of its consultation), messages, read marks, swatch events,
conversation summary, attachments, outbox rows, recordings, consents, bookings and check-ins
with it. Its due work (reminders ``reminder:<consultation>:*``, check-ins ``checkin:<id>``)
has no foreign key and is removed here, done or not: its payloads may name the customer, and a
pending item would otherwise run for a consultation that is gone.

This is the one way a consultation's recordings go (rows and files, the staged file of a
live one too; its call is ended first, ``Hub.end``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..aftercare import message_key
from ..errors import NotFound
from ..mail.reminders import reminder_prefix
from .audit import Audit
from .database import Database
from .inbox import changed as inbox_changed
from .schema import (
    attachments,
    chat_reads,
    checkins,
    consultations,
    conversations,
    customers,
    due_work,
    file_removals,
    mail_recipients,
    messages,
    recordings,
    stills,
)

__all__ = ["Deletion", "Folder", "Removed", "remove_files"]

logger = logging.getLogger(__name__)

#: Where a journalled file lives: the stills folder (stills, thumbnails, attachments) or the
#: recordings folder.
Folder = Literal["stills", "recordings"]


@dataclass(frozen=True)
class Removed:
    """What a deletion removed: the consultations (whose live calls and pages must end)."""

    consultations: tuple[str, ...] = ()


class Deletion:
    def __init__(self, db: Database, audit: Audit) -> None:
        self._db = db
        self._audit = audit

    async def consultations(
        self, ids: Iterable[str], *, actor: str, action: str = "deleted"
    ) -> Removed:
        """Delete consultations with everything of theirs (NotFound if one is not there)."""
        wanted = list(dict.fromkeys(ids))
        async with self._db.begin() as conn:
            found = set(
                (
                    await conn.scalars(
                        sa.select(consultations.c.id).where(consultations.c.id.in_(wanted))
                    )
                ).all()
            )
            if found != set(wanted):
                raise NotFound("No such consultation.")
            await _drop_consultations(conn, wanted)
            for consultation_id in wanted:
                await self._audit.record(
                    actor, action, f"consultation:{consultation_id}", conn=conn
                )
        return Removed(tuple(wanted))

    async def customer(self, customer_id: str, *, actor: str) -> Removed:
        """Delete a customer, every consultation of theirs (and of the duplicates merged into
        them), their consents and their address's unsubscribe record."""
        async with self._db.begin() as conn:
            row = (
                (await conn.execute(customers.select().where(customers.c.id == customer_id)))
                .mappings()
                .first()
            )
            if row is None or row["merged_into"] is not None:
                raise NotFound("No such customer.")
            # The duplicates merged into this one (and into those), whose rows only forward.
            ids = await _closure(conn, customer_id, customers.c.id, customers.c.merged_into)
            theirs = list(
                (
                    await conn.scalars(
                        sa.select(consultations.c.id).where(consultations.c.customer_id.in_(ids))
                    )
                ).all()
            )
            emails = set(
                (
                    await conn.scalars(
                        sa.select(consultations.c.customer_email).where(
                            consultations.c.id.in_(theirs),
                            consultations.c.customer_email.is_not(None),
                        )
                    )
                ).all()
            )
            emails |= set(
                (
                    await conn.scalars(
                        sa.select(customers.c.email).where(
                            customers.c.id.in_(ids), customers.c.email.is_not(None)
                        )
                    )
                ).all()
            )
            await _drop_consultations(conn, theirs)
            await conn.execute(customers.delete().where(customers.c.id.in_(ids)))
            await _forget_addresses(conn, emails)
            await self._audit.record(
                actor, "deleted", f"customer:{customer_id}",
                detail={"consultations": len(theirs)}, conn=conn,
            )  # fmt: skip
        return Removed(tuple(theirs))

    async def still(self, still_id: str, *, actor: str) -> str:
        """Delete a still, the images derived from it and the chat messages carrying any of
        them; returns its consultation's id."""
        async with self._db.begin() as conn:
            consultation_id = await conn.scalar(
                sa.select(stills.c.consultation_id).where(stills.c.id == still_id)
            )
            if consultation_id is None:
                raise NotFound("No such still.")
            ids = await _closure(conn, still_id, stills.c.id, stills.c.parent_id)
            await _journal_stills(conn, stills.c.id.in_(ids))
            await conn.execute(stills.delete().where(stills.c.id.in_(ids)))
            carried = await conn.execute(
                messages.delete().where(
                    messages.c.consultation_id == consultation_id, messages.c.still_id.in_(ids)
                )
            )
            if carried.rowcount:
                await _resummarise(conn, consultation_id)
            await self._audit.record(
                actor, "deleted", f"still:{still_id}",
                detail={"consultation": consultation_id, "derived": len(ids) - 1}, conn=conn,
            )  # fmt: skip
        return str(consultation_id)

    async def message(self, consultation_id: str, seq: int, *, actor: str) -> None:
        """Delete a chat message with its photo or attachment."""
        async with self._db.begin() as conn:
            row = (
                (
                    await conn.execute(
                        messages.select().where(
                            messages.c.consultation_id == consultation_id, messages.c.seq == seq
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound("No such message.")
            await conn.execute(
                messages.delete().where(
                    messages.c.consultation_id == consultation_id, messages.c.seq == seq
                )
            )
            if row["still_id"] is not None:
                await _journal_stills(conn, stills.c.id == row["still_id"])
                await conn.execute(stills.delete().where(stills.c.id == row["still_id"]))
            if row["attachment_id"] is not None:
                await _journal_attachments(conn, attachments.c.id == row["attachment_id"])
                await conn.execute(
                    attachments.delete().where(attachments.c.id == row["attachment_id"])
                )
            await _resummarise(conn, consultation_id)
            await self._audit.record(
                actor, "deleted", f"message:{consultation_id}/{seq}", conn=conn
            )

    async def scrub(self) -> None:
        """Nothing deleted left readable in the database's own files (Database.scrub)."""
        await self._db.scrub()

    async def pending(self) -> list[tuple[int, Folder, str]]:
        async with self._db.connect() as conn:
            rows = await conn.execute(sa.select(file_removals).order_by(file_removals.c.id))
            return [(row.id, row.folder, row.file) for row in rows]

    async def done(self, ids: list[int]) -> None:
        if ids:
            async with self._db.begin() as conn:
                await conn.execute(file_removals.delete().where(file_removals.c.id.in_(ids)))


async def remove_files(deletion: Deletion, folders: Mapping[Folder, Callable[[str], Path]]) -> int:
    """Remove the files on the journal (after a deletion, and at start for what a crash left),
    then their journal rows; how many there were. ``folders``: each folder's path for a name."""
    pending = await deletion.pending()
    if not pending:
        return 0
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(
        None, _unlink, [(file, folders[folder](file)) for _, folder, file in pending]
    )
    await deletion.done([row_id for row_id, _, _ in pending])
    return len(pending)


def _unlink(paths: list[tuple[str, Path]]) -> None:
    for file, path in paths:
        path.unlink(missing_ok=True)
        if path.suffix == ".part":
            # A recording being written: a recovery's copy may be beside it.
            path.with_suffix(".fixed").unlink(missing_ok=True)
        # The consultation's folder (``<id>/<file>``) goes with its last file; a node's staging
        # folder (``.staging/<node>/<file>``) stays: that node stages its next recording there.
        if len(Path(file).parts) == 2:
            with contextlib.suppress(OSError):
                path.parent.rmdir()


async def _closure(
    conn: AsyncConnection, first: str, id_: sa.Column[str], parent: sa.Column[Any]
) -> list[str]:
    """``first`` and every row whose ``parent`` is among them, as far as it goes."""
    ids = [first]
    while more := (
        await conn.scalars(sa.select(id_).where(parent.in_(ids), id_.not_in(ids)))
    ).all():
        ids.extend(more)
    return ids


async def _drop_consultations(conn: AsyncConnection, ids: list[str]) -> None:
    if not ids:
        return
    await _journal_stills(conn, stills.c.consultation_id.in_(ids))
    await _journal_attachments(conn, attachments.c.consultation_id.in_(ids))
    files = (
        await conn.scalars(
            sa.select(recordings.c.file).where(recordings.c.consultation_id.in_(ids))
        )
    ).all()
    await _journal(conn, "recordings", files)
    await _drop_due_work(conn, ids)
    # "Same again" consultations keep their own record: only the pointer to this one goes.
    await conn.execute(
        consultations.update().where(consultations.c.based_on.in_(ids)).values(based_on=None)
    )
    await conn.execute(consultations.delete().where(consultations.c.id.in_(ids)))


async def _drop_due_work(conn: AsyncConnection, ids: list[str]) -> None:
    """The consultations' reminders and their check-ins' photo requests, done or pending."""
    checkin_ids = (
        await conn.scalars(sa.select(checkins.c.id).where(checkins.c.consultation_id.in_(ids)))
    ).all()
    keys = [message_key(checkin_id, "request") for checkin_id in checkin_ids]
    if keys:
        await conn.execute(due_work.delete().where(due_work.c.key.in_(keys)))
    for consultation_id in ids:
        await conn.execute(
            due_work.delete().where(
                due_work.c.key.startswith(reminder_prefix(consultation_id), autoescape=True)
            )
        )


async def _journal_stills(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> None:
    rows = (await conn.execute(sa.select(stills.c.file, stills.c.thumb).where(where))).all()
    await _journal(conn, "stills", [name for row in rows for name in row])


async def _journal_attachments(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> None:
    files = (await conn.scalars(sa.select(attachments.c.file).where(where))).all()
    await _journal(conn, "stills", files)


async def _journal(conn: AsyncConnection, folder: Folder, files: Iterable[str]) -> None:
    now = datetime.now(UTC)
    rows = [{"folder": folder, "file": file, "queued_at": now} for file in files if file]
    if rows:
        await conn.execute(file_removals.insert(), rows)


async def _forget_addresses(conn: AsyncConnection, emails: set[str]) -> None:
    """Unsubscribe records of addresses no customer or consultation has any more."""
    for email in emails:
        still_used = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(consultations)
            .where(sa.func.lower(consultations.c.customer_email) == email.lower())
        )
        if not still_used:
            await conn.execute(
                mail_recipients.delete().where(
                    sa.func.lower(mail_recipients.c.address) == email.lower()
                )
            )


async def _resummarise(conn: AsyncConnection, consultation_id: str) -> None:
    """The inbox's summary after messages went: the last message left and the unread count
    (none left: no summary), so a deleted message's words stay nowhere."""
    await inbox_changed(conn, consultation_id)
    await conn.execute(
        conversations.delete().where(conversations.c.consultation_id == consultation_id)
    )
    last = (
        (
            await conn.execute(
                messages.select()
                .where(messages.c.consultation_id == consultation_id)
                .order_by(messages.c.seq.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    if last is None:
        return
    mark = await conn.scalar(
        sa.select(chat_reads.c.seq).where(
            chat_reads.c.consultation_id == consultation_id, chat_reads.c.role == "stylist"
        )
    )
    unread = await conn.scalar(
        sa.select(sa.func.count()).where(
            messages.c.consultation_id == consultation_id,
            messages.c.sender == "customer",
            messages.c.seq > (mark or 0),
        )
    )
    kind: Any = "photo" if last["still_id"] is not None else None
    if last["attachment_id"] is not None:
        kind = await conn.scalar(
            sa.select(attachments.c.kind).where(attachments.c.id == last["attachment_id"])
        )
    await conn.execute(
        conversations.insert().values(
            consultation_id=consultation_id,
            last_seq=last["seq"],
            last_sender=last["sender"],
            last_text=last["text"],
            last_kind=kind,
            last_at=last["created_at"],
            unread=unread or 0,
        )
    )
