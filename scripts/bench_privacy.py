#!/usr/bin/env python3
"""What customers, deletion and retention cost on a large store (issue 17B), on SQLite in a
temporary data folder: the migration that gives existing consultations their customers, a
customer search, deleting a customer with many consultations and files, and the retention
policy removing a backlog of idle consultations.

- ``migration``: a store at revision 0015 with ``--consultations`` consultations (a third share a
  ``customer_ref`` with another) upgraded to the latest revision (0017 makes the customers).
- ``search``: ``GET /api/customers?q=`` as the store runs it, over that many customers.
- ``delete_customer``: one customer with ``--theirs`` consultations of ``--stills`` stills each
  (two files a still, in the stills folder): the rows and the journal in one transaction, then
  the files, then SQLite's scrub (``secure_delete`` is on, the write-ahead log checkpointed).
- ``retention``: ``--idle`` consultations idle for more than the policy's months, removed by
  ``Retention.apply`` (50 a transaction, their files after each).

Prints JSON with the machine's load average when it started.

    .venv/bin/python scripts/bench_privacy.py --consultations 10000 --theirs 20 --stills 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alembic import command
from alembic.config import Config as AlembicConfig

from consult.recording.deletion import remove_files
from consult.recording.retention import Retention
from consult.recording.store import MIGRATIONS, Still, Store
from consult.recording.tokens import TokenSealer, load_seal_key

NAMES = ["Mei", "Lin", "Jane", "Ana", "Chen", "Sofia", "Li", "Emma", "Wang", "Zoe", "Ivy", "Ruth"]


def old_store(folder: Path, n: int) -> None:
    """A database at 0015 (before customers) with ``n`` consultations."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{folder / 'consult.db'}")
    command.upgrade(config, "0015")
    db = sqlite3.connect(folder / "consult.db")
    at = "2026-01-01 10:00:00.000000"
    db.executemany(
        "INSERT INTO consultations (id, customer_name, customer_ref, notes, status, created_at,"
        " last_activity_at, summary) VALUES (?, ?, ?, '', 'open', ?, ?, '')",
        [(f"{i:016x}", f"{NAMES[i % len(NAMES)]} {i}", f"C-{i // 3:05d}" if i % 3 else None, at,
          at) for i in range(n)],
    )  # fmt: skip
    db.commit()
    db.close()


def timed_ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def fill_consultation(store: Store, files: Path, consultation_id: str, stills: int) -> None:
    (files / consultation_id).mkdir(parents=True, exist_ok=True)
    for s in range(stills):
        capture = await store.create_capture(consultation_id, "stylist")
        names = [f"{consultation_id}/{s}.jpg", f"{consultation_id}/{s}.thumb.jpg"]
        for name in names:
            (files / name).write_bytes(os.urandom(20_000))
        await store.add_still(
            Still(f"{consultation_id}{s:08d}", consultation_id, capture.id, "camera",
                  "image/jpeg", 1, 1, 20_000, "0" * 64, 1.0, 0.5, {}, names[0], names[1],
                  datetime.now(UTC))
        )  # fmt: skip
        await store.add_message(consultation_id, "customer", f"m{s}", "hello")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"load_average": os.getloadavg(), "settings": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        old_store(folder, args.consultations)
        url = f"sqlite+aiosqlite:///{folder / 'consult.db'}"
        began = time.perf_counter()
        store = await Store.open(url, TokenSealer(load_seal_key(folder)))
        results["migration_ms"] = timed_ms(time.perf_counter() - began)
        try:
            walls, found = [], []
            for q in ("mei", "c-0042", "ruth 99", "nobody"):
                began = time.perf_counter()
                found = await store.customers.search(q)
                walls.append(time.perf_counter() - began)
            results["customers"] = len(await store.customers.search("", limit=10**9))
            results["search_ms_median"] = timed_ms(statistics.median(walls))
            results["search_ms_max"] = timed_ms(max(walls))
            results["search_last_found"] = len(found)

            files = folder / "stills"
            folders = {"stills": lambda f: files / f, "recordings": lambda f: files / f}
            ttl = timedelta(days=1)
            first, _ = await store.create_consultation(customer_name="Doomed", link_ttl=ttl)
            assert first.customer_id is not None
            theirs = [first.id]
            for _ in range(args.theirs - 1):
                c, _ = await store.create_consultation(customer_id=first.customer_id, link_ttl=ttl)
                theirs.append(c.id)
            for cid in theirs:
                await fill_consultation(store, files, cid, args.stills)
            began = time.perf_counter()
            await store.deletion.customer(first.customer_id, actor="bench")
            rows = time.perf_counter() - began
            removed = await remove_files(store.deletion, folders)
            files_s = time.perf_counter() - began - rows
            await store.deletion.scrub()
            results["delete_customer"] = {
                "consultations": len(theirs),
                "files": removed,
                "rows_and_journal_ms": timed_ms(rows),
                "files_ms": timed_ms(files_s),
                "total_ms": timed_ms(time.perf_counter() - began),
            }

            idle = [c.id for c in (await store.list_consultations())[: args.idle]]
            for cid in idle:
                await fill_consultation(store, files, cid, 1)
            long_ago = datetime.now(UTC) - timedelta(days=400)
            for cid in idle:
                await store.update_consultation(cid, {"last_activity_at": long_ago})
            began = time.perf_counter()
            gone = await Retention(store, 12, folders).apply(datetime.now(UTC))
            took = time.perf_counter() - began
            results["retention"] = {
                "removed": len(gone),
                "total_ms": timed_ms(took),
                "ms_per_consultation": round(took * 1000 / max(1, len(gone)), 2),
            }
            results["db_mib_after"] = round((folder / "consult.db").stat().st_size / 2**20, 1)
        finally:
            await store.close()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_privacy.py", description=__doc__.split("\n")[0])
    parser.add_argument("--consultations", type=int, default=10_000, help="in the store (10000)")
    parser.add_argument("--theirs", type=int, default=20, help="the deleted customer's (20)")
    parser.add_argument("--stills", type=int, default=10, help="stills per consultation (10)")
    parser.add_argument("--idle", type=int, default=500, help="idle, for retention (500)")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))
