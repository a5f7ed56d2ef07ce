"""Consultations and their links (docs/protocol.md)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from aiohttp import web
from email_validator import EmailNotValidError, validate_email

from ..appkeys import (
    ACCOUNTS,
    AUDIT,
    CONVERSATIONS,
    HUB,
    NOTICES,
    RECORDINGS,
    REMINDERS,
    SETTINGS,
    STILLS,
    STORE,
)
from ..auth import caller_for, require_staff, staff_for
from ..config import MAIL_LANGUAGES
from ..errors import Forbidden, InvalidEmail, InvalidRequest
from ..record import consultation_json, record_json, write_record_zip
from ..recording.outbox import Mail
from ..recording.store import Consultation, Links
from .common import read_json, send_file

__all__ = ["routes"]

routes = web.RouteTableDef()

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class NewConsultation(msgspec.Struct, forbid_unknown_fields=True):
    """For the customer ``customer_id``, or for a customer made from ``customer_name`` (the
    one with that ``customer_ref`` where there is one)."""

    customer_name: Name | None = None
    customer_ref: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    scheduled_at: datetime | None = None
    notes: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    customer_email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    #: The customer's emails' language; None: the salon's (``--mail-language``).
    customer_language: str | None = None
    #: The stylist account it is for (the owner only; a stylist's own are theirs).
    assigned_to: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    customer_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class ConsultationEdit(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH``: the fields given change; ``null`` (or "" for the address) clears one."""

    customer_email: Annotated[str, msgspec.Meta(max_length=254)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    customer_language: str | msgspec.UnsetType | None = msgspec.UNSET
    scheduled_at: datetime | msgspec.UnsetType | None = msgspec.UNSET


def email_address(text: str | None) -> str | None:
    """The address as stored (its domain normalised), None for none; InvalidEmail if it
    cannot receive mail. Nothing is looked up on the network."""
    if text is None or not text.strip():
        return None
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidEmail(f"customer_email: {exc}") from None


def language(value: str | None) -> str | None:
    if value is not None and value not in MAIL_LANGUAGES:
        raise InvalidRequest(f"customer_language is one of {', '.join(MAIL_LANGUAGES)}, or null.")
    return value


def scheduled(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidRequest("scheduled_at needs a time zone, e.g. 2026-12-01T10:00:00+08:00.")
    return value


def link_urls(request: web.Request, links: Links) -> dict[str, Any]:
    return links.urls(request.app[SETTINGS].base_url)


class NotesUpdate(msgspec.Struct, forbid_unknown_fields=True):
    notes: Annotated[str, msgspec.Meta(max_length=20_000)] | None = None
    summary: Annotated[str, msgspec.Meta(max_length=5_000)] | None = None


class Assignment(msgspec.Struct, forbid_unknown_fields=True):
    #: The stylist's (or owner's) account; null: unassigned.
    account_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None


@routes.post("/api/consultations")
async def create_consultation(request: web.Request) -> web.Response:
    caller = await require_staff(request)
    body = await read_json(request, NewConsultation)
    if body.assigned_to not in (None, caller.account_id) and not caller.owner:
        raise Forbidden("Only the owner assigns consultations to other stylists.")
    # A stylist's new consultation is theirs; the owner's is unassigned unless they say.
    assignee = body.assigned_to if caller.owner else caller.account_id
    if assignee is not None:
        await request.app[ACCOUNTS].get(assignee)
    name = (body.customer_name or "").strip()
    if not name and body.customer_id is None:
        raise InvalidRequest("customer_name (or customer_id) is required.")
    consultation, links = await request.app[STORE].create_consultation(
        customer_id=body.customer_id,
        customer_name=name,
        customer_ref=body.customer_ref,
        scheduled_at=scheduled(body.scheduled_at),
        notes=body.notes,
        link_ttl=request.app[SETTINGS].link_ttl,
        customer_email=email_address(body.customer_email),
        customer_language=language(body.customer_language),
        assigned_to=assignee,
    )
    await request.app[AUDIT].record(caller.actor, "created", f"consultation:{consultation.id}")
    if consultation.scheduled_at is not None:
        await request.app[REMINDERS].schedule(consultation)
    return web.json_response(
        consultation_json(consultation, role="staff") | link_urls(request, links), status=201
    )


@routes.patch("/api/consultations/{id}")
async def edit_consultation(request: web.Request) -> web.Response:
    """Staff change the customer's email address, its language or the appointment's time."""
    caller = await staff_for(request, request.match_info["id"])
    body = await read_json(request, ConsultationEdit)
    values: dict[str, Any] = {}
    if body.customer_email is not msgspec.UNSET:
        values["customer_email"] = email_address(body.customer_email)
    if body.customer_language is not msgspec.UNSET:
        values["customer_language"] = language(body.customer_language)
    if body.scheduled_at is not msgspec.UNSET:
        values["scheduled_at"] = scheduled(body.scheduled_at)
    if not values:
        raise InvalidRequest("Nothing to change: send customer_email, customer_language or"
                             " scheduled_at.")  # fmt: skip
    store = request.app[STORE]
    consultation = await store.update_consultation(request.match_info["id"], values)
    await request.app[AUDIT].record(
        caller.actor,
        "changed",
        f"consultation:{consultation.id}",
        detail={"fields": sorted(values)},
    )
    if "scheduled_at" in values:
        await request.app[REMINDERS].schedule(consultation)
    body_out = consultation_json(consultation, role="staff")
    body_out["email"] = await request.app[NOTICES].status(consultation)
    return web.json_response(body_out)


@routes.get("/api/consultations")
async def list_consultations(request: web.Request) -> web.Response:
    caller = await require_staff(request)
    store = request.app[STORE]
    found = await store.list_consultations(
        request.query.get("customer_ref"), reachable_by=None if caller.owner else caller.account_id
    )
    undelivered = await store.outbox.undelivered(c.id for c in found)
    return web.json_response(
        {
            "consultations": [
                consultation_json(c, role="staff")
                | link_urls(request, await store.links(c.id))
                | {"email_undelivered": _undelivered(c, undelivered.get(c.id))}
                for c in found
            ],
            "email_configured": request.app[NOTICES].configured,
        }
    )


def _undelivered(c: Consultation, mail: Mail | None) -> dict[str, Any] | None:
    """The consultation's latest email, if it could not be delivered to the address it has
    now (a corrected address clears the warning): for the list."""
    return mail.to_json() if mail is not None and mail.recipient == c.customer_email else None


@routes.get("/api/consultations/{id}")
async def get_consultation(request: web.Request) -> web.Response:
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    store = request.app[STORE]
    consultation = await store.get_consultation(consultation_id)
    body = await record_json(store, consultation, role=caller.role)
    if caller.staff:
        body |= link_urls(request, await store.links(consultation_id))
        await request.app[AUDIT].record(caller.actor, "viewed", f"consultation:{consultation_id}")
    if caller.role != "customer":
        body["email"] = await request.app[NOTICES].status(consultation)
    return web.json_response(body)


@routes.post("/api/consultations/{id}/revoke-links")
async def revoke_links(request: web.Request) -> web.Response:
    consultation_id = request.match_info["id"]
    caller = await staff_for(request, consultation_id)
    links = await request.app[STORE].revoke_links(consultation_id, request.app[SETTINGS].link_ttl)
    await request.app[AUDIT].record(caller.actor, "revoked", f"consultation:{consultation_id}")
    await request.app[HUB].revoke(consultation_id)
    request.app[CONVERSATIONS].revoke(consultation_id)
    return web.json_response({"id": consultation_id} | link_urls(request, links))


@routes.put("/api/consultations/{id}/notes")
async def update_notes(request: web.Request) -> web.Response:
    """Save the private notes and/or the shared summary (the stylist or staff)."""
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    if caller.role == "customer":
        raise Forbidden("Only the salon edits the notes.")
    body = await read_json(request, NotesUpdate)
    if body.notes is None and body.summary is None:
        raise InvalidRequest("Nothing to save: send notes, summary or both.")
    consultation = await request.app[STORE].update_notes(
        consultation_id, notes=body.notes, summary=body.summary
    )
    changed = [name for name in ("notes", "summary") if getattr(body, name) is not None]
    await request.app[AUDIT].record(
        caller.actor, "changed", f"consultation:{consultation_id}", detail={"fields": changed}
    )
    await request.app[HUB].notes_changed(consultation)
    fields = consultation_json(consultation, role=caller.role)
    keys = ("notes", "notes_updated_at", "summary", "summary_updated_at")
    return web.json_response({k: fields[k] for k in keys})


@routes.get("/api/consultations/{id}/export")
async def export(request: web.Request) -> web.StreamResponse:
    """The record as a self-contained ZIP (the private notes only for the salon, and not
    with ``?without=notes``: a copy to hand over)."""
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    without = request.query.get("without")
    if without not in (None, "notes"):
        raise InvalidRequest("without= takes one value: notes.")
    store = request.app[STORE]
    consultation = await store.get_consultation(consultation_id)
    await request.app[AUDIT].record(
        caller.actor,
        "exported",
        f"consultation:{consultation_id}",
        detail={"private_notes": without != "notes" and caller.role != "customer"},
    )
    with tempfile.TemporaryDirectory() as folder:
        path = await write_record_zip(
            store,
            request.app[STILLS],
            request.app[RECORDINGS],
            consultation,
            role=caller.role,
            out=Path(folder) / "export.zip",
            private_notes=without != "notes",
        )
        return await send_file(request, path, filename=f"consultation-{consultation_id}.zip")


@routes.post("/api/consultations/{id}/same-again")
async def same_again(request: web.Request) -> web.Response:
    """A new consultation for the same customer that starts from this one: its summary, and
    its key photos on display (both sides can see those; its private notes stay behind). It
    is for the same stylist."""
    caller = await staff_for(request, request.match_info["id"])
    store = request.app[STORE]
    earlier_id = request.match_info["id"]
    consultation, links = await store.follow_up(
        earlier_id,
        request.app[SETTINGS].link_ttl,
        assigned_to=(await store.get_consultation(earlier_id)).assigned_to
        if caller.owner
        else caller.account_id,
    )
    await request.app[AUDIT].record(
        caller.actor, "created", f"consultation:{consultation.id}", detail={"based_on": earlier_id}
    )
    body = await record_json(store, consultation, role="staff")
    return web.json_response(body | link_urls(request, links), status=201)


@routes.put("/api/consultations/{id}/assignee")
async def assign(request: web.Request) -> web.Response:
    """Whose consultation this is: the owner assigns any to anyone (or nobody); a stylist takes
    an unassigned one (or gives their own back)."""
    consultation_id = request.match_info["id"]
    caller = await staff_for(request, consultation_id)
    body = await read_json(request, Assignment)
    if not caller.owner and body.account_id not in (None, caller.account_id):
        raise Forbidden("Only the owner assigns consultations to other stylists.")
    await request.app[ACCOUNTS].assign(consultation_id, body.account_id, actor=caller.actor)
    consultation = await request.app[STORE].get_consultation(consultation_id)
    return web.json_response(consultation_json(consultation, role="staff"))
