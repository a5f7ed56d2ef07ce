"""Stills: the customer's camera photo coming in, originals and thumbnails going out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from aiohttp import web

from ..appkeys import CONVERSATIONS, HUB, METRICS, SETTINGS, STILLS, STORE
from ..auth import API_KEY_PREFIX, Caller, caller_for, credential
from ..errors import (
    CaptureClosed,
    Forbidden,
    InvalidRequest,
    UnsupportedHeic,
    UnsupportedMedia,
)
from ..media.stills import still_json
from ..roles import Role
from ..signaling.messages import StillSaved, as_dict, conversation_message
from .common import audit_file, check_range

__all__ = ["routes"]

routes = web.RouteTableDef()

ACCEPTED = {"image/png", "image/jpeg"}
HEIF_TYPES = {"image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence"}
NATIVE_TYPES = ACCEPTED | HEIF_TYPES | {"application/octet-stream", ""}
CHUNK = 256 * 1024


@routes.post("/api/consultations/{id}/chat-photos")
async def chat_photo(request: web.Request) -> web.Response:
    """A photo sent in the chat by either side, stored like a still (the same limits).

    ``?id=`` is the sender's id for the message: sending the same id again stores nothing new.
    """
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    sender: Role = "customer" if caller.role == "customer" else "stylist"
    client_id = request.query.get("id", "")
    if not 1 <= len(client_id) <= 64:
        raise InvalidRequest("The message id is missing: ?id=<1 to 64 characters>.")
    if request.content_type not in ACCEPTED:
        raise UnsupportedMedia()
    conversations = request.app[CONVERSATIONS]
    existing = await conversations.find(consultation_id, sender, client_id)
    if existing is not None:
        return web.json_response({"message": as_dict(conversation_message(existing))})
    store = request.app[STORE]
    # Staff may name any id: an unknown one is a 404, not a capture that cannot be stored.
    await store.get_consultation(consultation_id)
    capture = await store.create_capture(consultation_id, sender)
    still = await request.app[STILLS].receive_upload(
        consultation_id,
        capture.id,
        request.content.iter_chunked(CHUNK),
        request.content_length,
        source="chat",
    )
    # The call's stills strip shows it too.
    await request.app[HUB].broadcast(consultation_id, StillSaved(still=still_json(still)))
    posted = await conversations.post(consultation_id, sender, client_id, still=still)
    return web.json_response({"message": as_dict(conversation_message(posted))}, status=201)


@routes.post("/api/consultations/{id}/stills")
async def upload(request: web.Request) -> web.Response:
    """A capture's photo, uploaded by the customer's page (or staff): the camera's
    (``takePhoto``), or with ``source=native`` the device camera app's, within the capture's
    window. ``video=WxH``: the customer's video size when it was taken."""
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    if caller.role == "stylist":
        raise Forbidden("Only the customer's page uploads its camera's photos.")
    capture_id = request.query.get("capture", "")
    if not capture_id:
        raise InvalidRequest("The capture is missing: ?capture=<capture id>.")
    if request.query.get("source", "camera") not in ("camera", "native"):
        raise InvalidRequest("source is camera or native.")
    source: Literal["camera", "native"] = (
        "native" if request.query.get("source") == "native" else "camera"
    )
    video_size = _video_size(request.query.get("video"))
    # A device's camera app names its photo loosely (or not at all): the content decides.
    accepted = NATIVE_TYPES if source == "native" else ACCEPTED
    if request.content_type not in accepted:
        raise UnsupportedHeic() if request.content_type in HEIF_TYPES else UnsupportedMedia()
    capture = await request.app[STORE].get_capture(consultation_id, capture_id)
    age = (datetime.now(UTC) - capture.created_at).total_seconds()
    if source == "native" and age > request.app[SETTINGS].native_photo_window:
        raise CaptureClosed()
    metrics = request.app[METRICS]
    try:
        still = await request.app[STILLS].receive_upload(
            consultation_id,
            capture.id,
            request.content.iter_chunked(CHUNK),
            request.content_length,
            source=source,
            video_size=video_size,
        )
    except Exception:
        metrics.capture_failed(source)
        raise
    metrics.capture_saved(source, age)
    body = still_json(still)
    await request.app[HUB].broadcast(consultation_id, StillSaved(still=body))
    return web.json_response({"still": body}, status=201)


def _video_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    width, _, height = value.partition("x")
    if not (width.isdigit() and height.isdigit()) or not (
        0 < int(width) <= 16384 and 0 < int(height) <= 16384
    ):
        raise InvalidRequest("video is the video's size, WIDTHxHEIGHT (e.g. 1280x720).")
    return int(width), int(height)


async def _still_file(request: web.Request, thumb: bool) -> web.FileResponse:
    store = request.app[STORE]
    still = await store.get_still(request.match_info["id"])
    try:
        caller = await caller_for(request, still.consultation_id)
    except Forbidden:
        # A "same again" consultation's links see the earlier one's key photos (not its
        # video stills, notes or chat). Staff refused are refused.
        value = credential(request)
        if value is None or value.startswith(API_KEY_PREFIX):
            raise
        grant = await store.resolve_token(value)
        current = await store.get_consultation(grant.consultation_id)
        if current.based_on != still.consultation_id or still.source == "video":
            raise
        caller = Caller(grant.role, consultation_id=grant.consultation_id)
    if not thumb:
        await audit_file(request, caller, f"still:{still.id}")
    path = request.app[STILLS].path(still.thumb if thumb else still.file)
    check_range(request, path.stat().st_size)
    response = web.FileResponse(path)
    response.content_type = "image/jpeg" if thumb else still.media_type
    # A still never changes once saved; it is private to the consultation.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    if not thumb:
        extension = "png" if still.media_type == "image/png" else "jpg"
        disposition = "attachment" if request.query.get("download") else "inline"
        name = f"consultation-{still.consultation_id}-{still.source}-{still.id}.{extension}"
        response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return response


@routes.get("/api/stills/{id}")
async def original(request: web.Request) -> web.FileResponse:
    return await _still_file(request, thumb=False)


@routes.get("/api/stills/{id}/thumb")
async def thumbnail(request: web.Request) -> web.FileResponse:
    return await _still_file(request, thumb=True)
