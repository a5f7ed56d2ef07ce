"""The customer's conversation page with no call and the staff inbox, in Chromium: a customer
writes with no call running, the inbox shows it live with its count, staff answer from the
inbox, the customer's page shows the answer and the staff page the read receipt; quick replies
from the settings page, in the inbox and the console; search; the notification, the sound and
the count in the tab's title."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from .attachment_media import pdf, voice_webm
from .browser import LAPTOP, PHONE, Launch, local, open_page, ready_to_join, screenshot
from .conftest import STAFF_KEY, create_consultation, token_of
from .fake_camera import HANDS

pytestmark = pytest.mark.timeout(180)

#: Counts what a page asked of the camera, the notifications it showed, the tones it played.
WATCH = Path(__file__).with_name("watch_pages.js")
PHOTO = HANDS / "thumb_up_blue_bg_640x521.jpg"


async def watched(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("() => window.__watch")
    return result


async def signed_in_staff(browser: Any, server: Any) -> Page:
    context = await browser.new_context(viewport=LAPTOP)
    await context.grant_permissions(["notifications"], origin=str(server.make_url("")).rstrip("/"))
    page = await context.new_page()
    await page.add_init_script(path=str(WATCH))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(str(server.make_url("/")))
    await page.get_by_test_id("staff-key").fill(STAFF_KEY)
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("inbox")).to_be_visible()
    return page


async def test_a_customer_writes_with_no_call_and_staff_answer_from_the_inbox(
    launch: Launch, server: Any, http: Any, staff: dict[str, str]
) -> None:
    consultation = await create_consultation(
        http, staff, customer_name="Mei Lin", customer_ref="C-77"
    )
    await create_consultation(http, staff, customer_name="Someone Else")
    browser = await launch()
    staff_page = await signed_in_staff(browser, server)
    items = staff_page.get_by_test_id("inbox-item")
    await expect(items).to_have_count(2)
    await expect(staff_page.get_by_test_id("inbox-unread")).to_have_count(0)

    customer = await open_page(
        browser, local(server, consultation["customer_link"]), PHONE, scripts=(WATCH,)
    )
    # The link opens the conversation: no lobby, and the camera is not asked for.
    await expect(customer.get_by_test_id("conversation")).to_be_visible()
    await expect(customer.get_by_test_id("lobby")).to_be_hidden()
    await expect(customer.get_by_test_id("join-call")).to_be_visible()
    await customer.get_by_test_id("chat-input").fill("Hello! Can I come at 3?")
    await customer.get_by_test_id("chat-send").click()
    mine = customer.get_by_test_id("chat-message").filter(has_text="Can I come at 3?")
    await expect(mine).not_to_contain_text("Sending")
    assert (await watched(customer))["camera"] == 0

    # Live in the inbox: first, with its count and the last message; the title counts too.
    first = items.first
    await expect(first).to_contain_text("Mei Lin (C-77)")
    await expect(first.get_by_test_id("inbox-unread")).to_have_text("1")
    await expect(first.get_by_test_id("inbox-last")).to_have_text("Hello! Can I come at 3?")
    await expect(staff_page).to_have_title("(1) consult")
    alerts = await watched(staff_page)
    assert alerts["notifications"] == ["New message from Mei Lin"] and alerts["tones"] >= 1
    await screenshot(staff_page, "inbox-unread-laptop")

    # Staff open it (which reads it: the customer sees "Read") and answer from the inbox.
    await first.click()
    conversation = staff_page.get_by_test_id("inbox-conversation")
    await expect(conversation.get_by_test_id("chat-message")).to_contain_text(
        ["Hello! Can I come at 3?"]
    )
    await expect(staff_page.get_by_test_id("inbox-unread")).to_have_count(0)
    await expect(staff_page).to_have_title("consult")
    await expect(mine.locator("[data-read=true]")).to_be_visible()
    await staff_page.get_by_test_id("inbox-reply").fill("Yes, 3pm is free.")
    await staff_page.get_by_test_id("inbox-send").click()

    # The customer's page shows the answer and reads it; the staff page shows the receipt.
    answer = customer.get_by_test_id("chat-message").filter(has_text="Yes, 3pm is free.")
    await expect(answer).to_be_visible()
    sent = conversation.get_by_test_id("chat-message").filter(has_text="Yes, 3pm is free.")
    await expect(sent.locator("[data-read=true]")).to_contain_text("Read")
    await expect(first.get_by_test_id("inbox-last")).to_have_text("You: Yes, 3pm is free.")
    await screenshot(staff_page, "inbox-answered-laptop")
    await screenshot(customer, "customer-conversation-phone")

    # A photo from the conversation: in the open conversation at once, stored like a still.
    await customer.get_by_test_id("chat-photo-input").set_input_files(str(PHOTO))
    await expect(conversation.get_by_test_id("chat-photo")).to_be_visible()
    await expect(first.get_by_test_id("inbox-last")).to_have_text("Photo")
    await expect(customer.get_by_test_id("chat-photo")).to_be_visible()
    # A voice message and a file say what they are in the inbox: live, and in a fresh page.
    as_customer = {"Authorization": f"Bearer {token_of(consultation['customer_link'])}"}
    for kind, data, media_type, summary in (
        ("voice", voice_webm(1.0), "audio/webm", "Voice message"),
        ("file", pdf(), "application/pdf", "File"),
    ):
        async with http.post(
            f"/api/consultations/{consultation['id']}/attachments",
            params={"kind": kind, "id": kind},
            data=data,
            headers=as_customer | {"Content-Type": media_type},
        ) as r:
            assert r.status == 201, await r.text()
        await expect(first.get_by_test_id("inbox-last")).to_have_text(summary)
    await staff_page.reload()
    await expect(items.first.get_by_test_id("inbox-last")).to_have_text("File")

    # Search by name or reference.
    await staff_page.get_by_test_id("inbox-search").fill("c-77")
    await expect(items).to_have_count(1)
    await staff_page.get_by_test_id("inbox-search").fill("else")
    await expect(items).to_have_count(1)
    await expect(items).to_contain_text("Someone Else")
    await staff_page.get_by_test_id("inbox-search").fill("nobody-like-this")
    await expect(items).to_have_count(0)
    await expect(staff_page.get_by_test_id("inbox-empty")).to_be_visible()

    # From the conversation the call is one tap away: today's lobby and call; and back.
    await ready_to_join(customer)
    assert (await watched(customer))["camera"] >= 1
    await customer.get_by_test_id("join").click()
    await expect(customer.get_by_test_id("call")).to_be_visible()
    await customer.get_by_test_id("leave").click()
    await customer.get_by_test_id("back-to-conversation").click()
    await expect(customer.get_by_test_id("conversation")).to_be_visible()
    await expect(answer).to_be_visible()
    assert customer.errors == [] and staff_page.errors == []  # type: ignore[attr-defined]
    await browser.close()


async def test_quick_replies_are_kept_in_settings_and_inserted_in_inbox_and_console(
    launch: Launch, server: Any, http: Any, staff: dict[str, str], consultation: dict[str, Any]
) -> None:
    browser = await launch()
    page = await signed_in_staff(browser, server)
    await page.get_by_test_id("settings-link").click()
    replies = page.get_by_test_id("quick-reply-item")
    for count, text in enumerate(("See you soon!", "We open at 9."), 1):
        await page.get_by_test_id("quick-text").fill(text)
        await page.get_by_test_id("quick-save").click()
        await expect(replies).to_have_count(count)
    await replies.first.get_by_test_id("quick-edit").click()
    await page.get_by_test_id("quick-text").fill("See you very soon!")
    await page.get_by_test_id("quick-save").click()
    await expect(replies.first).to_contain_text("See you very soon!")
    await replies.last.get_by_test_id("quick-delete").click()
    await expect(replies).to_have_count(1)
    await screenshot(page, "settings-laptop")

    # In the inbox: a click puts it in the reply; sent, it is an ordinary message.
    await page.get_by_test_id("dashboard-link").click()
    await page.get_by_test_id("inbox-item").first.click()
    await page.get_by_test_id("inbox-conversation").get_by_test_id("quick-reply").click()
    await expect(page.get_by_test_id("inbox-reply")).to_have_value("See you very soon!")
    await page.get_by_test_id("inbox-send").click()
    sent = page.get_by_test_id("inbox-conversation").get_by_test_id("chat-message")
    await expect(sent).to_have_count(1)
    await expect(sent).not_to_contain_text("Sending")
    async with http.get(f"/api/consultations/{consultation['id']}/messages", headers=staff) as r:
        history = (await r.json())["history"]
    assert [(m["from"], m["text"]) for m in history if m["type"] == "chat"] == [
        ("stylist", "See you very soon!")
    ]

    # In the console's chat too.
    stylist = await open_page(browser, local(server, consultation["stylist_link"]), LAPTOP)
    await ready_to_join(stylist)
    await stylist.get_by_test_id("join").click()
    await stylist.get_by_test_id("quick-replies").get_by_test_id("quick-reply").click()
    await expect(stylist.get_by_test_id("chat-input")).to_have_value("See you very soon!")
    assert page.errors == [] and stylist.errors == []  # type: ignore[attr-defined]
    await browser.close()


async def test_the_inbox_keeps_the_newest_unread_count_whatever_order_its_events_arrive_in(
    launch: Launch, server: Any, http: Any, staff: dict[str, str]
) -> None:
    """Events are computed after their changes and may arrive out of order (two nodes, two
    requests at once): here the network holds a new message's event until the read that
    follows it has been delivered, as a late event would come."""
    consultation = await create_consultation(http, staff, customer_name="Out Of Order")
    browser = await launch()
    page = await signed_in_staff(browser, server)
    held: list[str] = []
    holding = asyncio.Event()

    def route(ws: WebSocketRoute) -> None:
        to_server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            event = json.loads(message)
            if event["type"] == "message" and not held:
                held.append(str(message))
                holding.set()
                return
            ws.send(message)
            if event["type"] == "read" and held:
                ws.send(held.pop())

        to_server.on_message(from_server)

    await page.route_web_socket("**/ws/inbox", route)
    await page.reload()  # the inbox's socket, through the route
    item = page.get_by_test_id("inbox-item").filter(has_text="Out Of Order")
    await expect(item).to_have_count(1)
    async with http.post(
        f"/api/consultations/{consultation['id']}/attachments",
        params={"kind": "file", "id": "f"},
        data=pdf(),
        headers={"Authorization": f"Bearer {token_of(consultation['customer_link'])}",
                 "Content-Type": "application/pdf"},
    ) as r:  # fmt: skip
        assert r.status == 201, await r.text()
    await holding.wait()
    async with http.post(
        f"/api/consultations/{consultation['id']}/read", json={"seq": 1}, headers=staff
    ) as r:
        assert r.status == 200 and (await r.json())["unread"] == 0
    # The message (late, and older than the read) is shown; its unread count is not.
    await expect(item.get_by_test_id("inbox-last")).to_have_text("File")
    await expect(page.get_by_test_id("inbox-total")).to_be_hidden()
    await expect(item.get_by_test_id("inbox-unread")).to_have_count(0)
    await expect(page).to_have_title("consult")
    assert page.errors == []  # type: ignore[attr-defined]
    await browser.close()
