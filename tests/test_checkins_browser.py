"""A check-in answered from a phone (Chromium with mobile emulation and the phone camera shim,
tests/phone_shim.js, over Chromium's fake camera showing a real hand photo), through the real
server: the due request arrives in the conversation, the quality gate refuses a blurry photo
with what to fix, the three views and the form are sent; the dashboard shows it answered and
books a repair in one click; the settings page keeps the salon's days."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import pytest
from playwright.async_api import expect

from .browser import LAPTOP, PHONE_CAMERA, PHONE_EMULATION, Launch, local, open_page, screenshot
from .conftest import STAFF_KEY, create_consultation
from .hand_media import PHOTOS

pytestmark = pytest.mark.timeout(240)


async def test_a_check_in_answered_from_a_phone(
    launch: Launch,
    server: Any,
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    tmp_path: Path,
) -> None:
    c = await create_consultation(http, staff, customer_name="Mei Lin")
    # Due a moment ago: the app's own runner posts the request at once.
    due = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    async with http.post(
        f"/api/consultations/{c['id']}/checkins", json={"due_at": due}, headers=staff
    ) as r:
        (checkin,) = (await r.json())["checkins"]
    hand = cv2.imread(str(next(p for p in PHOTOS if p.name.startswith("both_hands"))))
    blurry = tmp_path / "blurry.jpg"
    cv2.imwrite(str(blurry), cv2.GaussianBlur(hand, (0, 0), 4))

    # The fake camera showing a sharp hand (the 720p one, a close-up, is soft: flagged blur).
    browser = await launch("1080p")
    phone = await open_page(
        browser, local(server, c["customer_link"]), scripts=(PHONE_CAMERA,), **PHONE_EMULATION
    )
    # The request in the conversation, with its button.
    await phone.get_by_test_id("checkin-open").click(timeout=30_000)
    await expect(phone.get_by_test_id("checkin")).to_be_visible(timeout=15_000)
    assert f"/checkin/{checkin['id']}" in phone.url

    # A blurry photo from the phone's own camera: refused, with what to fix.
    await phone.get_by_test_id("file-top").set_input_files(blurry)
    await expect(phone.get_by_test_id("checkin-verdict")).to_contain_text("Hold your hand still")
    await expect(phone.get_by_test_id("view-top")).to_have_attribute("data-done", "false")

    # The camera with the capture's frame, and its largest photo, view by view.
    await phone.get_by_test_id("take-top").click()
    await expect(phone.get_by_test_id("capture-frame")).to_be_visible()
    for view in ("top", "side", "cuticles"):
        await expect(phone.get_by_test_id("checkin-camera")).to_be_visible()
        await phone.get_by_test_id("checkin-shutter").click()
        await expect(phone.get_by_test_id(f"view-{view}")).to_have_attribute(
            "data-done", "true", timeout=30_000
        )
    await phone.get_by_test_id("lifting-yes").check()
    await phone.get_by_test_id("chipping-no").check()
    await phone.get_by_test_id("comfort").select_option("4")
    await phone.get_by_test_id("checkin-text").fill("The thumb lifts a little.")
    await phone.get_by_test_id("checkin-submit").click()
    await expect(phone.get_by_test_id("checkin-form-message")).to_contain_text("Thank you")
    await screenshot(phone, "checkin-phone")
    assert phone.errors == []  # type: ignore[attr-defined]

    # The photos at the shim camera's full resolution, on the record.
    async with http.get(f"/api/consultations/{c['id']}", headers=staff) as r:
        record = await r.json()
    photos = [s for s in record["stills"] if s["source"] == "checkin"]
    assert sorted((s["width"], s["height"]) for s in photos) == [(4032, 3024)] * 3
    assert record["checkins"][0]["answers"]["text"] == "The thumb lifts a little."

    # The dashboard: answered, and a repair in one click, its link ready to send.
    desk = await open_page(browser, str(server.make_url("/")), LAPTOP)
    await desk.get_by_test_id("staff-key").fill(STAFF_KEY)
    await desk.get_by_test_id("sign-in-submit").click()
    item = desk.get_by_test_id("checkins").locator("[data-testid=checkin-item]")
    await expect(item).to_have_attribute("data-standing", "answered", timeout=15_000)
    await expect(item.get_by_test_id("checkin-answers")).to_contain_text("comfort 4/5")
    await expect(item.get_by_test_id("checkin-photo")).to_have_count(3)
    await item.get_by_test_id("checkin-repair").click()
    link = item.get_by_test_id("checkin-followup-link")
    await expect(link).to_have_value(re.compile(r"^http://links\.test/c/"))
    async with http.get("/api/consultations", headers=staff) as r:
        repairs = [x for x in (await r.json())["consultations"] if x["repair_of"] == c["id"]]
    assert len(repairs) == 1

    # The record page shows the check-in; the settings page keeps the salon's days.
    await desk.goto(str(server.make_url(f"/r/{c['id']}")))
    await expect(desk.get_by_test_id("record-checkin-answers")).to_contain_text("comfort 4/5")
    await desk.goto(str(server.make_url("/settings")))
    await expect(desk.get_by_test_id("checkin-settings-form")).to_have_attribute(
        "data-loaded", "true"
    )
    await expect(desk.get_by_test_id("checkin-days")).to_have_value("3, 14")
    await desk.get_by_test_id("checkin-days").fill("2, 10")
    await desk.get_by_test_id("checkin-settings-save").click()
    await expect(desk.get_by_test_id("checkin-settings-message")).to_have_text("Saved.")
    async with http.get("/api/checkin-settings", headers=staff) as r:
        assert (await r.json())["days"] == [2, 10]
    assert desk.errors == []  # type: ignore[attr-defined]
    await browser.close()
