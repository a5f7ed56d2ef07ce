"""The real command: `consult serve` and `consult create` as a salon runs them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from consult.recording.schema import consultations

from .calls import in_call
from .client import CallClient
from .conftest import create_consultation, token_of
from .process import free_port, start_serve, wait_healthy

pytestmark = pytest.mark.timeout(90)


async def test_serve_create_call_and_graceful_sigterm(
    served: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, data = served
    await wait_healthy(port)
    staff_key = (data / "staff.key").read_text().strip()

    created = await asyncio.to_thread(
        subprocess.run,
        # No --port: links follow the running service of this data folder.
        [sys.executable, "-m", "consult", "create", "--data", str(data),
         "--customer-name", "Jane Doe", "--customer-ref", "C-1", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    links = json.loads(created.stdout)
    base = f"http://127.0.0.1:{port}"
    assert links["customer_link"].startswith(f"{base}/c/")

    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{base}/api/consultations", headers={"Authorization": f"Bearer {staff_key}"}
        ) as r:
            (listed,) = (await r.json())["consultations"]
        assert listed["id"] == links["id"] and listed["customer_link"] == links["customer_link"]
        async with http.get(links["customer_link"]) as r:
            assert r.status == 200

        token = links["customer_link"].rsplit("/", 1)[1]
        customer = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={token}", "customer")
        stylist_token = links["stylist_link"].rsplit("/", 1)[1]
        stylist = CallClient(http, f"ws://127.0.0.1:{port}/ws?token={stylist_token}", "stylist")
        try:
            await customer.connect()
            await customer.start_media()
            await stylist.connect()
            await stylist.start_media()
            await customer.wait_for(lambda: len(customer.partner_frames("stylist")) >= 10)
            await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 10)

            proc.send_signal(signal.SIGTERM)
            assert await customer.closed() == 1001  # GOING_AWAY
            assert await stylist.closed() == 1001
        finally:
            await customer.close()
            await stylist.close()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert staff_key in out  # printed for the salon at start
    # Link tokens never reach the log, in paths or in queries.
    for link in (links["customer_link"], links["stylist_link"]):
        assert link.rsplit("/", 1)[1] not in out
    assert "GET /c/*** " in out or '"GET /c/***"' in out
    # One line per event, naming the consultation.
    for event in ("customer joined", "stylist joined", "customer left", "stylist left"):
        assert f"{links['id']}: {event}" in out, event
    assert "Traceback" not in out
    # At the default level the ICE libraries' chatter (a line per candidate pair) stays out.
    chatter = [x for x in out.splitlines() if " INFO aioice" in x or " INFO aiortc" in x]
    assert not chatter


def test_staff_key_from_environment(tmp_path: Path) -> None:
    env = dict(os.environ, CONSULT_STAFF_KEY="k" * 40)
    result = subprocess.run(
        [sys.executable, "-m", "consult", "list", "--data", str(tmp_path), "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout) == []
    assert not (tmp_path / "staff.key").exists()


async def test_serve_on_postgresql_holds_a_call(tmp_path: Path, postgres_url: str) -> None:
    data, port = tmp_path / "data", free_port()
    proc = start_serve(
        data,
        port,
        environment={"CONSULT_DATABASE_URL": postgres_url, "CONSULT_NODE_ID": "node-a"},
    )
    base = f"http://127.0.0.1:{port}"
    engine = create_async_engine(postgres_url)
    try:
        await wait_healthy(port)
        staff = {"Authorization": f"Bearer {(data / 'staff.key').read_text().strip()}"}
        async with aiohttp.ClientSession(base_url=base) as http:
            consultation = await create_consultation(http, staff)

            def make(role: str, link: str) -> CallClient:
                return CallClient(http, f"ws://127.0.0.1:{port}/ws?token={token_of(link)}", role)

            customer, stylist = await in_call(make, consultation)
            try:
                # The consultation, its status and who holds the call are in PostgreSQL.
                async with engine.connect() as conn:
                    row = (
                        await conn.execute(
                            consultations.select().where(consultations.c.id == consultation["id"])
                        )
                    ).one()
                assert (row.status, row.live_node) == ("live", "node-a")
            finally:
                await customer.close()
                await stylist.close()
        assert not (data / "consult.db").exists()
    finally:
        await engine.dispose()
        proc.terminate()
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
