"""Due work and its runner, on SQLite then PostgreSQL, with a clock the test moves: put,
moved, cancelled; run once by one of two nodes; a failure retried later and visible; a node
that died mid-run loses its claim, and nothing it wrote survives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from consult.due import DueRunner, Handler
from consult.mail.policy import RetryPolicy
from consult.recording.due import DueItem, LostClaim
from consult.recording.outbox import NewMail
from consult.recording.schema import outbox
from consult.recording.store import Store

from .clock import Clock

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def mailing(store: Store) -> Handler:
    """A handler with an effect in the database: an email queued under the work's key."""

    async def handle(item: DueItem, conn: AsyncConnection) -> None:
        new = NewMail(
            item.payload["to"], "reminder", lambda _token: b"Subject: hi\r\n\r\nhi", T0,
            key=item.key,
        )  # fmt: skip
        await store.outbox.queue(new, T0, conn)

    return handle


async def emails(store: Store) -> list[str]:
    async with store.database.connect() as conn:
        return list((await conn.scalars(sa.select(outbox.c.key).order_by(outbox.c.key))).all())


async def test_put_moves_pending_work_and_leaves_done_work(nodes: tuple[Store, Store]) -> None:
    store, _ = nodes
    clock = Clock(T0)
    runner = DueRunner(store.database, {"mail": mailing(store)}, node="a", clock=clock)
    work = runner.work
    await work.put("mail", "booking:1:day-before", T0 + timedelta(hours=1), {"to": "a@x.test"})
    await work.put("mail", "booking:1:day-before", T0 + timedelta(hours=2), {"to": "b@x.test"})
    [item] = await work.items()
    assert (item.due_at, item.payload) == (T0 + timedelta(hours=2), {"to": "b@x.test"})

    clock.now = T0 + timedelta(hours=1, minutes=59)
    assert await runner.run_once() == 0  # not due yet
    clock.now = T0 + timedelta(hours=2)
    assert await runner.run_once() == 1
    done = await work.get("booking:1:day-before")
    assert done is not None and done.done_at == clock.now and done.attempts == 1

    # Done: put again, it stays done (nothing is sent twice); cancelling it does nothing.
    await work.put("mail", "booking:1:day-before", T0 + timedelta(hours=5), {"to": "c@x.test"})
    assert await work.get("booking:1:day-before") == done
    assert not await work.cancel("booking:1:day-before")
    clock.now = T0 + timedelta(hours=6)
    assert await runner.run_once() == 0
    assert await emails(store) == ["booking:1:day-before"]


async def test_cancel_and_cancel_prefix(nodes: tuple[Store, Store]) -> None:
    store, _ = nodes
    runner = DueRunner(store.database, {}, node="a", clock=Clock(T0))
    work = runner.work
    for key in ("booking:1:a", "booking:1:b", "booking:10:a", "booking_1:a", "booking%1:a"):
        await work.put("mail", key, T0, {})
    assert await work.cancel("booking:1:a")
    assert not await work.cancel("booking:1:a")
    # A prefix is literal: "_" and "%" match only themselves.
    assert await work.cancel_prefix("booking:1:") == 1
    assert await work.cancel_prefix("booking_") == 1
    assert sorted(i.key for i in await work.items()) == ["booking%1:a", "booking:10:a"]


async def test_two_nodes_run_each_item_once(nodes: tuple[Store, Store]) -> None:
    a, b = nodes
    clock = Clock(T0)
    runners = [
        DueRunner(s.database, {"mail": mailing(s)}, node=name, clock=clock)
        for s, name in ((a, "a"), (b, "b"))
    ]
    keys = [f"item:{i:02d}" for i in range(20)]
    for key in keys:
        await runners[0].work.put("mail", key, T0, {"to": f"{key[5:]}@x.test"})
    ran = await asyncio.gather(*(r.run_once() for r in runners))
    assert sum(ran) == 20
    assert await emails(a) == keys
    items = await runners[1].work.items()
    assert all(i.done_at is not None and i.attempts == 1 for i in items)


async def test_a_failure_is_kept_and_tried_again_later(nodes: tuple[Store, Store]) -> None:
    store, _ = nodes
    clock = Clock(T0)
    calls: list[int] = []
    effect = mailing(store)

    async def flaky(item: DueItem, conn: AsyncConnection) -> None:
        calls.append(item.attempts)
        await effect(item, conn)  # rolled back with the failure
        if len(calls) == 1:
            raise RuntimeError("SMTP server said no")

    retry = RetryPolicy(first=timedelta(minutes=1))
    runner = DueRunner(store.database, {"mail": flaky}, node="a", clock=clock, retry=retry)
    await runner.work.put("mail", "k", T0, {"to": "a@x.test"})
    assert await runner.run_once() == 0
    item = await runner.work.get("k")
    assert item is not None and item.done_at is None
    assert item.last_error == "RuntimeError: SMTP server said no"
    assert item.to_json()["retry_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert await emails(store) == []
    assert await runner.work.next_due() == T0 + timedelta(minutes=1)

    clock.now = T0 + timedelta(seconds=59)
    assert await runner.run_once() == 0
    clock.now = T0 + timedelta(minutes=1, seconds=1)
    assert await runner.run_once() == 1
    assert calls == [1, 2]
    item = await runner.work.get("k")
    assert item is not None and item.done_at is not None and item.last_error is None
    assert await emails(store) == ["k"]


async def test_a_dead_nodes_claim_lapses_and_its_work_is_done_once(
    nodes: tuple[Store, Store],
) -> None:
    a, b = nodes
    clock = Clock(T0)
    lease = timedelta(minutes=2)
    await DueRunner(a.database, {}, node="a", clock=clock).work.put(
        "mail", "k", T0, {"to": "x@x.test"}
    )
    runner_a = DueRunner(a.database, {"mail": mailing(a)}, node="a", clock=clock, lease=lease)
    runner_b = DueRunner(b.database, {"mail": mailing(b)}, node="b", clock=clock, lease=lease)
    # Node a claims it and stops there (killed): b cannot have it until the claim lapses.
    [item] = await runner_a.work.due(T0, 10)
    claimed = await runner_a.work.claim(item.id, "a", T0, T0 + lease)
    assert claimed is not None
    assert await runner_b.run_once() == 0
    clock.now = T0 + lease + timedelta(seconds=1)
    assert await runner_b.run_once() == 1
    # a, come back, finds it is not its own any more: its transaction is rolled back.
    with pytest.raises(LostClaim):
        async with a.database.begin() as conn:
            await mailing(a)(claimed, conn)
            await runner_a.work.finish(claimed, "a", clock.now, conn)
    assert await emails(a) == ["k"]
    done = await runner_a.work.get("k")
    assert done is not None and done.attempts == 2


async def test_unknown_kinds_wait(nodes: tuple[Store, Store]) -> None:
    store, _ = nodes
    clock = Clock(T0)
    handled: list[str] = []

    async def record(item: DueItem, conn: AsyncConnection) -> None:
        handled.append(item.key)

    runner = DueRunner(store.database, {"known": record}, node="a", clock=clock)
    await runner.work.put("unknown", "u", T0, {})
    await runner.work.put("known", "k", T0 + timedelta(seconds=1), {})
    clock.now = T0 + timedelta(seconds=2)
    assert await runner.run_once() == 1
    assert handled == ["k"]
    assert [i.key for i in await runner.work.items(pending=True)] == ["u"]


async def test_the_running_loop_wakes_when_work_is_put(nodes: tuple[Store, Store]) -> None:
    store, _ = nodes
    handled = asyncio.Queue[str]()

    async def record(item: DueItem, conn: AsyncConnection) -> None:
        handled.put_nowait(item.key)

    # Real time, and a poll far longer than the test: only the put can wake it.
    runner = DueRunner(store.database, {"k": record}, node="a", poll=timedelta(hours=1))
    runner.start()
    try:
        await asyncio.sleep(0.1)
        payload: dict[str, Any] = {}
        await runner.work.put("k", "now", datetime.now(UTC), payload)
        assert await asyncio.wait_for(handled.get(), 30) == "now"
    finally:
        await runner.close()
        await runner.close()
