"""Customers (issue 17B): the store on SQLite and PostgreSQL, the migration that gives every
existing consultation a customer, and the HTTP API."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig

from consult.appkeys import STORE
from consult.errors import InvalidRequest, NotFound
from consult.recording.audit import AuditFilter
from consult.recording.customers import phone_key
from consult.recording.store import MIGRATIONS, Store
from consult.recording.tokens import TokenSealer, load_seal_key

from .conftest import create_consultation, token_of
from .customer_data import fill_consultation
from .stores import audit_log_down

pytestmark = pytest.mark.timeout(120)
TTL = timedelta(days=7)


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
    # What references a consultation survives the migrations that rebuild its table.
    db.execute(
        "INSERT INTO messages (consultation_id, seq, client_id, sender, text, created_at)"
        " VALUES ('a', 1, 'm', 'customer', 'hi', '2026-11-01 10:00:00.000000')"
    )
    db.execute(
        "INSERT INTO links (consultation_id, role, token_hash, token_sealed, created_at,"
        " expires_at) VALUES ('a', 'customer', 'h', 's', '2026-11-01 10:00:00.000000',"
        " '2026-11-08 10:00:00.000000')"
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
        assert [m.text for m in await store.messages("a")] == ["hi"]
        rows = sqlite3.connect(tmp_path / "consult.db")
        assert rows.execute("SELECT count(*) FROM links").fetchone() == (1,)
        assert rows.execute("PRAGMA foreign_key_check").fetchall() == []
        rows.close()
    finally:
        await store.close()


# The HTTP API


async def post_customer(
    http: aiohttp.ClientSession, staff: dict[str, str], **body: Any
) -> dict[str, Any]:
    async with http.post("/api/customers", json=body, headers=staff) as r:
        assert r.status == 201, await r.text()
        customer: dict[str, Any] = (await r.json())["customer"]
        return customer


async def test_staff_create_search_edit_and_read_a_customer(
    http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    mei = await post_customer(http, staff, name="Mei Lin", email="Mei@Example.CN",
                              phone="+86 138 0000 1111", language="zh-CN")  # fmt: skip
    assert mei["email"] == "Mei@example.cn"  # the domain normalised, as consultations' emails
    await post_customer(http, staff, name="Jo Smith")
    for q, names in [("mei", ["Mei Lin"]), ("1380000", ["Mei Lin"]), ("EXAMPLE.cn", ["Mei Lin"]),
                     ("jo", ["Jo Smith"])]:  # fmt: skip
        async with http.get("/api/customers", params={"q": q}, headers=staff) as r:
            assert [c["name"] for c in (await r.json())["customers"]] == names, q
    async with http.patch(
        f"/api/customers/{mei['id']}", json={"notes": "Prefers short nails", "phone": None},
        headers=staff,
    ) as r:  # fmt: skip
        edited = (await r.json())["customer"]
    assert (edited["notes"], edited["phone"], edited["name"]) == ("Prefers short nails", None,
                                                                  "Mei Lin")  # fmt: skip
    consultation = await create_consultation(http, staff, customer_name=None,
                                             customer_id=mei["id"])  # fmt: skip
    assert consultation["customer_id"] == mei["id"]
    assert consultation["customer_email"] == "Mei@example.cn"
    async with http.post(
        f"/api/consultations/{consultation['id']}/messages", json={"text": "Hi Mei", "id": "1"},
        headers=staff,
    ) as r:  # fmt: skip
        assert r.status == 201
    async with http.get(f"/api/customers/{mei['id']}", headers=staff) as r:
        page = await r.json()
    assert page["customer"]["notes"] == "Prefers short nails"
    assert [c["id"] for c in page["consultations"]] == [consultation["id"]]
    assert [m["text"] for m in page["consultations"][0]["messages"]] == ["Hi Mei"]
    assert page["check_ins"] == [] and page["consents"] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [({}, "invalid-request"), ({"name": ""}, "invalid-request"),
     ({"name": "   "}, "invalid-request"), ({"name": "A", "email": "nope"}, "invalid-email"),
     ({"name": "A", "phone": "call me"}, "invalid-request"),
     ({"name": "A", "language": "fr"}, "invalid-request"),
     ({"name": "A", "x": 1}, "invalid-request"), ({"name": "A\x00"}, "invalid-request")],
)  # fmt: skip
async def test_a_bad_customer_is_refused_and_stores_nothing(
    http: aiohttp.ClientSession, staff: dict[str, str], body: dict[str, Any], code: str
) -> None:
    async with http.post("/api/customers", json=body, headers=staff) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, code)
    async with http.get("/api/customers", headers=staff) as r:
        assert (await r.json())["customers"] == []


async def test_the_owner_merges_a_duplicate(
    http: aiohttp.ClientSession, staff: dict[str, str], server: Any
) -> None:
    keep = await post_customer(http, staff, name="Ann Lee", email="ann@example.com")
    dup = await post_customer(http, staff, name="Ann  Lee", phone="+1 555 0100", notes="VIP")
    c1 = await create_consultation(http, staff, customer_name=None, customer_id=keep["id"])
    c2 = await create_consultation(http, staff, customer_name=None, customer_id=dup["id"])
    # Into itself, by either id: a clear 400, nothing changes.
    async with http.post(f"/api/customers/{keep['id']}/merge", json={"into": keep["id"]},
                         headers=staff) as r:  # fmt: skip
        assert (r.status, (await r.json())["error"]["code"]) == (400, "merge-into-itself")
    async with http.post(f"/api/customers/{dup['id']}/merge", json={"into": "nobody"},
                         headers=staff) as r:  # fmt: skip
        assert r.status == 404
    async with http.post(f"/api/customers/{dup['id']}/merge", json={"into": keep["id"]},
                         headers=staff) as r:  # fmt: skip
        assert r.status == 200, await r.text()
        merged = (await r.json())["customer"]
    assert (merged["id"], merged["phone"], merged["notes"]) == (keep["id"], "+1 555 0100", "VIP")
    async with http.get(f"/api/customers/{keep['id']}", headers=staff) as r:
        assert {c["id"] for c in (await r.json())["consultations"]} == {c1["id"], c2["id"]}
    # The duplicate's id forwards; lists show one Ann; the consultation has the kept name.
    async with http.get(f"/api/customers/{dup['id']}", headers=staff) as r:
        assert (await r.json())["customer"]["id"] == keep["id"]
    async with http.get("/api/customers", params={"q": "ann"}, headers=staff) as r:
        assert [c["id"] for c in (await r.json())["customers"]] == [keep["id"]]
    async with http.get(f"/api/consultations/{c2['id']}", headers=staff) as r:
        assert (await r.json())["customer_name"] == "Ann Lee"
    async with http.post(f"/api/customers/{dup['id']}/merge", json={"into": keep["id"]},
                         headers=staff) as r:  # fmt: skip
        assert (r.status, (await r.json())["error"]["code"]) == (400, "merge-into-itself")
    entries = (
        await server.app[STORE].audit.entries(AuditFilter(subject=f"customer:{dup['id']}"))
    ).entries
    assert [(e.action, e.detail) for e in entries if e.action == "merged"] == [
        ("merged", {"into": keep["id"], "consultations": 1})
    ]


async def test_the_customer_downloads_everything_and_asks_for_deletion_from_their_link(
    http: aiohttp.ClientSession, staff: dict[str, str], server: Any
) -> None:
    ann = await post_customer(http, staff, name="Ann")
    first = await create_consultation(http, staff, customer_name=None, customer_id=ann["id"])
    second = await create_consultation(http, staff, customer_name=None, customer_id=ann["id"])
    other = await create_consultation(http, staff, customer_name="Somebody Else")
    for c in (first, second, other):
        await fill_consultation(http, server, c, c["id"][:6])
    customer = {"Authorization": f"Bearer {token_of(second['customer_link'])}"}
    async with http.get(f"/api/consultations/{second['id']}/export-all", headers=customer) as r:
        assert r.status == 200 and r.content_type == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(await r.read()))
    folders = {name.split("/")[0] for name in archive.namelist()}
    assert {f.rsplit("-", 1)[1] for f in folders} == {first["id"], second["id"]}
    for folder in folders:
        record = json.loads(archive.read(f"{folder}/record.json"))
        assert "notes" not in record  # the customer's view: no private notes
        assert len(record["stills"]) == 1 and record["recordings"]
        assert f"{folder}/index.html" in archive.namelist()
    stylist = {"Authorization": f"Bearer {token_of(second['stylist_link'])}"}
    for path in ("export-all", "deletion-request"):
        method = "GET" if path == "export-all" else "POST"
        async with http.request(method, f"/api/consultations/{second['id']}/{path}",
                                headers=stylist) as r:  # fmt: skip
            assert r.status == 403
    async with http.post(
        f"/api/consultations/{first['id']}/deletion-request",
        headers={"Authorization": f"Bearer {token_of(first['customer_link'])}"},
    ) as r:
        assert r.status == 202
        asked = (await r.json())["deletion_requested_at"]
    # The owner sees the request on the customer (and in the directory).
    async with http.get(f"/api/customers/{ann['id']}", headers=staff) as r:
        assert (await r.json())["customer"]["deletion_requested_at"] == asked
    async with http.get(f"/api/customers/{ann['id']}/export", headers=staff) as r:
        archive = zipfile.ZipFile(io.BytesIO(await r.read()))
    (notes,) = {json.loads(archive.read(n)).get("notes") for n in archive.namelist()
                if n.endswith("record.json") and first["id"] in n}  # fmt: skip
    assert notes and "likes almond" in notes


async def test_a_deletion_request_is_never_kept_without_its_audit_entry(
    http: aiohttp.ClientSession, staff: dict[str, str], server: Any
) -> None:
    store = server.app[STORE]
    c = await create_consultation(http, staff, customer_name="Bea")
    url = f"/api/consultations/{c['id']}/deletion-request"
    customer = {"Authorization": f"Bearer {token_of(c['customer_link'])}"}
    async with audit_log_down(store), http.post(url, headers=customer) as r:
        assert r.status == 507  # the database refused the write
    customer_id = (await store.get_consultation(c["id"])).customer_id
    # The entry could not be written: nor was the request.
    assert (await store.customers.get(customer_id)).deletion_requested_at is None
    async with http.post(url, headers=customer) as r:
        assert r.status == 202
    entries = (await store.audit.entries(AuditFilter(subject=f"customer:{customer_id}"))).entries
    assert [e.action for e in entries if e.action != "created"] == ["deletion-requested"]
