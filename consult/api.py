"""HTTP API (docs/protocol.md): consultations and their links."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web

from .appkeys import HUB, SETTINGS, STORE
from .auth import caller_for, require_staff, sign_in, sign_out, signed_in
from .errors import InvalidRequest, PayloadTooLarge
from .recording.store import Consultation, Links

__all__ = ["routes"]

routes = web.RouteTableDef()

MAX_JSON_BODY = 64 * 1024

T = TypeVar("T")

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class NewConsultation(msgspec.Struct, forbid_unknown_fields=True):
    customer_name: Name
    customer_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    scheduled_at: datetime | None = None
    notes: Annotated[str, msgspec.Meta(max_length=10_000)] = ""


async def read_json(request: web.Request, kind: type[T]) -> T:
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise PayloadTooLarge(f"The body is limited to {MAX_JSON_BODY} bytes.")
    body = await request.content.read(MAX_JSON_BODY + 1)
    if len(body) > MAX_JSON_BODY:
        raise PayloadTooLarge(f"The body is limited to {MAX_JSON_BODY} bytes.")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid body: {exc}.") from None
    except msgspec.DecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None


def link_urls(request: web.Request, links: Links) -> dict[str, Any]:
    return links.urls(request.app[SETTINGS].base_url)


def consultation_json(c: Consultation, *, staff: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": c.id,
        "customer_name": c.customer_name,
        "scheduled_at": c.scheduled_at.isoformat() if c.scheduled_at else None,
        "status": c.status,
        "created_at": c.created_at.isoformat(),
        "last_activity_at": c.last_activity_at.isoformat(),
    }
    if staff:
        body["customer_ref"] = c.customer_ref
        body["notes"] = c.notes
    return body


@routes.post("/api/consultations")
async def create_consultation(request: web.Request) -> web.Response:
    await require_staff(request)
    body = await read_json(request, NewConsultation)
    if body.scheduled_at is not None and body.scheduled_at.tzinfo is None:
        raise InvalidRequest("scheduled_at needs a time zone, e.g. 2026-12-01T10:00:00+08:00.")
    consultation, links = await request.app[STORE].create_consultation(
        customer_name=body.customer_name.strip(),
        customer_ref=body.customer_ref,
        scheduled_at=body.scheduled_at,
        notes=body.notes,
        link_ttl=request.app[SETTINGS].link_ttl,
    )
    return web.json_response(
        consultation_json(consultation, staff=True) | link_urls(request, links), status=201
    )


@routes.get("/api/consultations")
async def list_consultations(request: web.Request) -> web.Response:
    await require_staff(request)
    store = request.app[STORE]
    found = await store.list_consultations(request.query.get("customer_ref"))
    return web.json_response(
        {
            "consultations": [
                consultation_json(c, staff=True) | link_urls(request, await store.links(c.id))
                for c in found
            ]
        }
    )


@routes.get("/api/consultations/{id}")
async def get_consultation(request: web.Request) -> web.Response:
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    store = request.app[STORE]
    consultation = await store.get_consultation(consultation_id)
    body = consultation_json(consultation, staff=caller.staff)
    if caller.staff:
        body |= link_urls(request, await store.links(consultation_id))
    return web.json_response(body)


@routes.post("/api/consultations/{id}/revoke-links")
async def revoke_links(request: web.Request) -> web.Response:
    await require_staff(request)
    consultation_id = request.match_info["id"]
    links = await request.app[STORE].revoke_links(consultation_id, request.app[SETTINGS].link_ttl)
    await request.app[HUB].revoke(consultation_id)
    return web.json_response({"id": consultation_id} | link_urls(request, links))


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


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    await request.app[STORE].ping()
    return web.json_response({"status": "ok"})
