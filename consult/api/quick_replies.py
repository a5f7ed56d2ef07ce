"""The salon's quick replies: staff keep them; the console (the stylist's link) reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from aiohttp import web

from ..appkeys import AUDIT, STORE
from ..auth import any_caller, require_staff
from ..errors import Forbidden, InvalidRequest
from ..signaling.messages import MAX_CHAT_CHARS
from .common import read_json

__all__ = ["routes"]

routes = web.RouteTableDef()


class QuickReplyFields(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CHAT_CHARS)]


def _text(fields: QuickReplyFields) -> str:
    text = fields.text.strip()
    if not text:
        raise InvalidRequest("A quick reply needs some text.")
    return text


@routes.get("/api/quick-replies")
async def list_replies(request: web.Request) -> web.Response:
    caller = await any_caller(request)
    if caller.role == "customer":
        raise Forbidden("Quick replies are the salon's.")
    replies = await request.app[STORE].quick_replies.list()
    return web.json_response({"quick_replies": [r.to_json() for r in replies]})


@routes.post("/api/quick-replies")
async def create_reply(request: web.Request) -> web.Response:
    caller = await require_staff(request)
    text = _text(await read_json(request, QuickReplyFields))
    reply = await request.app[STORE].quick_replies.create(text, datetime.now(UTC))
    await request.app[AUDIT].record(caller.actor, "created", f"quick-reply:{reply.id}")
    return web.json_response({"quick_reply": reply.to_json()}, status=201)


@routes.put("/api/quick-replies/{reply}")
async def update_reply(request: web.Request) -> web.Response:
    caller = await require_staff(request)
    text = _text(await read_json(request, QuickReplyFields))
    reply = await request.app[STORE].quick_replies.update(
        request.match_info["reply"], text, datetime.now(UTC)
    )
    await request.app[AUDIT].record(caller.actor, "changed", f"quick-reply:{reply.id}")
    return web.json_response({"quick_reply": reply.to_json()})


@routes.delete("/api/quick-replies/{reply}")
async def delete_reply(request: web.Request) -> web.Response:
    caller = await require_staff(request)
    await request.app[STORE].quick_replies.delete(request.match_info["reply"])
    await request.app[AUDIT].record(
        caller.actor, "deleted", f"quick-reply:{request.match_info['reply']}"
    )
    return web.Response(status=204)
