"""Customers, consent and deletion in Chromium (issue 17B): the customer agrees to what is kept
before the call, downloads their data and asks for deletion from their link; staff find the
customer on the dashboard, see the request, and the owner deletes after being offered the
export; the Chinese page says the same."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from consult.appkeys import STORE
from consult.recording.consents import VERSION

from .browser import LAPTOP, PHONE, Launch, local, open_page
from .conftest import STAFF_KEY, create_consultation, token_of
from .customer_data import jpeg

pytestmark = pytest.mark.timeout(180)


async def dashboard(browser: Any, server: Any) -> Page:
    page = await open_page(browser, str(server.make_url("/")), LAPTOP)
    await page.get_by_test_id("staff-key").fill(STAFF_KEY)
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("customers")).to_be_visible()
    return page


async def test_consent_before_the_call_and_the_customers_own_data(
    launch: Launch, server: Any, http: Any, staff: dict[str, str]
) -> None:
    c = await create_consultation(http, staff, customer_name="Ines Varga",
                                  customer_email="ines@example.com")  # fmt: skip
    browser = await launch()
    customer = await open_page(browser, local(server, c["customer_link"]), PHONE)
    await customer.get_by_test_id("join-call").click()
    panel = customer.get_by_test_id("consent-panel")
    await expect(panel).to_be_visible()
    await expect(panel.locator("li")).to_have_count(3)  # stills, messages, recordings
    await expect(panel).to_contain_text("recording of the call")
    # Join is refused on the page until the customer agrees; nothing is stored.
    await expect(customer.get_by_test_id("join")).to_be_enabled(timeout=15_000)
    await customer.get_by_test_id("join").click()
    await expect(customer.get_by_test_id("consent-status")).to_contain_text("tick the box")
    await expect(customer.get_by_test_id("call")).to_be_hidden()
    assert await server.app[STORE].consents.current(c["id"]) is None
    await customer.get_by_test_id("consent").check()
    await expect(customer.get_by_test_id("consent")).to_be_disabled()
    given = await server.app[STORE].consents.current(c["id"])
    assert given is not None and given.version == VERSION
    await customer.get_by_test_id("join").click()
    await expect(customer.get_by_test_id("call")).to_be_visible()
    await customer.get_by_test_id("leave").click()
    await customer.get_by_test_id("back-to-conversation").click()

    # Their data: everything as one ZIP, and a request for deletion (after a confirmation).
    box = customer.get_by_test_id("your-data")
    async with customer.expect_download() as download_info:
        await box.get_by_test_id("download-everything").click()
    download = await download_info.value
    archive = zipfile.ZipFile(await download.path())
    assert any(name.endswith("/record.json") and c["id"] in name for name in archive.namelist())
    await box.get_by_test_id("request-deletion").click()
    await box.get_by_test_id("cancel-deletion").click()
    await box.get_by_test_id("request-deletion").click()
    await box.get_by_test_id("confirm-deletion").click()
    await expect(box.get_by_test_id("privacy-status")).to_contain_text("request was sent")

    # Staff see the request on the customer, with its check-in; the owner deletes, offered the
    # export first.
    due_at = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    async with http.post(
        f"/api/consultations/{c['id']}/checkins", json={"due_at": due_at}, headers=staff
    ) as r:
        assert r.status == 201, await r.text()
    staff_page = await dashboard(browser, server)
    panel = staff_page.get_by_test_id("customers")
    await panel.get_by_test_id("customers-search").fill("ines@")
    found = panel.get_by_test_id("customer")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("asked for deletion")
    await found.click()
    page = panel.get_by_test_id("customer-page")
    await expect(page.get_by_test_id("customer-title")).to_have_text("Ines Varga")
    await expect(page.get_by_test_id("customer-deletion-requested")).to_be_visible()
    await expect(page.get_by_test_id("customer-consents").locator("li")).to_have_count(1)
    check_ins = page.get_by_test_id("customer-check-ins").locator("li")
    await expect(check_ins).to_have_count(1)
    await expect(check_ins).to_contain_text("Scheduled for")
    delete = page.locator(".delete-box").last
    await delete.get_by_test_id("delete").click()
    confirm = delete.get_by_test_id("confirm-delete")
    await expect(confirm.get_by_test_id("export-first")).to_have_attribute(
        "href", f"/api/customers/{c['customer_id']}/export"
    )
    await confirm.get_by_test_id("confirm-delete-yes").click()
    await expect(page).to_be_hidden()
    await expect(found).to_have_count(0)
    async with http.get(f"/api/consultations/{c['id']}", headers=staff) as r:
        assert r.status == 404
    assert customer.errors == [] and staff_page.errors == []  # type: ignore[attr-defined]


async def test_the_directory_creates_searches_edits_and_merges_in_chinese(
    launch: Launch, server: Any, http: Any, staff: dict[str, str]
) -> None:
    browser = await launch()
    page = await dashboard(browser, server)
    await page.get_by_test_id("language").select_option("zh-CN")
    panel = page.get_by_test_id("customers")
    await expect(panel.locator("h2")).to_have_text("客户")
    for name, phone in (("Wang Fang", "+86 139 1234 5678"), ("Fang Wang", "13912345678")):
        await panel.get_by_test_id("new-customer-name").fill(name)
        await panel.get_by_test_id("new-customer-phone").fill(phone)
        await panel.get_by_test_id("create-customer").click()
        await expect(panel.get_by_test_id("customer-title")).to_have_text(name)
    await panel.get_by_test_id("customer-notes").fill("喜欢短甲")
    await panel.get_by_test_id("save-customer").click()
    await expect(panel.get_by_test_id("customer-status")).to_have_text("已保存。")
    await panel.get_by_test_id("customer-new-consultation").click()
    await expect(panel.get_by_test_id("customer-consultation")).to_have_count(1)
    # Merge "Fang Wang" (open) into "Wang Fang", found by name.
    await panel.get_by_test_id("merge-into").fill("Wang Fang")
    await panel.get_by_test_id("merge").click()
    await expect(panel.get_by_test_id("customer-title")).to_have_text("Wang Fang")
    await expect(panel.get_by_test_id("customer-consultation")).to_have_count(1)
    await expect(panel.get_by_test_id("customer-notes")).to_have_value("喜欢短甲")
    await panel.get_by_test_id("customers-search").fill("1391234")
    await expect(panel.get_by_test_id("customer")).to_have_count(1)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_owner_deletes_a_photo_a_message_and_the_consultation_from_its_record(
    launch: Launch, server: Any, http: Any, staff: dict[str, str]
) -> None:
    c = await create_consultation(http, staff, customer_name="Lena Park")
    async with http.post(
        f"/api/consultations/{c['id']}/chat-photos",
        params={"id": "p"},
        data=jpeg(120),
        headers={"Authorization": f"Bearer {token_of(c['customer_link'])}",
                 "Content-Type": "image/jpeg"},
    ) as r:  # fmt: skip
        assert r.status == 201
    for text in ("First", "Second"):
        async with http.post(f"/api/consultations/{c['id']}/messages",
                             json={"text": text, "id": text}, headers=staff) as r:  # fmt: skip
            assert r.status == 201
    browser = await launch()
    page = await dashboard(browser, server)
    await page.goto(str(server.make_url(f"/r/{c['id']}")))
    messages = page.get_by_test_id("record-chat-message")
    await expect(messages).to_have_count(3)
    # The photo, from the viewer: it goes with its message.
    await page.get_by_test_id("still").first.click()
    viewer_delete = page.get_by_test_id("viewer-delete")
    await viewer_delete.get_by_test_id("delete").click()
    await viewer_delete.get_by_test_id("confirm-delete-yes").click()
    await expect(messages).to_have_count(2)
    await expect(page.get_by_test_id("still")).to_have_count(0)
    # A message, after its confirmation (no export to offer for one message).
    second = messages.filter(has_text="Second")
    await second.get_by_test_id("delete").click()
    await expect(second.get_by_test_id("export-first")).to_have_count(0)
    await second.get_by_test_id("confirm-delete-yes").click()
    await expect(messages).to_have_count(1)
    await expect(messages).to_contain_text("First")
    # The consultation, offered its export first; then the dashboard.
    box = page.get_by_test_id("record-delete")
    await box.get_by_test_id("delete").click()
    await expect(box.get_by_test_id("export-first")).to_have_attribute(
        "href", f"/api/consultations/{c['id']}/export"
    )
    await box.get_by_test_id("confirm-delete-yes").click()
    await expect(page.get_by_test_id("inbox")).to_be_visible()
    async with http.get(f"/api/consultations/{c['id']}", headers=staff) as r:
        assert r.status == 404
    assert page.errors == []  # type: ignore[attr-defined]
