"""Voice messages and files between the pages in Chromium (web/js/attachments.js): recorded from
Chromium's fake microphone, played on the other side, a PDF offered as a download, both on the
record page and in the export's offline page."""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from .attachment_media import pdf
from .browser import (
    LAPTOP,
    PHONE,
    PLAY_THROUGH,
    Launch,
    local,
    open_page,
    ready_to_join,
    screenshot,
)
from .conftest import token_of

pytestmark = pytest.mark.timeout(180)

#: How long the customer holds the voice button down (the recorder's own times are measured).
RECORD_SECONDS = 4.0


async def played_seconds(page: Page, selector: str = "[data-testid=chat-voice]") -> float:
    """Plays the page's first voice message through: the length it plays for."""
    return float(await page.evaluate(PLAY_THROUGH, [selector, 0]))


async def test_a_voice_message_from_the_microphone_plays_on_the_other_side_and_a_pdf_downloads(
    launch: Launch, consultation: dict[str, Any], server: Any, http: Any, tmp_path: Path
) -> None:
    browser = await launch()
    customer = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    stylist = await open_page(browser, local(server, consultation["stylist_link"]), LAPTOP)
    for page in (customer, stylist):
        await ready_to_join(page)
        await page.get_by_test_id("join").click()
    await customer.get_by_test_id("chat-toggle").click()

    # The customer records a voice message with the (fake) microphone: a 440 Hz tone file.
    record = customer.get_by_test_id("chat-voice-record")
    await record.click()
    await expect(customer.get_by_test_id("voice-status")).to_contain_text("Recording")
    await asyncio.sleep(RECORD_SECONDS)
    await record.click()
    status = customer.get_by_test_id("voice-status")
    await expect(status).to_have_attribute("data-duration-ms", re.compile(r"^\d+$"))
    recorded = int(await status.get_attribute("data-duration-ms") or 0) / 1000
    assert recorded >= RECORD_SECONDS * 0.9

    # The stylist's page plays it, for the recording's length (within 10 %).
    await expect(stylist.get_by_test_id("chat-voice")).to_be_visible()
    assert await played_seconds(stylist) == pytest.approx(recorded, rel=0.1)
    # The sender's own copy is the server's message too, and so is the server's measure.
    await expect(customer.get_by_test_id("chat-voice")).to_be_visible()
    async with http.get(
        f"/api/consultations/{consultation['id']}",
        params={"token": token_of(consultation["customer_link"])},
    ) as r:
        voice = (await r.json())["messages"][0]["attachment"]
    assert voice["media_type"] == "audio/webm" and voice["kind"] == "voice"
    assert voice["duration"] == pytest.approx(recorded, rel=0.1)

    # The stylist sends a PDF: the customer gets a link with its name and size, a download.
    plan = tmp_path / "Nail plan.pdf"
    plan.write_bytes(pdf(padding=30_000))
    await stylist.get_by_test_id("chat-file-input").set_input_files(str(plan))
    link = customer.get_by_test_id("chat-file")
    await expect(link).to_have_text("Nail plan.pdf")
    size = f"{round(len(plan.read_bytes()) / 1024)} kB"
    await expect(customer.get_by_test_id("chat-message").nth(1)).to_contain_text(size)
    async with customer.expect_download() as download_info:
        await link.click()
    download = await download_info.value
    assert download.suggested_filename == "Nail plan.pdf"
    saved = await download.path()
    assert await asyncio.to_thread(saved.read_bytes) == plan.read_bytes()
    await screenshot(customer, "customer-chat-voice-and-file-phone")
    await screenshot(stylist, "stylist-chat-voice-and-file-laptop")

    # The record page shows and plays them too.
    await customer.goto(
        str(server.make_url(f"/c/{token_of(consultation['customer_link'])}/record"))
    )
    await expect(customer.get_by_test_id("chat-file")).to_have_text("Nail plan.pdf")
    await expect(customer.get_by_test_id("chat-voice")).to_be_visible()
    assert await played_seconds(customer) == pytest.approx(recorded, rel=0.1)
    assert not customer.errors and not stylist.errors  # type: ignore[attr-defined]

    # The export's offline page plays the voice message and links the PDF, from the archive.
    async with http.get(
        f"/api/consultations/{consultation['id']}/export",
        params={"token": token_of(consultation["customer_link"])},
    ) as r:
        archive = zipfile.ZipFile(io.BytesIO(await r.read()))
    await asyncio.to_thread(archive.extractall, tmp_path / "unpacked")
    offline = await browser.new_page(viewport=PHONE)
    await offline.goto((tmp_path / "unpacked" / "index.html").as_uri())
    await expect(offline.locator(".attachment a[download]")).to_have_text("Nail plan.pdf")
    assert await played_seconds(offline, "audio") == pytest.approx(recorded, rel=0.1)
    await browser.close()
