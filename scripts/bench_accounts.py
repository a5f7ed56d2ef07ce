#!/usr/bin/env python3
"""Measure what staff accounts and the audit log cost, through a real `consult serve` on
SQLite: an argon2id hash and verify (in this process); a sign-in, a wrong password and an
unknown email (wall time and the server's CPU: the last two should take the same time); an
audited view of a record with an account's API key against the same view by the customer's
link (not audited); the audit log's first page, a filtered page and its whole CSV with
``--entries`` entries in it. Prints JSON with the machine's load.

    .venv/bin/python scripts/bench_accounts.py --entries 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _venv  # noqa: F401  (first: runs this script with .venv's python)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from benchkit import Served, cpu_seconds, serve
from netns import reexec_isolated
from sqlalchemy.ext.asyncio import create_async_engine

from consult.auth import API_KEY_PREFIX
from consult.passwords import hash_password, verify_password
from consult.recording.schema import audit_log
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, hash_token, load_seal_key

PASSWORD = "bench password 0123"
EMAIL = "owner@example.com"


async def hashing(repeat: int) -> dict[str, float]:
    hashes, verifies = [], []
    encoded = ""
    for _ in range(repeat):
        begin = time.perf_counter()
        encoded = await hash_password(PASSWORD)
        hashes.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        assert await verify_password(encoded, PASSWORD)
        verifies.append(time.perf_counter() - begin)
    return {
        "hash_ms_median": round(statistics.median(hashes) * 1000, 1),
        "verify_ms_median": round(statistics.median(verifies) * 1000, 1),
    }


async def prepare(data: Path, entries: int) -> str:
    """An owner account with an API key, and ``entries`` audit entries; the key."""
    url = f"sqlite+aiosqlite:///{data / 'consult.db'}"
    store = await Store.open(url, TokenSealer(load_seal_key(data)))
    try:
        account = await store.accounts.create(
            email=EMAIL,
            name="Owner",
            role="owner",
            password_hash=await hash_password(PASSWORD),
            actor="system:bench",
        )
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        await store.accounts.add_key(account.id, "bench", hash_token(key), actor="system:bench")
    finally:
        await store.close()
    engine = create_async_engine(url)
    start = datetime.now(UTC) - timedelta(days=365)
    rows = [
        {
            "at": start + timedelta(seconds=150 * i),
            "actor": f"account:{i % 12:016x}",
            "action": ("viewed", "changed", "exported", "signed-in")[i % 4],
            "subject": f"consultation:{i % 5000:016x}",
            "detail": None,
        }
        for i in range(entries)
    ]
    async with engine.begin() as conn:
        for chunk in range(0, len(rows), 20_000):
            await conn.execute(audit_log.insert(), rows[chunk : chunk + 20_000])
    await engine.dispose()
    return key


async def timed(
    served: Served, repeat: int, request: Callable[[], Awaitable[int]]
) -> dict[str, Any]:
    walls, cpus = [], []
    status = 0
    for _ in range(repeat):
        cpu, begin = cpu_seconds(served.pid), time.perf_counter()
        status = await request()
        walls.append(time.perf_counter() - begin)
        cpus.append(cpu_seconds(served.pid) - cpu)
    return {
        "status": status,
        "wall_ms_median": round(statistics.median(walls) * 1000, 1),
        "wall_ms_max": round(max(walls) * 1000, 1),
        "server_cpu_ms_median": round(statistics.median(cpus) * 1000, 1),
    }


async def run(entries: int, repeat: int) -> dict[str, Any]:
    result: dict[str, Any] = {"argon2id": await hashing(repeat)}
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        key = await prepare(data, entries)
        bearer = {"Authorization": f"Bearer {key}"}
        async with serve(data_dir=data) as served:
            consultation = await served.consultation()
            customer = {
                "Authorization": f"Bearer {consultation['customer_link'].rsplit('/', 1)[1]}"
            }
            record = f"/api/consultations/{consultation['id']}"

            def post_session(body: dict[str, str]) -> Callable[[], Awaitable[int]]:
                async def request() -> int:
                    # A session of its own each time: no cookie carried over.
                    async with (
                        aiohttp.ClientSession(base_url=served.base) as http,
                        http.post("/api/session", json=body) as r,
                    ):
                        await r.read()
                        return r.status

                return request

            def get(path: str, headers: dict[str, str]) -> Callable[[], Awaitable[int]]:
                async def request() -> int:
                    async with served.http.get(path, headers=headers) as r:
                        await r.read()
                        return r.status

                return request

            # Failures: at most 20 a minute per address before the limit answers instead,
            # so fewer of them.
            failures = min(repeat, 9)
            result["sign_in"] = {
                "right_password": await timed(
                    served, repeat, post_session({"email": EMAIL, "password": PASSWORD})
                ),
                "wrong_password": await timed(
                    served, failures, post_session({"email": EMAIL, "password": "wrong one!"})
                ),
                "unknown_email": await timed(
                    served,
                    failures,
                    post_session({"email": "nobody@example.com", "password": "wrong one!"}),
                ),
            }
            await get(record, bearer)()  # warm
            result["record_view"] = {
                "owner_api_key_audited": await timed(served, repeat, get(record, bearer)),
                "customer_link_not_audited": await timed(served, repeat, get(record, customer)),
            }
            subject = "consultation:" + f"{42:016x}"
            result["audit_log"] = {
                "entries": entries,
                "first_page_100": await timed(served, repeat, get("/api/audit", bearer)),
                "by_subject": await timed(
                    served, repeat, get(f"/api/audit?subject={subject}", bearer)
                ),
                "csv_all": await timed(served, 1, get("/api/audit.csv", bearer)),
            }
    result["load"] = os.getloadavg()
    return result


def main() -> None:
    reexec_isolated()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.entries, args.repeat)), indent=2))


if __name__ == "__main__":
    main()
