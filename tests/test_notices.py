"""Customers' email through the real app and a real SMTP server on 127.0.0.1: staff answer
while the customer is away, a burst makes one email, a server that is down and comes back,
an address refused for good, and no SMTP at all."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from consult.app import create_app
from consult.config import Settings

from .browser import LAPTOP, PHONE, Launch, local, open_page, screenshot
from .client import CallClient
from .conftest import STAFF_KEY, create_consultation, make_settings, token_of
from .mail import body_of, email_state, emailing, stylist_says, until
from .smtp import SmtpServer

pytestmark = pytest.mark.timeout(60)

JANE = "jane@example.com"


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpServer) -> Settings:
    return make_settings(tmp_path, **emailing(smtp, timedelta(seconds=0.5)))


async def test_staff_answer_a_customer_who_is_away_in_one_email_with_their_link(
    http: aiohttp.ClientSession, staff: dict[str, str], clients: Any, smtp: SmtpServer
) -> None:
    consultation = await create_consultation(
        http, staff, customer_name="Jane Doe", customer_email=JANE
    )
    assert consultation["customer_email"] == JANE
    await stylist_says(clients, consultation, "Hello Jane", "Nude or red?", "Either works")
    [message] = await smtp.mailbox.wait(1)
    assert message["To"] == JANE
    assert message["From"] == "salon@example.com"
    assert message["Subject"] == "Your salon has answered you"
    text = body_of(message)
    assert "Hello Jane Doe" in text
    assert consultation["customer_link"] in text.split()
    unsubscribe = message["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("http://links.test/u/")
    assert unsubscribe in text
    # The burst made one email: after its window nothing more comes.
    [sent] = await until(http, staff, consultation["id"], lambda e: e[0]["status"] == "sent")
    assert (sent["kind"], sent["recipient"], sent["attempts"]) == ("reply", JANE, 1)
    await asyncio.sleep(1.0)
    assert len(smtp.mailbox.messages) == 1


async def test_no_email_while_the_customer_is_there_nor_for_their_own_messages(
    http: aiohttp.ClientSession, staff: dict[str, str], clients: Any, smtp: SmtpServer
) -> None:
    consultation = await create_consultation(http, staff, customer_email=JANE)
    customer: CallClient = clients("customer", consultation["customer_link"])
    await customer.connect()
    stylist = await stylist_says(clients, consultation, "Hello, I see you")
    await customer.send({"type": "chat", "text": "Hi!", "id": "c1"})
    await customer.expect("chat")
    await customer.close()
    while (await stylist.expect("peer"))["state"] != "left":
        pass
    # Gone now: the next staff message is the one emailed.
    await stylist.send({"type": "chat", "text": "Talk soon", "id": "s-later"})
    await smtp.mailbox.wait(1)
    emails = await until(http, staff, consultation["id"], lambda e: e[0]["status"] == "sent")
    assert len(emails) == 1


async def test_chinese_for_a_chinese_customer(
    http: aiohttp.ClientSession, staff: dict[str, str], clients: Any, smtp: SmtpServer
) -> None:
    consultation = await create_consultation(
        http, staff, customer_name="李娜", customer_email="li@example.cn", customer_language="zh-CN"
    )
    await stylist_says(clients, consultation, "您好")
    [message] = await smtp.mailbox.wait(1)
    assert message["Subject"] == "您的沙龙回复了您"
    text = body_of(message)
    assert text.startswith("李娜")
    assert consultation["customer_link"] in text


async def test_a_server_that_is_down_then_back_gets_the_email_once(
    http: aiohttp.ClientSession, staff: dict[str, str], clients: Any, smtp: SmtpServer
) -> None:
    smtp.stop()
    consultation = await create_consultation(http, staff, customer_email=JANE)
    await stylist_says(clients, consultation, "Your colour is in")
    await until(http, staff, consultation["id"], lambda e: e[0]["attempts"] >= 2)
    [waiting] = (await email_state(http, staff, consultation["id"]))["emails"]
    assert waiting["status"] == "queued"
    assert waiting["error"]  # why it waits: the connection was refused
    smtp.start()
    await smtp.mailbox.wait(1)
    [sent] = await until(http, staff, consultation["id"], lambda e: e[0]["status"] == "sent")
    assert sent["sent_at"]
    await asyncio.sleep(1.0)
    assert len(smtp.mailbox.to(JANE)) == 1


async def test_an_address_refused_for_good_is_failed_shown_and_not_retried(
    http: aiohttp.ClientSession, staff: dict[str, str], clients: Any, smtp: SmtpServer
) -> None:
    smtp.mailbox.refuse.add("nobody@example.com")
    consultation = await create_consultation(http, staff, customer_email="nobody@example.com")
    await stylist_says(clients, consultation, "Are you there?")
    [failed] = await until(http, staff, consultation["id"], lambda e: e[0]["status"] == "failed")
    assert failed["attempts"] == 1
    assert failed["error"].startswith("550")
    async with http.get("/api/consultations", headers=staff) as response:
        [row] = (await response.json())["consultations"]
    assert row["email_undelivered"]["recipient"] == "nobody@example.com"
    assert row["email_undelivered"]["error"].startswith("550")
    # Retries would have come every 0.2 s, doubling: none does.
    await asyncio.sleep(1.5)
    [still] = (await email_state(http, staff, consultation["id"]))["emails"]
    assert (still["status"], still["attempts"]) == ("failed", 1)
    assert smtp.mailbox.messages == []


async def test_without_smtp_nothing_is_queued_and_the_pages_are_told(
    aiohttp_server: Any, tmp_path: Path, staff: dict[str, str]
) -> None:
    server = await aiohttp_server(create_app(make_settings(tmp_path / "plain")))
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        consultation = await create_consultation(http, staff, customer_email=JANE)
        stylist = CallClient(
            http,
            str(server.make_url("/ws").with_query(token=token_of(consultation["stylist_link"]))),
            "stylist",
        )
        await stylist.connect()
        await stylist.send({"type": "chat", "text": "Hello", "id": "s1"})
        await stylist.expect("chat")
        state = await email_state(http, staff, consultation["id"])
        await stylist.close()
    assert state == {
        "configured": False,
        "address": JANE,
        "language": "en",
        "unsubscribed": False,
        "emails": [],
    }


async def test_the_dashboard_takes_the_address_shows_a_refusal_and_the_email_unsubscribes(
    launch: Launch,
    server: Any,
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    clients: Any,
    smtp: SmtpServer,
) -> None:
    smtp.mailbox.refuse.add("gone@example.com")
    browser = await launch()
    page = await open_page(browser, str(server.make_url("/")), LAPTOP)
    await page.get_by_test_id("staff-key").fill(STAFF_KEY)
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("email-not-configured")).to_be_hidden()
    # A bad address: a clear message, and nothing created.
    await page.get_by_test_id("customer-name").fill("Mei Lin")
    await page.get_by_test_id("customer-email").fill("mei@example")
    await page.get_by_test_id("create").click()
    await expect(page.get_by_test_id("create-message")).to_contain_text("cannot receive mail")
    await expect(page.get_by_test_id("consultation-row")).to_have_count(0)
    await page.get_by_test_id("customer-email").fill("gone@example.com")
    await page.get_by_test_id("customer-language").select_option("zh-CN")
    await page.get_by_test_id("create").click()
    row = page.get_by_test_id("consultation-row")
    await expect(row.get_by_test_id("row-email")).to_have_text("gone@example.com")
    [consultation] = (await (await http.get("/api/consultations", headers=staff)).json())[
        "consultations"
    ]
    assert consultation["customer_language"] == "zh-CN"
    await stylist_says(clients, consultation, "您好")
    await until(http, staff, consultation["id"], lambda e: e[0]["status"] == "failed")
    await page.reload()
    await expect(row.get_by_test_id("email-undelivered")).to_contain_text(
        "Email to gone@example.com could not be delivered: 550"
    )
    await row.scroll_into_view_if_needed()
    await screenshot(page, "dashboard-email-undelivered")
    record = str(server.make_url(f"/r/{consultation['id']}"))
    await page.goto(record)
    await expect(page.get_by_test_id("email-undelivered")).to_contain_text("gone@example.com")
    await page.go_back()
    # Corrected from the row: the next answer reaches the customer, in Chinese.
    page.once("dialog", lambda dialog: dialog.accept("mei@example.com"))
    await row.get_by_test_id("edit-email").click()
    await expect(row.get_by_test_id("row-email")).to_have_text("mei@example.com")
    await expect(row.get_by_test_id("email-undelivered")).to_have_count(0)
    await stylist_says(clients, consultation, "颜色到了")
    [message] = await smtp.mailbox.wait(1)
    assert message["To"] == "mei@example.com"
    assert message["Subject"] == "您的沙龙回复了您"
    # The email's unsubscribe link, opened in the browser: asked, then done.
    unsubscribe = local(server, message["List-Unsubscribe"].strip("<>"))
    customer = await open_page(browser, unsubscribe, PHONE)
    await customer.get_by_test_id("unsubscribe").click()
    await expect(customer.get_by_test_id("unsubscribed")).to_be_visible()
    assert (await email_state(http, staff, consultation["id"]))["unsubscribed"]
    await page.goto(record)
    await expect(page.get_by_test_id("record-email")).to_contain_text("unsubscribed")
    await browser.close()


class TestWithoutLastingLinks:
    """Customers' links that end at their expiry, as the stylist's do
    (CONSULT_LINK_IDLE_MONTHS=0); lasting links: tests/test_store.py."""

    @pytest.fixture
    def settings(self, tmp_path: Path, smtp: SmtpServer) -> Settings:
        return make_settings(tmp_path, link_idle=None, **emailing(smtp, timedelta(seconds=0.5)))

    async def test_an_email_after_the_customers_link_expired_carries_a_new_one(
        self,
        http: aiohttp.ClientSession,
        staff: dict[str, str],
        clients: Any,
        smtp: SmtpServer,
        settings: Settings,
    ) -> None:
        consultation = await create_consultation(http, staff, customer_email=JANE)
        # Seven days later: the customer's link has expired.
        with sqlite3.connect(settings.data_dir / "consult.db") as db:
            db.execute(
                "UPDATE links SET expires_at = '2000' || substr(expires_at, 5)"
                " WHERE role = 'customer'"
            )
        await stylist_says(clients, consultation, "Your appointment is confirmed")
        [message] = await smtp.mailbox.wait(1)
        [link] = [word for word in body_of(message).split() if "/c/" in word]
        assert link != consultation["customer_link"]
        async with http.get(local_path(link)) as response:
            assert response.status == 200  # it opens the customer's page
        async with http.get(local_path(consultation["customer_link"])) as response:
            assert response.status == 404
        async with http.get(f"/api/consultations/{consultation['id']}", headers=staff) as response:
            now = await response.json()
        # The dashboard shows the new link; the stylist's is the one it was.
        assert (now["customer_link"], now["stylist_link"]) == (link, consultation["stylist_link"])


def local_path(link: str) -> str:
    return link.removeprefix("http://links.test")
