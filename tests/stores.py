"""Stores for the tests of the store's parts: ``nodes``, two nodes on one database (imported
by the modules that use it, with ``database_url``: SQLite, then PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

__all__ = ["nodes"]


@pytest.fixture
async def nodes(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two nodes on one database (two stores: two engines, two connection pools)."""
    sealer = TokenSealer(load_seal_key(tmp_path))
    a = await Store.open(database_url, sealer, node="node-a")
    b = await Store.open(database_url, sealer, node="node-b")
    yield a, b
    await a.close()
    await b.close()
