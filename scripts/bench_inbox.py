#!/usr/bin/env python3
"""Measure the staff inbox on a large store: 10,000 consultations and 200,000 messages in
SQLite (by default), in a PostgreSQL database (``--database postgresql+asyncpg://...``, which
must be empty), or in a throwaway PostgreSQL started here (``--postgres``); then the inbox's
first page, a search and a later page through a real `consult serve`: wall time on loopback,
the server process's CPU per request and, on the throwaway PostgreSQL, its backends' CPU
(where the query runs there). Prints JSON.

The store is filled by the store's own schema (migrations to the latest revision), with each
conversation's summary as the store keeps it (its last message, the customer's messages after
the salon's read mark); a tenth of the conversations have unread customer messages. On
PostgreSQL the tables are analysed after the fill, as autovacuum would do soon after.

    .venv/bin/python scripts/bench_inbox.py --consultations 10000 --messages 200000
    .venv/bin/python scripts/bench_inbox.py --postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from benchkit import Served, cpu_seconds, serve
from netns import reexec_isolated
from sqlalchemy.ext.asyncio import create_async_engine

from consult.recording.schema import chat_reads, consultations, conversations, messages
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key
from tests.postgres_server import Postgres, running_postgres

NAMES = ["Mei", "Lin", "Jane", "Ana", "Chen", "Sofia", "Li", "Emma", "Wang", "Zoe", "Ivy", "Ruth"]
WORDS = ["nude", "red", "gel", "refill", "french", "tips", "chrome", "almond", "square",
         "short", "long", "shimmer", "glitter"]  # fmt: skip


async def create_schema(url: str, data: Path) -> None:
    store = await Store.open(url, TokenSealer(load_seal_key(data)))
    await store.close()


async def fill(url: str, n_consultations: int, n_messages: int, seed: int) -> dict[str, Any]:
    """Consultations and messages in bulk, each conversation's summary with them."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    counts = [0] * n_consultations
    for _ in range(n_messages):  # a few busy conversations, many short ones
        counts[min(int(rng.paretovariate(1.2)) - 1, n_consultations - 1) if rng.random() < 0.3
               else rng.randrange(n_consultations)] += 1  # fmt: skip
    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    reads: list[dict[str, Any]] = []
    people: list[dict[str, Any]] = []
    unread_total = 0
    for i in range(n_consultations):
        cid = f"{i:016x}"
        created = start + timedelta(minutes=47 * i)
        people.append({
            "id": cid, "customer_name": f"{rng.choice(NAMES)} {rng.choice(NAMES)} {i}",
            "customer_ref": f"C-{i:05d}", "notes": "", "status": "open", "created_at": created,
            "last_activity_at": created, "summary": "",
        })  # fmt: skip
        at = created
        for seq in range(1, counts[i] + 1):
            at += timedelta(seconds=rng.randrange(20, 4000))
            rows.append({
                "consultation_id": cid, "seq": seq, "client_id": f"m{seq}",
                "sender": rng.choice(("customer", "stylist")),
                "text": " ".join(rng.choices(WORDS, k=rng.randrange(2, 14))), "created_at": at,
            })  # fmt: skip
        if counts[i]:
            mine = rows[-counts[i] :]
            # A tenth wait for an answer: the salon read up to some earlier message.
            mark = rng.randrange(0, counts[i]) if rng.random() < 0.1 else counts[i]
            unread = sum(1 for m in mine if m["seq"] > mark and m["sender"] == "customer")
            unread_total += unread
            reads.append({"consultation_id": cid, "role": "stylist", "seq": mark})
            last = mine[-1]
            summaries.append({
                "consultation_id": cid, "last_seq": last["seq"], "last_sender": last["sender"],
                "last_text": last["text"], "last_kind": None, "last_at": last["created_at"],
                "unread": unread,
            })  # fmt: skip
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(consultations.insert(), people)
        for chunk in range(0, len(rows), 20_000):
            await conn.execute(messages.insert(), rows[chunk : chunk + 20_000])
        await conn.execute(chat_reads.insert(), reads)
        await conn.execute(conversations.insert(), summaries)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("ANALYZE"))
    await engine.dispose()
    return {"consultations": n_consultations, "messages": len(rows), "unread": unread_total}


async def measured(url: str) -> dict[str, Any]:
    """What the database holds, as it says: its messages and its size."""
    engine = create_async_engine(url)
    size = {
        "sqlite": "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        "postgresql": "SELECT pg_database_size(current_database())",
    }[engine.dialect.name]
    try:
        async with engine.connect() as conn:
            return {
                "messages_stored": await conn.scalar(
                    sa.select(sa.func.count()).select_from(messages)
                ),
                "db_mib": round(int(await conn.scalar(sa.text(size))) / 2**20, 1),
            }
    finally:
        await engine.dispose()


def backends_cpu(server: Postgres) -> Callable[[], float]:
    """The CPU seconds of the server's processes (the postmaster's children run the queries)."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])

    def total() -> float:
        seconds = cpu_seconds(postmaster)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    seconds += cpu_seconds(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
        return seconds

    return total


async def timed(
    served: Served, path: str, repeat: int, database_cpu: Callable[[], float] | None
) -> dict[str, Any]:
    walls, cpus, db_cpus = [], [], []
    body: Any = None
    for _ in range(repeat):
        db = database_cpu() if database_cpu else 0.0
        cpu, begin = cpu_seconds(served.pid), time.perf_counter()
        async with served.http.get(path, headers=served.staff) as r:
            body = await r.json()
            assert r.status == 200, body
        walls.append(time.perf_counter() - begin)
        cpus.append(cpu_seconds(served.pid) - cpu)
        if database_cpu:
            db_cpus.append(database_cpu() - db)
    result = {
        "wall_ms_median": round(statistics.median(walls) * 1000, 1),
        "wall_ms_max": round(max(walls) * 1000, 1),
        "server_cpu_ms_median": round(statistics.median(cpus) * 1000, 1),
        "items": len(body["conversations"]),
    }
    if database_cpu:
        result["postgres_cpu_ms_median"] = round(statistics.median(db_cpus) * 1000, 1)
    return result


async def run(
    url: str | None,
    postgres: Postgres | None,
    n_consultations: int,
    n_messages: int,
    repeat: int,
    seed: int,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        url = url or f"sqlite+aiosqlite:///{data / 'consult.db'}"
        await create_schema(url, data)
        began = time.perf_counter()
        store = await fill(url, n_consultations, n_messages, seed)
        store["fill_s"] = round(time.perf_counter() - began, 1)
        store |= await measured(url)
        store["backend"] = url.split("+", 1)[0].split(":", 1)[0]
        database_cpu = backends_cpu(postgres) if postgres else None
        env = {"CONSULT_DATABASE_URL": url}
        async with serve(env=env, data_dir=data) as served:

            async def measure(path: str, times: int = repeat) -> dict[str, Any]:
                return await timed(served, path, times, database_cpu)

            await measure("/api/inbox", 2)  # warm: the first read loads the pages
            results = {
                "first_page": await measure("/api/inbox"),
                "search_name": await measure("/api/inbox?q=mei"),
                "search_ref": await measure("/api/inbox?q=C-04242"),
                "offset_5000": await measure("/api/inbox?offset=5000"),
            }
    return {
        "store": store,
        "inbox": results,
        "load": os.getloadavg(),
        "target": "first page in at most 300 ms of server time",
    }


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--consultations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=15)
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database", help="an empty database's URL, e.g. postgresql+asyncpg://user@host/name"
    )
    where.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL")
    args = parser.parse_args()

    def measure(url: str | None, postgres: Postgres | None) -> dict[str, Any]:
        return asyncio.run(
            run(url, postgres, args.consultations, args.messages, args.repeat, args.seed)
        )

    if args.postgres:
        with running_postgres() as server:
            result = measure(server.create_database(), server)
    else:
        result = measure(args.database, None)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
