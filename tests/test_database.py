"""A PostgreSQL that goes away for 5 s: writes refused with storage-failed and never half
done, calls keep their media, and the service recovers by itself when the database returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from consult.config import Settings
from consult.errors import StorageFailed
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

from .calls import in_call
from .client import CallClient
from .conftest import make_settings
from .postgres import Postgres, running_postgres

pytestmark = pytest.mark.timeout(120)
TTL = timedelta(days=7)
#: How long the database is away.
OUTAGE = 5.0


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Postgres]:
    """A server of this module's own: stopping it disturbs no other test."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, own_postgres: Postgres) -> Settings:
    return make_settings(tmp_path, database_url=own_postgres.create_database())


class Outage:
    """The database stopped now, and started again ``OUTAGE`` seconds later."""

    def __init__(self, server: Postgres) -> None:
        self._server = server

    async def __aenter__(self) -> Outage:
        await asyncio.to_thread(self._server.stop)
        self._since = time.monotonic()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - self._since)))
        await asyncio.to_thread(self._server.start)


async def test_the_store_refuses_writes_while_away_and_recovers_by_itself(
    tmp_path: Path, own_postgres: Postgres
) -> None:
    store = await Store.open(own_postgres.create_database(), TokenSealer(load_seal_key(tmp_path)))
    try:
        created, _ = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
        await store.add_message(created.id, "customer", "m1", "before")
        async with Outage(own_postgres):
            with pytest.raises(StorageFailed):
                await store.add_message(created.id, "customer", "m2", "during")
            with pytest.raises(StorageFailed):
                await store.create_consultation(customer_name="Ann", link_ttl=TTL)
            with pytest.raises(StorageFailed):
                await store.get_consultation(created.id)
        # The same store, without reopening: the pool replaced its dead connections.
        again, new = await store.add_message(created.id, "customer", "m2", "during")
        assert new and again.seq == 2
        assert [(m.seq, m.text) for m in await store.messages(created.id)] == [
            (1, "before"),
            (2, "during"),
        ]
        assert [c.customer_name for c in await store.list_consultations()] == ["Jane"]
    finally:
        await store.close()


async def test_a_call_keeps_its_media_through_an_outage_and_chat_resumes(
    clients: Any,
    consultation: dict[str, Any],
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    own_postgres: Postgres,
) -> None:
    customer, stylist = await in_call(clients, consultation)
    await customer.send({"type": "chat", "text": "before", "id": "c1"})
    assert (await stylist.expect("chat"))["seq"] == 1
    async with Outage(own_postgres):
        started = time.monotonic()
        await customer.send({"type": "chat", "text": "during", "id": "c2"})
        error = await customer.expect("error")
        assert error["code"] == "storage-failed"
        async with http.post(
            "/api/consultations", json={"customer_name": "Ann"}, headers=staff
        ) as r:
            assert r.status == 507
            assert (await r.json())["error"]["code"] == "storage-failed"
        # Media does not go through the database: both keep seeing each other.
        await wait_frames(customer, "stylist", started)
        await wait_frames(stylist, "customer", started)
    # Back: the page sends the message again (same id) and it is stored once, numbered next.
    await retry_chat(customer, {"type": "chat", "text": "during", "id": "c2"})
    got = await stylist.expect("chat")
    assert (got["seq"], got["text"]) == (2, "during")
    async with http.post("/api/consultations", json={"customer_name": "Ann"}, headers=staff) as r:
        assert r.status == 201
    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        assert (await r.json())["status"] == "live"


async def wait_frames(client: CallClient, partner: str, since: float) -> None:
    await client.wait_for(lambda: len(client.partner_frames(partner, since)) >= 10)


async def retry_chat(client: CallClient, message: dict[str, Any]) -> None:
    """Send until acknowledged, as the page does after an error (the database may take a
    moment to accept connections again)."""
    for _ in range(20):
        await client.send(message)
        reply = await client.expect_any(("chat", "error"))
        if reply["type"] == "chat":
            return
        assert reply["code"] == "storage-failed"
        await asyncio.sleep(0.5)
    raise AssertionError("the chat never came back")
