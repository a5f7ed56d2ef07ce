"""An appointment's reminders: when each is due, in the salon's time zone (pure); then as due
work on a clock the test moves, through a real SMTP server and the conversation: each sent
once, across a restart too, moved and cancelled with the appointment."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from consult.conversation import Conversations
from consult.due import DueRunner
from consult.mail.notices import Notices
from consult.mail.policy import RetryPolicy
from consult.mail.reminders import ReminderPlan, remind_at, reminder_times, still_useful
from consult.mail.sender import MailSender
from consult.mail.smtp import SmtpServer as Smtp
from consult.recording.due import DueWork
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key
from consult.reminders import CHAT, EMAIL, Reminders, reminder_prefix
from consult.salon import Hours, Salon

from .clock import Clock
from .conftest import STAFF_KEY, make_settings
from .datafolder import sqlite_url
from .mail import SALON, body_of
from .process import free_port, start_serve, wait_healthy
from .smtp import SmtpServer

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
APPOINTMENT = datetime(2026, 12, 2, 15, 0, tzinfo=SHANGHAI)
BOOKED = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
PLAN = ReminderPlan()
LI = "li@example.cn"


def local(day: int, hour: int, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=zone)


def test_the_day_before_at_ten_and_fifteen_minutes_before() -> None:
    assert reminder_times(APPOINTMENT, BOOKED, SHANGHAI, PLAN) == {
        "day-before": local(1, 10),
        "before": local(2, 14, 45),
    }
    plan = ReminderPlan(day_before=time(18, 30), before=timedelta(hours=1))
    assert reminder_times(APPOINTMENT, BOOKED, SHANGHAI, plan) == {
        "day-before": local(1, 18, 30),
        "before": local(2, 14),
    }
    assert reminder_times(APPOINTMENT, BOOKED, SHANGHAI, ReminderPlan(None, None)) == {}


def test_the_day_is_the_salons_not_utcs() -> None:
    # 01:00 in Shanghai on the 2nd is 17:00 UTC on the 1st: the day before is still the 1st.
    early = datetime(2026, 12, 2, 1, 0, tzinfo=SHANGHAI)
    assert remind_at(early, SHANGHAI) == local(1, 10)
    # The same instant seen from London is the evening of the 1st: the day before is the 30th.
    assert remind_at(early, LONDON) == datetime(2026, 11, 30, 10, 0, tzinfo=LONDON)


def test_none_due_before_the_booking_and_none_too_late() -> None:
    # Booked the evening before: only the one shortly before.
    assert reminder_times(APPOINTMENT, local(1, 18), SHANGHAI, PLAN) == {"before": local(2, 14, 45)}
    # Booked ten minutes before: none.
    assert reminder_times(APPOINTMENT, local(2, 14, 50), SHANGHAI, PLAN) == {}
    # Run late (the service was down): the day before's until two hours before, the other
    # until the appointment.
    assert still_useful("day-before", APPOINTMENT, local(2, 12, 59))
    assert not still_useful("day-before", APPOINTMENT, local(2, 13))
    assert still_useful("before", APPOINTMENT, local(2, 14, 59))
    assert not still_useful("before", APPOINTMENT, local(2, 15))


def test_across_a_daylight_saving_change() -> None:
    # London goes back to GMT on 25 October 2026: the reminder stays at 10:00 local.
    appointment = datetime(2026, 10, 26, 9, 0, tzinfo=LONDON)
    at = remind_at(appointment, LONDON)
    assert (at.hour, at.day, at.utcoffset()) == (10, 25, timedelta(0))
    # Fifteen minutes before is fifteen real minutes, whatever the clocks did overnight.
    times = reminder_times(appointment, datetime(2026, 10, 1, tzinfo=UTC), LONDON, PLAN)
    assert appointment - times["before"] == timedelta(minutes=15)


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day.astimezone(SHANGHAI).date(), time(hour, minute), tzinfo=SHANGHAI)


@dataclass
class Node:
    """One node's reminders, due work and outbox sender, run by hand on the test's clock."""

    store: Store
    reminders: Reminders
    runner: DueRunner
    sender: MailSender
    conversations: Conversations

    async def run(self) -> int:
        """Run what is due and send the email it queued; how many due items ran."""
        ran = await self.runner.run_once()
        await self.sender.run_once()
        return ran

    async def close(self) -> None:
        await self.sender.close()
        await self.runner.close()
        await self.conversations.close()


def node(store: Store, tmp_path: Path, smtp: SmtpServer, clock: Clock) -> Node:
    settings = make_settings(tmp_path, smtp_url=smtp.url, mail_from=SALON)
    notices = Notices(store, settings, clock)
    conversations = Conversations(store)
    work = DueWork(store.database)
    reminders = Reminders(store, work, notices, conversations, settings, clock)
    handlers = {EMAIL: reminders.send_email, CHAT: reminders.post_message}
    runner = DueRunner(store.database, handlers, node="n", clock=clock, work=work)
    sender = MailSender(store, notices, Smtp.parse(smtp.url), SALON, RetryPolicy(), clock)
    return Node(store, reminders, runner, sender, conversations)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(sqlite_url(tmp_path), TokenSealer(load_seal_key(tmp_path)))
    await store.set_salon(Salon(Hours("Asia/Shanghai", {})))
    yield store
    await store.close()


async def reminder_texts(store: Store, consultation_id: str) -> list[str]:
    return [m.text for m in await store.messages(consultation_id) if m.sender == "stylist"]


async def test_reminders_go_once_each_by_email_and_in_the_conversation_across_a_restart(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    # Ten days from now (booked now, by the real clock), 15:00 in Shanghai.
    appointment = at(datetime.now(SHANGHAI) + timedelta(days=10), 15)
    day_before = appointment - timedelta(days=1)
    consultation, links = await store.create_consultation(
        customer_name="Li Na",
        scheduled_at=appointment,
        customer_email=LI,
        link_ttl=timedelta(days=30),
    )
    clock = Clock(datetime.now(UTC))
    first = node(store, tmp_path, smtp, clock)
    # Made with `consult create`, with no service running: found at the start.
    assert await first.reminders.reconcile() == 4
    assert await first.reminders.reconcile() == 0
    clock.now = at(day_before, 9, 59)
    assert await first.run() == 0
    clock.now = at(day_before, 10, 0)
    assert await first.run() == 2
    [message] = smtp.mailbox.messages
    assert message["To"] == LI
    assert message["Subject"] == "Reminder: your appointment tomorrow at 15:00"
    text = body_of(message)
    weekday = appointment.strftime("%A")
    assert f"{weekday} {appointment.day} {appointment:%B} at 15:00" in text
    assert f"http://links.test/c/{links.customer}" in text
    [chat] = await reminder_texts(store, consultation.id)
    assert chat.startswith("A reminder: your consultation is tomorrow") and "15:00" in chat
    clock.now = at(day_before, 10, 5)
    assert await first.run() == 0
    await first.close()

    # A restart: a new store and node on the same database; nothing goes again.
    reopened = await Store.open(sqlite_url(tmp_path), TokenSealer(load_seal_key(tmp_path)))
    second = node(reopened, tmp_path, smtp, clock)
    try:
        assert await second.reminders.reconcile() == 0
        clock.now = at(day_before, 18, 0)
        assert await second.run() == 0
        clock.now = appointment - timedelta(minutes=15)
        assert await second.run() == 2
        assert smtp.mailbox.messages[1]["Subject"] == "Your consultation starts at 15:00"
        assert len(await reminder_texts(reopened, consultation.id)) == 2
        clock.now = appointment + timedelta(minutes=1)
        assert await second.run() == 0
    finally:
        await second.close()
        await reopened.close()
    assert len(smtp.mailbox.messages) == 2


async def test_moved_and_cancelled_appointments_move_and_cancel_their_reminders(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    appointment = at(datetime.now(SHANGHAI) + timedelta(days=10), 15)
    clock = Clock(datetime.now(UTC))
    n = node(store, tmp_path, smtp, clock)
    try:
        c, _ = await store.create_consultation(
            customer_name="Li", scheduled_at=appointment, customer_email=LI, link_ttl=timedelta(30)
        )
        assert await n.reminders.schedule(c) == 4
        # Moved a day later: the old time's reminders are gone, the new time's due.
        later = appointment + timedelta(days=1)
        c = await store.update_consultation(c.id, {"scheduled_at": later})
        assert await n.reminders.schedule(c) == 4
        due = await n.runner.work.items(prefix=reminder_prefix(c.id))
        assert {i.due_at for i in due} == {
            at(later - timedelta(days=1), 10),
            later - timedelta(minutes=15),
        }
        clock.now = at(appointment - timedelta(days=1), 10)
        assert await n.run() == 0
        clock.now = at(later - timedelta(days=1), 10)
        assert await n.run() == 2
        # Cancelled: what is left of them goes nowhere.
        c = await store.update_consultation(c.id, {"scheduled_at": None})
        assert await n.reminders.schedule(c) == 0
        assert [
            i.done_at is not None for i in await n.runner.work.items(prefix=reminder_prefix(c.id))
        ] == [True, True]
        clock.now = later
        assert await n.run() == 0
        assert len(smtp.mailbox.messages) == 1
        # No address: the conversation's message only.
        clock.now = datetime.now(UTC)
        other, _ = await store.create_consultation(
            customer_name="No address", scheduled_at=appointment, link_ttl=timedelta(30)
        )
        await n.reminders.schedule(other)
        # Both due at once (the service was down the day before): the late one is dropped.
        clock.now = appointment - timedelta(minutes=15)
        assert await n.run() == 4
        assert len(smtp.mailbox.messages) == 1
        assert len(await reminder_texts(store, other.id)) == 1
    finally:
        await n.close()


async def test_a_server_killed_in_the_middle_of_its_schedule_loses_and_repeats_nothing(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    """Eight appointments whose reminders fall due over a few seconds; the server is killed
    (SIGKILL) while they do, and started again: each customer gets one email and one message."""
    data, port = tmp_path / "data", free_port()
    environment = {
        "CONSULT_STAFF_KEY": STAFF_KEY,
        "CONSULT_SMTP_URL": smtp.url,
        "CONSULT_MAIL_FROM": SALON,
        "CONSULT_MAIL_RETRY": "1s",
        "CONSULT_REMINDER_DAY_BEFORE": "off",
        "CONSULT_REMINDER_BEFORE": "15m",
    }
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    base = f"http://127.0.0.1:{port}"
    count, spacing = 8, timedelta(seconds=1.5)
    proc = start_serve(data, port, environment=environment)
    try:
        await wait_healthy(port)
        async with aiohttp.ClientSession(base_url=base) as http:
            ids = []
            first = datetime.now(UTC) + timedelta(minutes=15, seconds=2)
            for i in range(count):
                body = {
                    "customer_name": f"Customer {i}",
                    "customer_email": f"c{i}@example.com",
                    "scheduled_at": (first + spacing * i).isoformat(),
                }
                async with http.post("/api/consultations", json=body, headers=staff) as r:
                    assert r.status == 201, await r.text()
                    ids.append((await r.json())["id"])
            # Killed while the schedule runs, some reminders sent, some not yet due: between
            # two sends (killed as the SMTP server takes one, before the store records it, the
            # next start would hand it over again: docs/operations.md, The outbox).
            await smtp.mailbox.wait(2, timeout=30)
            await asyncio.sleep(spacing.total_seconds() / 2)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            before_kill = len(smtp.mailbox.messages)
            assert before_kill < count
            proc = start_serve(data, port, environment=environment)
            await wait_healthy(port)
            await smtp.mailbox.wait(count, timeout=60)

            async def reminders(consultation_id: str) -> list[dict[str, Any]]:
                path = f"/api/consultations/{consultation_id}/messages"
                async with http.get(path, headers=staff) as r:
                    assert r.status == 200
                    history = (await r.json())["history"]
                return [m for m in history if m.get("id", "").startswith("reminder:")]

            # The messages go with the emails (one runner pass); a moment more for anything
            # that would go twice. (Few requests: the server's log is a pipe nobody reads.)
            await asyncio.sleep(3)
            for consultation_id in ids:
                assert len(await reminders(consultation_id)) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    # One email each, none twice.
    by_recipient: dict[str, set[str]] = {}
    for message in smtp.mailbox.messages:
        by_recipient.setdefault(str(message["To"]), set()).add(str(message["Message-ID"]))
    assert sorted(by_recipient) == sorted(f"c{i}@example.com" for i in range(count))
    assert all(len(found) == 1 for found in by_recipient.values())
    assert len(smtp.mailbox.messages) == count
