"""The HTTP API (docs/protocol.md), one module per resource."""

from __future__ import annotations

from aiohttp import web

from . import (
    backups,
    consultations,
    metrics,
    palette,
    recordings,
    salon,
    session,
    still_tools,
    stills,
)

__all__ = ["add_routes"]


def add_routes(app: web.Application) -> None:
    modules = (
        backups,
        consultations,
        metrics,
        palette,
        recordings,
        salon,
        session,
        still_tools,
        stills,
    )
    for module in modules:
        app.router.add_routes(module.routes)
