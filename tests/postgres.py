"""A throwaway PostgreSQL for the tests (the server itself: tests/postgres_server.py).

Fixtures (imported into conftest.py):

- ``postgres``: the session's server (started once; ``initdb`` is the slow part).
- ``postgres_url``: a new, empty database on it for each test.
- ``database_url``: parametrized: each test using it runs on SQLite, then on PostgreSQL.
- ``store``: the store opened on ``database_url`` (a module may define its own).

A test of its own tables uses ``database_url`` and ``Store.open(database_url, ...)`` as
tests/test_store.py does. A module that stops its server (an outage) starts one of its own
with ``running_postgres()`` (tests/test_database.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

from .postgres_server import Postgres, running_postgres

__all__ = ["Postgres", "database_url", "postgres", "postgres_url", "running_postgres", "store"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: Postgres) -> str:
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'consult.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
async def store(tmp_path: Path, database_url: str) -> AsyncIterator[Store]:
    """The store on SQLite, then on PostgreSQL."""
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    yield store
    await store.close()
