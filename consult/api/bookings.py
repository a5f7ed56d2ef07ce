"""Booking (docs/protocol.md): free slots and bookings for anyone (rate-limited), changes from
the customer's link or by staff, the availability staff publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from aiohttp import web

from ..appkeys import ACCOUNTS, AUDIT, BOOKING, BOOKING_RATE, STORE
from ..auth import Caller, caller_for, credential, require_owner, require_staff
from ..booking import phone_number
from ..errors import BookingRateLimited, Forbidden, InvalidRequest, NotFound, Unauthorized
from ..record import consultation_json
from ..slots import SALON, can_change, parse_availability
from .common import read_json
from .consultations import email_address, language, link_urls

__all__ = ["routes"]

routes = web.RouteTableDef()

#: The longest span one ``GET /api/slots`` may ask for.
MAX_SPAN = timedelta(days=62)

Resource = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]


class NewBooking(msgspec.Struct, forbid_unknown_fields=True):
    start: datetime
    customer_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    customer_email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    customer_phone: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    customer_language: str | None = None
    #: The customer's own time zone (the page's ``Intl``), kept for the salon's eyes.
    customer_zone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    resource: Resource = SALON


class Move(msgspec.Struct, forbid_unknown_fields=True):
    start: datetime


class AvailabilityUpdate(msgspec.Struct, forbid_unknown_fields=True):
    #: {"mon": [["09:00", "12:00"], ["13:00", "18:00"]], ...} in the salon's time zone.
    weekly: dict[str, list[list[str]]]
    slot_minutes: int = 30
    buffer_minutes: int = 0
    days_ahead: int = 14
    #: {"2026-12-25": []} closes a day; a date with intervals has those instead.
    exceptions: dict[str, list[list[str]]] = {}
    notice_minutes: int = 60
    cutoff_hours: float = 24
    resource: Resource = SALON


def _instant(name: str, text: str | None) -> datetime:
    if not text:
        raise InvalidRequest(f"{name} is required: ISO 8601 with an offset.")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"{name}: ISO 8601 with an offset, e.g. 2026-12-01T09:00:00+08:00."
        ) from None
    return _aware(name, value)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidRequest(f"{name} needs an offset, e.g. 2026-12-01T09:00:00+08:00.")
    return value


def _zone(text: str | None) -> str | None:
    if not text:
        return None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"customer_zone: unknown time zone {text!r}.") from None
    return text


@routes.get("/api/slots")
async def free_slots(request: web.Request) -> web.Response:
    """Free slots in [from, to): public, for the booking page and integrations."""
    start = _instant("from", request.query.get("from"))
    end = _instant("to", request.query.get("to"))
    if not start < end or end - start > MAX_SPAN:
        raise InvalidRequest(f"from must be before to, at most {MAX_SPAN.days} days apart.")
    resource = request.query.get("resource", SALON)
    av, free = await request.app[BOOKING].free(start, end, resource)
    zone = (await request.app[STORE].get_salon()).hours.zone
    return web.json_response(
        {
            "timezone": zone.key,
            "slot_minutes": av.to_json()["slot_minutes"],
            "slots": [
                {
                    "start": at.astimezone(zone).isoformat(),
                    "end": (at + av.slot).astimezone(zone).isoformat(),
                }
                for at in free
            ],
        }
    )


@routes.post("/api/bookings")
async def book(request: web.Request) -> web.Response:
    """Book a slot: anyone (no account), a few times a minute per address."""
    if not request.app[BOOKING_RATE].take("booking", request.remote or "unknown"):
        raise BookingRateLimited("Too many bookings from here: wait a minute and try again.")
    body = await read_json(request, NewBooking)
    name = body.customer_name.strip()
    if not name:
        raise InvalidRequest("customer_name: your name, please.")
    email = email_address(body.customer_email)
    phone = phone_number(body.customer_phone)
    if email is None and phone is None:
        raise InvalidRequest("customer_email or customer_phone: how the salon can reach you.")
    booked = await request.app[BOOKING].book(
        _aware("start", body.start),
        name=name,
        email=email,
        phone=phone,
        language=language(body.customer_language),
        customer_zone=_zone(body.customer_zone),
        resource=body.resource,
    )
    return web.json_response(
        {
            "booking": booked.booking.to_json(),
            "consultation": consultation_json(booked.consultation, role="customer"),
            "customer_link": link_urls(request, booked.links)["customer_link"],
        },
        status=201,
    )


@routes.get("/api/bookings")
async def list_bookings(request: web.Request) -> web.Response:
    """Staff: the bookings starting in [from, to) (default: from now, the next 62 days)."""
    caller = await require_staff(request)
    now = datetime.now().astimezone()
    start = _instant("from", request.query.get("from") or now.isoformat())
    end = _instant("to", request.query.get("to") or (start + MAX_SPAN).isoformat())
    store = request.app[STORE]
    mine = None if caller.owner else caller.account_id
    found = await store.bookings.between(start, end, reachable_by=mine)
    items: list[dict[str, Any]] = []
    for b in found:
        c = await store.get_consultation(b.consultation_id)
        items.append(
            b.to_json() | {"customer_name": c.customer_name, "customer_email": c.customer_email}
        )
    return web.json_response({"bookings": items})


async def _caller_of(request: web.Request) -> tuple[str, Caller]:
    """The booking's id, and who asks; Forbidden for a stylist's link."""
    booking = await request.app[STORE].bookings.get(request.match_info["id"])
    caller = await caller_for(request, booking.consultation_id)
    if caller.role == "stylist":
        raise Forbidden("Only the customer or the salon's staff change a booking.")
    return booking.id, caller


@routes.get("/api/bookings/{id}")
async def get_booking(request: web.Request) -> web.Response:
    booking_id, _ = await _caller_of(request)
    return web.json_response((await request.app[STORE].bookings.get(booking_id)).to_json())


@routes.delete("/api/bookings/{id}")
async def cancel_booking(request: web.Request) -> web.Response:
    """Cancel: the customer until the cut-off, staff any time."""
    booking_id, caller = await _caller_of(request)
    cancelled = await request.app[BOOKING].cancel(
        booking_id, by_staff=caller.staff, actor=caller.actor
    )
    return web.json_response(cancelled.to_json())


@routes.post("/api/bookings/{id}/move")
async def move_booking(request: web.Request) -> web.Response:
    """Move to another free slot: the customer until the cut-off, staff any time."""
    booking_id, caller = await _caller_of(request)
    body = await read_json(request, Move)
    moved = await request.app[BOOKING].move(
        booking_id, _aware("start", body.start), by_staff=caller.staff, actor=caller.actor
    )
    return web.json_response(moved.to_json())


@routes.get("/api/consultations/{id}/booking")
async def consultation_booking(request: web.Request) -> web.Response:
    """The consultation's booking, for its customer's page (or staff); 404 if none."""
    consultation_id = request.match_info["id"]
    await caller_for(request, consultation_id)
    booking = await request.app[STORE].bookings.of_consultation(consultation_id)
    if booking is None:
        return web.json_response({"booking": None})
    av = await request.app[STORE].bookings.availability(booking.resource)
    return web.json_response(
        {
            "booking": booking.to_json(),
            "cutoff_hours": av.to_json()["cutoff_hours"] if av is not None else None,
        }
    )


@routes.get("/api/link/booking")
async def link_booking(request: web.Request) -> web.Response:
    """The booking of the consultation a link opens (its page knows the link, not the id)."""
    value = credential(request)
    if value is None:
        raise Unauthorized("A consultation link is required.")
    grant = await request.app[STORE].resolve_token(value)
    booking = await request.app[STORE].bookings.of_consultation(grant.consultation_id)
    if booking is None:
        return web.json_response({"booking": None})
    av = await request.app[STORE].bookings.availability(booking.resource)
    return web.json_response(
        {
            "booking": booking.to_json(),
            "changeable": booking.status == "booked"
            and grant.role == "customer"
            and av is not None
            and can_change(av, booking.start_at, datetime.now(UTC)),
        }
    )


@routes.get("/api/availability")
async def get_availability(request: web.Request) -> web.Response:
    await require_staff(request)
    resource = request.query.get("resource", SALON)
    av = await request.app[STORE].bookings.availability(resource)
    return web.json_response(
        {
            "resource": resource,
            "resources": await request.app[STORE].bookings.resources(),
            "timezone": (await request.app[STORE].get_salon()).hours.timezone,
            "availability": av.to_json() if av is not None else None,
        }
    )


@routes.put("/api/availability")
async def put_availability(request: web.Request) -> web.Response:
    # The salon's bookable times are its settings: the owner's, as the opening hours are.
    caller = await require_owner(request)
    body = await read_json(request, AvailabilityUpdate)
    if body.resource != SALON:
        try:
            account = await request.app[ACCOUNTS].get(body.resource)
        except NotFound:
            account = None
        if account is None or account.disabled:
            raise InvalidRequest('resource: "salon" or a member of staff\'s account id.')
    try:
        av = parse_availability(
            body.weekly,
            slot_minutes=body.slot_minutes,
            buffer_minutes=body.buffer_minutes,
            days_ahead=body.days_ahead,
            exceptions=body.exceptions,
            notice_minutes=body.notice_minutes,
            cutoff_hours=body.cutoff_hours,
        )
    except ValueError as exc:
        raise InvalidRequest(f"Invalid availability: {exc}.") from None
    await request.app[STORE].bookings.set_availability(
        body.resource, av, datetime.now().astimezone()
    )
    await request.app[AUDIT].record(
        caller.actor, "changed", f"settings:availability:{body.resource}"
    )
    return web.json_response({"resource": body.resource, "availability": av.to_json()})
