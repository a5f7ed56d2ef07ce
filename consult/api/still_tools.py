"""Colour tools on a still (docs/colour.md): sample, undertone, nail outlines, white balance
and try-on. Reading tools are open to both sides of the consultation; the ones that make
images or change outlines are the stylist's (and staff's).

Decoding and pixel work run in an executor, one tool at a time per server: a 12-megapixel
photo costs a few hundred milliseconds of a core, and the calls' media must keep theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web

from ..appkeys import HUB, STILLS, STORE, TOOL_SLOTS
from ..auth import caller_for
from ..colour import nearest_swatches
from ..errors import Forbidden, InvalidRegion
from ..media import still_tools as tools
from ..media.stills import still_json
from ..recording.store import Still
from ..signaling.messages import StillSaved
from .common import read_json

__all__ = ["routes"]

routes = web.RouteTableDef()

T = TypeVar("T")
Point = Annotated[list[float], msgspec.Meta(min_length=2, max_length=2)]
Polygon = Annotated[list[Point], msgspec.Meta(min_length=3, max_length=tools.MAX_POINTS)]
Polygons = Annotated[list[Polygon], msgspec.Meta(min_length=1, max_length=tools.MAX_POLYGONS)]
Rect = Annotated[list[int], msgspec.Meta(min_length=4, max_length=4)]


class SampleRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A point (``x``, ``y``, averaged over ``radius`` pixels around it) or a ``rect``."""

    x: int | None = None
    y: int | None = None
    radius: Annotated[int, msgspec.Meta(ge=0, le=50)] = 3
    rect: Rect | None = None


class WhiteBalanceRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``rect``: a white or grey reference; none: grey world."""

    rect: Rect | None = None


class NailsRequest(msgspec.Struct, forbid_unknown_fields=True):
    polygons: Polygons


class TryOnRequest(msgspec.Struct, forbid_unknown_fields=True):
    swatch_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    #: Outlines for this try-on only; by default the still's saved ones.
    polygons: Polygons | None = None


async def _still(request: web.Request, *, edit: bool) -> Still:
    still = await request.app[STORE].get_still(request.match_info["id"])
    caller = await caller_for(request, still.consultation_id)
    if edit and caller.role == "customer":
        raise Forbidden("Only the stylist changes outlines and makes images from a still.")
    return still


async def _run(request: web.Request, function: Callable[[], T]) -> T:
    async with request.app[TOOL_SLOTS]:
        return await asyncio.get_running_loop().run_in_executor(None, function)


def _pixels(request: web.Request, still: Still) -> Callable[[], Any]:
    path = request.app[STILLS].path(still.file)
    return lambda: tools.pixels_of(path)


def _region(rect: list[int]) -> tools.Region:
    return tools.Region(*rect)


@routes.post("/api/stills/{id}/sample")
async def sample(request: web.Request) -> web.Response:
    still = await _still(request, edit=False)
    body = await read_json(request, SampleRequest)
    if body.rect is not None:
        region = _region(body.rect)
    elif body.x is not None and body.y is not None:
        region = tools.Region.around(body.x, body.y, body.radius)
    else:
        raise InvalidRegion("Give a point (x and y) or a rect [x, y, width, height].")
    load = _pixels(request, still)
    result = await _run(request, lambda: tools.sample(load(), region))
    palette = await request.app[STORE].palette.list()
    nearest = nearest_swatches(result.lab, palette, k=3)
    return web.json_response(
        {
            "hex": result.hex,
            "rgb": [round(c * 255, 1) for c in result.rgb],
            "lab": [round(c, 2) for c in result.lab],
            "region": [result.region.x, result.region.y, result.region.w, result.region.h],
            "nearest": [{"swatch": n.swatch.to_json(), "delta_e": n.delta_e} for n in nearest],
        }
    )


@routes.get("/api/stills/{id}/undertone")
async def undertone(request: web.Request) -> web.Response:
    still = await _still(request, edit=False)
    load = _pixels(request, still)
    result = await _run(request, lambda: tools.undertone(load()))
    palette = await request.app[STORE].palette.list()
    suiting = [s for s in palette if tools.suits(result.tone, s.hex)]
    return web.json_response(
        {
            "tone": result.tone,
            "confidence": result.confidence,
            "hue": result.hue,
            "lab": list(result.lab),
            "skin_fraction": result.skin_fraction,
            "suits": [s.id for s in suiting],
            "suggested": [s.to_json() for s in suiting[:8]],
        }
    )


@routes.put("/api/stills/{id}/nails")
async def nails(request: web.Request) -> web.Response:
    still = await _still(request, edit=True)
    body = await read_json(request, NailsRequest)
    tools.nail_mask(body.polygons, still.width, still.height)  # refuses outlines off the image
    await request.app[STORE].set_nails(still.id, body.polygons)
    return web.json_response({"nails": body.polygons})


async def _publish(request: web.Request, still: Still) -> web.Response:
    body = still_json(still)
    await request.app[HUB].broadcast(still.consultation_id, StillSaved(still=body))
    return web.json_response({"still": body}, status=201)


@routes.post("/api/stills/{id}/white-balance")
async def white_balance(request: web.Request) -> web.Response:
    still = await _still(request, edit=True)
    body = await read_json(request, WhiteBalanceRequest)
    region = _region(body.rect) if body.rect is not None else None
    load = _pixels(request, still)
    corrected, white = await _run(request, lambda: tools.white_balance(load(), region))
    derivation = {
        "kind": "white-balance",
        "method": "reference" if region else "grey-world",
        "rect": body.rect,
        "white": [round(c, 5) for c in white],
    }
    derived = await request.app[STILLS].save_derived(still, corrected, "white-balance", derivation)
    return await _publish(request, derived)


@routes.post("/api/stills/{id}/try-on")
async def try_on(request: web.Request) -> web.Response:
    still = await _still(request, edit=True)
    body = await read_json(request, TryOnRequest)
    store = request.app[STORE]
    swatch = await store.palette.get(body.swatch_id)
    # A try-on of a try-on recolours the photo underneath, not the earlier preview.
    base = still
    if still.source == "try-on" and still.parent_id is not None:
        base = await store.get_still(still.parent_id)
    polygons = body.polygons or base.nails
    if polygons is None and base.parent_id is not None:
        polygons = (await store.get_still(base.parent_id)).nails  # a corrected copy's outlines
    if not polygons:
        raise InvalidRegion("Outline the nails first (PUT /api/stills/{id}/nails).")
    mask = tools.nail_mask(polygons, base.width, base.height)
    load = _pixels(request, base)
    preview = await _run(request, lambda: tools.try_on(load(), mask, swatch.hex))
    derivation = {"kind": "try-on", "swatch": swatch.to_json(), "polygons": polygons}
    derived = await request.app[STILLS].save_derived(base, preview, "try-on", derivation)
    return await _publish(request, derived)
