"""A customer on a network that drops UDP (tests/turn.py: a network namespace, nftables):
through a real TURN server (coturn) over TCP the call works both ways; without one, both
sides are told that the customer's media cannot get through."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from consult.config import Settings

from .browser import CHROMIUM, PHONE, Launch, artifact, ready_to_join, visible_detail
from .client import CallClient
from .conftest import STAFF_KEY, create_consultation, token_of
from .turn import BlockedNetwork, ServeOnLink, TurnServer, free_port, start_turn, stop_turn

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent


class Customer:
    """tests/participant.py in the blocked network, reporting what happens (``--report``)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[tuple[str, str]] = []

    async def expect(self, kind: str, timeout: float = 30) -> str:
        """The rest of the first line of ``kind`` not yet expected (reading as needed)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                for index, (seen, rest) in enumerate(self.lines):
                    if seen == kind:
                        del self.lines[index]
                        return rest
                raw = await self.proc.stdout.readline()
                assert raw, "the customer's process ended"
                seen, _, rest = raw.decode().strip().partition(" ")
                self.lines.append((seen, rest))

    async def media(self, role: str, timeout: float = 30) -> str:
        """The state of the next ``media`` message about ``role``."""
        while True:
            message = json.loads(await self.expect("media", timeout))
            if message["role"] == role:
                return str(message["state"])


@pytest.fixture
async def customer_in(blocked: BlockedNetwork) -> AsyncIterator[Callable[..., Awaitable[Customer]]]:
    procs: list[asyncio.subprocess.Process] = []

    async def start(url: str) -> Customer:
        command = [sys.executable, "-m", "tests.participant", url, "customer",
                   "--address", blocked.address, "--ice", "--report"]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *blocked.command(command), cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        procs.append(proc)
        return Customer(proc)

    yield start
    for proc in procs:
        proc.kill()
        await proc.wait()


async def in_call(server: TestServer) -> tuple[aiohttp.ClientSession, dict[str, Any], str]:
    http = aiohttp.ClientSession(base_url=str(server.make_url("")))
    consultation = await create_consultation(http, {"Authorization": f"Bearer {STAFF_KEY}"})
    url = str(server.make_url("/ws").with_query(token=token_of(consultation["customer_link"])))
    return http, consultation, url


def stylist_of(
    server: TestServer, http: aiohttp.ClientSession, consultation: dict[str, Any]
) -> CallClient:
    """The stylist, on our side of the link (an aiortc client)."""
    url = server.make_url("/ws").with_query(token=token_of(consultation["stylist_link"]))
    return CallClient(http, str(url), "stylist")


def record(name: str, seconds: float) -> None:
    path = artifact("turn-times.json")
    times = json.loads(path.read_text()) if path.exists() else {}
    times[name] = round(seconds, 2)
    path.write_text(json.dumps(times, indent=2))


async def test_through_turn_over_tcp_media_goes_both_ways(
    serve_on_link: ServeOnLink,
    customer_in: Any,
    turn: TurnServer,
) -> None:
    server = await serve_on_link(turn.url("tcp"))
    http, consultation, url = await in_call(server)
    stylist = stylist_of(server, http, consultation)
    try:
        welcome = await stylist.connect()
        assert welcome["ice_servers"] == [{
            "urls": [f"turn:{turn.address}:{turn.port}?transport=tcp"],
            "username": turn.user, "credential": turn.password,
        }]  # fmt: skip
        await stylist.start_media()
        started = time.monotonic()
        customer = await customer_in(url)
        assert await customer.expect("ready") == ""
        record("turn_tcp_customer_connected_s", time.monotonic() - started)
        # Through coturn's relay to the server's own address: no UDP crossed the link.
        assert await customer.expect("candidates") == "relay host"
        assert await customer.media("customer") == "connected"
        assert await customer.expect("partner-video") == ""
        await stylist.wait_for(lambda: len(stylist.partner_frames("customer")) >= 10)
        media = await stylist.expect("media")
        while media["role"] != "customer":
            media = await stylist.expect("media")
        assert media["state"] == "connected"
    finally:
        await stylist.close()
        await http.close()


async def test_without_turn_both_sides_are_told_the_customer_cannot_connect(
    serve_on_link: ServeOnLink, customer_in: Any
) -> None:
    server = await serve_on_link()
    http, consultation, url = await in_call(server)
    stylist = stylist_of(server, http, consultation)
    unreachable = {"type": "media", "role": "customer", "state": "unreachable"}
    try:
        await stylist.connect()
        await stylist.start_media()
        customer = await customer_in(url)
        assert (await stylist.expect("peer"))["state"] == "joined"
        joined = time.monotonic()
        bound = Settings().media_timeout + 10  # the offer comes after the page's gathering
        assert await stylist.expect("media", timeout=bound) == unreachable
        record("no_turn_stylist_told_s", time.monotonic() - joined)
        # The customer's own page is told too (the websocket, over TCP, still works).
        assert await customer.media("customer") == "unreachable"
        assert customer.lines.count(("ready", "")) == 0
        assert stylist.partner_frames("customer") == []
    finally:
        await stylist.close()
        await http.close()


#: A hardened coturn: no relaying to private addresses (so nobody relays into the salon's LAN).
PRIVATE_DENIED = (
    "--denied-peer-ip=10.0.0.0-10.255.255.255",
    "--denied-peer-ip=172.16.0.0-172.31.255.255",
    "--denied-peer-ip=192.168.0.0-192.168.255.255",
)


@pytest.mark.parametrize("media_address_allowed", [False, True])
async def test_a_hardened_coturn_must_allow_the_media_address_as_a_peer(
    serve_on_link: ServeOnLink,
    customer_in: Any,
    blocked: BlockedNetwork,
    tmp_path: Path,
    media_address_allowed: bool,
) -> None:
    """docs/operations.md: denied private ranges refuse the server's address (403), unless
    ``allowed-peer-ip`` names it."""
    extra = [*PRIVATE_DENIED]
    if media_address_allowed:
        extra.append(f"--allowed-peer-ip={blocked.gateway}")
    folder = tmp_path / "coturn"
    folder.mkdir()
    proc, hardened = start_turn(folder, blocked.gateway, free_port(blocked.gateway), extra)
    try:
        server = await serve_on_link(hardened.url("tcp"))
        http, _, url = await in_call(server)
        try:
            customer = await customer_in(url)
            expected = "connected" if media_address_allowed else "unreachable"
            assert await customer.media("customer", Settings().media_timeout + 10) == expected
        finally:
            await http.close()
    finally:
        stop_turn(proc)
    # coturn answers the permission for that address with 403, and logs it.
    refused = f"peer IP {blocked.gateway} denied" in (folder / "turnserver.log").read_text()
    assert refused != media_address_allowed


async def test_a_chromium_customer_joins_through_turn_over_tcp(
    serve_on_link: ServeOnLink,
    turn: TurnServer,
    blocked: BlockedNetwork,
    launch: Launch,
    tmp_path: Path,
) -> None:
    server = await serve_on_link(turn.url("tcp"))
    http, consultation, _ = await in_call(server)
    stylist = stylist_of(server, http, consultation)
    try:
        await stylist.connect()
        await stylist.start_media()
        origin = str(server.make_url("")).rstrip("/")
        browser = await launch(
            executable=str(blocked.wrapper(tmp_path / "chromium", CHROMIUM)),
            # The page is on a LAN address over plain HTTP: let it have the camera.
            args=[f"--unsafely-treat-insecure-origin-as-secure={origin}"],
        )
        page = await (await browser.new_context(viewport=PHONE)).new_page()
        logged = len(turn.log.read_text())
        await page.goto(str(server.make_url(urlsplit(consultation["customer_link"]).path)))
        await ready_to_join(page)
        await page.get_by_test_id("join").click()
        joined = time.monotonic()

        # UDP cannot cross the link (the test above) and aiortc has no ICE over TCP: media
        # arrives through coturn's relay or not at all (its log says so below).
        def camera() -> list[Any]:
            return [s for s in stylist.received.video if not s.card]

        await stylist.wait_for(lambda: len(camera()) >= 10, 30)
        record("chromium_turn_tcp_first_frame_s", camera()[0].at - joined)
        assert (camera()[-1].width, camera()[-1].height) == (1280, 720)
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=remote-video]').videoWidth === 320",
            timeout=30_000,
        )
        assert await visible_detail(page, "remote-video") > 40  # the stylist's pattern
        media = await stylist.expect("media")
        while media["role"] != "customer":
            media = await stylist.expect("media")
        assert media["state"] == "connected"
        relayed = turn.log.read_text()[logged:]
        assert f"tcp or tls connected to: {blocked.address}" in relayed
        assert "CREATE_PERMISSION processed, success" in relayed
    finally:
        await stylist.close()
        await http.close()


async def test_without_turn_a_chromium_customer_reads_that_their_network_blocks_the_call(
    serve_on_link: ServeOnLink, blocked: BlockedNetwork, launch: Launch, tmp_path: Path
) -> None:
    server = await serve_on_link()
    http, consultation, _ = await in_call(server)
    origin = str(server.make_url("")).rstrip("/")
    customer_browser = await launch(
        executable=str(blocked.wrapper(tmp_path / "chromium", CHROMIUM)),
        args=[f"--unsafely-treat-insecure-origin-as-secure={origin}"],
    )
    stylist_browser = await launch(args=[f"--unsafely-treat-insecure-origin-as-secure={origin}"])
    try:
        customer = await (await customer_browser.new_context(viewport=PHONE)).new_page()
        stylist = await (await stylist_browser.new_context(viewport=PHONE)).new_page()
        for page, link in ((customer, "customer_link"), (stylist, "stylist_link")):
            await page.goto(str(server.make_url(urlsplit(consultation[link]).path)))
            await ready_to_join(page)
            await page.get_by_test_id("join").click()
        joined = time.monotonic()
        # Not a black screen and "Reconnecting" forever: words, on both sides.
        blocked_text = customer.get_by_test_id("network-blocked")
        await expect(blocked_text).to_contain_text("mobile data", timeout=40_000)
        record("chromium_no_turn_customer_told_s", time.monotonic() - joined)
        await expect(stylist.get_by_test_id("customer-media")).to_contain_text(
            "cannot connect", timeout=20_000
        )
        # Not "Connection good" (the server's own waiting card arrives fine).
        await expect(stylist.get_by_test_id("quality-grade")).to_have_text("Poor")
        # The chat still works for the customer.
        await customer.get_by_test_id("chat-toggle").click()
        await customer.get_by_test_id("chat-input").fill("My video won't start here")
        await customer.get_by_test_id("chat-input").press("Enter")
        await stylist.get_by_test_id("tab-chat").click()
        await expect(stylist.get_by_test_id("chat-message")).to_contain_text("won't start")
        await customer.screenshot(path=str(artifact("phone-network-blocked.png")))
        await stylist.screenshot(path=str(artifact("phone-console-customer-unreachable.png")))
    finally:
        await customer_browser.close()
        await stylist_browser.close()
        await http.close()
