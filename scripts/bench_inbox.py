#!/usr/bin/env python3
"""Measure the staff inbox on a large store: 10,000 consultations and 200,000 messages in
SQLite (by default), then the inbox's first page, a search and a later page through a real
`consult serve`: wall time on loopback and the server process's CPU per request. Prints JSON.

The store is filled by the store's own schema (migrations to the latest revision), with each
conversation's summary as the store keeps it (its last message, the customer's messages after
the salon's read mark); a tenth of the conversations have unread customer messages.

    .venv/bin/python scripts/bench_inbox.py --consultations 10000 --messages 200000
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from benchkit import Served, cpu_seconds, serve
from netns import reexec_isolated

from consult.recording.schema import chat_reads, consultations, conversations, messages
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key

NAMES = ["Mei", "Lin", "Jane", "Ana", "Chen", "Sofia", "Li", "Emma", "Wang", "Zoe", "Ivy", "Ruth"]
WORDS = ["nude", "red", "gel", "refill", "french", "tips", "chrome", "almond", "square",
         "short", "long", "shimmer", "glitter"]  # fmt: skip


async def create_schema(data: Path) -> str:
    url = f"sqlite+aiosqlite:///{data / 'consult.db'}"
    store = await Store.open(url, TokenSealer(load_seal_key(data)))
    await store.close()
    return f"sqlite:///{data / 'consult.db'}"


def fill(url: str, n_consultations: int, n_messages: int, seed: int) -> dict[str, Any]:
    """Consultations and messages in bulk, each conversation's summary with them."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    engine = sa.create_engine(url)
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
                "last_text": last["text"], "last_still": False, "last_at": last["created_at"],
                "unread": unread,
            })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(consultations.insert(), people)
        for chunk in range(0, len(rows), 20_000):
            conn.execute(messages.insert(), rows[chunk : chunk + 20_000])
        conn.execute(chat_reads.insert(), reads)
        conn.execute(conversations.insert(), summaries)
    engine.dispose()
    return {"consultations": n_consultations, "messages": len(rows), "unread": unread_total}


async def timed(served: Served, path: str, repeat: int) -> dict[str, Any]:
    walls, cpus = [], []
    body: Any = None
    for _ in range(repeat):
        cpu, begin = cpu_seconds(served.pid), time.perf_counter()
        async with served.http.get(path, headers=served.staff) as r:
            body = await r.json()
            assert r.status == 200, body
        walls.append(time.perf_counter() - begin)
        cpus.append(cpu_seconds(served.pid) - cpu)
    return {
        "wall_ms_median": round(statistics.median(walls) * 1000, 1),
        "wall_ms_max": round(max(walls) * 1000, 1),
        "server_cpu_ms_median": round(statistics.median(cpus) * 1000, 1),
        "items": len(body["conversations"]),
    }


async def run(n_consultations: int, n_messages: int, repeat: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        url = await create_schema(data)
        began = time.perf_counter()
        store = fill(url, n_consultations, n_messages, seed)
        store["fill_s"] = round(time.perf_counter() - began, 1)
        store["db_mib"] = round((data / "consult.db").stat().st_size / 2**20, 1)
        async with serve(data_dir=data) as served:
            await timed(served, "/api/inbox", 2)  # warm: the first read loads the pages
            results = {
                "first_page": await timed(served, "/api/inbox", repeat),
                "search_name": await timed(served, "/api/inbox?q=mei", repeat),
                "search_ref": await timed(served, "/api/inbox?q=C-04242", repeat),
                "offset_5000": await timed(served, "/api/inbox?offset=5000", repeat),
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
    args = parser.parse_args()
    result = asyncio.run(run(args.consultations, args.messages, args.repeat, args.seed))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
