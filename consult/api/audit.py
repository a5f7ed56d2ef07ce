"""The audit log for the owner: a page at a time as JSON, or all of it as CSV.

``from``/``to`` (ISO 8601 with a zone), ``actor`` and ``subject`` (exact) filter both; the JSON
pages newest first, ``before=<id>`` (the previous page's ``next_before``) for the next.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from aiohttp import web

from ..appkeys import AUDIT
from ..auth import require_owner
from ..errors import InvalidRequest
from ..recording.audit import MAX_PAGE, AuditEntry, AuditFilter

__all__ = ["routes"]

routes = web.RouteTableDef()

CSV_COLUMNS = ("id", "at", "actor", "action", "subject", "detail")


def _time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{name} is a time, e.g. 2026-11-29T08:00:00+00:00.") from None
    if value.tzinfo is None:
        raise InvalidRequest(f"{name} needs a time zone, e.g. 2026-11-29T08:00:00+00:00.")
    return value


def _int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidRequest(f"{name} is a whole number from {low} to {high}.")
    return int(text)


def _filters(request: web.Request) -> AuditFilter:
    return AuditFilter(
        since=_time(request, "from"),
        until=_time(request, "to"),
        actor=request.query.get("actor", "")[:128] or None,
        subject=request.query.get("subject", "")[:128] or None,
    )


@routes.get("/api/audit")
async def audit_page(request: web.Request) -> web.Response:
    await require_owner(request)
    limit = _int(request, "limit", 100, 1, MAX_PAGE)
    before = _int(request, "before", None, 1, 2**62)
    assert limit is not None
    page = await request.app[AUDIT].entries(_filters(request), before=before, limit=limit)
    return web.json_response(
        {"entries": [e.to_json() for e in page.entries], "next_before": page.next_before}
    )


def _cell(text: str) -> str:
    # What a visitor typed (a failed sign-in's email) must not run as a spreadsheet formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(entry: AuditEntry) -> list[str]:
    detail = "" if entry.detail is None else json.dumps(entry.detail, sort_keys=True)
    cells = [entry.actor, entry.action, entry.subject, detail]
    return [str(entry.id), entry.at.isoformat(), *map(_cell, cells)]


@routes.get("/api/audit.csv")
async def audit_csv(request: web.Request) -> web.StreamResponse:
    """Every matching entry, newest first, streamed a page at a time."""
    caller = await require_owner(request)
    filters = _filters(request)
    audit = request.app[AUDIT]
    await audit.record(caller.actor, "exported", "audit:log")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="audit.csv"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    before: int | None = None
    while True:
        page = await audit.entries(filters, before=before, limit=MAX_PAGE)
        for entry in page.entries:
            writer.writerow(_row(entry))
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        if page.next_before is None:
            break
        before = page.next_before
    await response.write_eof()
    return response
