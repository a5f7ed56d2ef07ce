from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from consult.errors import InvalidToken, NotFound
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, hash_token, load_seal_key, new_token

TTL = timedelta(days=7)


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    store = await Store.open(
        f"sqlite+aiosqlite:///{tmp_path / 'consult.db'}", TokenSealer(load_seal_key(tmp_path))
    )
    yield store  # type: ignore[misc]
    await store.close()


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


async def test_tokens_are_not_stored_in_the_clear(store: Store, tmp_path: Path) -> None:
    _, links = await store.create_consultation(customer_name="Jane", link_ttl=TTL)
    assert links.customer
    raw = (tmp_path / "consult.db").read_bytes() + (tmp_path / "consult.db-wal").read_bytes()
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


async def test_sqlite_runs_in_wal_mode_with_full_sync(store: Store, tmp_path: Path) -> None:
    await store.ping()
    db = sqlite3.connect(tmp_path / "consult.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


async def test_reopening_keeps_data_and_schema_version(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'consult.db'}"
    sealer = TokenSealer(load_seal_key(tmp_path))
    first = await Store.open(url, sealer)
    created, links = await first.create_consultation(customer_name="Jane", link_ttl=TTL)
    await first.close()
    await first.close()  # safe twice
    second = await Store.open(url, sealer)
    assert links.customer
    assert (await second.resolve_token(links.customer)).consultation_id == created.id
    await second.close()
    db = sqlite3.connect(tmp_path / "consult.db")
    assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0014"
    db.close()
