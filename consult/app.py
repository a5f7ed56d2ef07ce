"""The application factory."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web
from cryptography.fernet import Fernet

from . import api, pages
from .appkeys import (
    AUTH_FAILURES,
    BACKUPS,
    HUB,
    ICE_SERVERS,
    METRICS,
    RECORDINGS,
    SETTINGS,
    STAFF_KEY,
    STILLS,
    STORE,
    TOOL_SLOTS,
)
from .auth import setup_sessions
from .config import Settings, backup_secret, load_staff_key
from .http import auth_failures, errors_middleware, forwarded_client, security_headers
from .keyfiles import read_or_create
from .media import ice, internals, placeholder
from .media.peer import WAITING_TEXT
from .media.stills import Limits, Stills
from .metrics import Metrics
from .ratelimit import FailureLimiter
from .recording.files import StillFiles
from .recording.recordings import RecordingFiles, recover
from .recording.schedule import BackupSchedule
from .recording.store import Store
from .recording.tokens import TokenSealer, load_seal_key
from .signaling.hub import Hub
from .signaling.ws import websocket

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await Store.open(settings.db_url, TokenSealer(load_seal_key(settings.data_dir)))
    await store.reset_live()
    app[STORE] = store
    stills = Stills(
        store,
        StillFiles(settings.stills_dir),
        Limits(settings.max_upload_bytes, settings.max_upload_pixels),
    )
    await stills.start()
    app[STILLS] = stills
    node = read_or_create(settings.data_dir / "node.id", lambda: secrets.token_hex(8).encode())
    recording_files = RecordingFiles(settings.recordings_dir, node.decode())
    await recover(store.recordings, recording_files)
    app[RECORDINGS] = recording_files
    yield
    await store.close()


async def _backups(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.backup_dir is None:
        yield
        return
    backup_secret(settings.backup_key_file)  # a missing or empty key file stops the start
    schedule = BackupSchedule(
        app[STORE],
        settings.data_dir,
        settings.db_url,
        settings.backup_dir,
        settings.backup_every,
        settings.backup_keep,
        settings.backup_key_file,
        settings.backup_staff_key,
    )
    schedule.start()
    app[BACKUPS] = schedule
    yield
    await schedule.close()


async def _draw_cards(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, placeholder.prepare, list(WAITING_TEXT.values()))


async def _hub(app: web.Application) -> AsyncIterator[None]:
    app[HUB] = Hub(app[STORE], app[STILLS], app[SETTINGS], app[METRICS], app[RECORDINGS])
    yield
    await app[HUB].close()


async def _close_calls(app: web.Application) -> None:
    # On shutdown, before aiohttp waits for handlers: websockets get GOING_AWAY, peers close.
    await app[HUB].close()


def create_app(settings: Settings) -> web.Application:
    internals.install()
    app = web.Application(
        middlewares=[forwarded_client, security_headers, errors_middleware, auth_failures]
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics(
        lambda: app.get(HUB),
        lambda: backups.status if (backups := app.get(BACKUPS)) is not None else None,
    )
    app[AUTH_FAILURES] = FailureLimiter()
    app[TOOL_SLOTS] = asyncio.Semaphore(1)
    app[STAFF_KEY] = load_staff_key(settings)
    app[ICE_SERVERS] = [ice.parse_ice_server(url) for url in settings.ice_servers]
    setup_sessions(
        app,
        read_or_create(settings.data_dir / "session.key", Fernet.generate_key),
        # Secure follows what browsers see: the service's own TLS, or an https:// public URL
        # (a TLS reverse proxy), so no forwarded header needs to be trusted for it.
        secure=settings.tls or settings.base_url.startswith("https://"),
    )
    app.cleanup_ctx.extend([_store, _backups, _hub])
    app.on_startup.append(_draw_cards)
    app.on_shutdown.append(_close_calls)
    api.add_routes(app)
    app.router.add_get("/ws", websocket)
    pages.add_routes(app)
    return app
