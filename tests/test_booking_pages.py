"""The booking pages in Chromium: a customer in London books a slot of a salon in Shanghai on
/book (times in their own zone), a malformed email gets a message on the page, the link opens
their conversation with the booking on it, and from there they move it, then cancel it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from .accounts import PASSWORD, add_member
from .booking import AVAILABILITY, a_week_ahead, free, publish
from .browser import LAPTOP, PHONE, Launch, local, open_page, screenshot
from .conftest import STAFF_KEY

pytestmark = pytest.mark.timeout(180)

LONDON = ZoneInfo("Europe/London")


async def test_a_customer_books_moves_and_cancels_in_their_own_time_zone(
    launch: Launch, server: Any, http: Any, staff: dict[str, str]
) -> None:
    await publish(http)
    slots = await free(http)
    start = a_week_ahead(slots)
    later = slots[slots.index(start) + 1]

    browser = await launch()
    page = await open_page(
        browser, str(server.make_url("/book")), PHONE, timezone_id="Europe/London", locale="en-GB"
    )
    await expect(page.get_by_test_id("booking")).to_be_visible()
    await expect(page.get_by_test_id("book-zone")).to_contain_text("Europe/London")
    slot = page.locator(f'[data-testid=slot][data-start="{start}"]')
    # Shown at the London time of the salon's slot.
    await expect(slot).to_have_text(f"{datetime.fromisoformat(start).astimezone(LONDON):%H:%M}")
    await slot.click()
    await page.locator("input[name=name]").fill("Emma Clarke")
    await page.locator("input[name=email]").fill("emma@")
    await page.get_by_test_id("book").click()
    await expect(page.get_by_test_id("booking-error")).to_contain_text("cannot receive mail")
    await page.locator("input[name=email]").fill("emma@example.co.uk")
    await page.get_by_test_id("book").click()
    link = page.get_by_test_id("booked-link")
    await expect(link).to_be_visible()
    await screenshot(page, "booked-phone")
    customer_link = await link.get_attribute("href")
    assert customer_link is not None and "/c/" in customer_link

    # Their link: the conversation, with the booking on it; another time from there.
    await page.goto(local(server, customer_link))
    booking = page.get_by_test_id("my-booking")
    await expect(booking).to_contain_text("Europe/London")
    await page.get_by_test_id("move-booking").click()
    await expect(page.get_by_test_id("book-zone")).to_contain_text("new time")
    await page.locator(f'[data-testid=slot][data-start="{later}"]').click()
    await expect(page.get_by_test_id("booked-time")).to_contain_text(
        f"{datetime.fromisoformat(later).astimezone(LONDON):%H:%M}"
    )
    async with http.get("/api/bookings", headers=staff) as r:
        [listed] = (await r.json())["bookings"]
    assert datetime.fromisoformat(listed["start"]) == datetime.fromisoformat(later)
    assert listed["customer_zone"] == "Europe/London"

    await page.goto(local(server, customer_link))
    await page.get_by_test_id("cancel-booking").click()
    await expect(booking).to_contain_text("was cancelled")
    await expect(page.get_by_test_id("cancel-booking")).to_have_count(0)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_staff_publish_bookable_times_and_see_bookings_on_the_dashboard(
    launch: Launch, server: Any, http: Any, staff: dict[str, str]
) -> None:
    async with http.put(
        "/api/salon", json={"timezone": "Asia/Shanghai", "hours": {}}, headers=staff
    ) as r:
        assert r.status == 200
    browser = await launch()
    page = await open_page(browser, str(server.make_url("/")), LAPTOP)
    await page.get_by_test_id("staff-key").fill(STAFF_KEY)
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("inbox")).to_be_visible()
    await page.goto(str(server.make_url("/settings")))
    admin = page.get_by_test_id("availability-admin")
    await expect(admin).to_be_visible()
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        await admin.get_by_test_id(f"availability-{day}-open").fill("10:00")
        await admin.get_by_test_id(f"availability-{day}-close").fill("12:00")
    await admin.get_by_test_id("availability-slot_minutes").fill("60")
    await admin.get_by_test_id("availability-exceptions").fill("2030-01-01")
    await admin.get_by_test_id("availability-save").click()
    await expect(admin.get_by_test_id("availability-message")).to_have_text("Saved.")
    async with http.get("/api/availability", headers=staff) as r:
        published = (await r.json())["availability"]
    assert published["weekly"]["mon"] == [["10:00", "12:00"]]
    assert published["slot_minutes"] == 60
    assert published["exceptions"] == {"2030-01-01": []}
    # A stylist's own bookable times: picked by name, kept by their account.
    sam = await add_member(server.app, "stylist", "Sam")
    await page.reload()
    await admin.get_by_test_id("availability-resource").select_option(label="Sam")
    await expect(admin.get_by_test_id("availability-mon-open")).to_have_value("")
    await admin.get_by_test_id("availability-mon-open").fill("13:00")
    await admin.get_by_test_id("availability-mon-close").fill("15:00")
    await admin.get_by_test_id("availability-save").click()
    await expect(admin.get_by_test_id("availability-message")).to_have_text("Saved.")
    async with http.get(f"/api/availability?resource={sam.id}", headers=staff) as r:
        theirs = (await r.json())["availability"]
    assert theirs["weekly"] == {"mon": [["13:00", "15:00"]]}

    # A customer books; staff see it on the dashboard, in their own time.
    now = datetime.now(UTC)
    query = {"from": now.isoformat(), "to": (now + timedelta(days=14)).isoformat()}
    async with http.get("/api/slots", params=query) as r:
        slots = [s["start"] for s in (await r.json())["slots"]]
    assert {datetime.fromisoformat(s).hour for s in slots} == {10, 11}
    body = {"start": slots[-1], "customer_name": "Wang Fang", "customer_phone": "+86 138 0013 8000"}
    async with http.post("/api/bookings", json=body) as r:
        assert r.status == 201
    await page.goto(str(server.make_url("/")))
    item = page.get_by_test_id("booking-item")
    await expect(item).to_contain_text("Wang Fang")
    await item.get_by_test_id("booking-cancel").click()
    await expect(item).to_contain_text("cancelled")
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_link_that_no_longer_opens_says_how_to_get_a_new_one(
    http: Any, staff: dict[str, str]
) -> None:
    async with http.post("/api/consultations", json={"customer_name": "X"}, headers=staff) as r:
        made = await r.json()
    async with http.post(f"/api/consultations/{made['id']}/revoke-links", headers=staff) as r:
        assert r.status == 200
    async with http.get(f"/c/{made['customer_link'].rsplit('/', 1)[1]}") as r:
        assert r.status == 404
        page = await r.text()
    assert 'data-i18n="invalid.how"' in page and 'href="/book"' in page


async def test_a_stylist_does_not_see_the_availability_settings(
    launch: Launch, server: Any, http: Any
) -> None:
    sam = await add_member(server.app, "stylist", "Sam")
    await publish(http)
    browser = await launch()
    page = await open_page(browser, str(server.make_url("/")), LAPTOP)
    await page.get_by_test_id("staff-email").fill(sam.email)
    await page.get_by_test_id("staff-password").fill(PASSWORD)
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("whoami")).to_be_visible()
    await page.goto(str(server.make_url("/settings")))
    await expect(page.get_by_test_id("quick-replies-admin")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    await expect(page.get_by_test_id("availability-admin")).to_be_hidden()
    await expect(page.get_by_test_id("checkin-settings")).to_be_hidden()
    # The API refuses it too: the salon's bookable times are the owner's.
    async with http.put("/api/availability", json=AVAILABILITY, headers=sam.bearer) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (403, "forbidden")
    assert page.errors == []  # type: ignore[attr-defined]
