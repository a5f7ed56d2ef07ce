"""The HTTP API (docs/protocol.md), one module per resource."""

from __future__ import annotations

from aiohttp import web

from . import (
    accounts,
    attachments,
    audit,
    backups,
    bookings,
    calls,
    checkins,
    consent,
    consultations,
    conversations,
    customers,
    deletion,
    metrics,
    palette,
    quick_replies,
    recordings,
    salon,
    session,
    still_tools,
    stills,
    unsubscribe,
)

__all__ = ["add_routes"]

RESOURCES = (attachments, backups, consultations, conversations, metrics, palette,
             quick_replies, recordings, salon, session, still_tools, stills,
             unsubscribe,
             # Staff accounts and the audit log (issue 17)
             accounts, audit,
             consent, customers, deletion,
             bookings, checkins,
             # Nodes (issue 13A)
             calls)  # fmt: skip


def add_routes(app: web.Application) -> None:
    for module in RESOURCES:
        app.router.add_routes(module.routes)
