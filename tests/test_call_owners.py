"""Who owns a call, in the store: taken by one node at a time, renewed, lost to a higher
epoch, released; a restarted node holds nothing (SQLite, then PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consult.ownership import OWNER_LEASE, Owner
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

TTL = timedelta(seconds=4)


@pytest.fixture
async def nodes(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    sealer = TokenSealer(load_seal_key(tmp_path))
    # Two nodes: two stores (two connection pools) on one database.
    a = await Store.open(database_url, sealer, node="node-a")
    b = await Store.open(database_url, sealer, node="node-b")
    yield a, b
    await a.close()
    await b.close()


async def test_one_owner_at_a_time(nodes: tuple[Store, Store]) -> None:
    a, b = nodes
    call, _ = await a.create_consultation(customer_name="Jane", link_ttl=timedelta(days=1))
    now = datetime.now(UTC)
    # Both take a call nobody holds at once: one wins.
    won = await asyncio.gather(
        a.call_owners.take(call.id, "node-a", 1, None, now, TTL),
        b.call_owners.take(call.id, "node-b", 1, None, now, TTL),
    )
    assert sorted(won) == [False, True]
    winner, loser = ("node-a", a) if won[0] else ("node-b", b)
    owner = await loser.call_owners.get(call.id)
    assert owner == Owner(winner, 1, now + TTL)
    # Taking it from the winner (its node died) needs the epoch read: one of two racing wins.
    won = await asyncio.gather(
        a.call_owners.take(call.id, "node-a", 2, 1, now, TTL),
        b.call_owners.take(call.id, "node-b", 2, 1, now, TTL),
    )
    assert sorted(won) == [False, True]
    assert not await a.call_owners.take(call.id, "node-a", 2, 1, now, TTL)  # stale epoch


async def test_renewal_finds_a_call_taken_over(nodes: tuple[Store, Store]) -> None:
    a, b = nodes
    first, _ = await a.create_consultation(customer_name="Jane", link_ttl=timedelta(days=1))
    second, _ = await a.create_consultation(customer_name="Ann", link_ttl=timedelta(days=1))
    now = datetime.now(UTC)
    assert await a.call_owners.take(first.id, "node-a", 1, None, now, TTL)
    assert await a.call_owners.take(second.id, "node-a", 1, None, now, TTL)
    await a.set_status(first.id, "live")
    epochs = {first.id: 1, second.id: 1}
    assert await a.hold_calls(epochs, [first.id]) == set()
    renewed = await b.call_owners.get(first.id)
    assert renewed is not None and renewed.until is not None and renewed.until > now + TTL / 2
    # b takes the first over (a's node looked dead to it): a's next renewal finds it lost,
    # and does not hold it live.
    assert await b.call_owners.take(first.id, "node-b", 2, 1, now, TTL)
    await b.set_status(first.id, "live")
    assert await a.hold_calls(epochs, [first.id]) == {first.id}
    assert (await b.call_owners.get(first.id)) == Owner("node-b", 2, now + TTL)
    # a's call ends: it releases only its own.
    await a.call_owners.release(first.id, "node-a", 1)
    assert (await b.call_owners.get(first.id)) == Owner("node-b", 2, now + TTL)
    await a.call_owners.release(second.id, "node-a", 1)
    assert (await b.call_owners.get(second.id)) == Owner(None, 1, None)
    # Released rows keep their epoch: the next owner's is higher.
    assert await b.call_owners.take(second.id, "node-b", 2, 1, now, TTL)


async def test_a_restarted_node_holds_nothing(nodes: tuple[Store, Store]) -> None:
    a, b = nodes
    on_a, _ = await a.create_consultation(customer_name="Jane", link_ttl=timedelta(days=1))
    on_b, _ = await a.create_consultation(customer_name="Ann", link_ttl=timedelta(days=1))
    now = datetime.now(UTC)
    assert await a.call_owners.take(on_a.id, "node-a", 1, None, now, OWNER_LEASE)
    assert await b.call_owners.take(on_b.id, "node-b", 1, None, now, OWNER_LEASE)
    await a.set_status(on_a.id, "live")
    await b.set_status(on_b.id, "live")
    # a restarts: its call is open and nobody's at once; b's stays b's, and live.
    await a.reset_live()
    assert (await b.call_owners.get(on_a.id)) == Owner(None, 1, None)
    assert (await b.get_consultation(on_a.id)).status == "open"
    assert (await a.call_owners.get(on_b.id)) == Owner("node-b", 1, now + OWNER_LEASE)
    assert (await a.get_consultation(on_b.id)).status == "live"

