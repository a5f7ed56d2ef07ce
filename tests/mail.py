"""What the email tests share: the consultation's emails as the API shows them, waiting for
them, and a stylist who writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import aiohttp

from .client import CallClient
from .smtp import SmtpServer

#: The From address of the test servers' emails.
SALON = "salon@example.com"


def emailing(smtp: SmtpServer, coalesce: timedelta = timedelta(0)) -> dict[str, Any]:
    """Settings for a server that emails through ``smtp`` and retries within a fraction of a
    second."""
    return {
        "smtp_url": smtp.url,
        "mail_from": SALON,
        "mail_coalesce": coalesce,
        "mail_retry": timedelta(seconds=0.2),
    }


async def email_state(
    http: aiohttp.ClientSession, staff: dict[str, str], consultation_id: str
) -> dict[str, Any]:
    async with http.get(f"/api/consultations/{consultation_id}", headers=staff) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body["email"]  # type: ignore[no-any-return]


async def until(
    http: aiohttp.ClientSession,
    staff: dict[str, str],
    consultation_id: str,
    done: Callable[[list[dict[str, Any]]], bool],
) -> list[dict[str, Any]]:
    """The consultation's emails (newest first), once there are some and ``done`` says so."""
    async with asyncio.timeout(20):
        while True:
            emails: list[dict[str, Any]] = (await email_state(http, staff, consultation_id))[
                "emails"
            ]
            if emails and done(emails):
                return emails
            await asyncio.sleep(0.05)


async def stylist_says(clients: Any, consultation: dict[str, Any], *texts: str) -> CallClient:
    stylist: CallClient = clients("stylist", consultation["stylist_link"])
    await stylist.connect()
    for i, text in enumerate(texts):
        await stylist.send({"type": "chat", "text": text, "id": f"s{i}-{text}"})
        await stylist.expect("chat")
    return stylist


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())
