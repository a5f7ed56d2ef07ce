"""Aftercare check-ins in the store: scheduled, sent, answered; their photos and form; the
salon's default days (consult/aftercare.py has the rules)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..aftercare import VIEWS, Answers, CheckinDefaults
from ..errors import CheckinSent, NotFound, UnknownCheckin
from .accounts import reachable
from .database import Database
from .schema import checkin_photos, checkin_settings, checkins, consultations

__all__ = ["Checkin", "CheckinLog", "Listed", "State"]

State = Literal["scheduled", "sent", "answered"]


@dataclass(frozen=True)
class Checkin:
    id: str
    consultation_id: str
    due_at: datetime
    views: list[str]
    state: State
    created_at: datetime
    sent_at: datetime | None = None
    answered_at: datetime | None = None
    updated_at: datetime | None = None
    answers: dict[str, Any] | None = None
    followup_id: str | None = None
    #: view -> the still holding its photo.
    photos: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consultation_id": self.consultation_id,
            "due_at": self.due_at.isoformat(),
            "views": self.views,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "sent_at": _iso(self.sent_at),
            "answered_at": _iso(self.answered_at),
            "updated_at": _iso(self.updated_at),
            "answers": self.answers,
            "followup_id": self.followup_id,
            "photos": self.photos,
        }


@dataclass(frozen=True)
class Listed:
    """A check-in as the dashboard lists it: with its customer."""

    checkin: Checkin
    customer_name: str
    customer_ref: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


COLUMNS = [c.name for c in checkins.columns]


class CheckinLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    # the salon's defaults

    async def defaults(self) -> CheckinDefaults:
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(checkin_settings.select().where(checkin_settings.c.id == 1)))
                .mappings()
                .first()
            )
        if row is None:
            return CheckinDefaults()
        return CheckinDefaults(tuple(row["days"]), row["overdue_days"])

    async def set_defaults(self, value: CheckinDefaults, now: datetime) -> None:
        values = {"days": list(value.days), "overdue_days": value.overdue_days, "updated_at": now}
        try:
            async with self._db.begin() as conn:
                updated = await conn.execute(
                    checkin_settings.update().where(checkin_settings.c.id == 1).values(**values)
                )
                if updated.rowcount == 0:
                    await conn.execute(checkin_settings.insert().values(id=1, **values))
        except sa.exc.IntegrityError:
            # Another node saved the first setting at the same moment: the last save wins.
            async with self._db.begin() as conn:
                await conn.execute(
                    checkin_settings.update().where(checkin_settings.c.id == 1).values(**values)
                )

    # scheduling

    async def add(
        self,
        consultation_id: str,
        due_at: Sequence[datetime],
        now: datetime,
        *,
        conn: AsyncConnection | None = None,
    ) -> list[Checkin]:
        """New check-ins due at ``due_at``, each asking for every view."""
        made = [
            Checkin(secrets.token_hex(12), consultation_id, at, list(VIEWS), "scheduled", now)
            for at in due_at
        ]
        if not made:
            return []
        rows = [{k: v for k, v in c.__dict__.items() if k in COLUMNS} for c in made]
        try:
            async with self._db.within(conn) as c:
                await c.execute(checkins.insert(), rows)
        except sa.exc.IntegrityError:
            raise NotFound("No such consultation.") from None
        return made

    async def move(
        self, checkin_id: str, due_at: datetime, *, conn: AsyncConnection | None = None
    ) -> None:
        """A scheduled check-in's new due time (one already sent cannot move)."""
        async with self._db.within(conn) as conn:
            updated = await conn.execute(
                checkins.update()
                .where(checkins.c.id == checkin_id, checkins.c.state == "scheduled")
                .values(due_at=due_at)
            )
            if updated.rowcount == 0:
                await self._refuse(conn, checkin_id)

    async def remove(self, checkin_id: str, *, conn: AsyncConnection | None = None) -> None:
        """Remove a scheduled check-in (one already sent is the customer's to answer)."""
        async with self._db.within(conn) as conn:
            removed = await conn.execute(
                checkins.delete().where(
                    checkins.c.id == checkin_id, checkins.c.state == "scheduled"
                )
            )
            if removed.rowcount == 0:
                await self._refuse(conn, checkin_id)

    async def _refuse(self, conn: AsyncConnection, checkin_id: str) -> None:
        found = await conn.scalar(sa.select(checkins.c.id).where(checkins.c.id == checkin_id))
        if found is None:
            raise UnknownCheckin()
        raise CheckinSent("This check-in was sent to the customer already: it stays.")

    # reading

    async def get(self, checkin_id: str) -> Checkin:
        found = await self._read(checkins.c.id == checkin_id)
        if not found:
            raise UnknownCheckin()
        return found[0]

    async def of(self, consultation_id: str) -> list[Checkin]:
        """The consultation's check-ins, by due time."""
        return await self._read(checkins.c.consultation_id == consultation_id)

    async def listing(
        self,
        since: datetime,
        until: datetime,
        limit: int = 200,
        *,
        reachable_by: str | None = None,
    ) -> list[Listed]:
        """Check-ins whose time came between ``since`` and ``until`` (the dashboard's: those
        not yet due, however many, never crowd them out), with their customer; the latest
        due first (ix_checkins_due_at). ``reachable_by``: only a stylist account's own and
        unassigned consultations'."""
        c = checkins.c
        query = (
            sa.select(checkins, consultations.c.customer_name, consultations.c.customer_ref)
            .join(consultations, consultations.c.id == c.consultation_id)
            .where(c.due_at >= since, c.due_at <= until)
            .order_by(c.due_at.desc(), c.id)
            .limit(limit)
        )
        if reachable_by is not None:
            query = query.where(reachable(reachable_by))
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            photos = await self._photos(conn, [row["id"] for row in rows])
        return [
            Listed(
                Checkin(**{k: row[k] for k in COLUMNS}, photos=photos.get(row["id"], {})),
                row["customer_name"],
                row["customer_ref"],
            )
            for row in rows
        ]

    async def _read(self, where: sa.ColumnElement[bool]) -> list[Checkin]:
        async with self._db.connect() as conn:
            rows = (
                (await conn.execute(checkins.select().where(where).order_by(checkins.c.due_at)))
                .mappings()
                .all()
            )
            photos = await self._photos(conn, [row["id"] for row in rows])
        return [Checkin(**row, photos=photos.get(row["id"], {})) for row in rows]

    async def _photos(self, conn: AsyncConnection, ids: list[str]) -> dict[str, dict[str, str]]:
        if not ids:
            return {}
        found: dict[str, dict[str, str]] = {}
        rows = await conn.execute(
            sa.select(checkin_photos).where(checkin_photos.c.checkin_id.in_(ids))
        )
        for row in rows.mappings():
            found.setdefault(row["checkin_id"], {})[row["view"]] = row["still_id"]
        return found

    # delivery and answers

    async def mark_sent(
        self, checkin_id: str, now: datetime, *, conn: AsyncConnection | None = None
    ) -> bool:
        """The request was posted: scheduled -> sent. False if it was not scheduled (sent
        already, answered or removed)."""
        async with self._db.within(conn) as conn:
            updated = await conn.execute(
                checkins.update()
                .where(checkins.c.id == checkin_id, checkins.c.state == "scheduled")
                .values(state="sent", sent_at=now)
            )
        return bool(updated.rowcount)

    async def set_photo(
        self, checkin_id: str, view: str, still_id: str, now: datetime
    ) -> str | None:
        """The view's photo is ``still_id``; returns the still it replaces, if any."""
        key = (checkin_photos.c.checkin_id == checkin_id) & (checkin_photos.c.view == view)
        async with self._db.begin() as conn:
            # The check-in's row is the lock: two uploads of one view never both insert.
            found = await conn.scalar(
                sa.select(checkins.c.id).where(checkins.c.id == checkin_id).with_for_update()
            )
            if found is None:
                raise UnknownCheckin()
            old = await conn.scalar(sa.select(checkin_photos.c.still_id).where(key))
            if old is None:
                await conn.execute(
                    checkin_photos.insert().values(
                        checkin_id=checkin_id, view=view, still_id=still_id, at=now
                    )
                )
            else:
                await conn.execute(
                    checkin_photos.update().where(key).values(still_id=still_id, at=now)
                )
        return str(old) if old is not None else None

    async def answer(
        self, checkin_id: str, answers: Answers, now: datetime
    ) -> tuple[Checkin, bool]:
        """Store the form (a second answer replaces the first). Returns the check-in and
        whether this was its first answer."""
        async with self._db.begin() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(checkins.c.answered_at)
                        .where(checkins.c.id == checkin_id)
                        .with_for_update()
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise UnknownCheckin()
            first = row["answered_at"] is None
            values: dict[str, Any] = {
                "answers": answers.to_json(),
                "state": "answered",
                "updated_at": now,
            }
            if first:
                values["answered_at"] = now
            await conn.execute(
                checkins.update().where(checkins.c.id == checkin_id).values(**values)
            )
        return await self.get(checkin_id), first

    async def set_followup(self, checkin_id: str, consultation_id: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                checkins.update()
                .where(checkins.c.id == checkin_id)
                .values(followup_id=consultation_id)
            )
