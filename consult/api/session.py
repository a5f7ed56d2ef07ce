"""Staff sign-in on the dashboard, and the health check."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from ..appkeys import STORE
from ..auth import credential, sign_in, sign_out, signed_in
from ..errors import InvalidToken
from .common import read_json

__all__ = ["routes"]

routes = web.RouteTableDef()


class SignIn(msgspec.Struct, forbid_unknown_fields=True):
    staff_key: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


@routes.get("/api/session")
async def get_session(request: web.Request) -> web.Response:
    return web.json_response({"staff": await signed_in(request)})


@routes.post("/api/session")
async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, SignIn)
    await sign_in(request, body.staff_key)
    return web.json_response({"staff": True})


@routes.delete("/api/session")
async def delete_session(request: web.Request) -> web.Response:
    await sign_out(request)
    return web.json_response({"staff": False})


@routes.get("/api/link")
async def link(request: web.Request) -> web.Response:
    """What a link token opens: its consultation and role (for pages that only have the link)."""
    value = credential(request)
    if value is None:
        raise InvalidToken()
    grant = await request.app[STORE].resolve_token(value)
    return web.json_response({"consultation_id": grant.consultation_id, "role": grant.role})


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    await request.app[STORE].ping()
    return web.json_response({"status": "ok"})
