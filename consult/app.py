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
from .api.deletion import folders as deletion_folders
from .appkeys import (
    ACCOUNTS,
    AFTERCARE,
    ATTACHMENT_RATE,
    ATTACHMENTS,
    AUDIT,
    AUTH_FAILURES,
    BACKUPS,
    BOOKING,
    BOOKING_RATE,
    BUS,
    CONVERSATIONS,
    CUSTOMERS,
    DUE_HANDLERS,
    DUE_RUNNER,
    DUE_WORK,
    HUB,
    ICE_SERVERS,
    MAIL_SENDER,
    METRICS,
    NODE,
    NOTICES,
    RECORDINGS,
    RELAYS,
    REMINDERS,
    SETTINGS,
    STAFF_KEY,
    STILLS,
    STORE,
    TOOL_SLOTS,
)
from .auth import setup_sessions
from .booking import BookingService
from .bus import BUS_PATH, Bus, Peer
from .checkins import KIND as CHECKIN_KIND
from .checkins import Aftercare
from .config import Settings, backup_secret, load_staff_key
from .conversation import Conversations
from .due import DueRunner
from .errors import StorageFailed
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
from .nodes import Node
from .ratelimit import FailureLimiter, SenderBuckets
from .recording.attachments import Attachments
from .recording.audit_pruning import AuditPruning
from .recording.deletion import remove_files
from .recording.due import DueWork
from .recording.failures import FailureLog
from .recording.files import StillFiles
from .recording.recordings import RecordingFiles, recover
from .recording.retention import Retention
from .recording.schedule import BackupSchedule
from .recording.store import Store
from .recording.tokens import TokenSealer, load_seal_key
from .reminders import CHAT, EMAIL, Reminders
from .signaling.hub import Hub
from .signaling.ws import conversation_websocket, inbox_websocket, websocket
from .signaling.ws_relay import Relays

__all__ = [
    "WORKER_HEADER",
    "create_app",
    "drain",
    "recordings_node",
    "repair",
    "shared_still_files",
]

logger = logging.getLogger(__name__)

#: The header naming the worker that answered (``w0``, ``w1``...; none with one process).
WORKER_HEADER = "X-Consult-Worker"


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await Store.open(
        settings.db_url,
        TokenSealer(load_seal_key(settings.data_dir)),
        node=settings.node,
        link_idle=settings.link_idle,
    )
    await store.reset_live()
    app[STORE] = store
    app[AUDIT] = store.audit
    app[ACCOUNTS] = store.accounts
    app[CUSTOMERS] = store.customers
    recording_files = RecordingFiles(settings.recordings_dir, recordings_node(settings))
    still_files = shared_still_files(settings)
    stills = Stills(
        store, still_files, Limits(settings.max_upload_bytes, settings.max_upload_pixels)
    )
    await repair(store, still_files, stills, recording_files)
    app[STILLS] = stills
    app[CONVERSATIONS] = Conversations(store)
    app[ATTACHMENTS] = Attachments(store.attachments, StillFiles(settings.stills_dir))
    await recover(store.recordings, recording_files)
    app[RECORDINGS] = recording_files
    app[AFTERCARE] = Aftercare(store, stills, app[CONVERSATIONS], settings)
    yield
    await store.close()


async def _node(app: web.Application) -> AsyncIterator[None]:
    """This node among those sharing the database: announced (refused, with ``KeysDiffer``,
    if its keys differ from the live nodes'), beating until it stops."""
    settings, store = app[SETTINGS], app[STORE]
    node = Node(settings, store.nodes, app[STAFF_KEY], load_seal_key(settings.data_dir))
    await node.start()
    app[NODE] = node
    app[RELAYS] = Relays(node, settings.ws_heartbeat)
    yield
    await node.close()


def recordings_node(settings: Settings) -> str:
    """The folder this process stages its recordings in, named by an id kept in the data
    folder: stable whatever the host is called (a container's name changes per start), and
    one per worker (a worker started again finishes its own)."""
    node = read_or_create(settings.data_dir / "node.id", lambda: secrets.token_hex(8).encode())
    return node.decode() + ("" if settings.worker is None else f"-w{settings.worker}")


def shared_still_files(settings: Settings) -> StillFiles:
    """The stills folder; shared with other nodes (``CONSULT_STILLS_DIR``) or with the other
    workers of this machine, a start's sweep leaves recent files alone (another's upload)."""
    shared = settings.stills_folder is not None or settings.worker is not None
    return StillFiles(settings.stills_dir, shared=shared)


async def repair(
    store: Store, files: StillFiles, stills: Stills, recordings: RecordingFiles
) -> None:
    """At start, what a crash may have left half done: a deletion whose rows went (its files
    go now, before the stills' sweep, which would take them for strays), still files no row
    names. Several workers: their supervisor runs it before any starts, and each worker again
    (both are safe beside other workers: the journal's files are gone either way, and a
    worker's sweep spares recent files)."""
    finished = await remove_files(
        store.deletion, {"stills": files.path, "recordings": recordings.path}
    )
    if finished:
        logger.warning("removed %d files of a deletion interrupted before", finished)
    await stills.start()


async def _bus(app: web.Application) -> AsyncIterator[None]:
    """The links to the other nodes: what changes in a conversation here is hinted to them,
    and what they hint is delivered here (``Conversations.follow``)."""
    node = app[NODE]

    async def live() -> list[Peer]:
        return [Peer(n.node_id, n.url) for n in await node.live()]

    def verify(request: web.Request) -> str | None:
        call = node.verify(request.headers, request.method, request.path_qs)
        return call.node_id if call is not None else None

    bus = Bus(node.node_id, live, lambda path: node.sign("GET", path), verify)
    bus.start()
    app[BUS] = bus
    following = asyncio.create_task(app[CONVERSATIONS].follow(bus))
    yield
    await bus.close()
    await asyncio.wait([following])


async def _bus_link(request: web.Request) -> web.WebSocketResponse:
    return await request.app[BUS].accept(request)


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


async def _retention(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.retention_months is None:
        yield
        return
    retention = Retention(app[STORE], settings.retention_months, deletion_folders(app))
    retention.start()
    yield
    await retention.close()


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
        node=settings.node,
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


async def _audit_pruning(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    pruning = AuditPruning(store.audit, store.leases, app[SETTINGS].audit_keep)
    pruning.start()
    yield
    await pruning.close()


async def _due(app: web.Application) -> AsyncIterator[None]:
    """Due work and its runner, with every registered kind's handler; after the services its
    handlers use, so it stops before them."""
    store, settings = app[STORE], app[SETTINGS]
    work = app[DUE_WORK] = DueWork(store.database)
    reminders = app[REMINDERS] = Reminders(store, work, app[NOTICES], app[CONVERSATIONS], settings)
    await reminders.reconcile()
    app[BOOKING] = BookingService(store, reminders, app[NOTICES], settings.link_ttl)
    handlers = {kind: make(app) for kind, make in app[DUE_HANDLERS].items()}
    runner = DueRunner(
        store.database, handlers, node=settings.node, metrics=app[METRICS], work=work
    )
    app[DUE_RUNNER] = runner
    runner.start()
    yield
    await runner.close()


async def _draw_cards(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, placeholder.prepare, list(WAITING_TEXT.values()))


async def _hub(app: web.Application) -> AsyncIterator[None]:
    app[HUB] = Hub(app[STORE], app[STILLS], app[SETTINGS], app[METRICS], app[RECORDINGS], app[NODE])
    yield
    await app[HUB].close()


async def _live_status(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[HUB].hold_calls())
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
    await asyncio.gather(app[CONVERSATIONS].close(), app[HUB].close(), app[RELAYS].close())


def _shared_failures(app: web.Application) -> FailureLog | None:
    """Failed authentications are shared where other nodes can share the database: on
    PostgreSQL. On SQLite (one process) this node's own count is all there is."""
    store = app.get(STORE)
    return store.auth_failures if store is not None and store.dialect != "sqlite" else None


async def drain(app: web.Application) -> None:
    """SIGTERM: this node takes no new call (other nodes get them); its calls go on for the
    drain grace, then move to other nodes (docs/operations.md, Several nodes). With no other
    node to move them to (one node, or all of them stopping) it shuts down at once, as a
    single service always has: its pages come back when it does."""
    node = app[NODE]
    try:
        others = [n for n in await node.live() if n.node_id != node.node_id and not n.draining]
    except StorageFailed:
        others = []
    if not others:
        return
    await node.drain()
    await app[HUB].drain(app[SETTINGS].drain_grace)


async def _name_worker(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[WORKER_HEADER] = f"w{request.app[SETTINGS].worker}"


def create_app(settings: Settings) -> web.Application:
    internals.install()
    app = web.Application(
        middlewares=[forwarded_client, security_headers, errors_middleware, auth_failures]
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics(
        lambda: app.get(HUB),
        lambda: backups.status if (backups := app.get(BACKUPS)) is not None else None,
        bus=lambda: bus.links() if (bus := app.get(BUS)) is not None else None,
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
    app.cleanup_ctx.extend([_store, _node, _backups, _mail, _hub, _live_status, _watch_load])
    # Staff accounts and the audit log (issue 17)
    app.cleanup_ctx.append(_audit_pruning)
    app.cleanup_ctx.append(_retention)
    # Due work (issue 16): features register their kinds' handlers here, before it starts.
    app[BOOKING_RATE] = SenderBuckets(settings.booking_per_minute / 60, settings.booking_burst)
    app[DUE_HANDLERS] = {
        EMAIL: lambda app: app[REMINDERS].send_email,
        CHAT: lambda app: app[REMINDERS].post_message,
        CHECKIN_KIND: lambda app: app[AFTERCARE].run_due,
    }
    app.cleanup_ctx.append(_due)
    # Cross-node delivery (issue 13C)
    app.cleanup_ctx.append(_bus)
    app.router.add_get(BUS_PATH, _bus_link)
    app.on_startup.append(_draw_cards)
    app.on_shutdown.append(_close_calls)
    # Workers (issue 13B): which worker answered, for an operator (and a test) to see the
    # kernel spread connections on the shared port.
    if settings.worker is not None:
        app.on_response_prepare.append(_name_worker)
    api.add_routes(app)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/ws/conversation", conversation_websocket)
    app.router.add_get("/ws/inbox", inbox_websocket)
    pages.add_routes(app)
    return app
