"""A network that drops UDP (hotel and office Wi-Fi), and a real TURN server to get through it.

``BlockedNetwork``: a network namespace linked to the test's own by a veth pair, where
nftables drops every UDP packet on the link, both ways, without an error to the sender (as a
router that filters would): TCP gets through. Programs run inside it with ``popen()``.
``TurnServer``: Debian's coturn on the test's side of the link, listening on UDP and TCP with
one static user, and allowing private and loopback peers (a salon's coturn must allow the
server's media address as a peer: docs/operations.md).

Both change the network they are in, so they refuse to run outside the loopback-only
namespace that ``scripts/test`` makes for the suite. Fixtures: ``blocked`` (the namespace)
and ``turn`` (the server), per module; ``serve_on_link`` (the app under test, where the
blocked network reaches it), per test.

A page's test: ``launch(executable=str(blocked.wrapper(tmp_path / "chromium", CHROMIUM)),
args=[f"--unsafely-treat-insecure-origin-as-secure={origin}"])`` (tests/browser.py) starts
Chromium inside the namespace, driven by Playwright as usual; it opens the pages of
``await serve_on_link(turn.url("tcp"))`` (or of ``serve_on_link()``, no TURN).
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from consult.app import create_app
from consult.config import Settings

from .namespace import Namespace

TURNSERVER = "/usr/bin/turnserver"
NFT = "/usr/sbin/nft"
#: The link: our side (the "router", where the servers are) and the blocked network's side.
GATEWAY, CLIENT = "10.77.0.1", "10.77.0.2"
_OURS, _THEIRS = "blk0", "blk1"

_DROP_UDP = f"""
table netdev consult_blocked {{
    chain from_link {{ type filter hook ingress device {_THEIRS} priority 0; meta l4proto udp drop; }}
    chain to_link {{ type filter hook egress device {_THEIRS} priority 0; meta l4proto udp drop; }}
}}
"""  # noqa: E501 (nft syntax)


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def require_isolated() -> None:
    """Refuse to touch a network that is not the suite's own loopback-only namespace."""
    names = {name for _, name in socket.if_nameindex()}
    if not names <= {"lo", _OURS}:
        pytest.fail(
            f"these tests change the network; run them through scripts/test, inside a"
            f" loopback-only namespace (interfaces here: {sorted(names)})"
        )


class BlockedNetwork(Namespace):
    """A network namespace whose UDP to and from the rest of the world is dropped."""

    gateway = GATEWAY
    address = CLIENT

    def __init__(self) -> None:
        require_isolated()
        super().__init__()
        try:
            _run("ip", "link", "add", _OURS, "type", "veth", "peer", "name", _THEIRS)
            _run("ip", "link", "set", _THEIRS, "netns", str(self.pid))
            _run("ip", "addr", "add", f"{GATEWAY}/24", "dev", _OURS)
            _run("ip", "link", "set", _OURS, "up")
            inside = "ip link set lo up && ip addr add {}/24 dev {} && ip link set {} up"
            self.run(inside.format(CLIENT, _THEIRS, _THEIRS))
            subprocess.run(
                self.command([NFT, "-f", "-"]),
                input=_DROP_UDP, check=True, capture_output=True, text=True,
            )  # fmt: skip
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", _OURS], capture_output=True)  # takes its peer
        super().close()


@dataclass(frozen=True)
class TurnServer:
    address: str
    port: int
    #: coturn's log: sessions, allocations, refused peers.
    log: Path
    user: str = "consult"
    password: str = "turn-test-secret"

    def url(self, transport: str) -> str:
        """As ``--ice-server`` takes it: ``turn:user:password@host:port?transport=...``."""
        return f"turn:{self.user}:{self.password}@{self.address}:{self.port}?transport={transport}"


def start_turn(
    folder: Path, address: str, port: int, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], TurnServer]:
    """coturn on ``address``:``port`` (UDP and TCP, no TLS), logging to ``folder``/turnserver.log;
    ``extra``: more options (``--denied-peer-ip=...``)."""
    turn = TurnServer(address, port, folder / "turnserver.log")
    # -n: no /etc/turnserver.conf, only what is asked here.
    proc = subprocess.Popen(
        [TURNSERVER, "-n", "--no-cli", "--no-tls", "--no-dtls", "--no-rfc5780",
         "--listening-ip", address, "--relay-ip", address, "--listening-port", str(port),
         "--min-port", "49152", "--max-port", "49999",
         "--lt-cred-mech", "--realm", "consult.test", "--user", f"{turn.user}:{turn.password}",
         "--userdb", str(folder / "turndb"), "--pidfile", str(folder / "turnserver.pid"),
         "--allow-loopback-peers", "--fingerprint", "--verbose",
         "--log-file", str(folder / "turnserver.log"), "--simple-log", "--no-stdout-log",
         *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):  # ready once it accepts on TCP
        try:
            socket.create_connection((address, port), timeout=0.2).close()
            return proc, turn
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    log = folder / "turnserver.log"
    raise AssertionError(f"coturn did not start: {log.read_text() if log.exists() else ''}")


ServeOnLink = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def serve_on_link(
    aiohttp_server: Any, settings: Settings, blocked: BlockedNetwork
) -> ServeOnLink:
    """``await serve_on_link(*ice_servers)``: a test server on our side of the link (pages,
    websocket and media on ``blocked.gateway``), handing out these ICE servers."""

    async def start(*ice_servers: str) -> TestServer:
        on_link = dataclasses.replace(
            settings, media_addresses=(blocked.gateway,), ice_servers=ice_servers
        )
        server: TestServer = await aiohttp_server(create_app(on_link), host=blocked.gateway)
        return server

    return start


@pytest.fixture(scope="module")
def blocked() -> Iterator[BlockedNetwork]:
    network = BlockedNetwork()
    try:
        yield network
    finally:
        network.close()


@pytest.fixture(scope="module")
def turn(blocked: BlockedNetwork) -> Iterator[TurnServer]:
    with tempfile.TemporaryDirectory(prefix="coturn-") as folder:
        proc, server = start_turn(Path(folder), blocked.gateway, free_port(blocked.gateway))
        try:
            yield server
        finally:
            stop_turn(proc)


def stop_turn(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


__all__ = [
    "BlockedNetwork", "ServeOnLink", "TurnServer", "blocked", "free_port", "serve_on_link",
    "start_turn", "stop_turn", "turn",
]  # fmt: skip
