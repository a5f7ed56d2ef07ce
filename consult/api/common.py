"""What the API's handlers share: reading a JSON body into a validated type."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from aiohttp import web

from ..errors import InvalidRequest, PayloadTooLarge

__all__ = ["MAX_JSON_BODY", "read_json"]

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
