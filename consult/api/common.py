"""What the API's handlers share: reading a JSON body into a validated type, checking a Range
before a file is served."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar

import msgspec
from aiohttp import hdrs, web

from ..appkeys import AUDIT
from ..auth import Caller
from ..errors import InvalidRequest, PayloadTooLarge, RangeNotSatisfiable

__all__ = ["MAX_JSON_BODY", "audit_file", "check_range", "read_json", "send_file"]

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


async def send_file(
    request: web.Request, path: Path, *, filename: str, media_type: str = "application/zip"
) -> web.StreamResponse:
    """A file made for this request (an export) as a download, read in an executor."""
    loop = asyncio.get_running_loop()
    response = web.StreamResponse(
        headers={
            "Content-Type": media_type,
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        }
    )
    response.content_length = (await loop.run_in_executor(None, path.stat)).st_size
    await response.prepare(request)
    # aiohttp writes whatever a StreamResponse is given, even for HEAD: a body there would
    # be read as the next response on the same connection.
    if request.method != "HEAD":
        with path.open("rb") as f:
            while chunk := await loop.run_in_executor(None, f.read, 256 * 1024):
                await response.write(chunk)
    await response.write_eof()
    return response
