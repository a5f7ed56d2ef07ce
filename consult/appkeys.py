"""Typed keys of everything the application holds."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .config import Settings
from .media.ice import IceServer
from .media.stills import Stills
from .metrics import Metrics
from .ratelimit import FailureLimiter
from .recording.recordings import RecordingFiles
from .recording.schedule import BackupSchedule
from .recording.store import Store
from .signaling.hub import Hub

__all__ = [
    "AUTH_FAILURES",
    "BACKUPS",
    "HUB",
    "ICE_SERVERS",
    "METRICS",
    "RECORDINGS",
    "SETTINGS",
    "STAFF_KEY",
    "STILLS",
    "STORE",
    "TOOL_SLOTS",
]

SETTINGS = web.AppKey("settings", Settings)
STAFF_KEY = web.AppKey("staff_key", str)
ICE_SERVERS = web.AppKey("ice_servers", list[IceServer])
STORE = web.AppKey("store", Store)
STILLS = web.AppKey("stills", Stills)
AUTH_FAILURES = web.AppKey("auth_failures", FailureLimiter)
METRICS = web.AppKey("metrics", Metrics)
HUB = web.AppKey("hub", Hub)
#: Scheduled backups; absent unless ``--backup-dir`` is given.
BACKUPS = web.AppKey("backups", BackupSchedule)
#: Colour tools on stills run one at a time: the calls' media keep the other core.
TOOL_SLOTS = web.AppKey("tool_slots", asyncio.Semaphore)
#: Recorded calls' files (their rows are in the store).
RECORDINGS = web.AppKey("recordings", RecordingFiles)
