"""Moving a store to another database: a salon's SQLite data folder onto PostgreSQL.

Every table is copied in one transaction of the target (all or nothing), parents before
children, after the target's schema is brought to the latest revision. The target must be
empty: a new database, or one a ``consult serve`` has only set up (the rows the migrations
seed, untouched). First every file a row records a SHA-256 for is read and checked against
it (stills and the chat's attachments in ``stills/``, finished recordings in the recordings
folder; a check-in's photos are stills); afterwards both sides are compared table by table, by
count and by a SHA-256 over every row. The files stay where they are: the database points to
them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .files import StillFiles
from .schema import attachments, leases, metadata, recordings, stills, swatches
from .store import upgrade_schema

__all__ = ["MigrationError", "MigrationSummary", "migrate"]

#: Rows read and written at a time.
BATCH = 500
#: Tables the migrations fill (the default palette, the leases' rows): replaced by the source's.
SEEDED = {swatches.name, leases.name}


class MigrationError(Exception):
    """The store cannot be moved (the reason is for the operator)."""


@dataclass
class MigrationSummary:
    counts: dict[str, int]
    #: Files read back and matched to their rows' SHA-256, by table (stills, attachments,
    #: recordings).
    checked: dict[str, int]
    #: Rows whose file is not in its folder (nothing to check them against), as
    #: ``table: file``.
    missing: list[str] = field(default_factory=list)


async def migrate(
    source_url: str,
    target_url: str,
    stills_dir: Path,
    recordings_dir: Path,
    progress: Callable[[str, int], None] = lambda table, rows: None,
) -> MigrationSummary:
    """Copy the store at ``source_url`` into the empty one at ``target_url`` and check it."""
    if sa.engine.make_url(source_url) == sa.engine.make_url(target_url):
        raise MigrationError("the source and the target are the same database")
    source, target = Database.open(source_url), Database.open(target_url)
    try:
        async with source.migrating() as conn:
            await conn.run_sync(upgrade_schema)
        # Before anything is written: a file that does not match its row stops the move.
        folders = {
            stills: StillFiles(stills_dir).path,
            attachments: StillFiles(stills_dir).path,
            # Finished ones only: a recording a killed service was writing has no SHA-256 yet
            # (the next start on the data folder finishes it, wherever its row is).
            recordings: StillFiles(recordings_dir).path,
        }
        checked: dict[str, int] = {}
        missing: list[str] = []
        async with source.connect() as conn:
            for table, path in folders.items():
                query = sa.select(table.c.id, table.c.file, table.c.sha256).where(
                    table.c.sha256.is_not(None)
                )
                rows = (await conn.execute(query)).all()
                checked[table.name], lost = _check_files(table.name, path, rows)
                missing += [f"{table.name}: {file}" for file in lost]
        async with target.migrating() as conn:
            await conn.run_sync(upgrade_schema)
        async with source.connect() as src, target.begin() as dst:
            await _check_empty(dst)
            for name in SEEDED:
                await dst.execute(metadata.tables[name].delete())
            for table in metadata.sorted_tables:
                progress(table.name, await _copy(src, dst, table))
            if target.dialect == "postgresql":
                await _advance_sequences(dst)
        async with source.connect() as src, target.connect() as dst:
            counts = {}
            for table in metadata.sorted_tables:
                theirs, ours = await _digest(src, table), await _digest(dst, table)
                if theirs != ours:
                    raise MigrationError(
                        f"table {table.name}: {ours[0]} rows copied of {theirs[0]},"
                        " or their contents differ; the target holds the copy as it is"
                    )
                counts[table.name] = theirs[0]
    finally:
        await source.dispose()
        await target.dispose()
    return MigrationSummary(counts, checked, missing)


async def _check_empty(conn: AsyncConnection) -> None:
    for table in metadata.sorted_tables:
        if table.name in SEEDED:
            continue
        if await conn.scalar(sa.select(sa.func.count()).select_from(table)):
            raise MigrationError(
                f"the target database is not empty (table {table.name} has rows): nothing written"
            )
    # A palette as the migration left it: one batch, never edited since.
    edited = await conn.scalar(
        sa.select(sa.func.count()).where(swatches.c.updated_at != swatches.c.created_at)
    )
    batches = await conn.scalar(sa.select(sa.func.count(sa.distinct(swatches.c.created_at))))
    used = await conn.scalar(
        sa.select(sa.func.count()).where(
            sa.or_(leases.c.holder.is_not(None), leases.c.done_at.is_not(None))
        )
    )
    if edited or (batches or 0) > 1 or used:
        raise MigrationError(
            "the target database is not empty (its palette or leases have been used):"
            " nothing written"
        )


async def _copy(src: AsyncConnection, dst: AsyncConnection, table: sa.Table) -> int:
    copied = 0
    order = list(table.primary_key.columns)
    result = await src.stream(table.select().order_by(*order))
    async for batch in result.mappings().partitions(BATCH):
        await dst.execute(table.insert(), [dict(row) for row in batch])
        copied += len(batch)
    return copied


async def _advance_sequences(conn: AsyncConnection) -> None:
    """Rows came with their ids: the next id PostgreSQL hands out must follow them."""
    for table in metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                await conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'),"
                        f' COALESCE(MAX("{column.name}"), 1), MAX("{column.name}") IS NOT NULL)'
                        f' FROM "{table.name}"'
                    )
                )


async def _digest(conn: AsyncConnection, table: sa.Table) -> tuple[int, str]:
    """Rows and a SHA-256 over all of them, whatever order the database returns them in."""
    rows: list[bytes] = []
    result = await conn.stream(table.select())
    async for row in result:
        # Both drivers give the same Python values (aware UTC datetimes, parsed JSON).
        rows.append(hashlib.sha256(repr(tuple(row)).encode()).digest())
    return len(rows), hashlib.sha256(b"".join(sorted(rows))).hexdigest()


def _check_files(
    kind: str, path: Callable[[str], Path], rows: Iterable[Any]
) -> tuple[int, list[str]]:
    """How many of the rows' files match their SHA-256, and the files not there; a file that
    does not match stops the move."""
    checked, missing = 0, []
    for row_id, relative, expected in rows:
        try:
            with path(relative).open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except (OSError, ValueError):
            missing.append(relative)
            continue
        if digest != expected:
            raise MigrationError(
                f"{kind} row {row_id}: {relative} does not match its SHA-256: nothing written"
            )
        checked += 1
    return checked, missing
