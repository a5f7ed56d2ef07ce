"""The pages in a real headless Chromium with a fake camera made from a real hand photo."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from consult.appkeys import HUB
from consult.config import Settings

from .browser import (
    LAPTOP,
    PHONE,
    Launch,
    artifact,
    local,
    open_lobby,
    open_page,
    ready_to_join,
    screenshot,
    shown,
    video_size,
    visible_detail,
    watch_shown,
)
from .client import CallClient
from .conftest import STAFF_KEY

pytestmark = pytest.mark.timeout(120)


async def both_in_call(
    launch: Launch, server: Any, consultation: dict[str, Any], customer_camera: str
) -> tuple[Any, Any, Page, Page]:
    """The customer (a phone, ``customer_camera``) and the stylist (a laptop, 720p) in their
    own Chromiums, both joined: (customer browser, stylist browser, customer, stylist)."""
    customer_browser = await launch(customer_camera)
    stylist_browser = await launch("720p")
    customer = await open_page(
        customer_browser, local(server, consultation["customer_link"]), PHONE
    )
    stylist = await open_page(stylist_browser, local(server, consultation["stylist_link"]), LAPTOP)
    await ready_to_join(customer)
    await customer.get_by_test_id("join").click()
    await ready_to_join(stylist)
    await stylist.get_by_test_id("join").click()
    return customer_browser, stylist_browser, customer, stylist


async def test_customer_joins_and_the_stylist_sees_the_full_resolution_hand(
    launch: Launch, clients: Any, consultation: dict[str, Any], server: Any
) -> None:
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await stylist.connect()
    await stylist.start_media()
    browser = await launch("1080p")
    page = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    await ready_to_join(page)
    await expect(page.get_by_test_id("capture-guide")).to_be_visible()
    await expect(page.get_by_test_id("lobby-message")).to_have_text("Ready when you are.")
    assert await visible_detail(page, "preview-video") > 20  # the hand, not a black box
    await screenshot(page, "customer-lobby-phone")

    await page.get_by_test_id("join").click()
    joined = time.monotonic()

    def camera() -> list[Any]:
        return [s for s in stylist.received.video if not s.card and s.at >= joined]

    await stylist.wait_for(lambda: camera(), 15)
    await stylist.wait_for(lambda: time.monotonic() - joined >= 3.2, 10)
    at_3s = [s for s in camera() if s.at - joined <= 3.0]
    full = [s for s in camera() if (s.width, s.height) == (1920, 1080)]
    assert full, f"never full size: {sorted({(s.width, s.height) for s in camera()})}"
    assert full[0].at - joined < 5.0

    # The customer sees the stylist (an aiortc participant sending a black/white pattern).
    await page.wait_for_function("() => window.__metrics.firstFrame", timeout=15_000)
    await expect(page.get_by_test_id("call-status")).to_be_hidden()
    assert await video_size(page, "remote-video") == (320, 240)
    assert await visible_detail(page, "remote-video") > 40
    await screenshot(page, "customer-call-phone")
    metrics = await page.evaluate("() => window.__metrics")
    artifact("browser-metrics.json").write_text(
        json.dumps(
            {
                "join_to_first_partner_frame_ms": round(metrics["firstFrame"] - metrics["join"]),
                "server_received_at_3s": f"{at_3s[-1].width}x{at_3s[-1].height}" if at_3s else None,
                "first_full_size_frame_after_join_ms": round((full[0].at - joined) * 1000),
                "camera": "1920x1080 fake (thumbs_up_white_bg)",
            }
        )
    )
    assert not page.errors  # type: ignore[attr-defined]
    await browser.close()


async def test_waiting_message_then_call_then_leave_and_rejoin(
    launch: Launch, clients: Any, consultation: dict[str, Any], server: Any
) -> None:
    browser = await launch()
    page = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    await ready_to_join(page)
    await page.get_by_test_id("join").click()
    status = page.get_by_test_id("call-status")
    await expect(status).to_have_text("Your stylist will join shortly.")
    await expect(status).to_be_visible()
    await screenshot(page, "customer-waiting-phone")

    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await stylist.connect()
    await stylist.start_media()
    await expect(status).to_be_hidden(timeout=10_000)
    await stylist.wait_for(lambda: any(not s.card for s in stylist.received.video), 15)

    await page.get_by_test_id("leave").click()
    await expect(page.get_by_test_id("ended-message")).to_have_text(
        "You have left the consultation. You can join again with the same link."
    )
    assert (await stylist.expect("peer"))["state"] == "left"

    await page.get_by_test_id("rejoin").click()
    assert (await stylist.expect("peer"))["state"] == "joined"
    back = time.monotonic()
    await stylist.wait_for(lambda: any(not s.card and s.at > back for s in stylist.received.video))
    await expect(page.get_by_test_id("remote-video")).to_be_visible()
    await browser.close()


async def test_page_reconnects_by_itself_when_its_websocket_is_killed(
    launch: Launch, clients: Any, consultation: dict[str, Any], server: Any
) -> None:
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await stylist.connect()
    await stylist.start_media()
    browser = await launch()
    page = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    await ready_to_join(page)
    await page.get_by_test_id("join").click()
    await stylist.wait_for(lambda: any(not s.card for s in stylist.received.video), 15)
    await page.evaluate(
        """() => { window.__statuses = [];
        new MutationObserver(() => window.__statuses.push(
            document.querySelector('[data-testid=call-status]').textContent))
          .observe(document.querySelector('[data-testid=call-status]'),
                   {childList: true, characterData: true, subtree: true}); }"""
    )

    # The server end of the customer's websocket dies (as on a network change).
    call = server.app[HUB].call(consultation["id"])
    (customer,) = [m for m in call.members() if m.role == "customer"]
    await customer.ws.close(code=aiohttp.WSCloseCode.INTERNAL_ERROR)
    killed = time.monotonic()

    assert (await stylist.expect("peer", timeout=15))["state"] == "joined"
    await stylist.wait_for(
        lambda: any(not s.card and s.at > killed + 0.2 for s in stylist.received.video), 15
    )
    back_after = time.monotonic() - killed
    artifact("reconnect-metrics.json").write_text(
        json.dumps({"websocket_killed_to_customer_video_back_ms": round(back_after * 1000)})
    )
    assert back_after < 8
    assert "Connection lost. Reconnecting…" in await page.evaluate("() => window.__statuses")
    await expect(page.get_by_test_id("call-status")).to_be_hidden()
    await browser.close()


async def test_a_denied_camera_says_so(
    launch: Launch, consultation: dict[str, Any], server: Any
) -> None:
    browser = await launch(deny_camera=True)
    page = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    await open_lobby(page)
    message = page.get_by_test_id("lobby-message")
    await expect(message).to_have_text(
        "Camera access was refused. Allow the camera for this site in your browser settings,"
        " then reload the page.",
        timeout=15_000,
    )
    await expect(page.get_by_test_id("join")).to_be_disabled()
    await expect(page.get_by_test_id("retry-camera")).to_be_visible()
    await screenshot(page, "customer-camera-denied-phone")
    await browser.close()


async def test_stylist_console_shows_the_customer_and_connection_quality(
    launch: Launch, consultation: dict[str, Any], server: Any
) -> None:
    browser = await launch()
    customer = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    stylist = await open_page(browser, local(server, consultation["stylist_link"]), LAPTOP)
    await ready_to_join(customer)
    await customer.get_by_test_id("join").click()
    await ready_to_join(stylist)
    await expect(stylist.get_by_test_id("capture-guide")).to_be_hidden()
    await stylist.get_by_test_id("join").click()
    await expect(stylist.get_by_test_id("customer-name")).to_have_text("Jane Doe")
    # The quality indicator (getStats) shows the customer's camera at full size.
    await expect(stylist.get_by_test_id("quality-video")).to_contain_text(
        "1280\u00d7720", timeout=20_000
    )
    assert await video_size(stylist, "remote-video") == (1280, 720)
    assert await visible_detail(stylist, "remote-video") > 20
    assert await visible_detail(customer, "remote-video") > 20
    await screenshot(stylist, "stylist-console-laptop")
    await screenshot(customer, "customer-with-stylist-phone")
    await browser.close()


async def test_dashboard_signs_in_creates_a_consultation_and_its_link_works(
    launch: Launch, server: Any, settings: Settings
) -> None:
    browser = await launch()
    page = await open_page(browser, str(server.make_url("/")), LAPTOP)
    await expect(page.get_by_test_id("sign-in")).to_be_visible()
    await page.get_by_test_id("staff-key").fill("wrong")
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("sign-in-message")).to_have_text("That is not the staff key.")
    await page.get_by_test_id("staff-key").fill(STAFF_KEY)
    await page.get_by_test_id("sign-in-submit").click()

    await page.get_by_test_id("customer-name").fill("Mei Lin")
    await page.get_by_test_id("customer-ref").fill("C-88")
    await page.get_by_test_id("create").click()
    row = page.get_by_test_id("consultation-row")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Mei Lin (C-88)")
    await expect(row).to_contain_text("Open")
    # The new links come next to the Create button, on screen, not below the rest.
    created = page.get_by_test_id("created-links")
    await expect(created.get_by_test_id("customer-link")).to_be_in_viewport()
    await expect(page.get_by_test_id("backup-last")).to_contain_text("Scheduled backups are off")
    await screenshot(page, "dashboard-laptop")
    link = await created.get_by_test_id("customer-link").input_value()
    assert "/c/" in link
    assert await row.get_by_test_id("customer-link").input_value() == link
    # The links point at the public URL; open the same path on the test server.
    customer = await open_page(browser, local(server, link), PHONE)
    await ready_to_join(customer)

    # Expired links (as 7 days later): the row offers new ones.
    with sqlite3.connect(settings.data_dir / "consult.db") as db:
        db.execute("UPDATE links SET expires_at = '2000' || substr(expires_at, 5)")
    await page.reload()
    await expect(row.get_by_test_id("customer-link")).to_have_count(0)
    await row.get_by_test_id("new-links").click()
    renewed = await row.get_by_test_id("customer-link").input_value()
    assert "/c/" in renewed and renewed != link

    # The session survives a reload and ends with sign-out.
    await page.reload()
    await expect(row).to_have_count(1)
    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("sign-in")).to_be_visible()
    await page.reload()
    await expect(page.get_by_test_id("sign-in")).to_be_visible()
    await browser.close()


async def test_a_link_opened_during_a_lockout_says_so_in_the_customers_language(
    launch: Launch, consultation: dict[str, Any], server: Any
) -> None:
    async with aiohttp.ClientSession() as http:
        for i in range(20):
            async with http.get(server.make_url(f"/c/guess-{i}")) as r:
                assert r.status == 404
    browser = await launch()
    page = await open_page(
        browser, local(server, consultation["customer_link"]), PHONE, locale="zh-CN"
    )
    await expect(page.get_by_test_id("lockout-title")).to_have_text("请稍等一分钟")
    await expect(page.locator("main")).to_contain_text("此网络尝试次数过多")
    await screenshot(page, "lockout-zh-phone")
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.close()


async def test_pages_follow_the_browsers_language_and_switch(
    launch: Launch, consultation: dict[str, Any], server: Any
) -> None:
    browser = await launch()
    page = await open_page(
        browser, local(server, consultation["customer_link"]), PHONE, locale="zh-CN"
    )
    await expect(page.get_by_test_id("join")).to_have_text("加入")
    await ready_to_join(page)
    await screenshot(page, "customer-lobby-zh-phone")
    await page.get_by_test_id("language").select_option("en")
    await expect(page.get_by_test_id("join")).to_have_text("Join")
    await expect(page.get_by_test_id("lobby-message")).to_have_text("Ready when you are.")
    await browser.close()


def y4m_frames(path: Any, width: int, height: int) -> list[Any]:
    """The clip's frames as BGR, as the fake camera delivers them."""
    import cv2
    import numpy as np

    data = path.read_bytes()
    size = width * height * 3 // 2
    frames, pos = [], data.index(b"\n") + 1
    while pos < len(data):
        pos = data.index(b"\n", pos) + 1
        i420 = np.frombuffer(data[pos : pos + size], np.uint8).reshape(height * 3 // 2, width)
        frames.append(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420))
        pos += size
    return frames


def psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * float(np.log10(255**2 / mse))


async def test_capture_from_the_console_saves_the_camera_photo_and_the_stream_still(
    launch: Launch, consultation: dict[str, Any], server: Any, http: Any, staff: Any,
    fake_media: dict[str, Any],
) -> None:  # fmt: skip
    import cv2
    import numpy as np

    customer_browser, stylist_browser, customer, stylist = await both_in_call(
        launch, server, consultation, "1080p"
    )
    await expect(stylist.get_by_test_id("quality-video")).to_contain_text("1920", timeout=20_000)

    await watch_shown(customer, "photo-notice")
    await stylist.keyboard.press("c")  # the Capture shortcut
    strip = stylist.get_by_test_id("still")
    await expect(strip).to_have_count(2, timeout=20_000)
    # The customer is told, with the thumbnail, that a photo was taken (for six seconds).
    await shown(customer, "photo-notice")
    thumb = await customer.get_by_test_id("photo-notice-thumb").get_attribute("src")
    assert thumb and "/thumb" in thumb
    await screenshot(customer, "customer-photo-notice-phone")

    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        stills = {s["source"]: s for s in (await r.json())["stills"]}
    camera, stream = stills["camera"], stills["video"]
    assert (camera["width"], camera["height"]) == (1920, 1080)
    assert stream["width"] >= 1280 and stream["height"] >= 720
    async with http.get(camera["url"], headers=staff) as r:
        photo = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
    best = max(psnr(photo, frame) for frame in y4m_frames(fake_media["1080p"], 1920, 1080))
    assert best >= 45, best
    artifact("capture-psnr.json").write_text(json.dumps({"camera_still_psnr_db": round(best, 2)}))

    # The viewer: full resolution, 100% is pixel-exact, the original can be downloaded.
    await (
        strip.filter(has=stylist.locator("[data-source=camera]"))
        .or_(stylist.locator("[data-testid=still][data-source=camera]"))
        .first.click()
    )
    viewer = stylist.get_by_test_id("viewer")
    await expect(viewer).to_be_visible()
    await stylist.wait_for_function(
        "() => document.querySelector('[data-testid=viewer-image]').naturalWidth === 1920"
    )
    await stylist.get_by_test_id("viewer-actual").click()
    await expect(stylist.get_by_test_id("viewer-zoom")).to_have_text("100%")
    href = await stylist.get_by_test_id("viewer-download").get_attribute("href")
    assert href and "download=1" in href
    await expect(stylist.get_by_test_id("viewer-details")).to_contain_text("1920 \u00d7 1080")
    await screenshot(stylist, "stylist-still-viewer-laptop")
    await stylist.get_by_test_id("viewer-close").click()
    await screenshot(stylist, "stylist-console-with-stills-laptop")
    await customer_browser.close()
    await stylist_browser.close()


async def test_chat_between_the_pages_with_unread_badge_and_read_receipt(
    launch: Launch, consultation: dict[str, Any], server: Any
) -> None:
    browser = await launch()
    customer = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    stylist = await open_page(browser, local(server, consultation["stylist_link"]), LAPTOP)
    for page in (customer, stylist):
        await ready_to_join(page)
        await page.get_by_test_id("join").click()
    await stylist.get_by_test_id("chat-input").fill("Hello! Show me your nails under daylight?")
    await stylist.get_by_test_id("chat-send").click()
    await expect(customer.get_by_test_id("chat-unread")).to_have_text("1")
    await customer.get_by_test_id("chat-toggle").click()
    message = customer.get_by_test_id("chat-message")
    await expect(message).to_contain_text("Show me your nails under daylight?")
    await expect(message).to_be_visible()
    # Opening the chat read it: the stylist sees the receipt.
    await expect(stylist.get_by_test_id("chat-message")).to_contain_text("Read")
    await customer.get_by_test_id("chat-input").fill("好的马上来")
    await customer.get_by_test_id("chat-input").press("Enter")
    await expect(stylist.get_by_test_id("chat-message").nth(1)).to_contain_text("好的马上来")
    # A photo in the chat: the original, opened full size on the other side.
    from .fake_camera import HANDS

    await customer.get_by_test_id("chat-photo-input").set_input_files(
        str(HANDS / "thumb_up_blue_bg_640x521.jpg")
    )
    photo = stylist.get_by_test_id("chat-photo")
    await expect(photo).to_be_visible(timeout=15_000)
    await photo.click()
    await stylist.wait_for_function(
        "() => document.querySelector('[data-testid=viewer-image]').naturalWidth === 640"
    )
    await stylist.get_by_test_id("viewer-close").click()
    await expect(customer.get_by_test_id("chat-photo")).to_be_visible()
    await screenshot(customer, "customer-chat-phone")
    await screenshot(stylist, "stylist-console-chat-laptop")
    # The transcript is there again after a reload.
    await stylist.reload()
    await ready_to_join(stylist)
    await stylist.get_by_test_id("join").click()
    await expect(stylist.get_by_test_id("chat-message")).to_have_count(3)
    await browser.close()


async def test_notes_save_as_typed_survive_going_offline_and_share_only_the_summary(
    launch: Launch, consultation: dict[str, Any], server: Any, http: Any, staff: Any
) -> None:
    browser = await launch()
    customer = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    stylist = await open_page(browser, local(server, consultation["stylist_link"]), LAPTOP)
    for page in (customer, stylist):
        await ready_to_join(page)
        await page.get_by_test_id("join").click()
    await stylist.get_by_test_id("summary").fill("Almond shape, nude shimmer, short")
    await stylist.get_by_test_id("private-notes").fill("Nail beds thin: no acrylic")
    await expect(stylist.get_by_test_id("notes-status")).to_have_text("Saved")

    await customer.get_by_test_id("chat-toggle").click()
    await expect(customer.get_by_test_id("summary-card")).to_contain_text("Almond shape")
    assert "no acrylic" not in await customer.content()

    # Offline: the keystrokes stay in the page and are saved when the network is back.
    await stylist.context.set_offline(True)
    await stylist.get_by_test_id("private-notes").fill(
        "Nail beds thin: no acrylic. Allergic to HEMA"
    )
    await expect(stylist.get_by_test_id("notes-status")).not_to_have_text("Saved")
    await stylist.context.set_offline(False)
    await expect(stylist.get_by_test_id("notes-status")).to_have_text("Saved", timeout=15_000)
    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        assert (await r.json())["notes"].endswith("Allergic to HEMA")
    await stylist.reload()
    await ready_to_join(stylist)
    await stylist.get_by_test_id("join").click()
    await expect(stylist.get_by_test_id("private-notes")).to_have_value(
        "Nail beds thin: no acrylic. Allergic to HEMA"
    )
    await screenshot(stylist, "stylist-console-notes-laptop")
    await browser.close()


async def test_hours_set_on_the_dashboard_reach_a_customer_of_a_closed_salon(
    launch: Launch, consultation: dict[str, Any], server: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from consult.salon import DAYS

    browser = await launch()
    staff = await open_page(browser, str(server.make_url("/")), LAPTOP)
    await staff.get_by_test_id("staff-key").fill(STAFF_KEY)
    await staff.get_by_test_id("sign-in-submit").click()
    await staff.get_by_test_id("settings-link").click()
    await staff.locator("[data-testid=hours-form][data-loaded=true]").wait_for()
    await staff.get_by_test_id("hours-timezone").fill("UTC")
    other_day = DAYS[(datetime.now(UTC) + timedelta(days=3)).weekday()]
    await staff.get_by_test_id(f"hours-{other_day}-open").fill("09:00")
    await staff.get_by_test_id(f"hours-{other_day}-close").fill("17:30")
    await staff.get_by_test_id("hours-away").fill("Closed today, back soon!")
    await staff.get_by_test_id("hours-save").click()
    await expect(staff.get_by_test_id("hours-message")).to_have_text("Saved.")

    customer = await open_page(browser, local(server, consultation["customer_link"]), PHONE)
    notice = customer.get_by_test_id("away-notice")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("Closed today, back soon!")
    await expect(notice).to_contain_text("We open again")
    await ready_to_join(customer)
    await screenshot(customer, "customer-lobby-salon-closed-phone")
    await customer.get_by_test_id("join").click()
    await expect(customer.get_by_test_id("away-call")).to_be_visible()
    await browser.close()


async def test_a_swatch_shown_by_the_stylist_is_drawn_at_its_exact_colour_and_tried_on(
    launch: Launch, consultation: dict[str, Any], server: Any, http: Any, staff: Any
) -> None:
    import cv2
    import numpy as np

    customer_browser, stylist_browser, customer, stylist = await both_in_call(
        launch, server, consultation, "720p"
    )

    # Search the palette, show a shade: the customer's page draws exactly that colour.
    await stylist.get_by_test_id("palette-search").fill("classic red")
    red = stylist.get_by_test_id("swatch")
    await expect(red).to_have_count(1)
    await red.click()
    await expect(stylist.get_by_test_id("palette-showing")).to_contain_text("Classic Red")
    chip = customer.get_by_test_id("swatch-chip")
    await expect(chip).to_be_visible()
    await expect(customer.get_by_test_id("swatch-name")).to_have_text("Classic Red")
    png = await chip.screenshot()
    pixels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    h, w = pixels.shape[:2]
    centre = pixels[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3)
    assert {tuple(int(c) for c in p) for p in centre} == {(0x1C, 0x16, 0xC3)}  # BGR of #c3161c
    await screenshot(customer, "customer-swatch-phone")

    # Marked as the customer's choice: both pages list it; the filter by family works.
    await stylist.get_by_test_id("palette-search").fill("")
    await stylist.get_by_test_id("palette-family").select_option("red")
    await expect(stylist.get_by_test_id("swatch")).to_have_count(6)
    await stylist.locator("[data-testid=choose]").first.click()
    await expect(customer.get_by_test_id("chosen-swatch")).to_have_count(1)
    await expect(stylist.get_by_test_id("palette-chosen").locator("button")).to_have_count(1)

    # A still, then the tools: sample a point, outline a nail, try the shown shade on.
    await stylist.keyboard.press("c")
    camera = stylist.locator("[data-testid=still][data-source=camera]")
    await expect(camera).to_have_count(1, timeout=20_000)
    await camera.click()
    await stylist.wait_for_function(
        "() => document.querySelector('[data-testid=viewer-image]').naturalWidth === 1280"
    )
    image = stylist.get_by_test_id("viewer-image")
    box = await image.bounding_box()
    assert box is not None
    await stylist.get_by_test_id("tool-sample").click()
    await stylist.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await expect(stylist.get_by_test_id("sample-result")).to_contain_text("#")
    await expect(stylist.get_by_test_id("nearest-swatch")).to_have_count(3)
    await stylist.get_by_test_id("tool-outline").click()
    corners = [(0.45, 0.4), (0.55, 0.4), (0.55, 0.55), (0.45, 0.55), (0.45, 0.4)]
    for fx, fy in corners:
        await stylist.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    await stylist.get_by_test_id("tool-save-outlines").click()
    await expect(stylist.get_by_test_id("tool-result")).to_contain_text("1 nail outline")
    await stylist.get_by_test_id("tool-try-on").click()
    await expect(stylist.get_by_test_id("tool-result")).to_contain_text("Classic Red")
    # The try-on reaches both screens: the customer sees it beside the original.
    await expect(customer.get_by_test_id("compare")).to_be_visible(timeout=15_000)
    for testid in ("compare-original", "compare-derived"):
        await customer.wait_for_function(
            f"() => document.querySelector('[data-testid={testid}]').naturalWidth === 1280"
        )
    await screenshot(customer, "customer-try-on-phone")
    await stylist.get_by_test_id("viewer-close").click()
    try_on = stylist.locator("[data-testid=still][data-source=try-on]")
    await expect(try_on).to_have_count(1)
    await try_on.click()
    await expect(stylist.get_by_test_id("viewer-compare")).to_be_visible()
    await screenshot(stylist, "stylist-try-on-viewer-laptop")

    async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as r:
        record = await r.json()
    assert [s["swatch"]["name"] for s in record["swatches_shown"]] == ["Classic Red"]
    assert len(record["swatches_chosen"]) == 1
    assert any(s["source"] == "try-on" for s in record["stills"])
    assert customer.errors == [] and stylist.errors == []  # type: ignore[attr-defined]
    await customer_browser.close()
    await stylist_browser.close()


async def test_staff_manage_the_palette_on_the_settings_page(
    launch: Launch, server: Any, tmp_path: Any
) -> None:
    browser = await launch()
    page = await open_page(browser, str(server.make_url("/")), LAPTOP)
    page.on("dialog", lambda dialog: dialog.accept())
    await page.get_by_test_id("staff-key").fill(STAFF_KEY)
    await page.get_by_test_id("sign-in-submit").click()
    await page.get_by_test_id("settings-link").click()
    rows = page.get_by_test_id("palette-row")
    await expect(rows).to_have_count(70)

    await page.get_by_test_id("swatch-name-input").fill("Salon Signature")
    await page.get_by_test_id("swatch-brand-input").fill("Ours")
    await page.get_by_test_id("swatch-hex-input").fill("#8a2be2")
    await page.get_by_test_id("swatch-finish-input").select_option("shimmer")
    await page.get_by_test_id("swatch-family-input").select_option("purple")
    await page.get_by_test_id("swatch-save").click()
    await expect(page.get_by_test_id("swatch-message")).to_contain_text("Salon Signature")
    await expect(rows).to_have_count(71)
    await expect(rows.last).to_contain_text("#8a2be2")

    bad = tmp_path / "bad.csv"
    bad.write_text("name,hex,finish,family\nOops,#12,cream,red\n")
    await page.get_by_test_id("palette-file").set_input_files(str(bad))
    await expect(page.get_by_test_id("palette-message")).to_contain_text("Line 2")
    await expect(rows).to_have_count(71)  # nothing changed
    good = tmp_path / "mine.csv"
    good.write_text("name,brand,hex,finish,family\nLilac Dream,Ours,#c8a2c8,jelly,purple\n")
    await page.get_by_test_id("palette-file").set_input_files(str(good))
    await expect(page.get_by_test_id("palette-message")).to_contain_text("1 added")
    await expect(rows).to_have_count(72)

    await rows.filter(has_text="Salon Signature").get_by_test_id("swatch-delete").click()
    await expect(rows).to_have_count(71)
    await screenshot(page, "settings-palette-laptop")
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.close()


async def test_the_dashboard_shows_the_last_scheduled_backup(
    launch: Launch, aiohttp_server: Any, tmp_path: Any
) -> None:
    from consult.app import create_app

    from .conftest import make_settings

    settings = make_settings(tmp_path, backup_dir=tmp_path / "backups")
    server = await aiohttp_server(create_app(settings))
    browser = await launch()
    page = await open_page(browser, str(server.make_url("/")), LAPTOP)
    await page.get_by_test_id("staff-key").fill(STAFF_KEY)
    await page.get_by_test_id("sign-in-submit").click()
    made = page.get_by_test_id("backup-last")
    await expect(made).to_contain_text("Last backup:", timeout=20_000)
    (archive,) = (tmp_path / "backups").iterdir()
    await expect(made).to_contain_text(archive.name)
    await expect(page.get_by_test_id("backup-failure")).to_be_hidden()
    await page.get_by_test_id("language").select_option("zh-CN")
    await expect(made).to_contain_text("上次备份")
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.close()


async def test_a_recording_both_agreed_to_plays_in_chromium(
    launch: Launch, server: Any, consultation: dict[str, Any]
) -> None:
    customer_browser, stylist_browser, customer, stylist = await both_in_call(
        launch, server, consultation, "720p"
    )
    await expect(stylist.get_by_test_id("remote-video")).to_be_visible(timeout=15_000)
    await stylist.get_by_test_id("record-ask").click()
    # Each agrees on its own screen; nothing is recorded until both have.
    for page in (customer, stylist):
        await expect(page.get_by_test_id("record-consent")).to_be_visible()
    await stylist.get_by_test_id("record-agree").click()
    await expect(stylist.get_by_test_id("recording")).to_be_hidden()
    await customer.get_by_test_id("record-agree").click()
    for page in (customer, stylist):
        await expect(page.get_by_test_id("recording")).to_be_visible()
        await expect(page.get_by_test_id("record-consent")).to_be_hidden()
    await screenshot(customer, "recording-customer-phone")
    await stylist.wait_for_timeout(5000)
    await customer.get_by_test_id("record-stop").click()
    for page in (customer, stylist):
        await expect(page.get_by_test_id("recording")).to_be_hidden()
        await expect(page.get_by_test_id("record-notice")).to_have_text("Recording stopped.")
    # The customer's record page plays both participants' files in Chromium's <video>.
    record = await customer.context.new_page()
    await record.goto(local(server, consultation["customer_link"]) + "/record")
    videos = record.get_by_test_id("record-recording")
    await expect(videos).to_have_count(2, timeout=15_000)
    played = await record.evaluate(
        """async () => {
          const results = [];
          for (const video of document.querySelectorAll("[data-testid=record-recording] video")) {
            video.muted = true;
            await video.play();
            // Until half a second has played (or it ends or fails), however long a loaded
            // machine takes to decode it: not a fixed wait.
            await new Promise((done) => {
              const check = () => {
                if (video.currentTime > 0.5 || video.ended || video.error) done();
                else video.addEventListener("timeupdate", check, { once: true });
              };
              video.addEventListener("error", done, { once: true });
              check();
            });
            results.push({time: video.currentTime, width: video.videoWidth,
                          error: video.error && video.error.code,
                          message: video.error && video.error.message});
            video.pause();
          }
          return results;
        }"""
    )
    for result in played:
        assert result["error"] is None, played
        assert result["width"] > 0 and result["time"] > 0.5, played
    await customer_browser.close()
    await stylist_browser.close()
