"""A consultation's record as a self-contained ZIP: over HTTP, from the command line, offline."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import pytest
from playwright.async_api import expect

from consult.config import Settings

from .browser import PHONE, Launch, screenshot
from .client import CallClient
from .conftest import STAFF_KEY, create_consultation, token_of
from .fake_camera import HANDS, load_photo
from .media import PhotoTrack

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def recorded(
    http: aiohttp.ClientSession, clients: Any, consultation: dict[str, Any], staff: dict[str, str]
) -> dict[str, Any]:
    """A consultation with both kinds of still, a chat and notes."""
    photo = load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg")
    customer: CallClient = clients("customer", consultation["customer_link"])
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await customer.connect()
    await customer.start_media(PhotoTrack(photo, 640, 480))
    await stylist.connect()
    await stylist.start_media()
    await stylist.wait_for(lambda: any(not s.card for s in stylist.received.video), 15)
    await stylist.send({"type": "capture"})
    request = await customer.expect("capture-request")
    _ok, png = cv2.imencode(".png", photo)
    headers = {"Authorization": f"Bearer {token_of(consultation['customer_link'])}",
               "Content-Type": "image/png"}  # fmt: skip
    async with http.post(request["upload_url"], data=bytes(png), headers=headers) as r:
        assert r.status == 201
    for _ in range(2):
        await stylist.expect("still", timeout=15)
    await customer.send({"type": "chat", "text": "Can we do <b>almond</b>?", "id": "1"})
    await stylist.expect("chat")
    async with http.put(
        f"/api/consultations/{consultation['id']}/notes",
        json={"summary": "Almond, nude", "notes": "PRIVATE: thin nails"},
        headers=staff,
    ) as r:
        assert r.status == 200
    return consultation


async def download(
    http: aiohttp.ClientSession, consultation: dict[str, Any], **kw: Any
) -> zipfile.ZipFile:
    async with http.get(f"/api/consultations/{consultation['id']}/export", **kw) as r:
        assert r.status == 200, await r.text()
        assert r.content_type == "application/zip"
        assert "attachment" in r.headers["Content-Disposition"]
        return zipfile.ZipFile(io.BytesIO(await r.read()))


async def test_export_holds_the_record_and_byte_identical_originals(
    http: aiohttp.ClientSession, recorded: dict[str, Any], staff: dict[str, str]
) -> None:
    archive = await download(http, recorded, headers=staff)
    record = json.loads(archive.read("record.json"))
    assert record["summary"] == "Almond, nude" and record["notes"] == "PRIVATE: thin nails"
    assert [m["text"] for m in record["messages"]] == ["Can we do <b>almond</b>?"]
    assert {s["source"] for s in record["stills"]} == {"camera", "video"}
    for still in record["stills"]:
        data = archive.read(still["file"])
        assert hashlib.sha256(data).hexdigest() == still["sha256"]
        async with http.get(still["url"], headers=staff) as r:
            assert await r.read() == data
    page = archive.read("index.html").decode()
    assert "&lt;b&gt;almond&lt;/b&gt;" in page  # the chat is escaped, not markup
    assert all(s["file"] in page for s in record["stills"])
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch from anywhere
    assert "PRIVATE: thin nails" in page

    # A copy to hand over: the same record but for the private notes.
    handed = await download(http, recorded, headers=staff, params={"without": "notes"})
    copy = json.loads(handed.read("record.json"))
    assert "notes" not in copy and "notes_updated_at" not in copy
    assert "PRIVATE" not in handed.read("index.html").decode()
    assert copy["summary"] == "Almond, nude" and copy["customer_ref"] == record["customer_ref"]
    assert sorted(handed.namelist()) == sorted(archive.namelist())
    async with http.get(
        f"/api/consultations/{recorded['id']}/export", headers=staff, params={"without": "photos"}
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid-request"


async def test_the_customers_export_has_no_private_notes(
    http: aiohttp.ClientSession, recorded: dict[str, Any], staff: dict[str, str]
) -> None:
    archive = await download(http, recorded, params={"token": token_of(recorded["customer_link"])})
    record = json.loads(archive.read("record.json"))
    assert "notes" not in record
    assert "PRIVATE" not in archive.read("index.html").decode()
    other = await create_consultation(http, staff, customer_name="Other")
    async with http.get(
        f"/api/consultations/{recorded['id']}/export",
        params={"token": token_of(other["customer_link"])},
    ) as r:
        assert r.status == 403


async def test_the_command_line_export_with_progress(
    recorded: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "record.zip"
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "consult", "export", recorded["id"], "-o", str(out),
         "--data", str(settings.data_dir)],
        capture_output=True, text=True, env={"CONSULT_STAFF_KEY": STAFF_KEY, "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Exporting [" in result.stderr and "4/4 files" in result.stderr
    with zipfile.ZipFile(out) as archive:
        assert sorted(n.split("/")[0] for n in archive.namelist()) == [
            "index.html", "originals", "originals", "record.json"
        ]  # fmt: skip
    missing = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "consult", "export", "nope", "-o", str(tmp_path / "x.zip"),
         "--data", str(settings.data_dir)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert missing.returncode == 1 and "No such consultation" in missing.stderr
    handed = tmp_path / "handed.zip"
    without = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "consult", "export", recorded["id"], "-o", str(handed),
         "--data", str(settings.data_dir), "--without-notes"],
        capture_output=True, text=True, env={"CONSULT_STAFF_KEY": STAFF_KEY, "PATH": ""},
    )  # fmt: skip
    assert without.returncode == 0, without.stderr
    with zipfile.ZipFile(handed) as archive:
        assert "notes" not in json.loads(archive.read("record.json"))
        assert "PRIVATE" not in archive.read("index.html").decode()
    assert not (tmp_path / "x.zip").exists()


async def test_the_export_opens_offline_in_a_browser(
    http: aiohttp.ClientSession, recorded: dict[str, Any], staff: dict[str, str],
    launch: Launch, tmp_path: Path,
) -> None:  # fmt: skip
    archive = await download(http, recorded, headers=staff)
    archive.extractall(tmp_path / "unpacked")
    browser = await launch()
    page = await browser.new_page(viewport=PHONE)
    await page.goto((tmp_path / "unpacked" / "index.html").as_uri())
    await expect(page.locator("h1")).to_contain_text("Jane Doe")
    await expect(page.locator("ul.chat")).to_contain_text("Can we do <b>almond</b>?")
    await page.wait_for_function(
        "() => document.images.length === 2"
        " && [...document.images].every((i) => i.naturalWidth > 0)"
    )
    await screenshot(page, "export-offline-phone")
    await browser.close()


async def test_the_record_page_for_staff_and_for_the_customer(
    http: aiohttp.ClientSession, recorded: dict[str, Any], staff: dict[str, str],
    launch: Launch, server: Any,
) -> None:  # fmt: skip
    browser = await launch()
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()

    # Staff, signed in (the session cookie), with the customer's other consultations.
    for _ in range(2):
        await create_consultation(http, staff, customer_name="Mei", customer_ref="C-9")
    async with http.get("/api/consultations", params={"customer_ref": "C-9"}, headers=staff) as r:
        latest = (await r.json())["consultations"][0]
    await page.goto(str(server.make_url(f"/r/{recorded['id']}")))
    await expect(page.get_by_test_id("record-message")).to_have_text(
        "Sign in on the dashboard to see this record."
    )
    signed = await context.request.post(
        str(server.make_url("/api/session")), data={"staff_key": STAFF_KEY}
    )
    assert signed.ok
    await page.goto(str(server.make_url(f"/r/{recorded['id']}")))
    await expect(page.get_by_test_id("record-title")).to_have_text("Jane Doe")
    await expect(page.get_by_test_id("record-summary")).to_have_text("Almond, nude")
    await expect(page.get_by_test_id("record-notes")).to_have_text("PRIVATE: thin nails")
    await expect(page.get_by_test_id("still")).to_have_count(2)
    await expect(page.get_by_test_id("record-chat-message")).to_contain_text("almond")
    await page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=still] img')]"
        ".every((i) => i.naturalWidth > 0)"
    )
    await screenshot(page, "record-staff-phone")
    # The links to send, the way back, and which download holds the private notes.
    await expect(page.get_by_test_id("record-customer-link")).to_have_value(
        recorded["customer_link"]
    )
    await expect(page.get_by_test_id("record-console")).to_have_attribute(
        "href", recorded["stylist_link"]
    )
    await expect(page.get_by_test_id("record-export-without-notes")).to_be_visible()
    without = await page.get_by_test_id("record-export-without-notes").get_attribute("href")
    handed = await context.request.get(str(server.make_url(without or "")))
    assert handed.ok
    with zipfile.ZipFile(io.BytesIO(await handed.body())) as copy:
        assert "notes" not in json.loads(copy.read("record.json"))
    await expect(page.get_by_test_id("record-back")).to_have_attribute("href", "/")
    await page.get_by_test_id("record-back").click()
    await expect(page.get_by_test_id("create")).to_be_visible()
    await page.goto(str(server.make_url(f"/r/{latest['id']}")))
    await expect(page.get_by_test_id("record-history-item")).to_have_count(2)

    # Same again, from the record: the new record starts with the earlier design and photo.
    await page.goto(str(server.make_url(f"/r/{recorded['id']}")))
    await page.get_by_test_id("same-again").click()
    await page.wait_for_url(lambda url: recorded["id"] not in url)
    await expect(page.get_by_test_id("earlier")).to_contain_text("Almond, nude")
    await expect(page.get_by_test_id("earlier-still")).to_have_count(1)
    # The new consultation's customer link, on screen to send.
    again = await page.get_by_test_id("record-customer-link").input_value()
    assert "/c/" in again and again != recorded["customer_link"]
    await screenshot(page, "record-same-again-phone")

    # The customer, from their own link: the summary, never the private notes.
    customer = await browser.new_page(viewport=PHONE)
    link = str(server.make_url(f"/c/{token_of(recorded['customer_link'])}/record"))
    await customer.goto(link)
    await expect(customer.get_by_test_id("record-summary")).to_have_text("Almond, nude")
    await expect(customer.get_by_test_id("still")).to_have_count(2)
    assert "PRIVATE" not in await customer.content()
    await expect(customer.get_by_test_id("record-links")).to_be_hidden()
    await expect(customer.get_by_test_id("record-export-without-notes")).to_be_hidden()
    await expect(customer.get_by_test_id("record-back")).to_have_attribute(
        "href", f"/c/{token_of(recorded['customer_link'])}"
    )
    await customer.locator("[data-testid=still][data-source=camera]").click()
    await customer.wait_for_function(
        "() => document.querySelector('[data-testid=viewer-image]').naturalWidth === 640"
    )
    await screenshot(customer, "record-customer-viewer-phone")
    await browser.close()


async def test_same_again_starts_from_the_earlier_summary_and_photos(
    http: aiohttp.ClientSession, recorded: dict[str, Any], staff: dict[str, str],
    clients: Any,
) -> None:  # fmt: skip
    async with http.post(f"/api/consultations/{recorded['id']}/same-again", headers=staff) as r:
        assert r.status == 201, await r.text()
        again = await r.json()
    assert again["id"] != recorded["id"] and again["customer_name"] == "Jane Doe"
    assert again["summary"] == "Almond, nude" and again["notes"] == ""
    earlier = again["earlier"]
    assert earlier["id"] == recorded["id"] and earlier["summary"] == "Almond, nude"
    assert [s["source"] for s in earlier["stills"]] == ["camera"]  # not the video frame
    assert "notes" not in earlier

    # The new links show the earlier photos, on the record and in the welcome.
    token = token_of(again["customer_link"])
    welcome = await clients("customer", again["customer_link"]).connect()
    assert welcome["consultation"]["earlier"]["stills"][0]["id"] == earlier["stills"][0]["id"]
    async with http.get(earlier["stills"][0]["url"], params={"token": token}) as r:
        assert r.status == 200
    # ...but not the earlier consultation itself, its video stills or its notes.
    async with http.get(f"/api/consultations/{recorded['id']}", params={"token": token}) as r:
        assert r.status == 403
    async with http.get(f"/api/consultations/{recorded['id']}", headers=staff) as r:
        stream = next(s for s in (await r.json())["stills"] if s["source"] == "video")
    async with http.get(stream["url"], params={"token": token}) as r:
        assert r.status == 403
    other = await create_consultation(http, staff, customer_name="Other")
    async with http.get(
        earlier["stills"][0]["url"], params={"token": token_of(other["customer_link"])}
    ) as r:
        assert r.status == 403
    async with http.post(
        f"/api/consultations/{recorded['id']}/same-again", params={"token": token}
    ) as r:
        assert r.status == 401
