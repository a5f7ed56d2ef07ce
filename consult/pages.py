"""The pages: the call page behind each link, and the static files they load."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .appkeys import STORE
from .errors import ConsultError

__all__ = ["WEB_ROOT", "add_routes"]

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

ROLE_BY_PREFIX = {"c": "customer", "s": "stylist"}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / "index.html")


async def call_page(request: web.Request) -> web.StreamResponse:
    role = ROLE_BY_PREFIX[request.match_info["prefix"]]
    try:
        grant = await request.app[STORE].resolve_token(request.match_info["token"])
        valid = grant.role == role
    except ConsultError:
        valid = False
    if not valid:
        response = web.FileResponse(WEB_ROOT / "invalid-link.html")
        response.set_status(404)
        return response
    response = web.FileResponse(WEB_ROOT / "call.html")
    response.headers["Cache-Control"] = "no-store"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get(r"/{prefix:[cs]}/{token}", call_page)
    app.router.add_static("/static/", WEB_ROOT, follow_symlinks=False)
