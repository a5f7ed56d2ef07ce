"""Deletion (issue 17B): the owner deletes a still, a message, a consultation or a customer with
everything of theirs; afterwards 404 everywhere and nothing left that names them, on disk or in
any table; a deletion interrupted by a killed server is finished at the next start."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.appkeys import AFTERCARE, DUE_WORK, SETTINGS, STORE
from consult.errors import NotFound
from consult.recording.audit import AuditFilter
from consult.recording.consents import VERSION
from consult.recording.deletion import remove_files
from consult.recording.schema import metadata
from consult.recording.store import Still, Store

from .booking import a_week_ahead, free, publish
from .conftest import STAFF_KEY, create_consultation, token_of
from .customer_data import auth, fill_consultation, jpeg
from .hand_media import PHOTOS
from .process import free_port, start_serve, wait_healthy

pytestmark = pytest.mark.timeout(180)

SHARP = next(p for p in PHOTOS if p.name.startswith("both_hands")).read_bytes()


def data_files(data: Path) -> list[Path]:
    return [p for p in data.rglob("*") if p.is_file()]


def table_rows(database: Path) -> dict[str, str]:
    """Every table's rows as text (SQLite, read as it is on disk)."""
    db = sqlite3.connect(database)
    try:
        return {t.name: repr(db.execute(f"SELECT * FROM {t.name}").fetchall())
                for t in metadata.sorted_tables}  # fmt: skip
    finally:
        db.close()


async def test_deleting_a_customer_leaves_nothing_that_names_them(
    http: aiohttp.ClientSession, staff: dict[str, str], server: TestServer
) -> None:
    person = {
        "name": "Ottilie Quenby",
        "email": "ottilie.q@example.org",
        "phone": "+44 7700 900123",
    }
    async with http.post("/api/customers", json=person, headers=staff) as r:
        assert r.status == 201, await r.text()
        customer = (await r.json())["customer"]
    first = await create_consultation(http, staff, customer_name=None, customer_id=customer["id"])
    second = await create_consultation(http, staff, customer_name=None, customer_id=customer["id"],
                                       customer_ref="REF-OQ-77")  # fmt: skip
    assert first["customer_name"] == "Ottilie Quenby"
    for c, tag in ((first, "Ottilie"), (second, "Ottilie2")):
        await fill_consultation(http, server, c, tag)
    keeper = await create_consultation(http, staff, customer_name="Kept Customer")
    await fill_consultation(http, server, keeper, "Kept")
    # They also booked on /book (reminders pending) and answered a check-in with a photo.
    booked, checkin = await book_and_check_in(http, staff, server, person, first)
    async with http.get(f"/api/consultations/{booked['id']}", headers=staff) as r:
        assert (await r.json())["customer_id"] == customer["id"]
    work = server.app[DUE_WORK]
    assert await work.items(prefix=f"reminder:{booked['id']}:")
    assert await work.get(f"checkin:{checkin}") is not None
    ids = (customer["id"], first["id"], second["id"], booked["id"], checkin)
    data = server.app[SETTINGS].data_dir
    needles = [person["name"], person["email"], "447700900123", "REF-OQ-77", "Ottilie", *ids]
    assert any(n.encode() in p.read_bytes() for p in data_files(data) for n in needles)

    async with http.delete(f"/api/customers/{customer['id']}", headers=staff) as r:
        assert r.status == 204, await r.text()
    # Their due work is gone, done or not: nothing left to run for them.
    assert not [i for i in await work.items() if any(n in i.key for n in ids)]
    # 404 everywhere, links dead.
    async with http.get(f"/api/customers/{customer['id']}", headers=staff) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (404, "not-found")
    for c in (first, second):
        async with http.get(f"/api/consultations/{c['id']}", headers=staff) as r:
            assert r.status == 404
        async with http.get(f"/api/consultations/{c['id']}", headers=auth(c["customer_link"])) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (401, "invalid-token")
        async with http.get(f"/c/{token_of(c['customer_link'])}") as r:
            assert r.status == 404
    async with http.delete(f"/api/customers/{customer['id']}", headers=staff) as r:
        assert r.status == 404
    # No file and no row names them: names, contents, every table (the audit log keeps only
    # that a customer, by its random id, was deleted: no name, address or number).
    for path in data_files(data):
        content = path.read_bytes()
        for needle in needles:
            assert needle not in str(path), path
            if path.name != "consult.db" and not path.name.startswith("consult.db-"):
                assert needle.encode() not in content, (path, needle)
    rows = table_rows(data / "consult.db")
    for table, text in rows.items():
        for needle in needles:
            if table == "audit_log" and needle in ids:
                continue
            assert needle not in text, (table, needle)
    assert f"customer:{customer['id']}" in rows["audit_log"]
    # The database's own files keep nothing either (deleted content is overwritten).
    raw = b"".join(p.read_bytes() for p in data.glob("consult.db*"))
    for needle in (person["name"], person["email"], "Ottilie likes almond"):
        assert needle.encode() not in raw, needle
    # The other customer's record is whole.
    async with http.get(f"/api/consultations/{keeper['id']}", headers=staff) as r:
        kept = await r.json()
    assert len(kept["stills"]) == 1 and len(kept["messages"]) == 3 and kept["recordings"]
    assert "Kept likes almond" in kept["notes"]


async def book_and_check_in(
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    server: TestServer,
    person: dict[str, str],
    consultation: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """The customer books a slot a week ahead on /book and answers the consultation's first
    check-in with a photo: the booked consultation and the check-in's id."""
    await publish(http)
    start = a_week_ahead(await free(http))
    body = {"start": start, "customer_name": person["name"], "customer_email": person["email"]}
    async with http.post("/api/bookings", json=body) as r:
        assert r.status == 201, await r.text()
        booked = (await r.json())["consultation"]
    async with http.post(
        f"/api/consultations/{consultation['id']}/checkins", json={}, headers=staff
    ) as r:
        assert r.status == 201, await r.text()
        checkin = (await r.json())["checkins"][0]["id"]
    assert await server.app[AFTERCARE].deliver(checkin)
    customer = auth(consultation["customer_link"])
    async with http.post(
        f"/api/checkins/{checkin}/photos?view=top",
        data=SHARP,
        headers=customer | {"Content-Type": "image/jpeg"},
    ) as r:
        assert r.status == 201, await r.text()
    answers = {"lifting": True, "chipping": False, "comfort": 4, "text": "Ottilie: one lifts"}
    async with http.put(f"/api/checkins/{checkin}/answers", json=answers, headers=customer) as r:
        assert r.status == 200, await r.text()
    return booked, checkin


async def test_the_owner_deletes_a_still_a_message_and_a_consultation(
    http: aiohttp.ClientSession, staff: dict[str, str], server: TestServer
) -> None:
    c = await create_consultation(http, staff)
    filled = await fill_consultation(http, server, c, "Rosa")
    still = filled["photo"]["still"]
    stills = server.app[SETTINGS].data_dir / "stills"
    assert (stills / c["id"]).is_dir()
    before = {p.name for p in (stills / c["id"]).iterdir()}
    async with http.delete(f"/api/stills/{still['id']}", headers=staff) as r:
        assert r.status == 204
    for path in (f"/api/stills/{still['id']}", f"/api/stills/{still['id']}/thumb"):
        async with http.get(path, headers=staff) as r:
            assert r.status == 404
    after = {p.name for p in (stills / c["id"]).iterdir()}
    assert len(before - after) == 2  # the original and its thumbnail
    async with http.get(f"/api/consultations/{c['id']}/messages", headers=staff) as r:
        messages = [m for m in (await r.json())["history"] if m["type"] == "chat"]
    # The photo's message went with it; the words and the file stay.
    assert [m.get("attachment") is not None for m in messages] == [False, True]
    async with http.delete(
        f"/api/consultations/{c['id']}/messages/{messages[1]['seq']}", headers=staff
    ) as r:
        assert r.status == 204
    # The inbox's summary forgets the deleted message: the last left is the words.
    async with http.get("/api/inbox", headers=staff) as r:
        (item,) = [i for i in (await r.json())["conversations"] if i["id"] == c["id"]]
    assert item["last_message"]["text"] == "Hello, it is Rosa"
    for bad in (f"/api/consultations/{c['id']}/messages/99", f"/api/stills/{still['id']}"):
        async with http.delete(bad, headers=staff) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (404, "not-found")
    async with http.delete(f"/api/consultations/{c['id']}/messages/x", headers=staff) as r:
        assert r.status == 400
    async with http.delete(f"/api/consultations/{c['id']}", headers=staff) as r:
        assert r.status == 204
    assert not (stills / c["id"]).exists()
    assert not (server.app[SETTINGS].data_dir / "recordings" / c["id"]).exists()
    async with http.get(f"/api/consultations/{c['id']}/export", headers=staff) as r:
        assert r.status == 404
    # Each deletion is in the audit log, by whom.
    entries = (await server.app[STORE].audit.entries(AuditFilter(actor="staff-key"))).entries
    assert [e.subject for e in reversed(entries) if e.action == "deleted"] == [
        f"still:{still['id']}",
        f"message:{c['id']}/{messages[1]['seq']}",
        f"consultation:{c['id']}",
    ]
    # Links of a deleted consultation open nothing, not even the call.
    ws = await http.ws_connect(
        server.make_url("/ws").with_query(token=token_of(c["customer_link"]))
    )
    assert (await ws.receive_json())["code"] == "invalid-token"
    await ws.close()


async def test_deleting_a_consultation_ends_its_live_pages(
    http: aiohttp.ClientSession, staff: dict[str, str], server: TestServer
) -> None:
    c = await create_consultation(http, staff)
    ws = await http.ws_connect(
        server.make_url("/ws/conversation").with_query(token=token_of(c["customer_link"]))
    )
    assert (await ws.receive_json())["type"] == "conversation"
    async with http.delete(f"/api/consultations/{c['id']}", headers=staff) as r:
        assert r.status == 204
    message = await ws.receive_json(timeout=10)
    assert message["code"] == "revoked"


async def test_a_deletion_killed_between_rows_and_files_is_finished_at_the_next_start(
    tmp_path: Path,
) -> None:
    """A real server: a consultation with a thousand stills is deleted and the server is
    killed (SIGKILL) as soon as its rows are gone, while its files are being removed. At the
    next start the journal it left is replayed: no file of it is left, nothing else lost."""
    data, port = tmp_path / "data", free_port()
    env = {"CONSULT_STAFF_KEY": STAFF_KEY}
    proc = start_serve(data, port, environment=env)
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    try:
        await wait_healthy(port)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            doomed = await create_consultation(http, staff, customer_name="Doomed")
            kept = await create_consultation(http, staff, customer_name="Kept")
            for c in (doomed, kept):
                headers = auth(c["customer_link"]) | {"Content-Type": "image/jpeg"}
                async with http.post(
                    f"/api/consultations/{c['id']}/chat-photos",
                    params={"id": "p"},
                    data=jpeg(60),
                    headers=headers,
                ) as r:
                    assert r.status == 201
        # Many more files of the doomed consultation, each named by a row, as if captured:
        # the deletion's file removal takes long enough to be killed in the middle of.
        folder = data / "stills" / doomed["id"]
        db = sqlite3.connect(data / "consult.db")
        (capture_id,) = db.execute(
            "SELECT capture_id FROM stills WHERE consultation_id = ?", (doomed["id"],)
        ).fetchone()
        row = db.execute(
            "SELECT * FROM stills WHERE consultation_id = ?", (doomed["id"],)
        ).fetchone()
        columns = [d[0] for d in db.execute("SELECT * FROM stills").description]
        for i in range(5000):
            values = dict(zip(columns, row, strict=True))
            values |= {"id": f"bulk{i:06d}", "source": f"b{i}", "capture_id": capture_id,
                       "file": f"{doomed['id']}/bulk{i}.jpg",
                       "thumb": f"{doomed['id']}/bulk{i}.thumb.jpg"}  # fmt: skip
            names, marks = ", ".join(values), ", ".join("?" * len(values))
            db.execute(
                f"INSERT INTO stills ({names}) VALUES ({marks})",
                list(values.values()),
            )
            (folder / f"bulk{i}.jpg").write_bytes(b"x" * 10)
            (folder / f"bulk{i}.thumb.jpg").write_bytes(b"x" * 10)
        db.commit()
        db.close()
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            request = asyncio.ensure_future(
                http.delete(f"/api/consultations/{doomed['id']}", headers=staff)
            )
            # Killed once the rows are gone (a fresh connection sees no consultation) and files
            # are still there: between the two steps.
            while True:
                check = sqlite3.connect(data / "consult.db")
                gone = check.execute(
                    "SELECT count(*) FROM consultations WHERE id = ?", (doomed["id"],)
                ).fetchone() == (0,)
                check.close()
                if gone:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                await asyncio.sleep(0.001)
            proc.wait()
            with pytest.raises(aiohttp.ClientError):
                await request
        left = list(folder.glob("*")) if folder.exists() else []
        journal = sqlite3.connect(data / "consult.db")
        pending = journal.execute("SELECT count(*) FROM file_removals").fetchone()[0]
        journal.close()
        assert left and pending, "killed too late: nothing was left to finish"
        print({"files_left_at_kill": len(left), "journal_rows": pending})
        # The next start finishes the deletion.
        proc = start_serve(data, port, environment=env)
        await wait_healthy(port)
        assert not folder.exists()
        db = sqlite3.connect(data / "consult.db")
        assert db.execute("SELECT count(*) FROM file_removals").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM stills WHERE consultation_id = ?",
                          (doomed["id"],)).fetchone() == (0,)  # fmt: skip
        db.close()
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.get(f"/api/consultations/{kept['id']}", headers=staff) as r:
                (still,) = (await r.json())["stills"]
            async with http.get(f"/api/stills/{still['id']}", headers=staff) as r:
                assert r.status == 200
            async with http.get(f"/api/consultations/{doomed['id']}", headers=staff) as r:
                assert r.status == 404
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_the_store_deletes_rows_and_journals_files_on_both_databases(
    store: Store, tmp_path: Path
) -> None:
    """Rows, journal and audit entry in one transaction; the files after, from the journal."""
    ttl = timedelta(days=1)
    first, _ = await store.create_consultation(customer_name="Ada", customer_email="a@x.org",
                                               link_ttl=ttl)  # fmt: skip
    assert first.customer_id is not None
    second, _ = await store.create_consultation(customer_id=first.customer_id, link_ttl=ttl)
    other, _ = await store.create_consultation(customer_name="Bo", link_ttl=ttl)
    files = tmp_path / "stills"
    for c in (first, second, other):
        capture = await store.create_capture(c.id, "stylist")
        (files / c.id).mkdir(parents=True)
        for name in ("p.png", "p.thumb.jpg"):
            (files / c.id / name).write_bytes(b"x")
        await store.add_still(
            Still(f"s-{c.id}", c.id, capture.id, "camera", "image/png", 1, 1, 1, "0" * 64, 1.0,
                  0.5, {}, f"{c.id}/p.png", f"{c.id}/p.thumb.jpg", datetime.now(UTC))
        )  # fmt: skip
        await store.add_message(c.id, "customer", "m1", "hello")
        await store.consents.give(c.id, VERSION, audit=store.audit, actor="system:test")
    removed = await store.deletion.customer(first.customer_id, actor="staff-key")
    assert set(removed.consultations) == {first.id, second.id}
    pending = await store.deletion.pending()
    assert sorted(f for _, _, f in pending) == sorted(
        f"{c.id}/{n}" for c in (first, second) for n in ("p.png", "p.thumb.jpg")
    )
    for c in (first, second):
        with pytest.raises(NotFound):
            await store.get_consultation(c.id)
    with pytest.raises(NotFound):
        await store.customers.get(first.customer_id)
    assert await remove_files(store.deletion, {"stills": lambda f: files / f,
                                               "recordings": lambda f: files / f}) == 4  # fmt: skip
    assert await store.deletion.pending() == []
    assert sorted(p.name for p in files.iterdir()) == [other.id]
    assert [m.text for m in await store.messages(other.id)] == ["hello"]
    assert await store.consents.current(other.id) is not None
    entries = (await store.audit.entries(AuditFilter(actor="staff-key"))).entries
    assert [(e.action, e.subject) for e in entries] == [
        ("deleted", f"customer:{first.customer_id}")
    ]
    with pytest.raises(NotFound):
        await store.deletion.customer(first.customer_id, actor="staff-key")
