"""``GET /api/backups``: the scheduled backups' last success and failure (the owner)."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import BACKUPS
from ..auth import require_owner

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/backups")
async def backups(request: web.Request) -> web.Response:
    await require_owner(request)
    schedule = request.app.get(BACKUPS)
    if schedule is None:
        return web.json_response({"enabled": False})
    return web.json_response(
        {
            "enabled": True,
            "folder": str(schedule.folder),
            "every_seconds": schedule.every.total_seconds(),
            "keep": schedule.keep,
            **schedule.status.to_json(),
        }
    )
