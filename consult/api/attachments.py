"""Voice messages, video clips and files sent in the chat: coming in, and served back."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from ..appkeys import ATTACHMENT_RATE, ATTACHMENTS, CONVERSATIONS, STORE
from ..attachments import KINDS
from ..auth import caller_for
from ..errors import InvalidRequest, UploadRateLimited
from ..recording.attachments import Attachment
from ..roles import Role
from ..signaling.messages import as_dict, conversation_message
from .common import audit_file, check_range

__all__ = ["routes"]

routes = web.RouteTableDef()

CHUNK = 256 * 1024


@routes.post("/api/consultations/{id}/attachments")
async def send(request: web.Request) -> web.Response:
    """``?kind=voice|video|file&id=<the sender's message id>&name=<file name>``, the body the
    file's bytes. Its type is decided from the bytes; sending the same id again stores nothing
    new (200 with the message stored the first time)."""
    consultation_id = request.match_info["id"]
    caller = await caller_for(request, consultation_id)
    sender: Role = "customer" if caller.role == "customer" else "stylist"
    client_id = request.query.get("id", "")
    if not 1 <= len(client_id) <= 64:
        raise InvalidRequest("The message id is missing: ?id=<1 to 64 characters>.")
    kind = request.query.get("kind", "")
    if kind not in KINDS:
        raise InvalidRequest(f"kind is one of {', '.join(KINDS)}.")
    name = request.query.get("name", "")
    if len(name) > 255:
        raise InvalidRequest("The file name is limited to 255 characters.")
    if not request.app[ATTACHMENT_RATE].take(consultation_id, sender):
        raise UploadRateLimited()
    conversations = request.app[CONVERSATIONS]
    existing = await conversations.find(consultation_id, sender, client_id)
    if existing is not None:
        return web.json_response({"message": as_dict(conversation_message(existing))})
    # Staff may name any id: an unknown one is a 404, before a byte is stored.
    await request.app[STORE].get_consultation(consultation_id)
    attachments = request.app[ATTACHMENTS]
    attachment = await attachments.receive(
        consultation_id,
        sender,
        kind,
        name,
        request.content.iter_chunked(CHUNK),
        request.content_length,
    )
    posted = await conversations.post(consultation_id, sender, client_id, attachment=attachment)
    if not posted.new:
        # The same message came twice at once: the first one stored keeps its attachment.
        await attachments.discard(attachment)
    return web.json_response(
        {"message": as_dict(conversation_message(posted))}, status=201 if posted.new else 200
    )


@routes.get("/api/attachments/{id}")
async def download(request: web.Request) -> web.FileResponse:
    """The attachment byte for byte (Range requests too), as its bytes' type: inline for sound,
    video and images (``?download=1``: as a download), a PDF always as a download."""
    attachment = await request.app[STORE].attachments.get(request.match_info["id"])
    caller = await caller_for(request, attachment.consultation_id)
    path = request.app[ATTACHMENTS].path(attachment)
    check_range(request, path.stat().st_size)
    await audit_file(request, caller, f"attachment:{attachment.id}")
    response = web.FileResponse(path)
    response.content_type = attachment.media_type
    # An attachment never changes once saved; it is private to the consultation.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.headers["Content-Disposition"] = disposition(attachment, request.query.get("download"))
    return response


def disposition(attachment: Attachment, download: str | None) -> str:
    """``inline`` only for what a page plays or shows itself; the name both as plain ASCII and,
    for non-ASCII names, as RFC 5987 UTF-8."""
    inline = attachment.media_type.split("/")[0] in ("audio", "video", "image")
    kind = "inline" if inline and not download else "attachment"
    ascii_name = attachment.name.encode("ascii", "replace").decode().replace("?", "_")
    value = f'{kind}; filename="{ascii_name}"'
    if ascii_name != attachment.name:
        value += f"; filename*=UTF-8''{quote(attachment.name, safe='')}"
    return value
