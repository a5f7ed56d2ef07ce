"""Recordings of calls going out: the file, with Range requests (a player seeks by them)."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import RECORDINGS, STORE
from ..auth import caller_for
from ..errors import NotFound
from .common import audit_file, check_range

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/recordings/{id}")
async def recording_file(request: web.Request) -> web.FileResponse:
    recording = await request.app[STORE].recordings.get(request.match_info["id"])
    caller = await caller_for(request, recording.consultation_id)
    path = request.app[RECORDINGS].path(recording.file)
    if not path.is_file():
        # Its row is shared, its file is on another node's storage (or was not restored).
        raise NotFound("The recording's file is not on this server's storage.")
    check_range(request, path.stat().st_size)
    await audit_file(request, caller, f"recording:{recording.id}")
    response = web.FileResponse(path)
    response.content_type = recording.media_type or "application/octet-stream"
    # A recording never changes once finished; it is private to the consultation.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    disposition = "attachment" if request.query.get("download") else "inline"
    extension = recording.file.rsplit(".", 1)[-1]
    name = f"consultation-{recording.consultation_id}-{recording.role}-{recording.id}.{extension}"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return response
