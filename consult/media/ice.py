"""ICE configuration: the STUN/TURN servers we hand to the browsers, and the server's own.

The server's peers gather host candidates only, on the addresses set through
``internals.host_addresses()`` (``--media-address``), and never contact a STUN or TURN server:
the server is where media goes, so a browser that cannot reach it directly relays through its
TURN server to those host candidates. A TURN server the server itself cannot reach would
otherwise hold every answer back by aioice's 5 s gathering timeout, and relaying both legs
through it would add a hop for nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiortc import RTCConfiguration
from aiortc.rtcicetransport import parse_stun_turn_uri

__all__ = ["IceServer", "parse_ice_server", "server_configuration"]


@dataclass(frozen=True)
class IceServer:
    url: str
    username: str | None = None
    credential: str | None = None

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


def server_configuration() -> RTCConfiguration:
    """The server's own peer connections: no ICE server (the module's docstring says why)."""
    # An explicit empty list: aiortc's default contacts a public STUN server.
    return RTCConfiguration(iceServers=[])
