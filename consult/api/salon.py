"""The salon's opening hours and away message (staff)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from aiohttp import web

from ..appkeys import AUDIT, STORE
from ..auth import bearer, credential, is_staff_key, require_owner, require_staff
from ..errors import InvalidRequest
from ..salon import Salon, parse_hours
from .common import read_json

__all__ = ["routes"]

routes = web.RouteTableDef()


class SalonUpdate(msgspec.Struct, forbid_unknown_fields=True):
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    #: {"mon": [["09:00", "18:00"]], ...}: days without intervals are closed.
    hours: dict[str, list[list[str]]]
    away_message: Annotated[str, msgspec.Meta(max_length=1000)] = ""


@routes.get("/api/salon")
async def get_salon(request: web.Request) -> web.Response:
    await require_staff(request)
    return web.json_response((await request.app[STORE].get_salon()).to_json())


@routes.put("/api/salon")
async def put_salon(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    body = await read_json(request, SalonUpdate)
    try:
        hours = parse_hours(body.timezone, body.hours)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid opening hours: {exc}.") from None
    salon = Salon(hours, body.away_message.strip())
    await request.app[STORE].set_salon(salon)
    await request.app[AUDIT].record(caller.actor, "changed", "settings:salon")
    return web.json_response(salon.to_json())


@routes.get("/api/salon/status")
async def salon_status(request: web.Request) -> web.Response:
    """Open now, the next opening, the away message: for a page behind a link (or staff)."""
    value = credential(request)
    if value is None or not (value == bearer(request) and is_staff_key(request, value)):
        await request.app[STORE].resolve_token(value or "")
    status = (await request.app[STORE].get_salon()).status(datetime.now(UTC))
    return web.json_response(status)
