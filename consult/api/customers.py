"""The salon's customers (issue 17): the directory, a customer's page, merging duplicates,
and what a customer asks for from their link (their data as one ZIP, its deletion)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import msgspec
from aiohttp import web

from ..appkeys import AUDIT, CUSTOMERS, RECORDINGS, STILLS, STORE
from ..auth import Caller, caller_for, require_owner, require_staff
from ..errors import Forbidden, InvalidRequest
from ..record import consultation_json, write_customer_zip
from ..recording.customers import Customer
from ..recording.store import Consultation
from .common import read_json, send_file
from .consultations import email_address, language

__all__ = ["routes"]

routes = web.RouteTableDef()

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Phone = Annotated[str, msgspec.Meta(max_length=40)]
Email = Annotated[str, msgspec.Meta(max_length=254)]
Ref = Annotated[str, msgspec.Meta(max_length=200)]
Notes = Annotated[str, msgspec.Meta(max_length=10_000)]


class NewCustomer(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    email: Email | None = None
    phone: Phone | None = None
    language: str | None = None
    notes: Notes = ""
    external_ref: Ref | None = None


class CustomerEdit(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH``: the fields given change; ``null`` (or "") clears one."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType | None = msgspec.UNSET
    phone: Phone | msgspec.UnsetType | None = msgspec.UNSET
    language: str | msgspec.UnsetType | None = msgspec.UNSET
    notes: Notes | msgspec.UnsetType = msgspec.UNSET
    external_ref: Ref | msgspec.UnsetType | None = msgspec.UNSET


class Merge(msgspec.Struct, forbid_unknown_fields=True):
    #: The customer this one is a duplicate of: it stays, this one goes into it.
    into: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


@routes.get("/api/customers")
async def search(request: web.Request) -> web.Response:
    """Customers by any part of their name, email, phone or reference (``q``)."""
    await require_staff(request)
    q = request.query.get("q", "")
    if len(q) > 200:
        raise InvalidRequest("q: at most 200 characters.")
    found = await request.app[CUSTOMERS].search(q)
    return web.json_response({"customers": [c.to_json() for c in found]})


@routes.post("/api/customers")
async def create(request: web.Request) -> web.Response:
    caller = await require_staff(request)
    body = await read_json(request, NewCustomer)
    customer = await request.app[CUSTOMERS].create(
        name=body.name,
        email=email_address(body.email),
        phone=body.phone,
        language=language(body.language),
        notes=body.notes,
        external_ref=(body.external_ref or "").strip() or None,
    )
    await request.app[AUDIT].record(caller.actor, "created", f"customer:{customer.id}")
    return web.json_response({"customer": customer.to_json()}, status=201)


@routes.get("/api/customers/{id}")
async def page(request: web.Request) -> web.Response:
    """A customer with every consultation of theirs (that this member of staff may reach),
    each with its messages, their consents and check-ins."""
    caller = await require_staff(request)
    customer = await request.app[CUSTOMERS].get(request.match_info["id"])
    store = request.app[STORE]
    consultations = [
        consultation_json(c, role="staff") | {"messages": await _messages(request, c.id)}
        for c in await _reachable(request, caller, customer)
    ]
    consents = await store.consents.of_customer(customer.id)
    # Aftercare check-ins (issue 16) of the consultations shown, newest first.
    check_ins = sorted(
        [checkin for c in consultations for checkin in await store.checkins.of(c["id"])],
        key=lambda checkin: checkin.due_at,
        reverse=True,
    )
    await request.app[AUDIT].record(caller.actor, "viewed", f"customer:{customer.id}")
    return web.json_response(
        {
            "customer": customer.to_json(),
            "consultations": consultations,
            "consents": [c.to_json() | {"consultation_id": c.consultation_id} for c in consents],
            "check_ins": [checkin.to_json() for checkin in check_ins],
        }
    )


@routes.patch("/api/customers/{id}")
async def edit(request: web.Request) -> web.Response:
    caller = await require_staff(request)
    body = await read_json(request, CustomerEdit)
    values: dict[str, Any] = {
        name: getattr(body, name)
        for name in ("name", "phone", "notes", "external_ref")
        if getattr(body, name) is not msgspec.UNSET
    }
    if body.email is not msgspec.UNSET:
        values["email"] = email_address(body.email)
    if body.language is not msgspec.UNSET:
        values["language"] = language(body.language)
    if "external_ref" in values:
        values["external_ref"] = (values["external_ref"] or "").strip() or None
    if not values:
        raise InvalidRequest("Nothing to change: send name, email, phone, language, notes or"
                             " external_ref.")  # fmt: skip
    customer = await request.app[CUSTOMERS].update(request.match_info["id"], values)
    await request.app[AUDIT].record(
        caller.actor, "changed", f"customer:{customer.id}", detail={"fields": sorted(values)}
    )
    return web.json_response({"customer": customer.to_json()})


@routes.post("/api/customers/{id}/merge")
async def merge(request: web.Request) -> web.Response:
    """The owner merges a duplicate (this customer) into the customer ``into``."""
    caller = await require_owner(request)
    body = await read_json(request, Merge)
    customer = await request.app[CUSTOMERS].merge(
        request.match_info["id"], body.into, audit=request.app[AUDIT], actor=caller.actor
    )
    return web.json_response({"customer": customer.to_json()})


@routes.get("/api/customers/{id}/export")
async def export(request: web.Request) -> web.StreamResponse:
    """Every consultation of the customer as one ZIP (the owner's, with the private notes)."""
    caller = await require_owner(request)
    customer = await request.app[CUSTOMERS].get(request.match_info["id"])
    await request.app[AUDIT].record(caller.actor, "exported", f"customer:{customer.id}")
    return await _bundle(request, customer, role="staff")


@routes.get("/api/consultations/{id}/export-all")
async def export_all(request: web.Request) -> web.StreamResponse:
    """The customer, from their link: every consultation of theirs as one ZIP, as they see it."""
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    if caller.role != "customer":
        raise Forbidden("The customer's own download: staff export a customer by its id.")
    customer = await _customer_of(request, consultation_id)
    await request.app[AUDIT].record(caller.actor, "downloaded", f"customer:{customer.id}")
    return await _bundle(request, customer, role="customer")


@routes.post("/api/consultations/{id}/deletion-request")
async def request_deletion(request: web.Request) -> web.Response:
    """The customer asks, from their link, for everything of theirs to be deleted; the owner
    sees the request on the customer and confirms it (``DELETE /api/customers/{id}``)."""
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    if caller.role != "customer":
        raise Forbidden("Only the customer asks for their own data to be deleted.")
    customer = await _customer_of(request, consultation_id)
    customer = await request.app[CUSTOMERS].request_deletion(
        customer.id, audit=request.app[AUDIT], actor=caller.actor
    )
    requested = customer.deletion_requested_at
    return web.json_response(
        {"deletion_requested_at": requested.isoformat() if requested else None}, status=202
    )


async def _customer_of(request: web.Request, consultation_id: str) -> Customer:
    consultation = await request.app[STORE].get_consultation(consultation_id)
    if consultation.customer_id is None:
        raise InvalidRequest("This consultation has no customer record.")
    return await request.app[CUSTOMERS].get(consultation.customer_id)


async def _reachable(
    request: web.Request, caller: Caller, customer: Customer
) -> list[Consultation]:
    theirs = await request.app[STORE].list_consultations(customer_id=customer.id)
    return [c for c in theirs if caller.may_reach(c.assigned_to)]


async def _messages(request: web.Request, consultation_id: str) -> list[dict[str, Any]]:
    return [
        {
            "seq": m.seq,
            "from": m.sender,
            "text": m.text,
            "at": m.created_at.isoformat(),
            "photo": m.still_id is not None,
            "attachment": m.attachment_id is not None,
        }
        for m in await request.app[STORE].messages(consultation_id)
    ]


async def _bundle(request: web.Request, customer: Customer, *, role: str) -> web.StreamResponse:
    store = request.app[STORE]
    consultations = await store.list_consultations(customer_id=customer.id)
    with tempfile.TemporaryDirectory() as folder:
        path = await write_customer_zip(
            store,
            request.app[STILLS],
            request.app[RECORDINGS],
            consultations,
            role=role,
            out=Path(folder) / "customer.zip",
        )
        return await send_file(request, path, filename=f"customer-{customer.id}.zip")
