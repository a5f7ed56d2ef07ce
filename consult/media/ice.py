"""ICE configuration: the STUN/TURN servers we use and hand to the browsers.

The addresses we offer as host candidates are set through ``internals.host_addresses()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri

__all__ = ["IceServer", "parse_ice_server", "rtc_configuration"]


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
