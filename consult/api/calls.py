"""Calls owned by this node, asked of by another node (``POST /internal/calls/{id}``): only
for a request signed as one of the nodes (consult/nodes.py); the hub does what is asked
(consult/signaling/hub.py, ``from_node``)."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..appkeys import HUB, NODE
from ..errors import InvalidRequest, PayloadTooLarge, Unauthorized
from ..signaling.node_actions import decode_node_action

__all__ = ["routes"]

routes = web.RouteTableDef()

MAX_BODY = 256 * 1024


@routes.post("/internal/calls/{id}")
async def node_action(request: web.Request) -> web.Response:
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"The body is limited to {MAX_BODY} bytes.")
    if request.app[NODE].verify(request.headers, "POST", request.raw_path, body=body) is None:
        raise Unauthorized("Only the service's own nodes may ask this.")
    try:
        action = decode_node_action(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidRequest(f"Not an action on a call: {exc}.") from None
    try:
        await request.app[HUB].from_node(request.match_info["id"], action)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Not a message this call is sent: {exc}.") from None
    return web.Response(status=204)
