"""Unsubscribing from the salon's emails: ``/u/<token>``, the link in each email's footer and
``List-Unsubscribe`` header. ``GET`` asks to confirm (a mail scanner that follows links
unsubscribes nobody); ``POST`` unsubscribes: the page's button, or a mail program's one-click
``List-Unsubscribe=One-Click`` (RFC 8058)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from ..appkeys import STORE
from ..webroot import WEB_ROOT

__all__ = ["routes"]

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


def _page(name: str, status: int = 200) -> web.FileResponse:
    response = web.FileResponse(WEB_ROOT / name)
    response.set_status(status)
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/u/{token}")
async def confirm(request: web.Request) -> web.FileResponse:
    found = await request.app[STORE].outbox.recipient(request.match_info["token"])
    if found is None:
        return _page("invalid-link.html", 404)
    _address, unsubscribed = found
    return _page("unsubscribed.html" if unsubscribed else "unsubscribe.html")


@routes.post("/u/{token}")
async def unsubscribe(request: web.Request) -> web.FileResponse:
    address = await request.app[STORE].outbox.unsubscribe(
        request.match_info["token"], datetime.now(UTC)
    )
    if address is None:
        return _page("invalid-link.html", 404)
    logger.info("email: %s unsubscribed", address)
    return _page("unsubscribed.html")
