"""Customers (issue 17B): the store on SQLite and PostgreSQL, the migration that gives every
existing consultation a customer, and the HTTP API."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig

from consult.errors import InvalidRequest, NotFound
from consult.recording.customers import phone_key
from consult.recording.store import MIGRATIONS, Store
from consult.recording.tokens import TokenSealer, load_seal_key

pytestmark = pytest.mark.timeout(120)
TTL = timedelta(days=7)


@pytest.fixture
async def store(tmp_path: Path, database_url: str) -> AsyncIterator[Store]:
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    yield store
    await store.close()


def test_phone_numbers_match_by_their_digits() -> None:
    assert phone_key("+44 20 7946-0000") == phone_key("+442079460000") == "+442079460000"
    assert phone_key(" ") is None
    for bad in ("call me", "12", "+44 20 x"):
        with pytest.raises(InvalidRequest):
            phone_key(bad)


async def test_create_get_search_and_find_or_create(store: Store) -> None:
    customers = store.customers
    mei = await customers.create(
        name=" Mei Lin ", email="Mei.Lin@Example.com", phone="+86 138 0000 1111", language="zh-CN"
    )
    assert (mei.name, mei.email, mei.language) == ("Mei Lin", "Mei.Lin@Example.com", "zh-CN")
    jo = await customers.create(name="Jo Smith", external_ref="C-1042")
    assert await customers.get(mei.id) == mei
    with pytest.raises(NotFound):
        await customers.get("nobody")
    # Search by any part of the name, email, phone (by its digits) or reference, in any case.
    for q, found in [("mei", [mei]), ("EXAMPLE.COM", [mei]), ("138 0000", [mei]),
                     ("c-104", [jo]), ("smith", [jo]), ("nobody", []), ("%", [])]:  # fmt: skip
        assert [c.id for c in await customers.search(q)] == [c.id for c in found], q
    assert {c.id for c in await customers.search("")} == {mei.id, jo.id}
    # The same person by email (any case) or phone (any spacing): found, not made again.
    again = await customers.find_or_create(name="M. Lin", email="mei.lin@example.COM")
    assert again.id == mei.id
    again = await customers.find_or_create(name="Mei", phone="+8613800001111")
    assert again.id == mei.id
    new = await customers.find_or_create(name="Ann", email="ann@example.com")
    assert new.id not in (mei.id, jo.id)
    assert len(await customers.search("")) == 3


async def test_consultations_belong_to_a_customer(store: Store) -> None:
    # Without a customer: one is made from the details given.
    first, _ = await store.create_consultation(
        customer_name="Jane", customer_ref="C-7", customer_email="jane@example.com", link_ttl=TTL
    )
    assert first.customer_id is not None
    jane = await store.customers.get(first.customer_id)
    assert (jane.name, jane.external_ref, jane.email) == ("Jane", "C-7", "jane@example.com")
    # The same reference: the same customer.
    second, _ = await store.create_consultation(customer_name="Jane D", customer_ref="C-7",
                                                link_ttl=TTL)  # fmt: skip
    assert second.customer_id == jane.id
    # By id: the customer's details are the consultation's.
    third, _ = await store.create_consultation(customer_id=jane.id, link_ttl=TTL)
    assert (third.customer_id, third.customer_name, third.customer_ref) == (jane.id, "Jane", "C-7")
    with pytest.raises(NotFound):
        await store.create_consultation(customer_id="nobody", link_ttl=TTL)
    # An edit of the customer reaches the copies v1 clients read on their consultations.
    await store.customers.update(jane.id, {"name": "Jane Doe", "email": "jd@example.com"})
    for c in (first, second, third):
        got = await store.get_consultation(c.id)
        assert (got.customer_name, got.customer_email) == ("Jane Doe", "jd@example.com")


async def test_the_migration_gives_every_consultation_a_customer(tmp_path: Path) -> None:
    """A store at 0015 with consultations, some sharing a customer_ref: upgraded, each ref is
    one customer (its latest name, its external_ref), each consultation without one its own."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'consult.db'}")
    command.upgrade(config, "0015")
    db = sqlite3.connect(tmp_path / "consult.db")
    rows = [("a", "Jane", "C-1", None, "2026-11-01"), ("b", "Jane Doe", "C-1", "j@example.com",
            "2026-11-02"), ("c", "Mei", None, None, "2026-11-03"),
            ("d", "Mei", None, None, "2026-11-04")]  # fmt: skip
    for cid, name, ref, email, day in rows:
        db.execute(
            "INSERT INTO consultations (id, customer_name, customer_ref, customer_email, notes,"
            " status, created_at, last_activity_at, summary) VALUES (?, ?, ?, ?, '', 'open', ?,"
            " ?, '')",
            (cid, name, ref, email, f"{day} 10:00:00.000000", f"{day} 10:00:00.000000"),
        )
    db.commit()
    db.close()
    url = f"sqlite+aiosqlite:///{tmp_path / 'consult.db'}"
    store = await Store.open(url, TokenSealer(load_seal_key(tmp_path)))
    try:
        owners = {c.id: c.customer_id for c in await store.list_consultations()}
        assert owners["a"] == owners["b"]
        assert len({owners["a"], owners["c"], owners["d"]}) == 3
        jane = await store.customers.get(owners["a"] or "")
        assert (jane.name, jane.external_ref, jane.email) == ("Jane Doe", "C-1", "j@example.com")
        assert jane.created_at.day == 1
        # v1 clients still read and filter by customer_ref.
        assert {c.id for c in await store.list_consultations("C-1")} == {"a", "b"}
    finally:
        await store.close()
