"""This node among the nodes sharing one database: its identity, the secret the nodes sign
their requests to each other with, and its heartbeat.

The secret is derived from the staff key (every node has the same one, or is refused at start:
consult/recording/nodes.py), so there is nothing more to hand out. A request from one node to
another carries ``NODE_AUTH_HEADER``: the sending node, the time, and an HMAC over the request
(method, path and query, the client it acts for, the body's digest); ``verify`` takes it within
``MAX_SKEW`` of its time. The client's address (``NODE_CLIENT_HEADER``) is believed only from
a signed request: the owner of a call applies its per-address limits to the real client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp

from .config import Settings
from .errors import StorageFailed, Unauthorized
from .recording.nodes import NodeInfo, Nodes

__all__ = [
    "BEAT",
    "MAX_SKEW",
    "NODE_AUTH_HEADER",
    "NODE_CLIENT_HEADER",
    "NODE_TTL",
    "Node",
    "NodeCall",
    "keys_fingerprint",
    "node_secret",
    "sign",
    "verify",
]

logger = logging.getLogger(__name__)

NODE_AUTH_HEADER = "X-Consult-Node-Auth"
NODE_CLIENT_HEADER = "X-Consult-Client"
#: A node beats this often and is alive for ``NODE_TTL`` after each beat: a killed node is
#: known dead within ``NODE_TTL`` (its calls are taken over then, or at once if it refuses
#: connections), well inside the 10 s a call may take to come back.
BEAT = timedelta(seconds=1)
NODE_TTL = timedelta(seconds=3)
#: How far a signed request's time may be from ours (the nodes' clocks are kept by NTP).
MAX_SKEW = timedelta(seconds=30)


def node_secret(staff_key: str) -> bytes:
    """The secret the nodes sign their requests to each other with."""
    return hmac.new(staff_key.encode(), b"consult node-to-node", hashlib.sha256).digest()


def keys_fingerprint(staff_key: str, seal_key: bytes) -> str:
    """What the nodes compare at start: a digest of each key, never the key (the staff key's
    part first, then the link-seal key's, joined by ".")."""

    def part(key: bytes) -> str:
        mac = hmac.new(key, b"consult node keys", hashlib.sha256).digest()
        return hashlib.sha256(mac).hexdigest()[:32]

    return f"{part(staff_key.encode())}.{part(seal_key)}"


@dataclass(frozen=True)
class NodeCall:
    """A verified request from another node: which one, and the client it acts for."""

    node_id: str
    client: str | None


def _mac(secret: bytes, node_id: str, at: int, method: str, path_qs: str, client: str,
         body: bytes) -> str:  # fmt: skip
    text = "\n".join([node_id, str(at), method.upper(), path_qs, client])
    material = text.encode() + b"\n" + hashlib.sha256(body).digest()
    return hmac.new(secret, material, hashlib.sha256).hexdigest()


def sign(
    secret: bytes,
    node_id: str,
    method: str,
    path_qs: str,
    now: datetime,
    *,
    client: str | None = None,
    body: bytes = b"",
) -> dict[str, str]:
    """The headers that make a request to another node one of ours (``client``: the address
    of the client it is made for)."""
    at = int(now.timestamp())
    mac = _mac(secret, node_id, at, method, path_qs, client or "", body)
    headers = {NODE_AUTH_HEADER: f"{node_id} {at} {mac}"}
    if client is not None:
        headers[NODE_CLIENT_HEADER] = client
    return headers


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    method: str,
    path_qs: str,
    now: datetime,
    *,
    body: bytes = b"",
) -> NodeCall | None:
    """The node a request comes from, if it carries ``NODE_AUTH_HEADER`` (None if not);
    ``Unauthorized`` if the header is there but wrong or stale."""
    value = headers.get(NODE_AUTH_HEADER)
    if value is None:
        return None
    try:
        node_id, at_text, mac = value.split(" ")
        at = int(at_text)
    except ValueError:
        raise Unauthorized("Not a node of this service.") from None
    client = headers.get(NODE_CLIENT_HEADER)
    expected = _mac(secret, node_id, at, method, path_qs, client or "", body)
    fresh = abs(now.timestamp() - at) <= MAX_SKEW.total_seconds()
    if not hmac.compare_digest(mac, expected) or not fresh:
        raise Unauthorized("Not a node of this service.")
    return NodeCall(node_id, client)


def default_node_url(settings: Settings) -> str:
    """Where the other nodes reach this one when ``--node-url`` is not given: its own port on
    loopback (nodes on one machine), or the address it listens on if it is a single one."""
    host = settings.host
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if settings.tls else 'http'}://{host}:{settings.port}"


class Node:
    """This node: announced at start (refused if its keys differ from the live nodes'),
    beating while it runs, leaving when it stops. ``session``: for requests to other nodes."""

    def __init__(self, settings: Settings, nodes: Nodes, staff_key: str, seal_key: bytes) -> None:
        self.node_id = settings.node
        self.url = (settings.node_url or default_node_url(settings)).rstrip("/")
        self.media_address = settings.media_addresses[0] if settings.media_addresses else None
        self.secret = node_secret(staff_key)
        self.keys = keys_fingerprint(staff_key, seal_key)
        self.nodes = nodes
        self.draining = False
        self._session: aiohttp.ClientSession | None = None
        self._beating: asyncio.Task[None] | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the node has not started"
        return self._session

    async def start(self) -> None:
        """Announce this node; ``KeysDiffer`` (one line) if a live node has other keys."""
        await self._announce()
        self._session = aiohttp.ClientSession()
        self._beating = asyncio.create_task(self._beat())
        logger.info("node %s announced, reached on %s", self.node_id, self.url)

    async def _announce(self) -> None:
        await self.nodes.announce(
            self.node_id, self.url, self.media_address, self.keys, _now(), NODE_TTL
        )
        if self.draining:
            await self.nodes.drain(self.node_id)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(BEAT.total_seconds())
            try:
                if not await self.nodes.beat(self.node_id, _now() + NODE_TTL):
                    await self._announce()  # removed meanwhile (an operator's cleanup)
            except StorageFailed:
                logger.warning("node %s: heartbeat not saved (database unavailable)", self.node_id)
            except Exception:
                logger.exception("node %s: heartbeat failed", self.node_id)

    def sign(
        self, method: str, path_qs: str, *, client: str | None = None, body: bytes = b""
    ) -> dict[str, str]:
        """Headers for a request from this node to another."""
        return sign(self.secret, self.node_id, method, path_qs, _now(), client=client, body=body)

    def verify(
        self, headers: Mapping[str, str], method: str, path_qs: str, *, body: bytes = b""
    ) -> NodeCall | None:
        return verify(self.secret, headers, method, path_qs, _now(), body=body)

    async def live(self) -> list[NodeInfo]:
        """The live nodes, this one included."""
        return await self.nodes.live(_now())

    async def drain(self) -> None:
        """Take no new call (SIGTERM); said to the others through the store."""
        self.draining = True
        with contextlib.suppress(StorageFailed):
            await self.nodes.drain(self.node_id)

    async def close(self) -> None:
        """Stop beating and leave; safe to call twice."""
        beating, self._beating = self._beating, None
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            try:
                await self.nodes.leave(self.node_id)
            except StorageFailed:
                logger.warning("node %s: could not say it left (it lapses by itself)", self.node_id)
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _now() -> datetime:
    return datetime.now(UTC)
