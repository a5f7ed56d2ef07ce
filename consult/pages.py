"""The pages: the call page behind each link, and the static files they load."""

from __future__ import annotations

from aiohttp import web

from .appkeys import STORE
from .errors import ConsultError
from .webroot import WEB_ROOT

__all__ = ["WEB_ROOT", "add_routes", "is_link_page", "too_many_attempts_page"]

ROLE_BY_PREFIX = {"c": "customer", "s": "stylist"}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / "index.html")


async def settings_page(request: web.Request) -> web.FileResponse:
    """Opening hours, quick replies and the palette; the page asks the API, which checks the
    session."""
    return web.FileResponse(WEB_ROOT / "settings.html")


async def _link_page(request: web.Request, page: str) -> web.StreamResponse:
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
    response = web.FileResponse(WEB_ROOT / page)
    response.headers["Cache-Control"] = "no-store"
    return response


async def call_page(request: web.Request) -> web.StreamResponse:
    return await _link_page(request, "call.html")


async def link_record_page(request: web.Request) -> web.StreamResponse:
    """The record behind a link: the customer reviews their consultation from the same link."""
    return await _link_page(request, "record.html")


async def record_page(request: web.Request) -> web.FileResponse:
    """The record for signed-in staff; the page asks the API, which checks the session."""
    response = web.FileResponse(WEB_ROOT / "record.html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def audit_page(request: web.Request) -> web.FileResponse:
    """The audit log (the owner's); the page asks the API, which checks the session."""
    response = web.FileResponse(WEB_ROOT / "audit.html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def reset_page(request: web.Request) -> web.FileResponse:
    """A forgotten password: ask for a reset email, or (with its token after #) set a new one."""
    response = web.FileResponse(WEB_ROOT / "reset.html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def book_page(request: web.Request) -> web.FileResponse:
    """The public booking page (issue 16): anyone books a free slot; the page asks the API."""
    return web.FileResponse(WEB_ROOT / "book.html")


async def checkin_page(request: web.Request) -> web.StreamResponse:
    """A check-in behind the customer's link: the page asks the API for it (and says if the
    link opens no such check-in)."""
    return await _link_page(request, "checkin.html")


def is_link_page(request: web.Request) -> bool:
    """Whether ``request`` opens a page behind a link (answered with a page, never JSON)."""
    return request.match_info.handler in (call_page, link_record_page, checkin_page)


def too_many_attempts_page(retry_after: int) -> web.FileResponse:
    """For a link opened during a lockout: a page in the visitor's language, not raw JSON."""
    response = web.FileResponse(WEB_ROOT / "too-many-attempts.html")
    response.set_status(429)
    response.headers["Retry-After"] = str(retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/settings", settings_page)
    app.router.add_get(r"/{prefix:[cs]}/{token}", call_page)
    app.router.add_get(r"/{prefix:[cs]}/{token}/record", link_record_page)
    app.router.add_get("/r/{id}", record_page)
    # Staff accounts and the audit log (issue 17)
    app.router.add_get("/audit", audit_page)
    app.router.add_get("/reset", reset_page)
    app.router.add_get("/book", book_page)
    app.router.add_get(r"/{prefix:c}/{token}/checkin/{checkin}", checkin_page)
    app.router.add_static("/static/", WEB_ROOT, follow_symlinks=False)
