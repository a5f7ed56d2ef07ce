"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web
from cryptography.fernet import Fernet

from . import api, pages
from .appkeys import (
    ATTACHMENT_RATE,
    ATTACHMENTS,
    AUTH_FAILURES,
    BACKUPS,
    CONVERSATIONS,
    HUB,
    ICE_SERVERS,
    MAIL_SENDER,
    METRICS,
    NOTICES,
    RECORDINGS,
    SETTINGS,
    STAFF_KEY,
    STILLS,
    STORE,
    TOOL_SLOTS,
)
from .auth import setup_sessions
from .config import Settings, backup_secret, load_staff_key
from .conversation import Conversations
from .http import auth_failures, errors_middleware, forwarded_client, security_headers
from .keyfiles import read_or_create
from .mail.notices import Notices, email_replies
from .mail.policy import RetryPolicy
from .mail.sender import MailSender
from .mail.smtp import SmtpServer
from .media import ice, internals, placeholder
from .media.peer import WAITING_TEXT
from .media.stills import Limits, Stills
from .metrics import Metrics
from .ratelimit import FailureLimiter, SenderBuckets
from .recording.attachments import Attachments
from .recording.failures import FailureLog
from .recording.files import StillFiles
from .recording.recordings import RecordingFiles, recover
from .recording.schedule import BackupSchedule
from .recording.store import Store
from .recording.tokens import TokenSealer, load_seal_key
from .signaling.hub import Hub
from .signaling.ws import conversation_websocket, inbox_websocket, websocket

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await Store.open(
        settings.db_url, TokenSealer(load_seal_key(settings.data_dir)), node=settings.node
    )
    await store.reset_live()
    app[STORE] = store
    stills = Stills(
        store,
        StillFiles(settings.stills_dir, shared=settings.stills_folder is not None),
        Limits(settings.max_upload_bytes, settings.max_upload_pixels),
    )
    await stills.start()
    app[STILLS] = stills
    app[CONVERSATIONS] = Conversations(store)
    app[ATTACHMENTS] = Attachments(store.attachments, StillFiles(settings.stills_dir))
    # Each service stages its recordings in a folder of its own, named by an id kept in its
    # data folder: stable whatever the host is called (a container's name changes per start).
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


async def _mail(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    notices = app[NOTICES] = Notices(app[STORE], settings)
    if settings.smtp_url is None or settings.sender_address is None:
        logger.info("email: not configured (--smtp-url): customers get no emails")
        yield
        return
    sender = MailSender(
        app[STORE],
        notices,
        SmtpServer.parse(settings.smtp_url),
        settings.sender_address,
        RetryPolicy(first=settings.mail_retry),
    )
    sender.start()
    app[MAIL_SENDER] = sender
    replies = asyncio.create_task(email_replies(app[CONVERSATIONS], notices))
    yield
    # Ends with the conversation service (closed at shutdown), its last email queued.
    await asyncio.wait([replies], timeout=5)
    replies.cancel()
    await asyncio.wait([replies])
    await sender.close()


async def _draw_cards(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, placeholder.prepare, list(WAITING_TEXT.values()))


async def _hub(app: web.Application) -> AsyncIterator[None]:
    app[HUB] = Hub(app[STORE], app[STILLS], app[SETTINGS], app[METRICS], app[RECORDINGS])
    yield
    await app[HUB].close()


async def _live_status(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[HUB].hold_live())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _watch_load(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[HUB].watch_load())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_calls(app: web.Application) -> None:
    # On shutdown, before aiohttp waits for handlers: websockets get GOING_AWAY, peers close.
    # Together: a call's member leaves its conversation only as the hub ends its call.
    await asyncio.gather(app[CONVERSATIONS].close(), app[HUB].close())


def _shared_failures(app: web.Application) -> FailureLog | None:
    """Failed authentications are shared where other nodes can share the database: on
    PostgreSQL. On SQLite (one process) this node's own count is all there is."""
    store = app.get(STORE)
    return store.auth_failures if store is not None and store.dialect != "sqlite" else None


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
    app[AUTH_FAILURES] = FailureLimiter(shared=lambda: _shared_failures(app))
    app[ATTACHMENT_RATE] = SenderBuckets(settings.message_rate, settings.message_burst)
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
    app.cleanup_ctx.extend([_store, _backups, _mail, _hub, _live_status, _watch_load])
    app.on_startup.append(_draw_cards)
    app.on_shutdown.append(_close_calls)
    api.add_routes(app)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/ws/conversation", conversation_websocket)
    app.router.add_get("/ws/inbox", inbox_websocket)
    pages.add_routes(app)
    return app
