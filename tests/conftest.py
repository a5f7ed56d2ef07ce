from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.config import Settings
from consult.recording.tokens import load_seal_key

from .browser import fake_media, launch  # noqa: F401 (fixtures for the browser tests)
from .client import CallClient
from .postgres import database_url, postgres, postgres_url, store  # noqa: F401 (a throwaway PostgreSQL)
from .process import served  # noqa: F401 (a fixture: consult serve as its own process)
from .smtp import smtp  # noqa: F401 (a fixture: a real SMTP server on 127.0.0.1)
from .stores import nodes  # noqa: F401 (a fixture: two nodes' stores on one database)
from .turn import blocked, serve_on_link, turn  # noqa: F401 (fixtures: a network that drops UDP)

STAFF_KEY = "test-staff-key-0123456789"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test server: a fresh data folder, media on loopback only."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "staff_key": STAFF_KEY,
        "media_addresses": ("127.0.0.1",),
        "public_url": "http://links.test",
        "ws_heartbeat": 2.0,
        # Long enough to be seen counting, short enough for a suite full of captures.
        "capture_countdown": 0.5,
        # The test's own peers (encoders, decoders) run on this process's event loop: their
        # CPU is not the server's, so the headroom is not judged on it (tests/test_admission.py
        # and the `consult serve` processes judge it).
        "admit_cpu": None,
    }
    return Settings(**(values | overrides))


def node_settings(tmp_path: Path, name: str, **overrides: Any) -> Settings:
    """Settings for node ``name`` of several sharing a database (``database_url=``): a data
    folder of its own, with the keys every node must share (the staff key, and one link-seal
    key: a node with another is refused at start, docs/operations.md)."""
    settings = make_settings(tmp_path / name, node_id=name, **overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "link-seal.key").write_bytes(load_seal_key(tmp_path))
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def server(
    aiohttp_server: Callable[..., Any], settings: Settings
) -> AsyncIterator[TestServer]:
    server: TestServer = await aiohttp_server(create_app(settings))
    yield server


@pytest.fixture
async def http(server: TestServer) -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe=True: keep cookies for an IP address host (127.0.0.1), as browsers do.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=str(server.make_url("")), cookie_jar=jar) as session:
        yield session


@pytest.fixture
def staff() -> dict[str, str]:
    return {"Authorization": f"Bearer {STAFF_KEY}"}


async def create_consultation(
    http: aiohttp.ClientSession, staff: dict[str, str], **body: Any
) -> dict[str, Any]:
    body.setdefault("customer_name", "Jane Doe")
    async with http.post("/api/consultations", json=body, headers=staff) as response:
        assert response.status == 201, await response.text()
        result: dict[str, Any] = await response.json()
        return result


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


@pytest.fixture
async def consultation(http: aiohttp.ClientSession, staff: dict[str, str]) -> dict[str, Any]:
    return await create_consultation(http, staff)


@pytest.fixture
async def clients(
    server: TestServer, http: aiohttp.ClientSession
) -> AsyncIterator[Callable[[str, str], CallClient]]:
    made: list[CallClient] = []

    def make(role: str, link: str, **kwargs: Any) -> CallClient:
        url = str(server.make_url("/ws").with_query(token=token_of(link)))
        client = CallClient(http, url, role, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
