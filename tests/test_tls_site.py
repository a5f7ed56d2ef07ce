"""The HTTPS port: TLS as usual, and plain HTTP on it redirected, not dropped."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from consult import tls
from consult.tls_site import TlsSite

BASE = "https://links.test:8443"


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"secure={request.secure} path={request.path_qs}")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[int, aiohttp.Fingerprint]]:
    made = tls.self_signed(
        tmp_path, hostnames=["localhost"], addresses=[ipaddress.ip_address("127.0.0.1")]
    )
    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    site = TlsSite(runner, sock, tls.server_context(made), BASE)
    await site.start()
    pin = aiohttp.Fingerprint(bytes.fromhex(made.fingerprint.replace(":", "")))
    try:
        yield sock.getsockname()[1], pin
    finally:
        await runner.cleanup()


async def raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def test_https_is_served_and_plain_http_is_redirected_to_it(
    site: tuple[int, aiohttp.Fingerprint],
) -> None:
    port, pin = site
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pin)) as http:
        async with http.get(f"https://127.0.0.1:{port}/c/abc?x=1") as r:
            assert await r.text() == "secure=True path=/c/abc?x=1"
        async with http.get(f"http://127.0.0.1:{port}/c/abc?x=1", allow_redirects=False) as r:
            assert r.status == 307
            assert r.headers["Location"] == f"{BASE}/c/abc?x=1"
            assert "This port serves HTTPS" in await r.text()


@pytest.mark.parametrize(
    "request_line",
    [b"GET /a\r\nSet-Cookie: x=1 HTTP/1.1", b"GET http://elsewhere.test/ HTTP/1.1", b"\x00\xff"],
)
async def test_a_strange_plain_request_is_sent_to_the_base_url(
    site: tuple[int, aiohttp.Fingerprint], request_line: bytes
) -> None:
    port, _ = site
    answer = await raw(port, request_line + b"\r\n\r\n")
    head = answer.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0] == b"HTTP/1.1 307 Temporary Redirect"
    assert f"Location: {BASE}/".encode() in head
    assert not [line for line in head if line.lower().startswith(b"set-cookie")]


async def test_a_silent_or_failed_connection_does_not_stop_the_others(
    site: tuple[int, aiohttp.Fingerprint],
) -> None:
    port, pin = site
    silent = await asyncio.open_connection("127.0.0.1", port)
    assert await raw(port, b"\x16\x03\x01\x00\x05hello") == b""  # a broken handshake: closed
    connector = aiohttp.TCPConnector(ssl=pin)
    async with aiohttp.ClientSession(connector=connector) as http, http.get(
        f"https://127.0.0.1:{port}/"
    ) as r:
        assert r.status == 200
    silent[1].close()
