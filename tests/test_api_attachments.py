"""Voice messages, clips and files through the real server: consult/api/attachments.py and
consult/recording/attachments.py (stored byte for byte, delivered as chat messages, served
with Range and Content-Disposition, refused whole)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.appkeys import SETTINGS, STILLS

from .attachment_media import EXE, pdf, recording, voice_webm
from .client import CallClient
from .conftest import STAFF_KEY, create_consultation, make_settings, token_of

pytestmark = pytest.mark.timeout(120)


def customer_of(consultation: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_of(consultation['customer_link'])}"}


async def send(
    http: aiohttp.ClientSession,
    consultation: dict[str, Any],
    headers: dict[str, str],
    data: bytes,
    kind: str,
    id: str,
    name: str = "",
    content_type: str = "application/octet-stream",
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"/api/consultations/{consultation['id']}/attachments",
        params={"kind": kind, "id": id, "name": name},
        data=data,
        headers=headers | {"Content-Type": content_type},
    ) as r:
        return r.status, await r.json()


def stored_files(server: TestServer, consultation: dict[str, Any]) -> list[Path]:
    """The consultation's files in the stills folder, and anything being received."""
    root = server.app[SETTINGS].stills_dir
    return sorted([*(root / consultation["id"]).glob("*"), *(root / ".staging").glob("*")])


async def test_a_voice_message_reaches_the_stylist_and_plays_back_byte_for_byte(
    clients: Callable[[str, str], CallClient],
    consultation: dict[str, Any],
    http: aiohttp.ClientSession,
    server: TestServer,
) -> None:
    customer = clients("customer", consultation["customer_link"])
    stylist = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await stylist.connect()
    voice = voice_webm(2.0)
    # The client says it is a PNG: the bytes decide.
    status, body = await send(
        http, consultation, customer_of(consultation), voice, "voice", "v1", "memo", "image/png"
    )
    assert status == 201, body
    got = await stylist.expect("chat")
    assert got["seq"] == body["message"]["seq"] == 1 and got["from"] == "customer"
    attachment = got["attachment"]
    assert attachment == body["message"]["attachment"]
    assert (attachment["kind"], attachment["media_type"], attachment["name"]) == (
        "voice",
        "audio/webm",
        "memo.webm",
    )
    assert attachment["duration"] == pytest.approx(2.0, abs=0.1)
    assert attachment["sha256"] == hashlib.sha256(voice).hexdigest()
    assert attachment["bytes"] == len(voice)
    token = token_of(consultation["stylist_link"])
    async with http.get(attachment["url"], params={"token": token}) as r:
        assert r.status == 200
        assert await r.read() == voice
        assert r.headers["Content-Type"] == "audio/webm"
        assert r.headers["Content-Disposition"] == 'inline; filename="memo.webm"'
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Accept-Ranges"] == "bytes"
    # A player seeks with Range requests.
    async with http.get(
        attachment["url"], params={"token": token}, headers={"Range": "bytes=100-199"}
    ) as r:
        assert r.status == 206 and await r.read() == voice[100:200]
    async with http.get(
        attachment["url"], params={"token": token}, headers={"Range": f"bytes={len(voice)}-"}
    ) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (416, "range-not-satisfiable")
    # Sent again (an answer lost on the way): the same message, nothing stored twice.
    status, again = await send(http, consultation, customer_of(consultation), voice, "voice", "v1")
    assert status == 200 and again["message"]["seq"] == 1
    assert again["message"]["attachment"]["id"] == attachment["id"]
    assert len(stored_files(server, consultation)) == 1
    # In the record, and in the history of a page that joins later.
    async with http.get(f"/api/consultations/{consultation['id']}", params={"token": token}) as r:
        record = await r.json()
    assert [m["attachment"]["id"] for m in record["messages"]] == [attachment["id"]]
    welcome = await clients("stylist", consultation["stylist_link"]).connect()
    chats = [m for m in welcome["history"] if m["type"] == "chat"]
    assert [m["attachment"]["sha256"] for m in chats] == [attachment["sha256"]]
    # A restart's sweep of the stills folder keeps the file a row points to.
    await server.app[STILLS].start()
    async with http.get(attachment["url"], params={"token": token}) as r:
        assert (
            r.status == 200 and hashlib.sha256(await r.read()).hexdigest() == attachment["sha256"]
        )


async def test_a_pdf_is_a_download_and_a_clip_plays_inline(
    clients: Callable[[str, str], CallClient],
    consultation: dict[str, Any],
    http: aiohttp.ClientSession,
    staff: dict[str, str],
) -> None:
    customer = clients("customer", consultation["customer_link"])
    await customer.connect()
    document = pdf()
    status, body = await send(
        http, consultation, staff, document, "file", "f1", 'C:\\salon\\价目表 "2026".pdf'
    )
    assert status == 201, body
    got = await customer.expect("chat")
    attachment = got["attachment"]
    assert got["from"] == "stylist"
    assert (attachment["kind"], attachment["media_type"], attachment["name"]) == (
        "file",
        "application/pdf",
        "价目表 _2026.pdf",
    )
    async with http.get(attachment["url"], headers=customer_of(consultation)) as r:
        assert r.status == 200 and await r.read() == document
        assert r.headers["Content-Type"] == "application/pdf"
        assert r.headers["Content-Disposition"] == (
            "attachment; filename=\"___ _2026.pdf\"; filename*=UTF-8''"
            "%E4%BB%B7%E7%9B%AE%E8%A1%A8%20_2026.pdf"
        )
    clip = recording("mp4", 2.0, audio="aac", video="libx264")
    status, body = await send(http, consultation, customer_of(consultation), clip, "video", "c1")
    assert status == 201, body
    attachment = body["message"]["attachment"]
    assert (attachment["media_type"], attachment["width"], attachment["height"]) == (
        "video/mp4",
        64,
        48,
    )
    assert attachment["name"].startswith("video-") and attachment["name"].endswith(".mp4")
    async with http.get(attachment["url"], headers=staff) as r:
        assert r.headers["Content-Disposition"].startswith("inline;")
    async with http.get(attachment["url"], headers=staff, params={"download": "1"}) as r:
        assert r.headers["Content-Disposition"].startswith("attachment;")


async def test_refused_uploads_store_nothing_and_say_why(
    consultation: dict[str, Any], http: aiohttp.ClientSession, server: TestServer
) -> None:
    customer = customer_of(consultation)
    cases = [
        (EXE, "file", "invoice.pdf", "application/pdf", 415, "unsupported-media"),
        (EXE, "voice", "memo.webm", "audio/webm", 415, "unsupported-media"),
        (b"", "file", "empty.pdf", "application/pdf", 415, "unsupported-media"),
        (recording("webm", 1.0, audio=None, video="libvpx"), "voice", "", "audio/webm",
         415, "no-audio"),
        (recording("webm", 125.0), "voice", "", "audio/webm", 413, "too-long"),
        (pdf(padding=25 * 1024 * 1024), "file", "big.pdf", "application/pdf", 413, "too-large"),
        (b"OggS" + b"\xff" * 600, "voice", "", "audio/ogg", 400, "corrupt-media"),
    ]  # fmt: skip
    for i, (data, kind, name, content_type, status, code) in enumerate(cases):
        got, body = await send(
            http, consultation, customer, data, kind, f"x{i}", name, content_type
        )
        assert (got, body["error"]["code"]) == (status, code), (kind, name, body)
        assert body["error"]["message"]
    for params, code in [
        ({"kind": "voice"}, "invalid-request"),  # no id
        ({"id": "y", "kind": "photo"}, "invalid-request"),
        ({"id": "y"}, "invalid-request"),
        ({"id": "y" * 65, "kind": "file"}, "invalid-request"),
    ]:
        async with http.post(
            f"/api/consultations/{consultation['id']}/attachments",
            params=params,
            data=pdf(),
            headers=customer,
        ) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (400, code)
    assert stored_files(server, consultation) == []
    async with http.get(f"/api/consultations/{consultation['id']}", headers=customer) as r:
        assert (await r.json())["messages"] == []
    # A failed upload leaves its id free: the same message goes through once it is right.
    status, body = await send(http, consultation, customer, pdf(), "file", "x0", "invoice.pdf")
    assert status == 201 and body["message"]["seq"] == 1


async def test_a_flood_of_attachments_is_rate_limited_as_chat_messages_are(
    aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    server: TestServer = await aiohttp_server(
        create_app(make_settings(tmp_path, message_rate=0.01, message_burst=3))
    )
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        consultation = await create_consultation(http, staff)
        other = await create_consultation(http, staff)
        results = [
            (await send(http, consultation, customer_of(consultation), pdf(), "file", f"f{i}"))[0]
            for i in range(5)
        ]
        assert results == [201, 201, 201, 429, 429]
        status, body = await send(
            http, consultation, customer_of(consultation), pdf(), "file", "f9"
        )
        assert (status, body["error"]["code"]) == (429, "rate-limited")
        # Per sender: the salon's side and another consultation still send.
        assert (await send(http, consultation, staff, pdf(), "file", "s1"))[0] == 201
        assert (await send(http, other, customer_of(other), pdf(), "file", "o1"))[0] == 201


async def test_the_export_holds_the_attachments_and_its_page_plays_them(
    consultation: dict[str, Any], http: aiohttp.ClientSession, staff: dict[str, str]
) -> None:
    voice = recording("ogg", 1.5)
    document = pdf()
    await send(http, consultation, customer_of(consultation), voice, "voice", "v")
    await send(http, consultation, staff, document, "file", "f", "plan.pdf")
    async with http.get(f"/api/consultations/{consultation['id']}/export", headers=staff) as r:
        archive = zipfile.ZipFile(io.BytesIO(await r.read()))
    record = json.loads(archive.read("record.json"))
    sent = [m["attachment"] for m in record["messages"]]
    assert [a["file"].rsplit(".", 1)[1] for a in sent] == ["ogg", "pdf"]
    assert archive.read(sent[0]["file"]) == voice and archive.read(sent[1]["file"]) == document
    assert all("file_path" not in a for a in sent)
    page = archive.read("index.html").decode()
    assert f'<audio controls preload=metadata src="{sent[0]["file"]}">' in page
    assert f'<a href="{sent[1]["file"]}" download="plan.pdf">plan.pdf</a>' in page


async def test_staff_naming_no_consultation_get_a_404_and_nothing_is_written(
    consultation: dict[str, Any], http: aiohttp.ClientSession, server: TestServer
) -> None:
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    data_dir = server.app[SETTINGS].data_dir
    before = sorted(p for p in data_dir.rglob("*") if p.is_file())
    for name in ("nope", "..", "%2E%2E"):
        async with http.post(
            f"/api/consultations/{name}/attachments",
            params={"kind": "file", "id": "a", "name": "x.pdf"},
            data=pdf(),
            headers=staff,
        ) as r:
            assert r.status == 404, (name, await r.text())
            assert (await r.json())["error"]["code"] == "not-found"
    after = sorted(p for p in data_dir.rglob("*") if p.is_file())
    assert after == before
    assert not (server.app[SETTINGS].stills_dir / "nope").exists()
