"""Hints between nodes: what changed in which conversation, so every node's subscribers hear
of messages stored through another.

A hint is small and says only *what* changed (``messages of X up to seq S``, ``a read mark of X
moved``, ...): the store is the truth, and the node that hears a hint reads from it what its
own subscribers have not had yet (consult/conversation.py). So a hint lost, doubled or late
costs nothing but its delay: when a link from a peer (re)connects, the node re-reads every
conversation its subscribers follow, and what a lost hint would have said is read then.

Each node holds one outgoing link (a websocket, authenticated with the nodes' shared secret)
to every other live node (``Nodes.live()``, refreshed), sends its hints on it and reconnects
with backoff; it hears the others' hints on the links they opened to it. A node alone on its
database opens none and sends nothing.

The pure parts (the hints' wire form, which links to open and close) have no I/O;
``Bus`` is their asyncio adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import msgspec
from aiohttp import WSMsgType, web

from .errors import Unauthorized
from .mail.policy import RetryPolicy
from .roles import Role

__all__ = [
    "BUS_PATH",
    "RECONNECT",
    "AwayNoticeHint",
    "Bus",
    "Connect",
    "Disconnect",
    "Hint",
    "Linked",
    "Links",
    "LinksRevokedHint",
    "MessagesHint",
    "Peer",
    "ReadHint",
    "Refreshed",
    "decode",
    "encode",
]

logger = logging.getLogger(__name__)

#: The route a node's peers open their link on.
BUS_PATH = "/internal/bus"


class MessagesHint(msgspec.Struct, frozen=True, tag="messages"):
    """The conversation has messages up to ``seq``."""

    consultation_id: str
    seq: int


class ReadHint(msgspec.Struct, frozen=True, tag="read"):
    """A side's read mark moved in the conversation."""

    consultation_id: str
    by: Role


class AwayNoticeHint(msgspec.Struct, frozen=True, tag="away"):
    """The customer was given the salon's away message (once per closed period)."""

    consultation_id: str


class LinksRevokedHint(msgspec.Struct, frozen=True, tag="revoked"):
    """The conversation's links were revoked: pages opened with them end."""

    consultation_id: str


Hint = MessagesHint | ReadHint | AwayNoticeHint | LinksRevokedHint

_decoder = msgspec.json.Decoder(Hint)


def encode(hint: Hint) -> bytes:
    return msgspec.json.encode(hint)


def decode(data: bytes | str) -> Hint:
    """A hint from its wire form; ``msgspec.ValidationError`` (a ``ValueError``) if it is none."""
    return _decoder.decode(data)


@dataclass(frozen=True)
class Peer:
    node_id: str
    #: The base URL the node is reached on (``--node-url``).
    url: str


@dataclass(frozen=True)
class Connect:
    peer: Peer


@dataclass(frozen=True)
class Disconnect:
    node_id: str


class Links:
    """Which outgoing links a node should hold: one per live peer (pure)."""

    def __init__(self, me: str) -> None:
        self.me = me
        self._peers: dict[str, Peer] = {}

    @property
    def peers(self) -> Mapping[str, Peer]:
        return self._peers

    def update(self, live: Iterable[Peer]) -> list[Connect | Disconnect]:
        """The live nodes now: links to close (gone, or moved to another URL), then to open."""
        wanted = {p.node_id: p for p in live if p.node_id != self.me}
        actions: list[Connect | Disconnect] = [
            Disconnect(node_id)
            for node_id, peer in self._peers.items()
            if wanted.get(node_id) != peer
        ]
        actions += [
            Connect(peer) for node_id, peer in wanted.items() if self._peers.get(node_id) != peer
        ]
        self._peers = wanted
        return actions


#: A link made again after ``RECONNECT.delay(failures)``: 0.1 s, doubling up to 5 s.
RECONNECT = RetryPolicy(first=timedelta(seconds=0.1), cap=timedelta(seconds=5))


@dataclass(frozen=True)
class Linked:
    """A peer's link to this node (re)connected: what its hints said while it was down (or
    before it first came) was stored at ``since`` or later."""

    node_id: str
    since: datetime


@dataclass(frozen=True)
class Refreshed:
    """The peers were looked up again: ``peers`` other nodes are live."""

    peers: int


Received = Hint | Linked | Refreshed

#: Hints queued for one peer at most; beyond, the link is dropped and made again (the peer
#: re-reads everything then, so nothing is lost, only the queue's memory is bounded).
QUEUE_LIMIT = 1000


class _Link:
    """One outgoing link: hints queued from the moment the peer is known, sent while the
    websocket is up, the websocket made again after a failure."""

    def __init__(self, bus: Bus, peer: Peer) -> None:
        self.peer = peer
        self.up = False
        self._bus = bus
        self._queue: asyncio.Queue[Hint] = asyncio.Queue(QUEUE_LIMIT)
        self._overflowed = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"bus link to {peer.node_id}")

    def send(self, hint: Hint) -> None:
        try:
            self._queue.put_nowait(hint)
        except asyncio.QueueFull:
            # Queued hints are worth nothing once the peer re-reads: drop them and the link.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._overflowed.set()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.wait([self._task])

    async def _run(self) -> None:
        failures = 0
        path = BUS_PATH
        url = self.peer.url.rstrip("/") + path
        while True:
            try:
                async with self._bus.session.ws_connect(
                    url, headers=self._bus.sign(path), heartbeat=self._bus.heartbeat
                ) as ws:
                    failures = 0
                    self._overflowed.clear()
                    self.up = True
                    logger.info("bus: linked to %s (%s)", self.peer.node_id, self.peer.url)
                    await self._pump(ws)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                logger.debug("bus: link to %s: %s", self.peer.node_id, exc)
            finally:
                if self.up:
                    self.up = False
                    logger.info("bus: link to %s lost", self.peer.node_id)
            failures += 1
            await asyncio.sleep(RECONNECT.delay(failures).total_seconds())

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # The peer sends nothing: reading only tells when it is gone.
        closed = asyncio.ensure_future(ws.receive())
        overflowed = asyncio.ensure_future(self._overflowed.wait())
        try:
            while True:
                hint = asyncio.ensure_future(self._queue.get())
                done, _ = await asyncio.wait(
                    [hint, closed, overflowed], return_when=asyncio.FIRST_COMPLETED
                )
                if hint not in done:
                    hint.cancel()
                    return
                await ws.send_bytes(encode(hint.result()))
        finally:
            closed.cancel()
            overflowed.cancel()


class Bus:
    """The node's links to its peers (asyncio adapter): ``send`` a hint to every peer;
    iterate the bus for what the peers' links bring (hints, links made, peers looked up)."""

    def __init__(
        self,
        node: str,
        live: Callable[[], Awaitable[list[Peer]]],
        sign: Callable[[str], Mapping[str, str]],
        verify: Callable[[web.Request], str | None],
        *,
        refresh: float = 2.0,
        heartbeat: float = 5.0,
        slack: timedelta = timedelta(seconds=30),
    ) -> None:
        """``live``: the nodes alive now (``Nodes.live()``); ``sign``: the headers that
        authenticate a link's request (its path and query) as this node's; ``verify``: the node
        a request comes from (None: none; consult/nodes.py); ``slack``: how far
        the nodes' clocks may disagree (a re-read after a link was down goes this far back)."""
        self.node = node
        self.sign = sign
        self.heartbeat = heartbeat
        self._live = live
        self._verify = verify
        self._refresh = refresh
        self._slack = slack
        self._links_core = Links(node)
        self._links: dict[str, _Link] = {}
        self._received: asyncio.Queue[Received | None] = asyncio.Queue()
        self._started = datetime.now(UTC)
        #: When each peer's link to this node was last lost.
        self._lost: dict[str, datetime] = {}
        self._inbound: dict[str, int] = {}
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._closed = False

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the bus is not started"
        return self._session

    @property
    def peered(self) -> bool:
        """Whether other nodes are live: only then is anything sent or shared."""
        return bool(self._links)

    def links(self) -> tuple[int, int]:
        """Links up: (to peers, from peers)."""
        return sum(link.up for link in self._links.values()), len(self._inbound)

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=2))
        self._task = asyncio.create_task(self._follow_peers(), name="bus peers")

    async def close(self) -> None:
        """Links closed and iteration ended; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        await asyncio.gather(*(link.close() for link in self._links.values()))
        self._links.clear()
        for handler in list(self._handlers):
            handler.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers)
        if self._session is not None:
            await self._session.close()
        self._received.put_nowait(None)

    def send(self, hint: Hint) -> None:
        for link in self._links.values():
            link.send(hint)

    def __aiter__(self) -> AsyncIterator[Received]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Received]:
        while (item := await self._received.get()) is not None:
            yield item

    async def _follow_peers(self) -> None:
        while True:
            try:
                live = await self._live()
            except Exception as exc:  # the database away: the links stay as they are
                logger.warning("bus: the live nodes could not be read: %s", exc)
            else:
                for action in self._links_core.update(live):
                    match action:
                        case Disconnect(node_id=node_id):
                            await self._links.pop(node_id).close()
                        case Connect(peer=peer):
                            self._links[peer.node_id] = _Link(self, peer)
                self._received.put_nowait(Refreshed(len(self._links)))
            await asyncio.sleep(self._refresh)

    async def accept(self, request: web.Request) -> web.WebSocketResponse:
        """A peer's link to this node (the handler of ``BUS_PATH``): its hints, until it goes."""
        node_id = self._verify(request)
        if node_id is None:
            raise Unauthorized("Only the service's nodes link here.")
        ws = web.WebSocketResponse(heartbeat=self.heartbeat)
        await ws.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._inbound[node_id] = self._inbound.get(node_id, 0) + 1
        since = self._lost.get(node_id, self._started) - self._slack
        # Before any of its hints: what was missed while it was away is read first.
        self._received.put_nowait(Linked(node_id, since))
        try:
            async for message in ws:
                if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                try:
                    self._received.put_nowait(decode(message.data))
                except ValueError:
                    logger.warning("bus: %s sent something that is not a hint", node_id)
        finally:
            self._handlers.discard(task)
            self._inbound[node_id] -= 1
            if not self._inbound[node_id]:
                del self._inbound[node_id]
            self._lost[node_id] = datetime.now(UTC)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws
