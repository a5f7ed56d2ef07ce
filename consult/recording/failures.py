"""Failed authentications of every node sharing the database, by client address.

The per-address limit (consult/ratelimit.py) keeps its count in memory; with several nodes
behind a load balancer an address could try the limit on each of them, so their failures are
also written here and read back by a node that has seen the address fail. Rows older than the
limit's window are deleted as new ones come.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from .database import Database
from .schema import auth_failures

__all__ = ["FailureLog"]


class FailureLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, client: str, at: datetime, window: timedelta) -> None:
        async with self._db.begin() as conn:
            await conn.execute(auth_failures.insert().values(client=client[:64], at=at))
            await conn.execute(auth_failures.delete().where(auth_failures.c.at <= at - window))

    async def recent(self, client: str, since: datetime) -> tuple[int, datetime | None]:
        """How many failures ``client`` had after ``since``, and when the oldest of them was."""
        c = auth_failures.c
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.min(c.at)).where(
                        c.client == client[:64], c.at > since
                    )
                )
            ).one()
        return int(row[0]), row[1]
