"""Stores for the tests of the store's parts: ``nodes``, two nodes on one database (imported
by the modules that use it, with ``database_url``: SQLite, then PostgreSQL); and
``audit_log_down``, the audit log failing to be written (a crash between a change and its
audit entry)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

__all__ = ["audit_log_down", "nodes"]


@pytest.fixture
async def nodes(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two nodes on one database (two stores: two engines, two connection pools)."""
    sealer = TokenSealer(load_seal_key(tmp_path))
    a = await Store.open(database_url, sealer, node="node-a")
    b = await Store.open(database_url, sealer, node="node-b")
    yield a, b
    await a.close()
    await b.close()


@contextlib.asynccontextmanager
async def audit_log_down(store: Store) -> AsyncIterator[None]:
    """While in the block, writing an audit entry fails: its table is renamed away (on the
    real database, SQLite or PostgreSQL), so whatever is written with an entry must fail too."""
    async with store.database.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_log_down"))
    try:
        yield
    finally:
        async with store.database.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE audit_log_down RENAME TO audit_log"))
