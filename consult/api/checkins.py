"""Aftercare check-ins (docs/protocol.md, Check-ins): staff schedule, move and remove them and
follow up; the customer's check-in page reads one and answers it (photos, then the form)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from ..aftercare import Answers, CheckinDefaults
from ..appkeys import AFTERCARE, AUDIT, DUE_WORK, STORE
from ..auth import Caller, caller_for, require_owner, require_staff, staff_for
from ..checkins import listed_json
from ..errors import Forbidden, InvalidRequest
from ..record import record_json
from ..recording.checkins import Checkin
from .common import read_json
from .consultations import link_urls, scheduled
from .stills import CHUNK

__all__ = ["routes"]

routes = web.RouteTableDef()

Days = Annotated[list[int], msgspec.Meta(max_length=10)]


class Schedule(msgspec.Struct, forbid_unknown_fields=True):
    """``days`` after now (the salon's default days if neither is given), or one ``due_at``."""

    days: Days | None = None
    due_at: datetime | None = None


class Move(msgspec.Struct, forbid_unknown_fields=True):
    due_at: datetime


class Defaults(msgspec.Struct, forbid_unknown_fields=True):
    days: Days
    overdue_days: int = 2


class Form(msgspec.Struct, forbid_unknown_fields=True):
    lifting: bool
    chipping: bool
    comfort: int
    text: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class FollowUp(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["same-again", "repair"]


def _due(value: datetime | None) -> datetime:
    at = scheduled(value)
    if at is None:
        raise InvalidRequest("due_at is required.")
    return at


async def _checkin(request: web.Request) -> tuple[Checkin, str]:
    """The check-in named in the path and who asks: staff, or its consultation's links."""
    checkin = await request.app[STORE].checkins.get(request.match_info["checkin"])
    caller = await caller_for(request, checkin.consultation_id)
    return checkin, caller.role


async def _staffs(request: web.Request) -> tuple[Checkin, Caller]:
    """The check-in named in the path, for staff who may reach its consultation."""
    checkin = await request.app[STORE].checkins.get(request.match_info["checkin"])
    return checkin, await staff_for(request, checkin.consultation_id)


async def _customers(request: web.Request) -> Checkin:
    """The check-in, for its customer's page only; open once its request was sent."""
    checkin, role = await _checkin(request)
    if role != "customer":
        raise Forbidden("Only the customer answers their check-in.")
    return await request.app[AFTERCARE].open_checkin(checkin.consultation_id, checkin.id)


@routes.get("/api/checkins")
async def board(request: web.Request) -> web.Response:
    """The dashboard's check-ins: due, overdue, answered."""
    caller = await require_staff(request)
    found = await request.app[AFTERCARE].board(
        reachable_by=None if caller.owner else caller.account_id
    )
    return web.json_response(
        {
            "due": [listed_json(i) for i in found.due],
            "overdue": [listed_json(i) for i in found.overdue],
            "answered": [listed_json(i) for i in found.answered],
        }
    )


@routes.get("/api/checkin-settings")
async def get_defaults(request: web.Request) -> web.Response:
    await require_staff(request)
    return web.json_response((await request.app[STORE].checkins.defaults()).to_json())


@routes.put("/api/checkin-settings")
async def set_defaults(request: web.Request) -> web.Response:
    # The salon's defaults are its settings: the owner's.
    caller = await require_owner(request)
    body = await read_json(request, Defaults)
    value = CheckinDefaults(tuple(body.days), body.overdue_days)
    await request.app[STORE].checkins.set_defaults(value, datetime.now(UTC))
    await request.app[AUDIT].record(caller.actor, "changed", "settings:checkins")
    return web.json_response(value.to_json())


@routes.get("/api/consultations/{id}/checkins")
async def of_consultation(request: web.Request) -> web.Response:
    await staff_for(request, request.match_info["id"])
    store = request.app[STORE]
    await store.get_consultation(request.match_info["id"])
    found = await store.checkins.of(request.match_info["id"])
    return web.json_response({"checkins": [c.to_json() for c in found]})


@routes.post("/api/consultations/{id}/checkins")
async def schedule(request: web.Request) -> web.Response:
    """Schedule check-ins for a consultation that is done: ``{"days": [3, 14]}`` after now
    (``{}``: the salon's default days), or one at ``{"due_at": ...}``."""
    caller = await staff_for(request, request.match_info["id"])
    body = await read_json(request, Schedule)
    aftercare = request.app[AFTERCARE]
    consultation_id = request.match_info["id"]
    if body.due_at is not None and body.days is not None:
        raise InvalidRequest("Send days or due_at, not both.")
    if body.due_at is not None:
        made = [
            await aftercare.add(
                request.app[DUE_WORK], consultation_id, _due(body.due_at), actor=caller.actor
            )
        ]
    else:
        made = await aftercare.schedule(
            request.app[DUE_WORK], consultation_id, body.days, actor=caller.actor
        )
    return web.json_response({"checkins": [c.to_json() for c in made]}, status=201)


@routes.get("/api/checkins/{checkin}")
async def get_checkin(request: web.Request) -> web.Response:
    """One check-in: for staff, or its customer's page once its request was sent."""
    checkin, role = await _checkin(request)
    if role == "customer":
        checkin = await request.app[AFTERCARE].open_checkin(checkin.consultation_id, checkin.id)
    return web.json_response(checkin.to_json())


@routes.patch("/api/checkins/{checkin}")
async def move(request: web.Request) -> web.Response:
    _, caller = await _staffs(request)
    body = await read_json(request, Move)
    checkin = await request.app[AFTERCARE].move(
        request.app[DUE_WORK], request.match_info["checkin"], _due(body.due_at), actor=caller.actor
    )
    return web.json_response(checkin.to_json())


@routes.delete("/api/checkins/{checkin}")
async def remove(request: web.Request) -> web.Response:
    _, caller = await _staffs(request)
    await request.app[AFTERCARE].remove(
        request.app[DUE_WORK], request.match_info["checkin"], actor=caller.actor
    )
    return web.Response(status=204)


@routes.post("/api/checkins/{checkin}/photos")
async def photo(request: web.Request) -> web.Response:
    """A view's photo (``?view=top|side|cuticles``), PNG or JPEG as a capture's: refused by
    the quality gate if blurry or dark (422 photo-refused, with what to fix)."""
    # A phone's camera app names its photo loosely: the content decides (PNG or JPEG).
    checkin = await _customers(request)
    updated = await request.app[AFTERCARE].photo(
        checkin,
        request.query.get("view", ""),
        request.content.iter_chunked(CHUNK),
        request.content_length,
    )
    return web.json_response(updated.to_json(), status=201)


@routes.put("/api/checkins/{checkin}/answers")
async def answer(request: web.Request) -> web.Response:
    """The form; answered again, it replaces the first answer."""
    checkin = await _customers(request)
    body = await read_json(request, Form)
    answers = Answers(body.lifting, body.chipping, body.comfort, body.text)
    updated = await request.app[AFTERCARE].answer(checkin, answers)
    return web.json_response(updated.to_json())


@routes.post("/api/checkins/{checkin}/follow-up")
async def follow_up(request: web.Request) -> web.Response:
    """From a check-in, one click: ``{"kind": "same-again"}`` or ``{"kind": "repair"}``."""
    checkin, caller = await _staffs(request)
    body = await read_json(request, FollowUp)
    earlier = await request.app[STORE].get_consultation(checkin.consultation_id)
    consultation, links = await request.app[AFTERCARE].follow_up(
        checkin.id,
        body.kind,
        # The same stylist's, as "same again" from the record.
        assigned_to=earlier.assigned_to if caller.owner else caller.account_id,
    )
    await request.app[AUDIT].record(
        caller.actor,
        "created",
        f"consultation:{consultation.id}",
        detail={"based_on": earlier.id, "checkin": checkin.id, "kind": body.kind},
    )
    record = await record_json(request.app[STORE], consultation, role="staff")
    return web.json_response(record | link_urls(request, links), status=201)
