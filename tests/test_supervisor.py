"""`consult serve --workers N` as a salon runs it: real processes on one port (SQLite and
PostgreSQL), a worker killed and started again, SIGTERM, the supervisor killed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from consult.app import WORKER_HEADER
from consult.cpuquota import usable_cores
from consult.service import running, served_url

from .client import CallClient
from .cluster import closed, join, media_both_ways, new_consultation, ws_url
from .process import Output, free_port, start_serve

pytestmark = [pytest.mark.timeout(400), pytest.mark.asyncio(loop_scope="module")]

STAFF_KEY = "workers-staff-key-0123456789abcdef"
#: Seconds a service's workers may take to start on a loaded machine (they import aiortc,
#: PyAV and OpenCV each; 30 s measured at load average 20).
STARTS = 180.0
#: The issue's bound: a call whose worker died is back, media flowing, within this long.
FAILOVER_S = 10.0


class Service:
    def __init__(
        self, data: Path, port: int, workers: int | None, env: Mapping[str, str] = {}
    ) -> None:
        self.data, self.port = data, port
        self.proc = start_serve(
            data, port, workers=workers, environment={"CONSULT_STAFF_KEY": STAFF_KEY, **env}
        )
        self.output = Output(self.proc)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The supervisor's worker processes' ids."""
        pid = self.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sorted(int(child) for child in children)

    async def answering(self, workers: int = 2, timeout: float = STARTS) -> dict[str, int]:
        """Which worker answers a new connection, until ``workers`` have (name -> count)."""
        seen: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # A connection of its own each time: the kernel picks a worker per connection.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
                try:
                    async with s.get(f"{self.base}/healthz") as r:
                        assert r.status == 200, await r.text()
                        name = r.headers[WORKER_HEADER]
                        seen[name] = seen.get(name, 0) + 1
                except aiohttp.ClientConnectionError:
                    pass
            if len(seen) == workers and min(seen.values()) >= 2:
                return seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"not every worker answered: {seen}\n{self.output.text}")

    def pid_of(self, worker: str) -> int:
        """The process of worker ``worker`` (its latest start)."""
        started = [line for line in self.output.lines if f"worker {worker} started (pid " in line]
        return int(started[-1].rsplit("(pid ", 1)[1].rstrip(")"))

    async def consultation(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        return await new_consultation(http, self.base, STAFF_KEY)

    def ws_urls(self, consultation: dict[str, Any]) -> tuple[str, str]:
        return (
            ws_url(self.port, consultation["customer_link"]),
            ws_url(self.port, consultation["stylist_link"]),
        )

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, 120)


def worker_of(client: CallClient) -> str:
    """The worker the kernel gave the participant's websocket to."""
    assert client.ws is not None
    return client.ws._response.headers[WORKER_HEADER]


async def join_elsewhere(http: aiohttp.ClientSession, url: str, worker: str) -> CallClient:
    """A participant (the stylist) on any worker but ``worker``."""
    for _ in range(50):
        client = CallClient(http, url, "stylist")
        await client.connect()
        if worker_of(client) != worker:
            await client.start_media()
            return client
        await client.close()
    raise AssertionError(f"every connection went to {worker}")


async def chat(client: CallClient, text: str) -> tuple[int, str]:
    await client.send({"type": "chat", "text": text, "id": text})
    while (ack := await client.expect("chat"))["id"] != text:
        pass
    return ack["seq"], ack["text"]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def two(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    service = Service(tmp_path_factory.mktemp("two") / "data", free_port(), 2)
    try:
        await service.output.wait_for("consult is serving on", STARTS)
        yield service
    finally:
        if service.proc.poll() is None:
            service.proc.kill()
        await asyncio.to_thread(service.proc.wait, 60)


async def test_two_workers_serve_pages_and_the_api_through_one_port(two: Service) -> None:
    assert len(two.workers()) == 2
    # Said once, when both accept; links name the one public port.
    assert two.output.lines.count(f"consult is serving on {two.base}") == 1
    assert await two.output.wait_for("workers (--workers)") == "  2 workers (--workers)"
    assert served_url(two.data) == two.base
    seen = await two.answering()
    assert set(seen) == {"w0", "w1"}
    staff = {"Authorization": f"Bearer {STAFF_KEY}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        made: list[str] = []
        by: set[str] = set()
        # Made through both workers, listed by both: they share the store.
        while len(by) < 2 or len(made) < 4:
            async with s.post(
                f"{two.base}/api/consultations", json={"customer_name": "Jane"}, headers=staff
            ) as r:
                assert r.status == 201, await r.text()
                made.append((await r.json())["id"])
                by.add(r.headers[WORKER_HEADER])
        listed: set[str] = set()
        while len(listed) < 2:
            async with s.get(f"{two.base}/api/consultations", headers=staff) as r:
                body = await r.json()
                ids = {c["id"] for c in body["consultations"]}
                assert set(made) <= ids
                listed.add(r.headers[WORKER_HEADER])
        assert listed == {"w0", "w1"}
        async with s.get(f"{two.base}/") as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]
    # Each line of a worker's log names it.
    assert any(" w0 aiohttp.access:" in line for line in two.output.lines)
    assert any(" w1 aiohttp.access:" in line for line in two.output.lines)


async def test_a_call_across_two_workers_and_its_worker_killed(two: Service) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        consultation = await two.consultation(http)
        customer_url, stylist_url = two.ws_urls(consultation)
        clients: list[CallClient] = []
        try:
            # The customer first: the call is its worker's; the stylist reaches it through
            # the other (the kernel picks a worker per connection: tried until it does).
            customer = await join(http, customer_url, "customer", time.monotonic() + 30)
            clients.append(customer)
            owner = worker_of(customer)
            stylist = await join_elsewhere(http, stylist_url, owner)
            clients.append(stylist)
            await media_both_ways(customer, stylist, 30)
            acked = [await chat(customer, "to the owner"), await chat(stylist, "relayed")]

            killed = two.pid_of(owner)
            os.kill(killed, signal.SIGKILL)
            t0 = time.monotonic()
            # Both pages are disconnected (the customer's connection died with the worker,
            # the stylist's relay is closed) and come back as pages do, on the worker left.
            await closed(customer, stylist)
            for client in clients:
                await client.close()
            clients.clear()
            customer = await join(http, customer_url, "customer", t0 + FAILOVER_S)
            clients.append(customer)
            stylist = await join(http, stylist_url, "stylist", t0 + FAILOVER_S)
            clients.append(stylist)
            await media_both_ways(customer, stylist, t0 + FAILOVER_S - time.monotonic())
            back = time.monotonic() - t0
            print(f"\nworker {owner} killed: media both ways again {back:.2f} s after")
            assert back < FAILOVER_S
            for client in (customer, stylist):
                assert client.welcome is not None
                history = [(m["seq"], m["text"]) for m in client.welcome["history"]]
                assert all(m in history for m in acked), (history, acked)
        finally:
            for client in clients:
                await client.close()
    # The supervisor started the killed worker again.
    await two.output.wait_for(f"(pid {killed}) ended: signal SIGKILL")
    assert set(await two.answering()) == {"w0", "w1"}
    print(f"worker {owner} answers again {time.monotonic() - t0:.1f} s after SIGKILL")
    assert two.pid_of(owner) != killed and len(two.workers()) == 2
    assert two.proc.poll() is None


async def test_a_call_across_workers_then_sigterm_stops_them_all_on_postgresql(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {"CONSULT_DATABASE_URL": postgres_url}
    service = Service(tmp_path / "data", free_port(), 2, env)
    clients: list[CallClient] = []
    try:
        await service.output.wait_for("consult is serving on", STARTS)
        workers = service.workers()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            customer_url, stylist_url = service.ws_urls(await service.consultation(s))
            customer = await join(s, customer_url, "customer", time.monotonic() + 30)
            clients.append(customer)
            clients.append(await join_elsewhere(s, stylist_url, worker_of(customer)))
            await media_both_ways(customer, clients[1], 30)
            assert running(service.data)
            # The whole service stops: the supervisor marks every worker draining, so none
            # moves its calls to another (there is no other node): they stop at once, and the
            # pages are told to come back (GOING_AWAY), not after the drain's 30 s.
            service.proc.send_signal(signal.SIGTERM)
            assert await closed(*clients, timeout=25) == [1001, 1001]
            assert await asyncio.to_thread(service.proc.wait, 120) == 0
        for pid in workers:
            assert not alive(pid)
        assert not running(service.data)
        text = service.output.text
        assert "workers: serving -> stopping" in text
        for pid in workers:
            assert f"(pid {pid}) ended: exit code 0" in text
    finally:
        for client in clients:
            await client.close()
        if service.proc.poll() is None:
            service.proc.kill()


async def test_a_worker_per_core_by_default_none_outlives_its_killed_supervisor_one_is_one_process(
    tmp_path: Path,
) -> None:
    service = Service(tmp_path / "data", free_port(), None)
    try:
        await service.output.wait_for("consult is serving on", STARTS)
        workers = service.workers()
        assert len(workers) == usable_cores()
        service.proc.kill()
        await asyncio.to_thread(service.proc.wait, 30)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            await asyncio.sleep(0.1)
        # Nothing holds the port or the folder: a new service starts at once; and one worker
        # is the one process the service always was.
        one = Service(service.data, service.port, 1)
        try:
            await one.output.wait_for("consult is serving on", STARTS)
            assert one.workers() == []
            async with aiohttp.ClientSession() as s, s.get(f"{one.base}/healthz") as r:
                assert r.status == 200 and WORKER_HEADER not in r.headers
            assert await one.stop() == 0
            assert "(--workers)" not in one.output.text
            assert "consult.supervisor" not in one.output.text
        finally:
            if one.proc.poll() is None:
                one.proc.kill()
    finally:
        if service.proc.poll() is None:
            service.proc.kill()


async def test_a_port_another_program_or_service_uses_is_refused_before_any_worker_starts(
    tmp_path: Path, two: Service
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_serve(tmp_path / "a", port, workers=2)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 1
    assert out.splitlines() == [
        f"consult: port {port} is already in use on 127.0.0.1 (another program listens there);"
        f" choose another with --port, e.g. --port {port + 1}"
    ]
    # Another data folder's workers on the same port would split its connections silently.
    proc = start_serve(tmp_path / "b", two.port, workers=2)
    out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 1 and "already in use" in out, out
    assert set(await two.answering()) == {"w0", "w1"}
