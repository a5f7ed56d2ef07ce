"""ICE configuration: the servers we hand out and the addresses we offer.

This is the one module that reaches into aioice/aiortc internals (pinned in pyproject.toml):
aioice gathers host candidates from every interface except loopback and has no option to
choose them. ``host_addresses()`` sets, for the calling task and the tasks it starts, the
addresses to offer instead; ``check_internals()`` (run at start-up and by the tests) fails
loudly when a new aioice moves what this relies on.
"""

from __future__ import annotations

import inspect
import ipaddress
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri

__all__ = [
    "IceServer",
    "check_internals",
    "host_addresses",
    "install",
    "parse_ice_server",
    "rtc_configuration",
]

_offered: ContextVar[tuple[str, ...] | None] = ContextVar("consult_host_addresses", default=None)
_aioice_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    offered = _offered.get()
    if offered is None:
        return list(_aioice_get_host_addresses(use_ipv4, use_ipv6))
    return [a for a in offered if (use_ipv6 if ipaddress.ip_address(a).version == 6 else use_ipv4)]


def check_internals() -> None:
    """Raise if aioice no longer gathers host candidates through ``get_host_addresses``."""
    gather = getattr(aioice.ice.Connection, "gather_candidates", None)
    if gather is None or "get_host_addresses(" not in inspect.getsource(gather):
        raise RuntimeError(
            "aioice.ice.Connection.gather_candidates no longer calls get_host_addresses(): "
            "consult/media/ice.py must be updated for this aioice version"
        )


def install() -> None:
    """Route aioice's host address lookup through ``host_addresses()``; safe to call again."""
    check_internals()
    aioice.ice.get_host_addresses = _get_host_addresses


@contextmanager
def host_addresses(addresses: Iterable[str]) -> Iterator[None]:
    """Offer exactly ``addresses`` as host candidates for peers gathered inside this block.

    An empty list keeps aioice's default (every interface but loopback).
    """
    offered = tuple(str(ipaddress.ip_address(a)) for a in addresses)
    install()
    token = _offered.set(offered or None)
    try:
        yield
    finally:
        _offered.reset(token)


@dataclass(frozen=True)
class IceServer:
    url: str
    username: str | None = None
    credential: str | None = None

    def to_aiortc(self) -> RTCIceServer:
        return RTCIceServer(urls=self.url, username=self.username, credential=self.credential)

    def to_browser(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"urls": [self.url]}
        if self.username is not None:
            entry["username"] = self.username
            entry["credential"] = self.credential or ""
        return entry


_CREDENTIALS = re.compile(
    r"^(?P<scheme>stuns?|turns?):(?P<user>[^:@/]+):(?P<cred>[^@/]*)@(?P<rest>.+)$"
)


def parse_ice_server(spec: str) -> IceServer:
    """``stun:host[:port]`` or ``turn:[user:credential@]host[:port][?transport=udp|tcp]``."""
    match = _CREDENTIALS.match(spec)
    if match:
        url = f"{match['scheme']}:{match['rest']}"
        server = IceServer(url, match["user"], match["cred"])
    else:
        server = IceServer(spec)
    parse_stun_turn_uri(server.url)  # raises ValueError with aiortc's own reason
    return server


def rtc_configuration(servers: Iterable[IceServer]) -> RTCConfiguration:
    # An explicit list, even an empty one: aiortc's default contacts a public STUN server.
    return RTCConfiguration(iceServers=[s.to_aiortc() for s in servers])
