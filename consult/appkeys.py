"""Typed keys of everything the application holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from .booking import BookingService
from .bus import Bus
from .checkins import Aftercare
from .config import Settings
from .conversation import Conversations
from .due import DueRunner, Handler
from .mail.notices import Notices
from .mail.sender import MailSender
from .media.ice import IceServer
from .media.stills import Stills
from .metrics import Metrics
from .nodes import Node
from .ratelimit import FailureLimiter, SenderBuckets
from .recording.accounts import Accounts
from .recording.attachments import Attachments
from .recording.audit import Audit
from .recording.customers import Customers
from .recording.due import DueWork
from .recording.recordings import RecordingFiles
from .recording.schedule import BackupSchedule
from .recording.store import Store
from .reminders import Reminders
from .signaling.hub import Hub
from .signaling.ws_relay import Relays

__all__ = [
    "ACCOUNTS",
    "AFTERCARE",
    "ATTACHMENTS",
    "ATTACHMENT_RATE",
    "AUDIT",
    "AUTH_FAILURES",
    "BACKUPS",
    "BOOKING",
    "BOOKING_RATE",
    "BUS",
    "CONVERSATIONS",
    "CUSTOMERS",
    "DUE_HANDLERS",
    "DUE_RUNNER",
    "DUE_WORK",
    "HUB",
    "ICE_SERVERS",
    "MAIL_SENDER",
    "METRICS",
    "NODE",
    "NOTICES",
    "RECORDINGS",
    "RELAYS",
    "REMINDERS",
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
#: Each consultation's messages, stored and delivered apart from calls (issue 15).
CONVERSATIONS = web.AppKey("conversations", Conversations)
#: Scheduled backups; absent unless ``--backup-dir`` is given.
BACKUPS = web.AppKey("backups", BackupSchedule)
#: Colour tools on stills run one at a time: the calls' media keep the other core.
TOOL_SLOTS = web.AppKey("tool_slots", asyncio.Semaphore)

#: Voice messages, video clips and files sent in the chat, and how fast each side may send them.
ATTACHMENTS = web.AppKey("attachments", Attachments)
ATTACHMENT_RATE = web.AppKey("attachment_rate", SenderBuckets)
#: The customers' emails: what is queued when (always there; it knows whether SMTP is set).
NOTICES = web.AppKey("notices", Notices)
#: The outbox's sender; absent unless ``--smtp-url`` is given.
MAIL_SENDER = web.AppKey("mail_sender", MailSender)
#: Recorded calls' files (their rows are in the store).
RECORDINGS = web.AppKey("recordings", RecordingFiles)

# Staff accounts and the audit log (issue 17)
#: Staff accounts, their password resets and API keys (the store's).
ACCOUNTS = web.AppKey("accounts", Accounts)
#: Who did what to what (the store's).
AUDIT = web.AppKey("audit", Audit)
# Due work (issue 16).
#: What is due when, in the store: ``put`` work (with a handler registered for its kind),
#: ``cancel`` it, ``cancel_prefix`` a booking's. The runner's own, so a put wakes it.
DUE_WORK = web.AppKey("due_work", DueWork)
#: The runner (started from the app's cleanup_ctx, after the store, the conversations and mail).
DUE_RUNNER = web.AppKey("due_runner", DueRunner)
#: Each kind's handler, made from the app when the runner starts: a feature registers its own
#: in the app factory, ``app[DUE_HANDLERS]["checkin"] = make_checkin_handler``.
DUE_HANDLERS = web.AppKey("due_handlers", dict[str, Callable[[web.Application], Handler]])
#: Appointments' reminders (email and a conversation message), scheduled as due work.
REMINDERS = web.AppKey("reminders", Reminders)
#: Booking: free slots, bookings made, moved and cancelled (with their reminders and emails).
BOOKING = web.AppKey("booking", BookingService)
#: The public booking endpoint's limit per client address (it needs no account).
BOOKING_RATE = web.AppKey("booking_rate", SenderBuckets)

# issue 17B: customers, consent, deletion, retention

#: The salon's customers (the store's, under their own key for booking and the customer pages).
CUSTOMERS = web.AppKey("customers", Customers)

# issue 16B
#: Aftercare check-ins: scheduling, the due photo request, the customer's answers.
AFTERCARE = web.AppKey("aftercare", Aftercare)

# issue 13A: nodes
#: This node: its identity among the nodes sharing the database, the node-to-node secret,
#: its heartbeat, and a client session for requests to other nodes.
NODE = web.AppKey("node", Node)
#: This node's websockets relayed to the nodes that own their calls.
RELAYS = web.AppKey("relays", Relays)

# Cross-node delivery (issue 13C)
#: The links to the other nodes: conversations' hints out and in (consult/bus.py).
BUS = web.AppKey("bus", Bus)
