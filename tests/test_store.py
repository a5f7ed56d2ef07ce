from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import create_async_engine

from consult.errors import InvalidRequest, InvalidToken, NotFound
from consult.recording.schema import consultations, metadata
from consult.recording.store import Store, schema_revisions
from consult.recording.tokens import TokenSealer, hash_token, load_seal_key, new_token
from consult.salon import Salon, parse_hours

from .datafolder import sqlite_url

TTL = timedelta(days=7)


@pytest.fixture
async def store(tmp_path: Path, database_url: str) -> AsyncIterator[Store]:
    """The store on SQLite, then on PostgreSQL."""
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    yield store
    await store.close()


async def all_rows(url: str) -> str:
    """Every row of every table, as text: what a copy of the database gives away."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return repr([(await conn.execute(t.select())).all() for t in metadata.sorted_tables])
    finally:
        await engine.dispose()


def test_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in list(tokens)[:50]:
        assert len(token) >= 32  # 24 bytes = 192 bits in base64url
        assert all(c.isalnum() or c in "-_" for c in token)


def test_sealed_tokens_need_the_key() -> None:
    sealer = TokenSealer(Fernet.generate_key())
    sealed = sealer.seal("abc")
    assert "abc" not in sealed
    assert sealer.unseal(sealed) == "abc"
    assert TokenSealer(Fernet.generate_key()).unseal(sealed) is None


def test_seal_key_is_made_once_and_private(tmp_path: Path) -> None:
    key = load_seal_key(tmp_path)
    assert load_seal_key(tmp_path) == key
    assert (tmp_path / "link-seal.key").stat().st_mode & 0o077 == 0


async def test_create_get_and_list(store: Store) -> None:
    when = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    created, links = await store.create_consultation(
        customer_name="Jane", customer_ref="C-1", scheduled_at=when, notes="n", link_ttl=TTL
    )
    other, _ = await store.create_consultation(customer_name="Ann", link_ttl=TTL)
    assert links.customer and links.stylist and links.customer != links.stylist
    fetched = await store.get_consultation(created.id)
    assert fetched == created
    assert fetched.scheduled_at == when and fetched.created_at.tzinfo is not None
    assert [c.id for c in await store.list_consultations()] == [other.id, created.id]
    assert [c.id for c in await store.list_consultations("C-1")] == [created.id]
    with pytest.raises(NotFound):
        await store.get_consultation("missing")


async def test_token_resolves_to_its_consultation_and_role(store: Store) -> None:
    created, links = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
    assert links.customer and links.stylist
    grant = await store.resolve_token(links.customer)
    assert (grant.consultation_id, grant.role) == (created.id, "customer")
    assert (await store.resolve_token(links.stylist)).role == "stylist"
    for bad in ("", "x", links.customer[:-1], links.customer + "x", "é" * 10, "x" * 5000):
        with pytest.raises(InvalidToken):
            await store.resolve_token(bad)


async def test_links_can_be_fetched_again(store: Store) -> None:
    created, links = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
    again = await store.links(created.id)
    assert (again.customer, again.stylist) == (links.customer, links.stylist)


async def test_tokens_are_not_stored_in_the_clear(
    store: Store, tmp_path: Path, database_url: str
) -> None:
    _, links = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
    assert links.customer
    rows = await all_rows(database_url)
    assert links.customer not in rows
    assert hash_token(links.customer) in rows


async def test_tokens_are_not_in_the_sqlite_files(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path), TokenSealer(load_seal_key(tmp_path)))
    _, links = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
    assert links.customer
    raw = (tmp_path / "consult.db").read_bytes() + (tmp_path / "consult.db-wal").read_bytes()
    await store.close()
    assert links.customer.encode() not in raw
    assert hash_token(links.customer).encode() in raw


async def test_expired_links_stop_working(store: Store) -> None:
    created, links = await store.create_consultation(
        customer_name="Jane", link_ttl=timedelta(seconds=-1)
    )
    assert links.customer
    with pytest.raises(InvalidToken):
        await store.resolve_token(links.customer)
    assert (await store.links(created.id)).customer is None


async def test_revoking_replaces_both_links(store: Store) -> None:
    created, old = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
    new = await store.revoke_links(created.id, TTL)
    assert old.customer and old.stylist and new.customer and new.stylist
    for token in (old.customer, old.stylist):
        with pytest.raises(InvalidToken):
            await store.resolve_token(token)
    assert (await store.resolve_token(new.customer)).consultation_id == created.id
    current = await store.links(created.id)
    assert (current.customer, current.stylist) == (new.customer, new.stylist)
    with pytest.raises(NotFound):
        await store.revoke_links("missing", TTL)


async def test_status_and_reset_after_a_crash(store: Store) -> None:
    created, _ = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
    await store.set_status(created.id, "live")
    live = await store.get_consultation(created.id)
    assert live.status == "live" and live.last_activity_at > created.last_activity_at
    await store.reset_live()
    assert (await store.get_consultation(created.id)).status == "open"


async def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path), TokenSealer(load_seal_key(tmp_path)))
    await store.ping()
    await store.close()
    db = sqlite3.connect(tmp_path / "consult.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


async def test_reopening_keeps_data_and_schema_version(tmp_path: Path, database_url: str) -> None:
    url = database_url
    sealer = TokenSealer(load_seal_key(tmp_path))
    first = await Store.open(url, sealer)
    created, links = await first.create_consultation(customer_name="Jane", link_ttl=TTL)
    await first.close()
    await first.close()  # safe twice
    second = await Store.open(url, sealer)
    assert links.customer
    assert (await second.resolve_token(links.customer)).consultation_id == created.id
    await second.close()
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
    await engine.dispose()
    assert version == schema_revisions()[-1]


#: Another process writing chat into the same consultation (argv: url, consultation, count).
WRITER = """
import asyncio, sys
from cryptography.fernet import Fernet
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer

async def main(url, consultation, count):
    store = await Store.open(url, TokenSealer(Fernet.generate_key()))
    try:
        for i in range(count):
            await store.add_message(consultation, "stylist", f"p{i}", f"from a process {i}")
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_chat_numbers_stay_unique_and_gap_free_with_writers_on_many_connections(
    nodes: tuple[Store, Store], database_url: str
) -> None:
    # Two nodes in this process (two engines, two pools) and a third in a process of its own.
    a, b = nodes
    created, _ = await a.create_consultation(customer_name="Jane", link_ttl=TTL)
    other, _ = await a.create_consultation(customer_name="Ann", link_ttl=TTL)
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, database_url, created.id, "20"
    )
    sent: list[tuple[str, int]] = []

    async def write(store: Store, name: str) -> None:
        # Until the other process is done, so that all of them overlap.
        i = 0
        while writer.returncode is None or i < 10:
            client_id = f"{name}{i}"
            message, new = await store.add_message(created.id, "customer", client_id, "hi")
            assert new
            # The same message again, through the other node: the first one comes back.
            again, new = await (b if store is a else a).add_message(
                created.id, "customer", client_id, "hi"
            )
            assert not new and again.seq == message.seq
            sent.append((client_id, message.seq))
            await a.add_message(other.id, "customer", client_id, "elsewhere")
            i += 1

    await asyncio.gather(
        write(a, "a"), write(a, "a'"), write(b, "b"), write(b, "b'"), writer.wait()
    )
    assert writer.returncode == 0
    stored = await b.messages(created.id)
    assert [m.seq for m in stored] == list(range(1, len(sent) + 21))
    assert {(m.client_id, m.seq) for m in stored if m.sender == "customer"} == set(sent)
    assert sorted(m.client_id for m in stored if m.sender == "stylist") == sorted(
        f"p{i}" for i in range(20)
    )
    # Numbered on their own: no gap from the writes into the other consultation.
    assert [m.seq for m in await a.messages(other.id)] == list(range(1, len(sent) + 1))


async def test_read_marks_only_move_forward_with_concurrent_readers(
    nodes: tuple[Store, Store],
) -> None:
    a, b = nodes
    created, _ = await a.create_consultation(customer_name="Jane", link_ttl=TTL)
    for i in range(30):
        await a.add_message(created.id, "customer", f"m{i}", "hi")
    seen: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            seen.append((await b.read_marks(created.id)).get("stylist", 0))

    async def mark(store: Store, seq: int) -> None:
        assert await store.mark_read(created.id, "stylist", seq) >= seq

    watcher = asyncio.create_task(watch())
    order = random.Random(13).sample(range(1, 31), 30)
    await asyncio.gather(*(mark(a if i % 2 else b, seq) for i, seq in enumerate(order)))
    done.set()
    await watcher
    assert seen == sorted(seen)
    assert await a.read_marks(created.id) == {"stylist": 30}
    # Past the last message: held at the last one.
    assert await b.mark_read(created.id, "stylist", 99) == 30


async def test_a_live_call_is_its_nodes_until_its_hold_lapses(
    nodes: tuple[Store, Store], database_url: str
) -> None:
    a, b = nodes
    engine = create_async_engine(database_url)
    try:
        on_a, _ = await a.create_consultation(customer_name="Jane", link_ttl=TTL)
        on_b, _ = await a.create_consultation(customer_name="Ann", link_ttl=TTL)
        await a.set_status(on_a.id, "live")
        await b.set_status(on_b.id, "live")
        # Node b restarts: what it held is open again, node a's call stays live.
        await b.reset_live()
        assert (await b.get_consultation(on_a.id)).status == "live"
        assert (await b.get_consultation(on_b.id)).status == "open"
        # A node that does not hold a call cannot end it.
        await b.set_status(on_a.id, "open")
        assert (await b.get_consultation(on_a.id)).status == "live"
        # Node a stops renewing (it died): once its hold has lapsed nobody sees the call live,
        # and the next start of any node records it open.
        async with engine.begin() as conn:
            await conn.execute(
                consultations.update()
                .where(consultations.c.id == on_a.id)
                .values(live_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert (await b.get_consultation(on_a.id)).status == "open"
        await b.reset_live()
        async with engine.connect() as conn:
            row = (
                await conn.execute(consultations.select().where(consultations.c.id == on_a.id))
            ).one()
        assert (row.status, row.live_node, row.live_until) == ("open", None, None)
        # A node renewing its calls records them live again (a status lost in an outage).
        await b.hold_live([on_b.id])
        assert (await a.get_consultation(on_b.id)).status == "live"
        await a.hold_live([on_b.id])  # not a's: unchanged
        async with engine.connect() as conn:
            holder = await conn.scalar(
                sa.select(consultations.c.live_node).where(consultations.c.id == on_b.id)
            )
        assert holder == "node-b"
    finally:
        await engine.dispose()


async def test_text_with_nul_is_refused_on_every_backend(store: Store) -> None:
    # PostgreSQL cannot store it; SQLite could, but one rule holds on both.
    with pytest.raises(InvalidRequest):
        await store.create_consultation(customer_name="Ja\x00ne", link_ttl=TTL)
    created, _ = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
    with pytest.raises(InvalidRequest):
        await store.add_message(created.id, "customer", "m1", "hi\x00")
    assert await store.messages(created.id) == []
    assert [c.customer_name for c in await store.list_consultations()] == ["Jane"]


async def test_the_first_hours_saved_by_two_nodes_at_once(nodes: tuple[Store, Store]) -> None:
    hours = [
        Salon(parse_hours("Europe/London", {"mon": [["09:00", "17:00"]]}), "a"),
        Salon(parse_hours("Europe/London", {"tue": [["10:00", "18:00"]]}), "b"),
    ]
    await asyncio.gather(*(node.set_salon(h) for node, h in zip(nodes, hours, strict=True)))
    assert await nodes[0].get_salon() in hours


async def test_a_customers_link_lasts_while_they_are_active(
    tmp_path: Path, database_url: str
) -> None:
    """Lasting links (issue 16): past its expiry the customer's link opens while the
    consultation had activity within ``link_idle``; the stylist's does not; revoked, neither."""
    store = await Store.open(
        database_url, TokenSealer(load_seal_key(tmp_path)), link_idle=timedelta(days=365)
    )
    try:
        expired = timedelta(seconds=-1)
        created, links = await store.create_consultation(customer_name="Li", link_ttl=expired)
        assert links.customer is not None and links.stylist is not None
        assert (await store.resolve_token(links.customer)).role == "customer"
        with pytest.raises(InvalidToken):
            await store.resolve_token(links.stylist)
        assert (await store.links(created.id)).customer == links.customer
        # A year and a month with nothing: gone; a message brings nothing back.
        idle = datetime.now(UTC) - timedelta(days=396)
        await store.update_consultation(created.id, {"last_activity_at": idle})
        with pytest.raises(InvalidToken):
            await store.resolve_token(links.customer)
        assert (await store.links(created.id)).customer is None
        # Active again (the customer got a new link by email, or wrote): it opens again.
        await store.add_message(created.id, "stylist", "m1", "Hello again")
        assert (await store.resolve_token(links.customer)).role == "customer"
        await store.revoke_links(created.id, expired)
        with pytest.raises(InvalidToken):
            await store.resolve_token(links.customer)
    finally:
        await store.close()


async def test_a_migration_that_rebuilds_a_table_keeps_what_refers_to_it(tmp_path: Path) -> None:
    """SQLite: a migration that rebuilds ``consultations`` (batch mode: copy, drop, rename)
    runs with foreign keys off, so the drop deletes none of its messages or links."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from consult.recording.store import MIGRATIONS

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'consult.db'}")
    command.upgrade(config, "0015")
    now = "2026-11-20 10:00:00.000000"
    with sqlite3.connect(tmp_path / "consult.db") as db:
        db.execute(
            "INSERT INTO consultations (id, customer_name, notes, status, created_at,"
            " last_activity_at, summary) VALUES ('a', 'A', '', 'open', ?, ?, '')",
            (now, now),
        )
        db.execute(
            "INSERT INTO messages (consultation_id, seq, client_id, sender, text, created_at)"
            " VALUES ('a', 1, 'm1', 'customer', 'hi', ?)",
            (now,),
        )
    store = await Store.open(sqlite_url(tmp_path), TokenSealer(load_seal_key(tmp_path)))
    try:
        assert [m.text for m in await store.messages("a")] == ["hi"]
        # Foreign keys are on again for the service's own connections.
        with pytest.raises(sa.exc.IntegrityError):
            async with store.database.begin() as conn:
                await conn.exec_driver_sql(
                    "INSERT INTO messages (consultation_id, seq, client_id, sender, text,"
                    " created_at) VALUES ('nobody', 1, 'x', 'customer', '', '2026-11-20')"
                )
    finally:
        await store.close()
