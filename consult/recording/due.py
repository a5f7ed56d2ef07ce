"""Due work: what is to be done at a time (a reminder, a check-in), kept in the store.

Nothing due is held in a timer in memory: an item is a row, put by whatever caused it (a
booking, a consultation ending), and run once it is due by the node that claims it
(consult/due.py). ``key`` names one piece of work once, ever: putting it again moves a pending
item (its time, its payload) and leaves a done one alone, and its handler deduplicates its
effect by it, so a run repeated after a crash repeats nothing.

A claim is a conditional UPDATE (the row's ``claimed_until`` has passed), so two nodes racing
for an item cannot both win, on SQLite or PostgreSQL; a node that died loses its claims when
they lapse. A failed run leaves the item unclaimed until its next attempt (``claimed_until``
is then the retry time) with its ``last_error``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .schema import due_work

__all__ = ["DueItem", "DueWork", "LostClaim"]


@dataclass(frozen=True)
class DueItem:
    id: int
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    claimed_by: str | None
    claimed_until: datetime | None
    done_at: datetime | None
    #: Runs begun (a run cut off by a crash counts).
    attempts: int
    last_error: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "due_at": self.due_at.isoformat(),
            "payload": self.payload,
            "done_at": _iso(self.done_at),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "retry_at": _iso(self.claimed_until)
            if self.claimed_by is None and self.done_at is None
            else None,
        }


class LostClaim(Exception):
    """The item's claim lapsed and another node took it while this one ran it."""


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


_COLUMNS = [due_work.c[name] for name in DueItem.__dataclass_fields__]


def _item(row: Any) -> DueItem:
    return DueItem(**{name: row[name] for name in DueItem.__dataclass_fields__})


class DueWork:
    def __init__(self, db: Database) -> None:
        self._db = db
        #: Set whenever work is put: the runner looks at once.
        self.changed = asyncio.Event()

    async def put(
        self,
        kind: str,
        key: str,
        due_at: datetime,
        payload: dict[str, Any],
        *,
        now: datetime | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        """Due ``kind`` work named ``key`` at ``due_at``. Put again before it is done, it
        moves (time and payload); once done, it is left alone. With ``conn``, inside the
        caller's transaction: the work and what caused it commit together."""
        values = {
            "kind": kind,
            "key": key,
            "due_at": due_at,
            "payload": payload,
            "attempts": 0,
            "created_at": now or datetime.now(UTC),
        }
        insert = (
            postgresql.insert(due_work)
            if self._db.dialect == "postgresql"
            else sqlite.insert(due_work)
        )
        statement = insert.values(**values).on_conflict_do_update(
            index_elements=[due_work.c.key],
            set_={
                "kind": kind,
                "due_at": due_at,
                "payload": payload,
                # Moved: a wait for a retry ends (a run under way keeps its claim).
                "claimed_until": sa.case(
                    (due_work.c.claimed_by.is_(None), sa.null()), else_=due_work.c.claimed_until
                ),
            },
            where=due_work.c.done_at.is_(None),
        )
        async with self._db.within(conn) as c:
            await c.execute(statement)
        self.changed.set()

    async def cancel(self, key: str, *, conn: AsyncConnection | None = None) -> bool:
        """Drop the work named ``key`` unless it is done; whether there was any."""
        async with self._db.within(conn) as c:
            result = await c.execute(
                due_work.delete().where(due_work.c.key == key, due_work.c.done_at.is_(None))
            )
        return bool(result.rowcount)

    async def cancel_prefix(self, prefix: str, *, conn: AsyncConnection | None = None) -> int:
        """Drop every pending item whose key starts with ``prefix`` (a booking's reminders);
        how many."""
        async with self._db.within(conn) as c:
            result = await c.execute(
                due_work.delete().where(
                    due_work.c.key.startswith(prefix, autoescape=True),
                    due_work.c.done_at.is_(None),
                )
            )
        return int(result.rowcount)

    async def get(self, key: str) -> DueItem | None:
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(sa.select(*_COLUMNS).where(due_work.c.key == key)))
                .mappings()
                .first()
            )
        return _item(row) if row is not None else None

    async def items(
        self, *, prefix: str | None = None, kind: str | None = None, pending: bool = False
    ) -> list[DueItem]:
        """Items by due time, for the pages and the tests: those whose key starts with
        ``prefix``, of ``kind``, only the ones not done (``pending``)."""
        query = sa.select(*_COLUMNS).order_by(due_work.c.due_at, due_work.c.id)
        if prefix is not None:
            query = query.where(due_work.c.key.startswith(prefix, autoescape=True))
        if kind is not None:
            query = query.where(due_work.c.kind == kind)
        if pending:
            query = query.where(due_work.c.done_at.is_(None))
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_item(row) for row in rows]

    # What the runner (consult/due.py) does with them.

    async def due(self, now: datetime, limit: int) -> list[DueItem]:
        """Up to ``limit`` items due at ``now`` and not claimed, oldest first."""
        c = due_work.c
        query = (
            sa.select(*_COLUMNS)
            .where(
                c.done_at.is_(None),
                c.due_at <= now,
                sa.or_(c.claimed_until.is_(None), c.claimed_until < now),
            )
            .order_by(c.due_at, c.id)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_item(row) for row in rows]

    async def next_due(self) -> datetime | None:
        """When the next pending item is due, or may be tried again."""
        c = due_work.c
        pending = c.done_at.is_(None)
        async with self._db.connect() as conn:
            due: datetime | None = await conn.scalar(
                sa.select(sa.func.min(c.due_at)).where(pending, c.claimed_until.is_(None))
            )
            # Claimed or waiting to be retried: no sooner than that.
            held: datetime | None = await conn.scalar(
                sa.select(sa.func.min(c.claimed_until)).where(pending, c.claimed_until.is_not(None))
            )
        times = [at for at in (due, held) if at is not None]
        return min(times) if times else None

    async def claim(
        self, item_id: int, node: str, now: datetime, until: datetime
    ) -> DueItem | None:
        """Claim the item for ``node`` until ``until`` if it is still due and unclaimed."""
        c = due_work.c
        async with self._db.begin() as conn:
            result = await conn.execute(
                due_work.update()
                .where(
                    c.id == item_id,
                    c.done_at.is_(None),
                    c.due_at <= now,
                    sa.or_(c.claimed_until.is_(None), c.claimed_until < now),
                )
                .values(claimed_by=node, claimed_until=until, attempts=c.attempts + 1)
            )
            if result.rowcount != 1:
                return None
            row = (await conn.execute(sa.select(*_COLUMNS).where(c.id == item_id))).mappings().one()
        return _item(row)

    async def finish(self, item: DueItem, node: str, now: datetime, conn: AsyncConnection) -> None:
        """Mark the item done in ``conn`` (the handler's transaction); LostClaim if another
        node holds it now (the transaction is then rolled back: that node does it)."""
        c = due_work.c
        result = await conn.execute(
            due_work.update()
            .where(c.id == item.id, c.claimed_by == node, c.done_at.is_(None))
            .values(done_at=now, claimed_by=None, claimed_until=None, last_error=None)
        )
        if result.rowcount != 1:
            raise LostClaim(item.key)

    async def release(self, node: str) -> int:
        """Give up ``node``'s claims: its runner is starting, so whatever an earlier run of it
        claimed (killed mid-run) is nobody's; due again at once rather than when the claim
        lapses. How many."""
        c = due_work.c
        async with self._db.begin() as conn:
            result = await conn.execute(
                due_work.update()
                .where(c.claimed_by == node, c.done_at.is_(None))
                .values(claimed_by=None, claimed_until=None)
            )
        return int(result.rowcount)

    async def failed(self, item: DueItem, node: str, error: str, retry_at: datetime) -> None:
        """The run failed: unclaimed until ``retry_at``, with the reason."""
        c = due_work.c
        async with self._db.begin() as conn:
            await conn.execute(
                due_work.update()
                .where(c.id == item.id, c.claimed_by == node, c.done_at.is_(None))
                .values(claimed_by=None, claimed_until=retry_at, last_error=error[:2000])
            )
