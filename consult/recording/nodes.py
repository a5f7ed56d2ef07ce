"""The nodes serving one database: who they are, where the others reach them, whether alive.

Each node announces itself at start (``announce``), beats while it runs (``beat``: its row's
``alive_until`` moves on), marks itself ``draining`` on SIGTERM and leaves when it stops. A
node whose beats stopped (killed, or cut off) is no longer among the ``live`` ones: the others
take over its calls (consult/ownership.py).

Nodes must open each other's links and staff sessions: a node started with another staff key
or link-seal key than the live ones is refused at ``announce`` (``KeysDiffer``). What is
compared is a fingerprint of each key (consult/nodes.py: ``keys_fingerprint``), never a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from .database import Database
from .schema import nodes

__all__ = ["KeysDiffer", "NodeInfo", "Nodes"]

#: The two parts of a keys fingerprint, in order (``keys_fingerprint`` joins them with ".").
KEY_NAMES = (
    "staff key (CONSULT_STAFF_KEY or DATA/staff.key)",
    "link-seal key (DATA/link-seal.key)",
)


class KeysDiffer(Exception):
    """A live node serves the database with other keys; the message says which, in one line."""


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    #: The base URL the other nodes reach it on (``--node-url``).
    url: str
    #: The address its media offers (``--media-address``), if it was given one.
    media_address: str | None
    keys: str
    started_at: datetime
    alive_until: datetime
    draining: bool


class Nodes:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def announce(
        self,
        node_id: str,
        url: str,
        media_address: str | None,
        keys: str,
        now: datetime,
        ttl: timedelta,
    ) -> None:
        """Say that ``node_id`` serves from ``url``, alive for ``ttl``; ``KeysDiffer`` if a
        live node has other keys (nothing is written then)."""
        async with self._db.begin() as conn:
            rows = await conn.execute(
                sa.select(nodes.c.node_id, nodes.c.url, nodes.c["keys"]).where(
                    nodes.c.node_id != node_id, nodes.c.alive_until > now
                )
            )
            for other, other_url, other_keys in rows:
                if other_keys != keys:
                    raise KeysDiffer(_keys_differ(other, other_url, other_keys, keys))
            await conn.execute(nodes.delete().where(nodes.c.node_id == node_id))
            await conn.execute(
                nodes.insert().values(
                    node_id=node_id,
                    url=url,
                    media_address=media_address,
                    keys=keys,
                    started_at=now,
                    alive_until=now + ttl,
                    draining=False,
                )
            )

    async def beat(self, node_id: str, until: datetime) -> bool:
        """Keep ``node_id`` alive until ``until``; False if its row is gone (announce again)."""
        async with self._db.begin() as conn:
            result = await conn.execute(
                nodes.update().where(nodes.c.node_id == node_id).values(alive_until=until)
            )
        return bool(result.rowcount == 1)

    async def live(self, now: datetime) -> list[NodeInfo]:
        """The nodes alive at ``now`` (draining ones too), by id."""
        async with self._db.connect() as conn:
            rows = await conn.execute(
                sa.select(nodes).where(nodes.c.alive_until > now).order_by(nodes.c.node_id)
            )
            return [NodeInfo(**row._mapping) for row in rows]

    async def get(self, node_id: str) -> NodeInfo | None:
        async with self._db.connect() as conn:
            row = (await conn.execute(sa.select(nodes).where(nodes.c.node_id == node_id))).first()
        return None if row is None else NodeInfo(**row._mapping)

    async def drain(self, node_id: str) -> None:
        """``node_id`` takes no new call (SIGTERM): the others get them."""
        async with self._db.begin() as conn:
            await conn.execute(
                nodes.update().where(nodes.c.node_id == node_id).values(draining=True)
            )

    async def leave(self, node_id: str) -> None:
        async with self._db.begin() as conn:
            await conn.execute(nodes.delete().where(nodes.c.node_id == node_id))


def _keys_differ(other: str, url: str, theirs: str, ours: str) -> str:
    differ = [
        name
        for name, a, b in zip(KEY_NAMES, theirs.split("."), ours.split("."), strict=False)
        if a != b
    ] or list(KEY_NAMES)
    return (
        f"the node {other} ({url}) serves this database with a different {' and '.join(differ)};"
        " every node sharing a database needs the same keys: copy them from that node"
    )
