"""The salon's palette: every call reads it; staff edit, import and export it (docs/colour.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from ..appkeys import AUDIT, STORE
from ..auth import any_caller, require_owner, require_staff
from ..errors import InvalidRequest, PayloadTooLarge
from ..recording.palette import (
    FAMILIES,
    FINISHES,
    MAX_IMPORT_BYTES,
    SwatchFields,
    export_csv,
    export_json,
    parse_import,
)
from .common import read_json

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/swatches")
async def list_swatches(request: web.Request) -> web.Response:
    await any_caller(request)
    palette = await request.app[STORE].palette.list()
    return web.json_response(
        {
            "swatches": [s.to_json() for s in palette],
            "finishes": list(FINISHES),
            "families": list(FAMILIES),
        }
    )


@routes.post("/api/swatches")
async def create_swatch(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    fields = await read_json(request, SwatchFields)
    swatch = await request.app[STORE].palette.create(fields, datetime.now(UTC))
    await request.app[AUDIT].record(caller.actor, "created", f"swatch:{swatch.id}")
    return web.json_response({"swatch": swatch.to_json()}, status=201)


@routes.get("/api/swatches/export")
async def export_palette(request: web.Request) -> web.Response:
    await require_staff(request)
    kind = request.query.get("format", "json")
    palette = await request.app[STORE].palette.list()
    if kind == "csv":
        body, content_type = export_csv(palette), "text/csv"
    elif kind == "json":
        body, content_type = export_json(palette), "application/json"
    else:
        raise InvalidRequest("format must be json or csv.")
    return web.Response(
        text=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="palette.{kind}"'},
    )


@routes.post("/api/swatches/import")
async def import_palette(request: web.Request) -> web.Response:
    """Add or update the file's swatches (by brand and name); ``?mode=replace`` also removes
    the swatches the file does not name. The whole file is checked before anything changes."""
    caller = await require_owner(request)
    mode = request.query.get("mode", "merge")
    if mode not in ("merge", "replace"):
        raise InvalidRequest("mode must be merge or replace.")
    if request.content_length is not None and request.content_length > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"Palette files are limited to {MAX_IMPORT_BYTES // 1024} KB.")
    body = await request.content.read(MAX_IMPORT_BYTES + 1)
    items = parse_import(body, request.content_type)
    counts = await request.app[STORE].palette.import_(
        items, replace=mode == "replace", now=datetime.now(UTC)
    )
    await request.app[AUDIT].record(
        caller.actor, "changed", "settings:palette", detail={"import": mode, **counts}
    )
    palette = await request.app[STORE].palette.list()
    return web.json_response(counts | {"swatches": [s.to_json() for s in palette]})


@routes.put("/api/swatches/{id}")
async def update_swatch(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    fields = await read_json(request, SwatchFields)
    swatch = await request.app[STORE].palette.update(
        request.match_info["id"], fields, datetime.now(UTC)
    )
    await request.app[AUDIT].record(caller.actor, "changed", f"swatch:{swatch.id}")
    return web.json_response({"swatch": swatch.to_json()})


@routes.delete("/api/swatches/{id}")
async def delete_swatch(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    await request.app[STORE].palette.delete(request.match_info["id"])
    await request.app[AUDIT].record(caller.actor, "deleted", f"swatch:{request.match_info['id']}")
    return web.Response(status=204)
