"""Staff accounts in a real browser (Chromium): a stylist signs in with their email and
password and sees only their own and unassigned consultations and conversations, takes an
unassigned one; the owner sees everyone's, whose each is, the accounts and the audit log."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from .accounts import PASSWORD, add_member
from .browser import LAPTOP, Launch, local, open_page, ready_to_join, screenshot
from .conftest import STAFF_KEY, create_consultation


async def _sign_in(page: Page, email: str) -> None:
    await expect(page.get_by_test_id("sign-in")).to_be_visible()
    await page.get_by_test_id("staff-email").fill(email)
    await page.get_by_test_id("staff-password").fill(PASSWORD)
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("whoami")).to_be_visible()


async def test_a_stylist_sees_their_own_and_the_owner_sees_all(
    launch: Launch, server: Any, http: aiohttp.ClientSession
) -> None:
    owner = await add_member(server.app, "owner", "Olive")
    sam = await add_member(server.app, "stylist", "Sam")
    kim = await add_member(server.app, "stylist", "Kim")
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    sams = await create_consultation(
        http, staff, customer_name="Sam's customer", assigned_to=sam.id
    )
    await create_consultation(http, staff, customer_name="Kim's customer", assigned_to=kim.id)
    await create_consultation(http, staff, customer_name="Walk-in")

    browser = await launch()
    page = await open_page(browser, str(server.make_url("/")), LAPTOP)
    # A wrong password: the account's answer, not the staff key's.
    await page.get_by_test_id("staff-email").fill(sam.email)
    await page.get_by_test_id("staff-password").fill("not my password")
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("sign-in-message")).to_contain_text("do not match")
    await _sign_in(page, sam.email)
    await expect(page.get_by_test_id("whoami")).to_have_text("Sam (stylist)")
    rows = page.get_by_test_id("consultation-row")
    await expect(rows).to_have_count(2)
    await expect(page.get_by_test_id("consultations")).not_to_contain_text("Kim's customer")
    inbox = page.get_by_test_id("inbox-item")
    await expect(inbox).to_have_count(2)
    await expect(page.get_by_test_id("inbox-list")).not_to_contain_text("Kim's customer")
    await expect(page.get_by_test_id("audit-link")).to_be_hidden()
    await expect(page.get_by_test_id("backups")).to_be_hidden()
    mine = rows.filter(has_text="Sam's customer")
    await expect(mine.get_by_test_id("whose")).to_have_text("Sam")
    walk_in = rows.filter(has_text="Walk-in")
    await expect(walk_in.get_by_test_id("whose")).to_have_text("Unassigned")
    await walk_in.get_by_test_id("take").click()
    await expect(walk_in.get_by_test_id("whose")).to_have_text("Sam")
    await expect(walk_in.get_by_test_id("take")).to_have_count(0)
    await screenshot(page, "dashboard-stylist")
    assert page.errors == []  # type: ignore[attr-defined]

    await page.get_by_test_id("sign-out").click()
    await _sign_in(page, owner.email)
    await expect(rows).to_have_count(3)
    kims = rows.filter(has_text="Kim's customer")
    await expect(kims.get_by_test_id("assign")).to_have_value(kim.id)
    await kims.get_by_test_id("assign").select_option(sam.id)
    await expect(kims.get_by_test_id("assign")).to_have_value(sam.id)
    await expect(page.get_by_test_id("inbox-whose").first).to_be_visible()

    await page.get_by_test_id("settings-link").click()
    await expect(page.get_by_test_id("account-item")).to_have_count(3)
    await page.get_by_test_id("account-name-input").fill("Lee")
    await page.get_by_test_id("account-email-input").fill("lee@example.com")
    await page.get_by_test_id("account-password-input").fill("lee's password 1")
    await page.get_by_test_id("account-create").click()
    await expect(page.get_by_test_id("account-item")).to_have_count(4)
    await screenshot(page, "settings-accounts")

    await page.goto(str(server.make_url("/audit")))
    entries = page.get_by_test_id("audit-entry")
    await expect(entries.filter(has_text="signed-in").first).to_be_visible()
    await expect(entries.filter(has_text="assigned").first).to_be_visible()
    await expect(entries.filter(has_text="sign-in-failed").first).to_be_visible()
    await page.get_by_test_id("audit-actor").fill(f"account:{sam.id}")
    await page.get_by_test_id("audit-filter").click()
    await expect(entries.filter(has_text=f"account:{owner.id}")).to_have_count(0)
    await expect(entries.first).to_contain_text(f"account:{sam.id}")
    await screenshot(page, "audit-log")
    assert page.errors == []  # type: ignore[attr-defined]

    # The stylist's console says whose the consultation is.
    console = await open_page(browser, local(server, sams["stylist_link"]), LAPTOP)
    await ready_to_join(console)
    await console.get_by_test_id("join").click()
    await expect(console.get_by_test_id("console-whose")).to_have_text("Sam", timeout=15_000)
    assert console.errors == []  # type: ignore[attr-defined]
    await browser.close()
