"""The outbox's sender against a real SMTP server on 127.0.0.1: one node at a time, and mail
queued when the service stops that the next start sends once. (Reminders: test_reminders.py.)"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from consult.config import Settings
from consult.mail.notices import Notices
from consult.mail.policy import RetryPolicy
from consult.mail.sender import MailSender
from consult.mail.smtp import SmtpServer as Smtp
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key
from consult.salon import Hours, Salon

from .client import CallClient
from .clock import Clock
from .conftest import STAFF_KEY, make_settings, token_of
from .datafolder import sqlite_url
from .mail import SALON
from .process import free_port, start_serve, wait_healthy
from .smtp import SmtpServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(sqlite_url(tmp_path), TokenSealer(load_seal_key(tmp_path)))
    await store.set_salon(Salon(Hours("Asia/Shanghai", {})))
    yield store
    await store.close()


def node(store: Store, settings: Settings, smtp: SmtpServer, clock: Clock) -> MailSender:
    """One node's sender, run by hand (``run_once``) on the test's clock."""
    notices = Notices(store, settings, clock)
    return MailSender(store, notices, Smtp.parse(smtp.url), SALON, RetryPolicy(), clock)


async def test_one_node_at_a_time_sends_and_another_takes_over(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    settings = make_settings(
        tmp_path, smtp_url=smtp.url, mail_from=SALON, mail_coalesce=timedelta(0)
    )
    other_store = await Store.open(sqlite_url(tmp_path), TokenSealer(load_seal_key(tmp_path)))
    clock = Clock(datetime.now(UTC))
    a = node(store, settings, smtp, clock)
    b = node(other_store, settings, smtp, clock)
    try:
        consultation, _ = await store.create_consultation(
            customer_name="Jane", customer_email="jane@example.com", link_ttl=timedelta(days=7)
        )
        notices = Notices(store, settings, clock)
        await notices.staff_answered(consultation.id)
        sent = await asyncio.gather(a.run_once(), b.run_once())
        assert sorted(sent) == [0, 1]
        assert len(smtp.mailbox.messages) == 1
        # The holder stops (and lets go): the other node sends the next one.
        holder, other = (a, b) if sent[0] == 1 else (b, a)
        await holder.close()
        await notices.staff_answered(consultation.id)
        assert await other.run_once() == 1
        assert len(smtp.mailbox.messages) == 2
    finally:
        await a.close()
        await b.close()
        await other_store.close()


async def test_mail_queued_when_the_service_stops_is_sent_once_after_a_restart(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    smtp.stop()
    data, port = tmp_path / "data", free_port()
    environment = {
        "CONSULT_STAFF_KEY": STAFF_KEY,
        "CONSULT_SMTP_URL": smtp.url,
        "CONSULT_MAIL_FROM": SALON,
        "CONSULT_MAIL_COALESCE": "0s",
        "CONSULT_MAIL_RETRY": "1s",
    }
    base = f"http://127.0.0.1:{port}"
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    proc = start_serve(data, port, environment=environment)
    try:
        await wait_healthy(port)
        async with aiohttp.ClientSession(base_url=base) as http:
            body = {"customer_name": "Jane", "customer_email": "jane@example.com"}
            async with http.post("/api/consultations", json=body, headers=staff) as response:
                assert response.status == 201
                consultation = await response.json()
            url = f"{base}/ws?token={token_of(consultation['stylist_link'])}"
            stylist = CallClient(http, url, "stylist")
            await stylist.connect()
            await stylist.send({"type": "chat", "text": "Your colour is in", "id": "s1"})
            await stylist.expect("chat")
            await stylist.close()
            # Tried once against the server that is down; then the service stops.
            path = f"/api/consultations/{consultation['id']}"
            async with asyncio.timeout(20):
                while True:
                    async with http.get(path, headers=staff) as response:
                        emails = (await response.json())["email"]["emails"]
                    if emails and emails[0]["attempts"] >= 1:
                        break
                    await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        smtp.start()
        proc = start_serve(data, port, environment=environment)
        await wait_healthy(port)
        await smtp.mailbox.wait(1)
        async with aiohttp.ClientSession(base_url=base) as http, asyncio.timeout(20):
            while True:
                async with http.get(path, headers=staff) as response:
                    [email] = (await response.json())["email"]["emails"]
                if email["status"] == "sent":
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        assert len(smtp.mailbox.messages) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
