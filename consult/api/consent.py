"""Consent before a call (issue 17): what the salon keeps, and the customer's agreement to it,
stored with the version of the wording and its time (consult/recording/consents.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from ..appkeys import AUDIT, SETTINGS, STORE
from ..auth import caller_for
from ..errors import Forbidden
from ..recording.consents import KEPT, VERSION
from .common import read_json

__all__ = ["routes"]

routes = web.RouteTableDef()


class Agreement(msgspec.Struct, forbid_unknown_fields=True):
    #: The version of the wording the customer was shown (``GET``'s ``version``).
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


@routes.get("/api/consultations/{id}/consent")
async def consent(request: web.Request) -> web.Response:
    """The wording's version, what is kept, whether the salon requires consent before the
    call, and the customer's agreement to the current wording (or null)."""
    consultation_id = request.match_info["id"]
    await caller_for(request, consultation_id)
    store = request.app[STORE]
    await store.get_consultation(consultation_id)
    given = await store.consents.current(consultation_id)
    return web.json_response(
        {
            "version": VERSION,
            "kept": list(KEPT),
            "required": request.app[SETTINGS].require_consent,
            "given": given.to_json() if given is not None else None,
        }
    )


@routes.post("/api/consultations/{id}/consent")
async def agree(request: web.Request) -> web.Response:
    """The customer agrees, from their link, to the wording ``version``."""
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    if caller.role != "customer":
        raise Forbidden("Only the customer gives their consent.")
    body = await read_json(request, Agreement)
    given = await request.app[STORE].consents.give(
        consultation_id, body.version, audit=request.app[AUDIT], actor=caller.actor
    )
    return web.json_response({"given": given.to_json()}, status=201)
