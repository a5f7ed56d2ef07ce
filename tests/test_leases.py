"""Leases: one holder at a time, taken back when it expires, not due again until its interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

TTL = timedelta(minutes=5)
DAY = timedelta(days=1)


async def test_one_holder_at_a_time(tmp_path: Path, database_url: str) -> None:
    sealer = TokenSealer(load_seal_key(tmp_path))
    # Two nodes: two stores (two connection pools) on one database (SQLite, then PostgreSQL).
    a = await Store.open(database_url, sealer)
    b = await Store.open(database_url, sealer)
    try:
        now = datetime.now(UTC)
        assert await a.leases.take("backup", "a", now, TTL, DAY)
        assert not await b.leases.take("backup", "b", now, TTL, DAY)
        assert await a.leases.renew("backup", "a", now + timedelta(minutes=4), TTL)
        assert not await b.leases.renew("backup", "b", now, TTL)
        # Renewed: not expired at the first expiry, expired after the renewed one.
        assert not await b.leases.take("backup", "b", now + TTL, TTL, DAY)
        later = now + timedelta(minutes=10)
        assert await b.leases.take("backup", "b", later, TTL, DAY)
        # a, who lost it, cannot give it up for b.
        await a.leases.release("backup", "a", done_at=later)
        assert not await a.leases.take("backup", "a", later, TTL, DAY)
        await b.leases.release("backup", "b", done_at=later)
        # Done: not due again before a day has passed, for anybody.
        assert not await a.leases.take("backup", "a", later + timedelta(hours=23), TTL, DAY)
        assert await a.leases.take("backup", "a", later + DAY, TTL, DAY)
        # A failure (no done_at) leaves it due at once.
        await a.leases.release("backup", "a", done_at=None)
        assert await b.leases.take("backup", "b", later + DAY, TTL, DAY)
    finally:
        await a.close()
        await b.close()
