"""What the API's handlers share: reading a JSON body into a validated type, checking a Range
before a file is served."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from aiohttp import hdrs, web

from ..appkeys import AUDIT
from ..auth import Caller
from ..errors import InvalidRequest, PayloadTooLarge, RangeNotSatisfiable

__all__ = ["MAX_JSON_BODY", "audit_file", "check_range", "read_json"]

MAX_JSON_BODY = 64 * 1024

T = TypeVar("T")


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


def check_range(request: web.Request, size: int) -> None:
    """aiohttp's FileResponse answers a Range it cannot serve with an empty 416 of the file's
    type; the API answers with its JSON error instead (the same cases as aiohttp's)."""
    if hdrs.RANGE not in request.headers:
        return
    try:
        start = request.http_range.start
    except ValueError:
        raise RangeNotSatisfiable() from None
    if start is not None and start >= size:
        raise RangeNotSatisfiable()


async def audit_file(request: web.Request, caller: Caller, subject: str) -> None:
    """Staff opening a file of a record (a still, a recording, an attachment): "viewed", or
    "downloaded" with ``?download=``. A player's further Range requests are the same viewing."""
    if not caller.staff:
        return
    if hdrs.RANGE in request.headers:
        try:
            if request.http_range.start not in (None, 0):
                return
        except ValueError:
            return
    action = "downloaded" if request.query.get("download") else "viewed"
    await request.app[AUDIT].record(caller.actor, action, subject)
