#!/usr/bin/env python3
"""What customers' email costs the service: reminders as due work (scheduled, run: queued as
email and posted in the conversation), the runner's look when nothing is due, and sending
through a real SMTP server on 127.0.0.1 (aiosmtpd).

- ``--consultations`` appointments with an address spread over the next two days:
  ``schedule_per_appointment_ms``, their reminders put as due work (``Reminders.reconcile``,
  as at a start); at 10:30 the runner runs the day-before reminders due (today's and
  tomorrow's; each email made, with a new customer link as theirs is missing, and each
  message posted), ``run_per_reminder_ms``;
- ``steady_look_ms``: the runner's look once they are done, nothing due (median and max of
  ``--rounds``);
- ``send``: the sender handing them all to the SMTP server, one connection each (as it does),
  emails per second.

Prints JSON with the machine's load average.

    scripts/bench_outbox.py --consultations 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from netns import reexec_isolated

from consult.config import Settings
from consult.conversation import Conversations
from consult.due import DueRunner
from consult.mail.notices import Notices
from consult.mail.policy import RetryPolicy
from consult.mail.sender import MailSender
from consult.mail.smtp import SmtpServer
from consult.recording.due import DueWork
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key
from consult.reminders import CHAT, EMAIL, Reminders
from tests.smtp import SmtpServer as LocalSmtp

SENDER = "salon@example.com"


def fill(db: Path, count: int, now: datetime) -> None:
    """``count`` consultations with an address, booked a month ago, their appointments spread
    over the two days from ``now`` (in bulk: the store's own path would take longer than what
    is measured)."""
    booked = (now - timedelta(days=30)).isoformat()
    step = timedelta(days=2) / count
    rows = [
        (secrets.token_hex(8), f"Customer {i}", (now + i * step).isoformat(), booked, booked,
         f"customer{i}@example.com")
        for i in range(count)
    ]  # fmt: skip
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO consultations (id, customer_name, scheduled_at, created_at,"
            " last_activity_at, customer_email) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def ms(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values) * 1000, 2),
        "max": round(max(values) * 1000, 2),
    }


async def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    smtp = LocalSmtp(args.smtp_port)
    smtp.start()
    url = f"sqlite+aiosqlite:///{work / 'consult.db'}"
    store = await Store.open(url, TokenSealer(load_seal_key(work)))
    settings = Settings(data_dir=work, smtp_url=smtp.url, mail_from=SENDER)
    # 10:30 in the salon's zone (UTC): today's and tomorrow's appointments have their
    # reminders due, the day after's not yet.
    now = datetime.now(UTC).replace(hour=10, minute=30, second=0, microsecond=0)
    fill(work / "consult.db", args.consultations, now)
    clock = lambda: now  # noqa: E731
    notices = Notices(store, settings, clock)
    conversations = Conversations(store)
    due = DueWork(store.database)
    reminders = Reminders(store, due, notices, conversations, settings, clock)
    handlers = {EMAIL: reminders.send_email, CHAT: reminders.post_message}
    runner = DueRunner(store.database, handlers, node="bench", clock=clock, work=due)
    started = time.perf_counter()
    await reminders.reconcile()
    scheduled = time.perf_counter() - started
    started = time.perf_counter()
    ran = await runner.run_once()
    first = time.perf_counter() - started
    with sqlite3.connect(work / "consult.db") as db:
        queued = db.execute("SELECT count(*) FROM outbox WHERE status = 'queued'").fetchone()[0]
    scans = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        assert await runner.run_once() == 0
        scans.append(time.perf_counter() - started)
    sender = MailSender(store, notices, SmtpServer.parse(smtp.url), SENDER, RetryPolicy(),
                        lambda: now)  # fmt: skip
    started = time.perf_counter()
    sent = await sender.run_once()
    seconds = time.perf_counter() - started
    await sender.close()
    await conversations.close()
    await store.close()
    smtp.stop()
    assert sent == queued == len(smtp.mailbox.messages), (sent, queued, len(smtp.mailbox.messages))
    return {
        "consultations": args.consultations,
        "schedule_per_appointment_ms": round(scheduled / args.consultations * 1000, 2),
        "due_items_run": ran,
        "emails_queued": queued,
        "run_per_reminder_ms": round(first / max(ran, 1) * 1000, 2),
        "steady_look_ms": ms(scans),
        "send": {"emails": sent, "seconds": round(seconds, 2),
                 "per_second": round(sent / seconds, 1)},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consultations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10, help="idle looks timed")
    parser.add_argument("--smtp-port", type=int, default=8025)
    args = parser.parse_args()
    reexec_isolated()
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
        print(json.dumps(asyncio.run(run(args, Path(folder))), indent=2))


if __name__ == "__main__":
    main()
