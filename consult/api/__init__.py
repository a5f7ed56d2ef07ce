"""The HTTP API (docs/protocol.md), one module per resource."""

from __future__ import annotations

from aiohttp import web

from . import (
    backups,
    consultations,
    metrics,
    palette,
    salon,
    session,
    still_tools,
    stills,
    unsubscribe,
)

__all__ = ["add_routes"]

MODULES = (
    backups,
    consultations,
    metrics,
    palette,
    salon,
    session,
    still_tools,
    stills,
    unsubscribe,
)


def add_routes(app: web.Application) -> None:
    for module in MODULES:
        app.router.add_routes(module.routes)
