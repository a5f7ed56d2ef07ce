"""Unsubscribing: the link in each email asks to confirm on GET, unsubscribes on POST (the
page's button or a mail program's one-click), and the address gets no more emails."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from consult.config import Settings

from .conftest import create_consultation, make_settings
from .mail import email_state, emailing, stylist_says, until
from .smtp import SmtpServer

pytestmark = pytest.mark.timeout(60)

JANE = "jane@example.com"


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpServer) -> Settings:
    return make_settings(tmp_path, **emailing(smtp))


async def test_unsubscribe_from_the_link_and_get_no_more_email(
    http: aiohttp.ClientSession, staff: dict[str, str], clients: Any, smtp: SmtpServer
) -> None:
    consultation = await create_consultation(http, staff, customer_email=JANE)
    stylist = await stylist_says(clients, consultation, "Hello")
    [message] = await smtp.mailbox.wait(1)
    path = urlsplit(message["List-Unsubscribe"].strip("<>")).path
    async with http.get(path) as response:
        assert response.status == 200
        page = await response.text()
    assert 'method="post"' in page
    assert 'data-testid="unsubscribe"' in page
    # Asking is not unsubscribing: a mail scanner that opens the link changes nothing.
    assert not (await email_state(http, staff, consultation["id"]))["unsubscribed"]
    # A mail program's one-click unsubscribe (RFC 8058).
    async with http.post(path, data={"List-Unsubscribe": "One-Click"}) as response:
        assert response.status == 200
        assert 'data-testid="unsubscribed"' in await response.text()
    async with http.get(path) as response:
        assert 'data-testid="unsubscribed"' in await response.text()
    assert (await email_state(http, staff, consultation["id"]))["unsubscribed"]
    # Two more messages: the first one's email would be queued before the second is stored.
    for i, text in enumerate(["Are you there?", "Hello?"]):
        await stylist.send({"type": "chat", "text": text, "id": f"again-{i}"})
        await stylist.expect("chat")
    emails = (await email_state(http, staff, consultation["id"]))["emails"]
    assert [e["status"] for e in emails] == ["sent"]
    # Another consultation for the same address: still nothing.
    other = await create_consultation(http, staff, customer_email=JANE)
    await stylist_says(clients, other, "New appointment", "Hello?")
    assert (await email_state(http, staff, other["id"]))["emails"] == []
    assert len(smtp.mailbox.messages) == 1


async def test_email_waiting_when_the_customer_unsubscribes_is_never_sent(
    http: aiohttp.ClientSession, staff: dict[str, str], clients: Any, smtp: SmtpServer
) -> None:
    # A first email (sent) gives the address its link; the next one waits for a server
    # that is down.
    consultation = await create_consultation(http, staff, customer_email=JANE)
    await stylist_says(clients, consultation, "Hello")
    [message] = await smtp.mailbox.wait(1)
    await until(http, staff, consultation["id"], lambda e: e[0]["status"] == "sent")
    smtp.stop()
    await stylist_says(clients, consultation, "One more thing")
    await until(http, staff, consultation["id"], lambda e: e[0]["attempts"] >= 1)
    path = urlsplit(message["List-Unsubscribe"].strip("<>")).path
    async with http.post(path) as response:
        assert response.status == 200
    emails = await until(http, staff, consultation["id"], lambda e: e[0]["status"] == "cancelled")
    assert emails[0]["error"] == "unsubscribed"
    smtp.start()
    # Its next retry would have come within a second.
    await asyncio.sleep(1.5)
    assert len(smtp.mailbox.messages) == 1


async def test_an_unknown_token_is_the_invalid_link_page(http: aiohttp.ClientSession) -> None:
    for method in ("GET", "POST"):
        async with http.request(method, "/u/not-a-token") as response:
            assert response.status == 404
            assert "invalid.title" in await response.text()
