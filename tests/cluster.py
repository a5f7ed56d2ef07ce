"""Several ``consult serve`` nodes on one database, each a process of its own, and real v1
participants joining through a balancer in front of them (tests/balancer.py)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.fernet import Fernet

from consult.recording.store import Store
from consult.recording.tokens import TokenSealer

from .client import CallClient
from .process import free_port, start_serve, wait_healthy

STAFF_KEY = "cluster-staff-key-for-tests-0123456789"


@dataclass
class Node:
    name: str
    data: Path
    port: int
    environment: dict[str, str]
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> subprocess.Popen[str]:
        self.proc = start_serve(self.data, self.port, environment=self.environment)
        return self.proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            out, _ = self.proc.communicate()
            # Shown with a failing test's output (pytest captures it).
            print(f"--- {self.name}'s output (last lines)", *out.splitlines()[-40:], sep="\n")


@dataclass
class Cluster:
    """Nodes sharing ``database_url``, with the same staff key and link-seal key."""

    root: Path
    database_url: str
    seal_key: bytes = field(default_factory=Fernet.generate_key)
    nodes: dict[str, Node] = field(default_factory=dict)

    def add(self, name: str, environment: Mapping[str, str] | None = None) -> Node:
        data = self.root / name
        data.mkdir(parents=True, exist_ok=True)
        (data / "link-seal.key").write_bytes(self.seal_key)
        env = {"CONSULT_DATABASE_URL": self.database_url, "CONSULT_STAFF_KEY": STAFF_KEY,
               "CONSULT_NODE_ID": name, **(environment or {})}  # fmt: skip
        node = self.nodes[name] = Node(name, data, free_port(), env)
        return node

    async def start(self, *names: str) -> None:
        for name in names:
            self.nodes[name].start()
        await asyncio.gather(*(wait_healthy(self.nodes[n].port) for n in names))

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    @contextlib.asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """The nodes' database, opened as one more node would (to read what they share)."""
        store = await Store.open(self.database_url, TokenSealer(self.seal_key), node="test")
        try:
            yield store
        finally:
            await store.close()


async def new_consultation(
    http: aiohttp.ClientSession, base: str, staff_key: str = STAFF_KEY
) -> dict[str, Any]:
    """A consultation created through the service at ``base`` (a node's or a port's URL)."""
    async with http.post(
        f"{base}/api/consultations",
        json={"customer_name": "Jane"},
        headers={"Authorization": f"Bearer {staff_key}"},
    ) as r:
        assert r.status == 201, await r.text()
        consultation: dict[str, Any] = await r.json()
    return consultation


def ws_url(port: int, link: str) -> str:
    return f"ws://127.0.0.1:{port}/ws?token={link.rsplit('/', 1)[1]}"


async def join(http: aiohttp.ClientSession, url: str, role: str, deadline: float) -> CallClient:
    """Join as a page does: again and again (its back-off) until welcomed, then offer."""
    while True:
        client = CallClient(http, url, role)
        try:
            await client.connect()
            await client.start_media()
            return client
        except (aiohttp.ClientError, TimeoutError, AssertionError, KeyError) as exc:
            await client.close()
            if time.monotonic() > deadline:
                raise AssertionError(f"{role} could not join through {url}: {exc!r}") from exc
            await asyncio.sleep(0.3)


async def media_both_ways(customer: CallClient, stylist: CallClient, timeout: float) -> None:
    since = time.monotonic()
    await asyncio.gather(
        customer.wait_for(lambda: len(customer.partner_frames("stylist", since)) >= 5, timeout),
        stylist.wait_for(lambda: len(stylist.partner_frames("customer", since)) >= 5, timeout),
    )


async def closed(*clients: CallClient, timeout: float = 15) -> list[int | None]:
    codes = []
    for client in clients:
        with contextlib.suppress(TimeoutError):
            codes.append(await client.closed(timeout))
    return codes
