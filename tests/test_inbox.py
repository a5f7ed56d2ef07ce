"""The staff inbox: unread customer messages first with their counts, search, live updates,
answering and reading over HTTP; the summaries the migration builds for older conversations."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from alembic import command
from alembic.config import Config as AlembicConfig

from consult.recording.store import MIGRATIONS, Store
from consult.recording.tokens import TokenSealer, load_seal_key

from .attachment_media import image, pdf, recording, voice_webm
from .client import CallClient
from .conftest import create_consultation, token_of

pytestmark = pytest.mark.timeout(60)


def conversation_client(server: TestServer, http: aiohttp.ClientSession, link: str) -> CallClient:
    url = str(server.make_url("/ws/conversation").with_query(token=token_of(link)))
    return CallClient(http, url, "customer")


async def inbox(http: aiohttp.ClientSession, staff: dict[str, str], **query: Any) -> Any:
    async with http.get("/api/inbox", params=query, headers=staff) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_unread_first_with_counts_last_message_and_search(
    server: TestServer, http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    quiet = await create_consultation(http, staff, customer_name="Quiet Quinn", customer_ref="C-1")
    chatty = await create_consultation(http, staff, customer_name="Chatty Chen", customer_ref="C-2")
    answered = await create_consultation(http, staff, customer_name="Ann Answered")
    customers = []
    try:
        for consultation, texts in ((chatty, ["Hi", "Nude or red?"]), (answered, ["Thanks"])):
            customer = conversation_client(server, http, consultation["customer_link"])
            customers.append(customer)
            await customer.connect("conversation")
            for i, text in enumerate(texts):
                await customer.send({"type": "chat", "text": text, "id": str(i)})
                await customer.expect("chat")
        # The salon answered one of them and read it.
        url = f"/api/consultations/{answered['id']}"
        async with http.post(
            f"{url}/messages", json={"text": "Welcome!", "id": "s"}, headers=staff
        ) as r:
            assert r.status == 201
        async with http.post(f"{url}/read", json={"seq": 2}, headers=staff) as r:
            assert await r.json() == {"seq": 2, "by": "stylist", "unread": 0}
        assert (await customers[1].expect("read"))["by"] == "stylist"

        page = await inbox(http, staff)
        assert page["unread"] == 2
        items = page["conversations"]
        assert [i["id"] for i in items] == [chatty["id"], answered["id"], quiet["id"]]
        assert [i["unread"] for i in items] == [2, 0, 0]
        assert items[0]["last_message"]["text"] == "Nude or red?"
        assert items[0]["last_message"]["from"] == "customer"
        assert items[1]["last_message"]["text"] == "Welcome!" and items[2]["last_message"] is None
        assert items[0]["customer_ref"] == "C-2"

        # Search by name or reference, any case; % and _ are letters, not wildcards.
        for q, want in (
            ("chen", [chatty]),
            ("c-1", [quiet]),
            ("ANN", [answered]),
            ("c-", [chatty, quiet]),
            ("%", []),
        ):
            assert [i["id"] for i in (await inbox(http, staff, q=q))["conversations"]] == [
                c["id"] for c in want
            ], q
        assert len((await inbox(http, staff, limit=1, offset=1))["conversations"]) == 1
        for bad in ({"limit": "0"}, {"limit": "x"}, {"offset": "-1"}, {"limit": "201"}):
            async with http.get("/api/inbox", params=bad, headers=staff) as r:
                assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid-request")
    finally:
        for customer in customers:
            await customer.close()


async def test_the_inbox_socket_is_live_and_staff_answer_over_http(
    server: TestServer, http: aiohttp.ClientSession, staff: dict[str, str], consultation: Any
) -> None:
    listener = CallClient(http, str(server.make_url("/ws/inbox")), "staff")
    customer = conversation_client(server, http, consultation["customer_link"])
    try:
        # Signed in with the session cookie, as the dashboard is.
        async with http.post("/api/session", json={"staff_key": staff["Authorization"][7:]}) as r:
            assert r.status == 200
        await listener.connect(None)
        await customer.connect("conversation")
        await customer.send({"type": "chat", "text": "Is 3pm free?", "id": "q"})
        await customer.expect("chat")
        live = await listener.expect("message")
        # Each change to the conversation's summary moves its version on (and the events
        # carry it: a page keeps the newest, whatever order they arrive in).
        assert (live["consultation_id"], live["unread"], live["version"]) == (
            consultation["id"], 1, 1,
        )  # fmt: skip
        assert live["message"]["text"] == "Is 3pm free?" and live["message"]["from"] == "customer"

        url = f"/api/consultations/{consultation['id']}"
        body = {"text": "Yes, see you then", "id": "a1"}
        async with http.post(f"{url}/messages", json=body) as r:
            assert r.status == 201
            sent = (await r.json())["message"]
        assert (sent["seq"], sent["from"]) == (2, "stylist")
        assert (await customer.expect("chat"))["text"] == "Yes, see you then"
        answered = await listener.expect("message")
        assert (answered["unread"], answered["version"]) == (1, 2)
        async with http.post(f"{url}/messages", json=body) as r:  # a retry: stored once
            assert r.status == 200 and (await r.json())["message"]["seq"] == 2
        async with http.post(f"{url}/read", json={"seq": 1}) as r:
            assert r.status == 200
        assert await listener.expect("read") == {
            "type": "read", "consultation_id": consultation["id"], "seq": 1, "by": "stylist",
            "unread": 0, "version": 3,
        }  # fmt: skip
        # The customer's page marks the answer read: the staff see the receipt (the summary
        # is the same: so is its version).
        await customer.send({"type": "read", "seq": 2})
        receipt = await listener.expect("read")
        assert (receipt["by"], receipt["version"]) == ("customer", 3)
        (listed,) = [c for c in (await inbox(http, staff))["conversations"]
                     if c["id"] == consultation["id"]]  # fmt: skip
        assert (listed["unread"], listed["version"]) == (0, 3)
        async with http.get(f"{url}/messages") as r:
            history = (await r.json())["history"]
        assert [m["seq"] for m in history if m["type"] == "chat"] == [1, 2]
        assert {m["by"]: m["seq"] for m in history if m["type"] == "read"} == {
            "stylist": 1,
            "customer": 2,
        }
        # A message deleted: the summary is made again, its version still moves on.
        async with http.delete(f"{url}/messages/2", headers=staff) as r:
            assert r.status == 204
        (listed,) = [c for c in (await inbox(http, staff))["conversations"]
                     if c["id"] == consultation["id"]]  # fmt: skip
        assert (listed["last_message"]["seq"], listed["version"]) == (1, 4)
        for bad in ({"text": "", "id": "x"}, {"text": "x" * 2001, "id": "x"}, {"text": "hi"}):
            async with http.post(f"{url}/messages", json=bad) as r:
                assert r.status == 400
        async with http.post(f"{url}/read", json={"seq": -1}) as r:
            assert r.status == 400
        async with http.post("/api/consultations/nope/messages", json=body) as r:
            assert r.status == 404
    finally:
        await customer.close()
        await listener.close()
    # Not signed in: no inbox.
    async with aiohttp.ClientSession() as stranger, stranger.get(server.make_url("/ws/inbox")) as r:
        assert r.status == 401


async def test_the_last_message_says_what_it_is_photo_voice_video_or_file(
    server: TestServer, http: aiohttp.ClientSession, staff: dict[str, str], consultation: Any
) -> None:
    """Not words: the inbox names the kind (and keeps any words), live and in its page."""
    listener = CallClient(http, str(server.make_url("/ws/inbox")), "staff")
    customer = {"Authorization": f"Bearer {token_of(consultation['customer_link'])}"}
    url = f"/api/consultations/{consultation['id']}"
    async with http.post("/api/session", json={"staff_key": staff["Authorization"][7:]}) as r:
        assert r.status == 200
    await listener.connect(None)
    uploads = [
        ("photo", f"{url}/chat-photos", {"id": "p"}, image(".jpg"), "image/jpeg"),
        ("voice", f"{url}/attachments", {"kind": "voice", "id": "v"}, voice_webm(1.0),
         "audio/webm"),
        ("video", f"{url}/attachments", {"kind": "video", "id": "c"},
         recording("webm", 1.0, video="libvpx"), "video/webm"),
        ("file", f"{url}/attachments", {"kind": "file", "id": "f", "name": "prices.pdf"}, pdf(),
         "application/pdf"),
    ]  # fmt: skip
    try:
        for kind, path, params, data, media_type in uploads:
            async with http.post(
                path, params=params, data=data, headers=customer | {"Content-Type": media_type}
            ) as r:
                assert r.status == 201, await r.text()
            live = (await listener.expect("message"))["message"]
            assert live["still"] if kind == "photo" else live["attachment"]["kind"] == kind
            last = (await inbox(http, staff))["conversations"][0]["last_message"]
            assert (last["kind"], last["text"], last["from"]) == (kind, "", "customer"), kind
        async with http.post(f"{url}/messages", json={"text": "Got it", "id": "t"}) as r:
            assert r.status == 201
        last = (await inbox(http, staff))["conversations"][0]["last_message"]
        assert (last["kind"], last["text"], last["from"]) == (None, "Got it", "stylist")
    finally:
        await listener.close()


async def test_the_migration_summarises_conversations_that_exist(tmp_path: Path) -> None:
    """A store at 0010 with messages and read marks, upgraded: its inbox is right at once."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'consult.db'}"
    sync_url = f"sqlite:///{tmp_path / 'consult.db'}"
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url)
    command.upgrade(config, "0010")
    db = sqlite3.connect(tmp_path / "consult.db")
    now = "2026-11-20 10:00:00.000000"
    for cid in ("a", "b", "c"):
        db.execute(
            "INSERT INTO consultations (id, customer_name, notes, status, created_at,"
            " last_activity_at, summary) VALUES (?, ?, '', 'open', ?, ?, '')",
            (cid, f"Customer {cid}", now, now),
        )
    rows = [("a", 1, "customer", "one"), ("a", 2, "customer", "two"), ("a", 3, "stylist", "ok"),
            ("a", 4, "customer", "three")]  # fmt: skip
    for cid, seq, sender, text in rows:
        db.execute(
            "INSERT INTO messages (consultation_id, seq, client_id, sender, text, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (cid, seq, f"m{seq}", sender, text, f"2026-11-20 10:0{seq}:00.000000"),
        )
    # Before 0012 a message that is not words is a photo.
    db.execute(
        "INSERT INTO messages (consultation_id, seq, client_id, sender, text, created_at,"
        " still_id) VALUES ('c', 1, 'p', 'stylist', '', '2026-11-20 10:05:00.000000', 's')"
    )
    db.execute("INSERT INTO chat_reads VALUES ('a', 'stylist', 2)")
    db.commit()
    db.close()

    store = await Store.open(url, TokenSealer(load_seal_key(tmp_path)))
    try:
        items = await store.inbox.page()
        assert [(i.consultation_id, i.unread) for i in items] == [("a", 1), ("c", 0), ("b", 0)]
        last = items[0].last
        assert last is not None
        assert (last.seq, last.sender, last.text, last.kind) == (4, "customer", "three", None)
        photo = items[1].last
        assert photo is not None and (photo.sender, photo.kind) == ("stylist", "photo")
        assert items[2].last is None
        # And the store keeps them from then on.
        await store.add_message("a", "customer", "m5", "four")
        assert await store.inbox.unread("a") == 2
        await store.mark_read("a", "stylist", 5)
        assert await store.inbox.unread() == 0
    finally:
        await store.close()
