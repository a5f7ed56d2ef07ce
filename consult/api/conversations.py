"""A consultation's conversation over HTTP: its messages, and the salon's side answering and
reading without a call (the inbox). The pages of the two sides use ``/ws/conversation``."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from ..appkeys import CONVERSATIONS, STORE
from ..auth import Caller, caller_for, require_staff
from ..errors import Forbidden, InvalidRequest
from ..signaling.messages import MAX_CHAT_CHARS, as_dict, conversation_message, history_messages
from .common import read_json

__all__ = ["routes"]

routes = web.RouteTableDef()

MAX_PAGE = 200


class NewMessage(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CHAT_CHARS)]
    #: The sender's id for the message: sending it again stores nothing new.
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ReadUpTo(msgspec.Struct, forbid_unknown_fields=True):
    seq: Annotated[int, msgspec.Meta(ge=0)]


async def _salon_side(request: web.Request) -> str:
    """Staff or the stylist's link: the salon's side, which answers and reads here."""
    consultation_id = request.match_info["id"]
    caller: Caller = await caller_for(request, consultation_id)
    if caller.role == "customer":
        raise Forbidden("The customer writes from their conversation page.")
    await request.app[STORE].get_consultation(consultation_id)
    return consultation_id


@routes.get("/api/inbox")
async def inbox(request: web.Request) -> web.Response:
    """Every conversation (a stylist's account: their own and the unassigned), unread customer
    messages first (docs/protocol.md)."""
    caller = await require_staff(request)
    mine = None if caller.owner else caller.account_id
    try:
        limit = int(request.query.get("limit", "50"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise InvalidRequest("limit and offset are whole numbers.") from None
    if not (1 <= limit <= MAX_PAGE and offset >= 0):
        raise InvalidRequest(f"limit is 1 to {MAX_PAGE}, offset 0 or more.")
    search = request.query.get("q", "").strip()[:200] or None
    store = request.app[STORE]
    items = await store.inbox.page(search=search, limit=limit, offset=offset, reachable_by=mine)
    unread = await store.inbox.unread(reachable_by=mine)
    return web.json_response({"conversations": [i.to_json() for i in items], "unread": unread})


@routes.get("/api/consultations/{id}/messages")
async def messages(request: web.Request) -> web.Response:
    """The conversation so far: every message in order, then each side's read mark."""
    consultation_id = request.match_info["id"]
    await caller_for(request, consultation_id)
    await request.app[STORE].get_consultation(consultation_id)
    history = await request.app[CONVERSATIONS].history(consultation_id)
    return web.json_response({"history": history_messages(history)})


@routes.post("/api/consultations/{id}/messages")
async def post_message(request: web.Request) -> web.Response:
    """The salon answers: ``201`` the stored message, ``200`` the one already stored under
    the same id."""
    consultation_id = await _salon_side(request)
    body = await read_json(request, NewMessage)
    posted = await request.app[CONVERSATIONS].post(consultation_id, "stylist", body.id, body.text)
    message = as_dict(conversation_message(posted))
    return web.json_response({"message": message}, status=201 if posted.new else 200)


@routes.post("/api/consultations/{id}/read")
async def read(request: web.Request) -> web.Response:
    """The salon has read up to ``seq`` (the customer sees "Read")."""
    consultation_id = await _salon_side(request)
    body = await read_json(request, ReadUpTo)
    moved = await request.app[CONVERSATIONS].read(consultation_id, "stylist", body.seq)
    return web.json_response({"seq": moved.seq, "by": moved.by, "unread": moved.unread})
