"""The database under the store: one engine, its transactions, and what an outage looks like.

SQLite (the embedded default) and PostgreSQL (several nodes) run the same statements; what
differs is set up here once:

- SQLite: WAL with ``synchronous=FULL`` (an acknowledged write survives power loss), and every
  writing transaction starts with ``BEGIN IMMEDIATE``. A deferred transaction that reads and
  then writes fails with "database is locked" at once, whatever the busy timeout, when another
  connection (another worker on the same file) wrote in between; taking the write lock first
  makes writers wait their turn instead. Reads begin no transaction (as before): WAL readers
  never wait.
- PostgreSQL: connections are checked before use (``pool_pre_ping``), so after the server has
  been away the pool hands out fresh connections and the service recovers by itself.

A database that cannot be reached, or drops a connection mid-transaction, raises
``StorageFailed`` (507 ``storage-failed``): the transaction is rolled back by the server, so
nothing is half-written, and the client tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..errors import ConsultError, StorageFailed

__all__ = ["Database", "is_outage"]

#: Seconds to wait for a connection to PostgreSQL before the request fails with
#: storage-failed (asyncpg's own default is a minute).
CONNECT_TIMEOUT = 5.0
#: Seconds SQLite waits for another connection's write lock.
SQLITE_BUSY_MS = 5000

_UNAVAILABLE = "The database is unavailable; nothing was saved. Try again in a moment."


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or went away (not bad data)."""
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError | sa.exc.ProgrammingError):
        return False
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa.exc.OperationalError | sa.exc.InterfaceError
        )
    return isinstance(exc, OSError | TimeoutError)


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name
        # Same pool; transactions begun through it take SQLite's write lock first.
        self._writer = engine.execution_options(consult_writes=True)
        # SQLite has one writer at a time: this process's writers queue here, in order,
        # rather than in SQLite's busy handler, whose backoff keeps a writer waiting seconds
        # under contention. The busy handler still arbitrates between processes.
        self._one_writer = asyncio.Lock() if self.dialect == "sqlite" else None

    @classmethod
    def open(cls, url: str) -> Database:
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url)
            event.listen(engine.sync_engine, "connect", _sqlite_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        else:
            engine = create_async_engine(
                url,
                pool_pre_ping=True,
                connect_args={"timeout": CONNECT_TIMEOUT}
                if url.startswith("postgresql+asyncpg")
                else {},
            )
        return cls(engine)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A writing transaction: committed at the end, rolled back on any error."""
        async with self._one_writer or contextlib.nullcontext():
            with _reporting():
                async with self._writer.begin() as conn:
                    yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading."""
        with _reporting():
            async with self.engine.connect() as conn:
                yield conn

    async def migrate(self, upgrade: Callable[[sa.Connection], None]) -> None:
        """Run ``upgrade`` (the schema's migrations) in one writing transaction.

        On SQLite with foreign keys off meanwhile: a migration that rebuilds a table (alembic's
        batch mode on SQLite: copy, drop, rename) would otherwise have the drop's implicit
        DELETE cascade into every table that references it (a consultation's messages, links,
        stills...). SQLite ignores the pragma inside a transaction: it is set before and after."""
        if self.dialect != "sqlite":
            async with self.begin() as conn:
                await conn.run_sync(upgrade)
            return
        async with self._one_writer or contextlib.nullcontext():
            with _reporting():
                async with self.engine.connect() as conn:
                    await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                    await conn.commit()
                    try:
                        await conn.execution_options(consult_writes=True)
                        async with conn.begin():
                            await conn.run_sync(upgrade)
                    finally:
                        await conn.execution_options(consult_writes=False)
                        await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                        await conn.commit()

    async def scrub(self) -> None:
        """After a deletion: nothing deleted is left readable in the database's files. SQLite
        zeroes deleted content (``secure_delete``); its write-ahead log, which still holds
        pages as they were, is checkpointed into the database and emptied. (PostgreSQL
        reclaims deleted rows with its own autovacuum.)"""
        if self.dialect != "sqlite":
            return
        async with self._one_writer or contextlib.nullcontext():
            with _reporting():
                async with self.engine.connect() as conn:
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    async def dispose(self) -> None:
        await self.engine.dispose()


@contextmanager
def _reporting() -> Iterator[None]:
    """Database errors as the service reports them."""
    try:
        yield
    except Exception as exc:
        if is_outage(exc):
            raise StorageFailed(_UNAVAILABLE) from exc
        # A value our column types refused (schema.String) arrives wrapped by SQLAlchemy.
        if isinstance(exc, sa.exc.StatementError) and isinstance(exc.orig, ConsultError):
            raise exc.orig from exc
        raise


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling off: _sqlite_begin says how each one starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL, not WAL's usual NORMAL: a write acknowledged to a client must survive power loss.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # What is deleted is overwritten, not left in free pages (a customer's deletion, issue 17).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # Reads begin nothing, as with the driver's own handling: each statement reads the latest
    # commit, and no reader ever holds a lock.
    if conn.get_execution_options().get("consult_writes", False):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
