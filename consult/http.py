"""What every HTTP response goes through: errors as JSON, security headers, a redacted log."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_exceptions import HTTPException

from . import pages
from .appkeys import AUTH_FAILURES, METRICS, SETTINGS
from .auth import presents_credential
from .errors import (
    ConsultError,
    InvalidToken,
    NotFound,
    PayloadTooLarge,
    TooManyAttempts,
    Unauthorized,
)

__all__ = [
    "RedactingAccessLogger",
    "auth_failures",
    "errors_middleware",
    "forwarded_client",
    "redact",
    "security_headers",
]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)


def error_response(request: web.Request, error: ConsultError) -> web.Response:
    request.app[METRICS].error(error.code, "http")
    return web.json_response({"error": error.to_json()}, status=error.status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except ConsultError as exc:
        return error_response(request, exc)
    except HTTPException as exc:
        if exc.status == 404:
            return error_response(request, NotFound())
        if exc.status == 413:
            return error_response(request, PayloadTooLarge())
        if exc.status < 400:
            raise
        return error_response(request, _http_error(exc.status, exc.reason))
    except Exception:
        logger.exception("unhandled error serving %s %s", request.method, redact(request.path))
        return error_response(request, ConsultError("Something went wrong on the server."))
    return response


def _http_error(status: int, reason: str) -> ConsultError:
    error = ConsultError(reason)
    error.status = status
    error.code = reason.lower().replace(" ", "-")
    return error


@web.middleware
async def forwarded_client(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Behind a trusted reverse proxy, the client is the address the proxy appended last to
    X-Forwarded-For (what comes before it, the client may have written itself); otherwise
    every client would share the proxy's address, and its limits."""
    if request.app[SETTINGS].trust_proxy:
        last = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
        # None, or not an address: the connection's own stays.
        with contextlib.suppress(ValueError):
            request = request.clone(remote=str(ipaddress.ip_address(last)))
    return await handler(request)


@web.middleware
async def auth_failures(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse an address that failed authentication too often; count its failures."""
    if request.path == "/ws":
        return await handler(request)  # the websocket answers in its protocol (signaling/ws.py)
    limiter = request.app[AUTH_FAILURES]
    client = request.remote or "unknown"
    presented = presents_credential(request)
    if presented:
        wait = await limiter.retry_after(client)
        if wait > 0:
            retry_after = int(wait) + 1
            if pages.is_link_page(request):
                request.app[METRICS].error(TooManyAttempts.code, "http")
                return pages.too_many_attempts_page(retry_after)
            refused = error_response(request, TooManyAttempts())
            refused.headers["Retry-After"] = str(retry_after)
            return refused
    try:
        response = await handler(request)
    except (Unauthorized, InvalidToken):
        if presented:
            await limiter.failed(client)
        raise
    # A link page answers 404 for a token that opens nothing: a guess too.
    link_guess = response.status == 404 and request.match_info.get("token") is not None
    if presented and (response.status == 401 or link_guess):
        await limiter.failed(client)
    return response


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        # Links carry tokens: never leak them to another site.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


_TOKEN_IN_PATH = re.compile(r"^/([cs])/[^/?]+")  # /c/<token>, /c/<token>/record
_TOKEN_IN_QUERY = re.compile(r"(token=)[^&]*")


def redact(path_qs: str) -> str:
    """``path_qs`` with link tokens replaced, for logs."""
    return _TOKEN_IN_QUERY.sub(r"\1***", _TOKEN_IN_PATH.sub(r"/\1/***", path_qs))


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.1fms',
            request.remote,
            request.method,
            redact(request.path_qs),
            response.status,
            time * 1000,
        )
