"""The HTTP API (docs/protocol.md), one module per resource."""

from __future__ import annotations

from aiohttp import web

from . import (
    attachments,
    backups,
    consultations,
    metrics,
    palette,
    salon,
    session,
    still_tools,
    stills,
)

__all__ = ["add_routes"]


def add_routes(app: web.Application) -> None:
    for module in (
        attachments,
        backups,
        consultations,
        metrics,
        palette,
        salon,
        session,
        still_tools,
        stills,
    ):
        app.router.add_routes(module.routes)
