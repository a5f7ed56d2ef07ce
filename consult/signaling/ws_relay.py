"""A call's websocket relayed to the node that owns the call, message for message.

A participant's ``/ws`` may reach any node (a load balancer in front); the call lives on one
(consult/ownership.py). A node that does not own the call opens the same ``/ws`` (same query)
on the owner's node URL, signed as one of the nodes (consult/nodes.py) with the client's
address, and pipes every message both ways; the owner authenticates the token and runs the
call as for a direct client. The owner's answer carries the owner's own ICE candidates, so
media goes straight to the owner; only signalling passes here.

The owner's close reaches the client with its code and reason (``replaced``, ``revoked``...);
an owner that drops the connection (it died) closes the client with ``call-moved``, a code the
pages reconnect on: they come back through a live node, which takes the call over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from ..errors import CallMoved
from ..nodes import Node
from ..recording.nodes import NodeInfo

__all__ = ["CONNECT_TIMEOUT", "Refused", "Relays", "Unreachable"]

logger = logging.getLogger(__name__)

#: Seconds to open the owner's websocket before the participant is told ``owner-unreachable``.
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class Refused:
    """The owner's node refused the connection: nothing listens there, it is dead."""

    node_id: str


@dataclass(frozen=True)
class Unreachable:
    """The owner's node did not answer (or not as a node should): it may be alive."""

    node_id: str
    reason: str


class Relays:
    """This node's relayed websockets: each piped to its owner's node until either side ends;
    at shutdown (``close``) their clients are closed with GOING_AWAY, so their pages
    reconnect at once (to another node) rather than when the shutdown gives up on them."""

    def __init__(self, node: Node, heartbeat: float) -> None:
        self._node = node
        self._heartbeat = heartbeat
        self._clients: set[web.WebSocketResponse] = set()
        self._closing = False

    async def relay(
        self,
        client: web.WebSocketResponse,
        request: web.Request,
        owner: NodeInfo,
        client_address: str,
    ) -> Refused | Unreachable | None:
        """Pipe ``client`` (its ``/ws`` request) to ``owner``'s ``/ws`` until either side
        ends; ``Refused`` or ``Unreachable`` if the owner's websocket could not be opened
        (nothing was sent to the client then), None once it was relayed and has ended."""
        if self._closing:
            await client.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"shutting down")
            return None
        self._clients.add(client)
        try:
            return await _relay(client, request, owner, self._node, client_address, self._heartbeat)
        finally:
            self._clients.discard(client)

    async def close(self) -> None:
        """Shut down: every relayed client gets GOING_AWAY (its owner's side follows)."""
        self._closing = True
        await asyncio.gather(
            *(c.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"shutting down")
              for c in list(self._clients)),
            return_exceptions=True,
        )  # fmt: skip


async def _relay(
    client: web.WebSocketResponse,
    request: web.Request,
    owner: NodeInfo,
    node: Node,
    client_address: str,
    heartbeat: float,
) -> Refused | Unreachable | None:
    url = URL(owner.url).with_path("/ws").with_query(request.query)
    headers = node.sign("GET", url.raw_path_qs, client=client_address)
    try:
        upstream = await asyncio.wait_for(
            node.session.ws_connect(
                url,
                headers=headers,
                heartbeat=heartbeat,
                max_msg_size=0,  # the owner's messages are its own (the welcome's history)
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            ),
            CONNECT_TIMEOUT,
        )
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            return Refused(owner.node_id)
        return Unreachable(owner.node_id, str(exc))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return Unreachable(owner.node_id, str(exc) or type(exc).__name__)
    logger.info("relaying a participant to %s (%s)", owner.node_id, owner.url)
    async with upstream:
        to_owner = asyncio.create_task(_pipe_in(client, upstream))
        try:
            code, reason = await _pipe_out(upstream, client)
        finally:
            to_owner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await to_owner
        if not client.closed:
            if code is None:
                code, reason = CallMoved.close_code, CallMoved.code.encode()
            await client.close(code=code, message=reason)
        if not upstream.closed:
            await upstream.close(code=client.close_code or aiohttp.WSCloseCode.OK)
    return None


async def _pipe_in(
    client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    """The client's messages to the owner; the client's close closes the owner's side."""
    async for msg in client:
        try:
            if msg.type == WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
        except (ConnectionError, RuntimeError):
            break
    await upstream.close(code=client.close_code or aiohttp.WSCloseCode.OK)


async def _pipe_out(
    upstream: aiohttp.ClientWebSocketResponse, client: web.WebSocketResponse
) -> tuple[int | None, bytes]:
    """The owner's messages to the client, until the owner closes (its code and reason) or
    drops the connection (None)."""
    reason = b""
    async for msg in upstream:
        if msg.type == WSMsgType.TEXT:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await client.send_bytes(msg.data)
        elif msg.type == WSMsgType.CLOSE:
            reason = (msg.extra or "").encode() if isinstance(msg.extra, str) else b""
    code = upstream.close_code
    # 1006: closed abnormally (no close frame: the owner's node went away).
    return (None, b"") if code in (None, 1006) else (code, reason)
