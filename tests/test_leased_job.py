"""The leased job: one node at a time does the work, renews the lease while it runs, gives it up
done or not done (a failure, a cancellation), and polls until closed; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from consult.recording.leased_job import LeasedJob
from consult.recording.schema import leases
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

pytestmark = pytest.mark.timeout(60)

LEASE = "backup"  # a lease row the migrations make
DAY = timedelta(days=1)
TTL = timedelta(minutes=5)
POLL = timedelta(milliseconds=20)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def nodes(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two nodes: two stores (two connection pools) on one database."""
    sealer = TokenSealer(load_seal_key(tmp_path))
    a = await Store.open(database_url, sealer)
    b = await Store.open(database_url, sealer)
    yield a, b
    await a.close()
    await b.close()


async def _expires_at(store: Store) -> datetime | None:
    async with store.database.begin() as conn:
        at = await conn.execute(sa.select(leases.c.expires_at).where(leases.c.name == LEASE))
        return at.scalar_one()  # type: ignore[no-any-return]


async def test_done_work_is_not_due_again_on_any_node_until_its_interval(
    nodes: tuple[Store, Store],
) -> None:
    a, b = nodes
    clock = Clock()
    runs: list[datetime] = []

    async def work(now: datetime) -> int:
        runs.append(now)
        return len(runs)

    on_a = LeasedJob(a.leases, LEASE, work, every=DAY, ttl=TTL, poll=POLL, clock=clock)
    on_b = LeasedJob(b.leases, LEASE, work, every=DAY, ttl=TTL, poll=POLL, clock=clock)
    assert await on_a.run_due() == 1
    assert await on_b.run_due() is None
    clock.now += timedelta(hours=23)
    assert await on_a.run_due() is None
    clock.now += timedelta(hours=1)
    assert await on_b.run_due() == 2
    assert runs[1] == clock.now


async def test_a_failure_leaves_the_work_due_at_once_for_any_node(
    nodes: tuple[Store, Store],
) -> None:
    a, b = nodes
    clock = Clock()

    async def broken(now: datetime) -> int:
        raise RuntimeError("disk full")

    tried: list[datetime] = []

    async def said_why(now: datetime) -> int | None:
        tried.append(now)
        return None

    async def works(now: datetime) -> int:
        return 7

    with pytest.raises(RuntimeError, match="disk full"):
        await LeasedJob(a.leases, LEASE, broken, every=DAY, ttl=TTL, poll=POLL,
                        clock=clock).run_due()  # fmt: skip
    assert await LeasedJob(b.leases, LEASE, said_why, every=DAY, ttl=TTL, poll=POLL,
                           clock=clock).run_due() is None  # fmt: skip
    assert tried == [clock.now]  # taken at once, failed again (no done_at)
    assert await LeasedJob(a.leases, LEASE, works, every=DAY, ttl=TTL, poll=POLL,
                           clock=clock).run_due() == 7  # fmt: skip


async def test_the_lease_is_renewed_while_the_work_runs(nodes: tuple[Store, Store]) -> None:
    a, b = nodes
    clock = Clock()
    ttl = timedelta(milliseconds=300)  # renewed every 100 ms of real time
    first_expiry = clock.now + ttl
    renewed = asyncio.Event()
    finish = asyncio.Event()

    async def long_work(now: datetime) -> str:
        clock.now += timedelta(seconds=1)  # past the expiry it was taken with
        while (at := await _expires_at(a)) is None or at <= first_expiry:
            await asyncio.sleep(0.05)
        renewed.set()
        await finish.wait()
        return "done"

    job = LeasedJob(a.leases, LEASE, long_work, every=DAY, ttl=ttl, poll=POLL, clock=clock)
    run = asyncio.create_task(job.run_due())
    await renewed.wait()
    # Its time-to-live is over by the clock, but renewed: nobody else takes it.
    assert not await b.leases.take(LEASE, "b", clock.now, ttl, DAY)
    finish.set()
    assert await run == "done"


async def test_closing_cancels_the_work_and_gives_the_lease_up(
    nodes: tuple[Store, Store],
) -> None:
    a, b = nodes
    started = asyncio.Event()
    cancelled = asyncio.Event()
    polls: list[datetime] = []

    async def stuck(now: datetime) -> int:
        polls.append(now)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    job = LeasedJob(a.leases, LEASE, stuck, every=DAY, ttl=TTL, poll=POLL)
    job.start()
    await started.wait()
    await job.close()
    await job.close()  # safe twice
    assert cancelled.is_set()
    # Given up, not done: another node takes it at once.
    assert await b.leases.take(LEASE, "b", datetime.now(UTC), TTL, DAY)


async def test_the_loop_polls_and_outlives_an_error(nodes: tuple[Store, Store]) -> None:
    a, _b = nodes
    clock = Clock()
    results: list[int] = []
    again = asyncio.Event()

    async def flaky(now: datetime) -> int:
        results.append(len(results))
        if len(results) == 1:
            raise RuntimeError("first time")
        if len(results) == 3:
            again.set()
        return len(results)

    # Due again at every poll.
    job = LeasedJob(a.leases, LEASE, flaky, every=timedelta(0), ttl=TTL, poll=POLL, clock=clock)
    job.start()
    await again.wait()
    await job.close()
    assert results[:3] == [0, 1, 2]
