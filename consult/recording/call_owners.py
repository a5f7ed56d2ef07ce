"""Who owns each call, in the store: a lease per consultation with an epoch.

Taking a call is one conditional write: an INSERT where there is no row (two nodes racing for
it: one wins on the primary key), else an UPDATE ``WHERE epoch = <the epoch read>`` (every new
owner raises the epoch, so two nodes racing to take it from a dead one cannot both win). The
owner renews its calls' leases together (``renew``): a call whose row has another node or
epoch by then was taken over, and is dropped here. Released rows stay, keeping their epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..ownership import Owner
from .database import Database
from .schema import call_owners

__all__ = ["CallOwners"]


class CallOwners:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, consultation_id: str) -> Owner | None:
        c = call_owners.c
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(c.node_id, c.epoch, c.until).where(
                        c.consultation_id == consultation_id
                    )
                )
            ).first()
        return None if row is None else Owner(row.node_id, row.epoch, row.until)

    async def take(
        self,
        consultation_id: str,
        node_id: str,
        epoch: int,
        expected: int | None,
        now: datetime,
        ttl: timedelta,
    ) -> bool:
        """Make ``node_id`` the owner at ``epoch`` if the row is still at ``expected`` (None:
        if there is no row); False if another node got there first."""
        c = call_owners.c
        values = {"node_id": node_id, "epoch": epoch, "until": now + ttl}
        try:
            async with self._db.begin() as conn:
                if expected is None:
                    await conn.execute(
                        call_owners.insert().values(consultation_id=consultation_id, **values)
                    )
                    return True
                result = await conn.execute(
                    call_owners.update()
                    .where(c.consultation_id == consultation_id, c.epoch == expected)
                    .values(**values)
                )
                return bool(result.rowcount == 1)
        except sa.exc.IntegrityError:
            return False  # inserted by another node meanwhile (or the consultation is gone)

    async def renew(
        self,
        node_id: str,
        epochs: Mapping[str, int],
        now: datetime,
        ttl: timedelta,
        conn: AsyncConnection | None = None,
    ) -> set[str]:
        """Renew ``node_id``'s leases on its calls (consultation id -> epoch); the calls it has
        lost (another node or epoch holds them now, or their row is gone) are returned."""
        if not epochs:
            return set()
        c = call_owners.c
        ids = list(epochs)
        async with self._db.within(conn) as conn:
            await conn.execute(
                call_owners.update()
                .where(c.consultation_id.in_(ids), c.node_id == node_id)
                .values(until=now + ttl)
            )
            rows = await conn.execute(
                sa.select(c.consultation_id, c.node_id, c.epoch).where(c.consultation_id.in_(ids))
            )
            held = {
                r.consultation_id
                for r in rows
                if (r.node_id, r.epoch) == (node_id, epochs[r.consultation_id])
            }
        return set(ids) - held

    async def release(self, consultation_id: str, node_id: str, epoch: int) -> None:
        """The call ended here: nobody's now (unless another node took it meanwhile)."""
        c = call_owners.c
        async with self._db.begin() as conn:
            await conn.execute(
                call_owners.update()
                .where(c.consultation_id == consultation_id, c.node_id == node_id, c.epoch == epoch)
                .values(node_id=None, until=None)
            )

    async def release_node(self, node_id: str, conn: AsyncConnection | None = None) -> int:
        """At start: this node holds no call, whatever it held before it stopped."""
        c = call_owners.c
        async with self._db.within(conn) as conn:
            result = await conn.execute(
                call_owners.update().where(c.node_id == node_id).values(node_id=None, until=None)
            )
        return int(result.rowcount)
