#!/usr/bin/env python3
"""What customers' email costs the service: the reminder scan every node's sender makes at
each poll, queuing, and sending through a real SMTP server on 127.0.0.1 (aiosmtpd).

- ``--consultations`` appointments with an address spread over the next two days, at 10:30:
  the first scan queues the reminders due (today's and tomorrow's; each email made, with a new
  customer link as theirs is missing), per reminder in ms;
- ``steady_scan_ms``: the scan every poll makes once they are queued (median and max of
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
from consult.mail.notices import Notices
from consult.mail.policy import RetryPolicy
from consult.mail.sender import MailSender
from consult.mail.smtp import SmtpServer
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key
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
    notices = Notices(store, settings, lambda: now)
    started = time.perf_counter()
    queued = await notices.queue_reminders(now)
    first = time.perf_counter() - started
    scans = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        assert await notices.queue_reminders(now) == 0
        scans.append(time.perf_counter() - started)
    sender = MailSender(store, notices, SmtpServer.parse(smtp.url), SENDER, RetryPolicy(),
                        lambda: now)  # fmt: skip
    started = time.perf_counter()
    sent = await sender.run_once()
    seconds = time.perf_counter() - started
    await sender.close()
    await store.close()
    smtp.stop()
    assert sent == queued == len(smtp.mailbox.messages), (sent, queued, len(smtp.mailbox.messages))
    return {
        "consultations": args.consultations,
        "reminders_due": queued,
        "first_scan_per_reminder_ms": round(first / max(queued, 1) * 1000, 2),
        "steady_scan_ms": ms(scans),
        "send": {"emails": sent, "seconds": round(seconds, 2),
                 "per_second": round(sent / seconds, 1)},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consultations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10, help="reminder scans timed")
    parser.add_argument("--smtp-port", type=int, default=8025)
    args = parser.parse_args()
    reexec_isolated()
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as folder:
        print(json.dumps(asyncio.run(run(args, Path(folder))), indent=2))


if __name__ == "__main__":
    main()
