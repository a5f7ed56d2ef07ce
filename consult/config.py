"""Settings: command-line flags over ``CONSULT_*`` environment variables over embedded defaults."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Literal

from .keyfiles import read_or_create
from .mail.smtp import SmtpServer

__all__ = [
    "Bitrates",
    "Forwarding",
    "Settings",
    "backup_secret",
    "load_staff_key",
    "parse_duration",
]

#: How media reaches the partner: RTP packets re-sent (default), or decoded and re-encoded.
Forwarding = Literal["packets", "frames"]
EventLoop = Literal["uvloop", "asyncio"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA = Path("data")
TRUE = ("1", "true", "yes", "on")
#: The languages of the pages, and of the emails.
MAIL_LANGUAGES = ("en", "zh-CN")


@dataclass(frozen=True)
class Bitrates:
    """Video bitrates (kbps) written into the answer's fmtp as ``x-google-*-bitrate``.

    Browsers otherwise start near 300 kbps against aiortc and scale a 720p camera down (or,
    holding resolution, drop to a few fps) for many seconds; ``start`` lifts them to full size
    and frame rate at once. ``min`` is a floor under the browser's congestion control: set at
    or above a customer's uplink it freezes their video for most of the call, so it stays low
    (docs/media.md has the measurements).
    """

    start: int = 3000
    min: int = 300
    max: int = 8000

    def __post_init__(self) -> None:
        if not 0 < self.min <= self.start <= self.max:
            raise ValueError("video bitrates must satisfy 0 < min <= start <= max")


@dataclass(frozen=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA
    #: Base of the links handed out; defaults to http://host:port.
    public_url: str | None = None
    #: STUN/TURN URLs handed to the browsers (the server's own peers use none: docs/media.md).
    #: Empty: nothing leaves the machine.
    ice_servers: tuple[str, ...] = ()
    #: Addresses offered as ICE host candidates; empty: the machine's own (never loopback).
    media_addresses: tuple[str, ...] = ()
    log_level: str = "info"
    #: SQLAlchemy URL; defaults to SQLite in the data folder.
    database_url: str | None = None
    staff_key: str | None = None
    link_ttl: timedelta = timedelta(days=7)
    #: None: leave the browsers' own bitrate choices alone (for comparison; not recommended).
    bitrates: Bitrates | None = field(default_factory=Bitrates)
    #: Uploaded photos: bytes, and pixels (checked from the header, before decoding).
    max_upload_bytes: int = 25 * 1024 * 1024
    max_upload_pixels: int = 50_000_000
    max_message_bytes: int = 64 * 1024
    #: Websocket messages a connection may send: per second on average, and in a burst.
    message_rate: float = 20.0
    message_burst: int = 60
    max_sdp_bytes: int = 32 * 1024
    #: Seconds between websocket pings; a peer that misses a pong is gone.
    ws_heartbeat: float = 5.0
    #: Seconds a participant whose peer connection ended has to offer again before it is
    #: disconnected with ``media-failed``.
    reoffer_grace: float = 3.0
    #: Seconds the customer has to place the hand before a still (never skipped).
    capture_countdown: float = 3.0
    #: Seconds a capture takes a photo from the device's own camera app (the native path).
    native_photo_window: float = 120.0
    #: Seconds a new server peer has to connect before both sides are told that the
    #: participant's media cannot get through (a network that blocks UDP, with no TURN).
    media_timeout: float = 10.0
    #: "packets" (RTP forwarded, nothing decoded but stills) or "frames" (decode + re-encode).
    forwarding: Forwarding = "packets"
    #: The server's event loop: uvloop (cheaper per packet; docs/media.md) or asyncio's own.
    event_loop: EventLoop = "uvloop"
    #: A new call is admitted while the event loop's CPU, with it, stays under this fraction
    #: of a core (consult/admission.py; None: not judged), and while fewer than ``max_calls``
    #: are live (None: no cap).
    admit_cpu: float | None = 0.85
    max_calls: int | None = None
    #: HTTPS with the salon's certificate and key (PEM), or with one made for this machine's
    #: addresses and kept in the data folder (consult/tls.py). Neither: plain HTTP.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self_signed: bool = False
    #: Behind a reverse proxy: the client's address is the last one in X-Forwarded-For (for
    #: the per-address limits). Only with the service reachable through the proxy alone.
    trust_proxy: bool = False
    #: Scheduled backups (consult/recording/schedule.py): into this folder, this often,
    #: keeping the newest ``backup_keep``; encrypted with the key file or
    #: ``CONSULT_BACKUP_PASSPHRASE`` if either is given.
    backup_dir: Path | None = None
    backup_every: timedelta = timedelta(hours=24)
    backup_keep: int = 14
    backup_key_file: Path | None = None
    backup_staff_key: bool = True
    #: This node's name among the nodes sharing one database: the holder recorded with its
    #: live calls (default: this machine's name and the port, stable across restarts).
    node_id: str | None = None
    #: The stills on a folder every node sees (a network mount); default: DATA/stills.
    stills_folder: Path | None = None
    #: The call recordings on a folder every node sees; default: DATA/recordings.
    recordings_folder: Path | None = None
    #: Email to customers (consult/mail/): the salon's SMTP server as a URL, and the From
    #: address (default: the URL's user name, if it is an address). None: no email at all.
    smtp_url: str | None = None
    mail_from: str | None = None
    #: The emails' language where the consultation has none: "en" or "zh-CN".
    mail_language: str = "en"
    #: Staff messages within this long of the first one while the customer is away make one
    #: email, sent this long after the first.
    mail_coalesce: timedelta = timedelta(minutes=3)
    #: The first retry of an email the server did not take; each next one waits twice as long.
    mail_retry: timedelta = timedelta(seconds=30)
    # Staff accounts and the audit log (issue 17)
    #: Audit entries older than this are pruned (consult/recording/audit_pruning.py).
    audit_keep: timedelta = timedelta(days=730)
    # issue 17B: privacy
    #: Consultations with no activity for this many months are removed (None: never).
    retention_months: int | None = None
    #: A customer joins a call only after agreeing to what the salon keeps (on the page).
    require_consent: bool = False
    # Booking and reminders (issue 16).
    #: The appointment's reminders (email and a message in the conversation): the day before
    #: at this local time, and this long before; None: not that one.
    reminder_day_before: time | None = time(10, 0)
    reminder_before: timedelta | None = timedelta(minutes=15)
    #: Bookings one address may make (the public endpoint needs no account): a burst, then
    #: this many a minute.
    booking_burst: int = 5
    booking_per_minute: float = 1.0
    #: Lasting links: a customer's link opens while their consultation had activity (a
    #: message, a call, a booking) within this long, even past ``link_ttl``; None: it ends at
    #: ``link_ttl`` as the stylist's does. ``CONSULT_LINK_IDLE_MONTHS``.
    link_idle: timedelta | None = timedelta(days=365)
    # issue 13A: nodes (docs/operations.md, Several nodes)
    #: The base URL the other nodes reach this one on (default: its own port on loopback).
    node_url: str | None = None
    #: Seconds the calls in progress go on after SIGTERM before they move to another node.
    drain_grace: float = 30.0

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_self_signed and self.tls_cert is not None:
            raise ValueError("--tls-self-signed or --tls-cert/--tls-key, not both")
        if self.backup_every < timedelta(seconds=1) or self.backup_keep < 1:
            raise ValueError("--backup-every must be at least 1s and --backup-keep at least 1")
        if self.audit_keep <= timedelta(0):
            raise ValueError("CONSULT_AUDIT_KEEP_DAYS must be more than 0")
        if self.retention_months is not None and self.retention_months < 1:
            raise ValueError("CONSULT_RETENTION_MONTHS must be at least 1 (unset: keep everything)")
        if self.admit_cpu is not None and not 0 < self.admit_cpu <= 1:
            raise ValueError("CONSULT_ADMIT_CPU must be a fraction of a core (0 to 1) or off")
        if self.max_calls is not None and self.max_calls < 1:
            raise ValueError("CONSULT_MAX_CALLS must be at least 1")
        if self.drain_grace < 0:
            raise ValueError("CONSULT_DRAIN_GRACE must be 0 or more seconds")
        if self.mail_language not in MAIL_LANGUAGES:
            raise ValueError(f"CONSULT_MAIL_LANGUAGE must be one of {', '.join(MAIL_LANGUAGES)}")
        if self.smtp_url is not None:
            server = SmtpServer.parse(self.smtp_url)
            if self.mail_from is None and "@" not in (server.username or ""):
                raise ValueError("--smtp-url needs --mail-from (the address emails come from)")

    @property
    def tls(self) -> bool:
        return self.tls_self_signed or self.tls_cert is not None

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def sender_address(self) -> str | None:
        """Where the customers' emails come from; None: email is not configured."""
        if self.smtp_url is None:
            return None
        if self.mail_from is not None:
            return self.mail_from
        return SmtpServer.parse(self.smtp_url).username

    @property
    def stills_dir(self) -> Path:
        return self.stills_folder or self.data_dir / "stills"

    @property
    def node(self) -> str:
        return self.node_id or f"{socket.gethostname()}:{self.port}"

    @property
    def recordings_dir(self) -> Path:
        return self.recordings_folder or self.data_dir / "recordings"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'consult.db').resolve()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``CONSULT_*`` variables; ``overrides`` (flags) that are not None win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if "CONSULT_HOST" in env:
            values["host"] = env["CONSULT_HOST"]
        if "CONSULT_PORT" in env:
            values["port"] = int(env["CONSULT_PORT"])
        if "CONSULT_DATA" in env:
            values["data_dir"] = Path(env["CONSULT_DATA"])
        if "CONSULT_PUBLIC_URL" in env:
            values["public_url"] = env["CONSULT_PUBLIC_URL"]
        if env.get("CONSULT_ICE_SERVERS"):
            values["ice_servers"] = tuple(env["CONSULT_ICE_SERVERS"].split(","))
        if env.get("CONSULT_MEDIA_ADDRESSES"):
            values["media_addresses"] = tuple(env["CONSULT_MEDIA_ADDRESSES"].split(","))
        if env.get("CONSULT_TLS_CERT"):
            values["tls_cert"] = Path(env["CONSULT_TLS_CERT"])
        if env.get("CONSULT_TLS_KEY"):
            values["tls_key"] = Path(env["CONSULT_TLS_KEY"])
        if env.get("CONSULT_TLS_SELF_SIGNED"):
            values["tls_self_signed"] = env["CONSULT_TLS_SELF_SIGNED"].lower() in TRUE
        if env.get("CONSULT_TRUST_PROXY"):
            values["trust_proxy"] = env["CONSULT_TRUST_PROXY"].lower() in TRUE
        if env.get("CONSULT_BACKUP_DIR"):
            values["backup_dir"] = Path(env["CONSULT_BACKUP_DIR"])
        if env.get("CONSULT_BACKUP_EVERY"):
            values["backup_every"] = parse_duration(env["CONSULT_BACKUP_EVERY"])
        if env.get("CONSULT_BACKUP_KEEP"):
            values["backup_keep"] = int(env["CONSULT_BACKUP_KEEP"])
        if env.get("CONSULT_BACKUP_STAFF_KEY"):
            values["backup_staff_key"] = env["CONSULT_BACKUP_STAFF_KEY"].lower() in TRUE
        if env.get("CONSULT_BACKUP_KEY_FILE"):
            values["backup_key_file"] = Path(env["CONSULT_BACKUP_KEY_FILE"])
        if env.get("CONSULT_SMTP_URL"):
            values["smtp_url"] = env["CONSULT_SMTP_URL"]
        if env.get("CONSULT_MAIL_FROM"):
            values["mail_from"] = env["CONSULT_MAIL_FROM"]
        if env.get("CONSULT_MAIL_LANGUAGE"):
            values["mail_language"] = env["CONSULT_MAIL_LANGUAGE"]
        if env.get("CONSULT_MAIL_COALESCE"):
            values["mail_coalesce"] = parse_duration(env["CONSULT_MAIL_COALESCE"])
        if env.get("CONSULT_MAIL_RETRY"):
            values["mail_retry"] = parse_duration(env["CONSULT_MAIL_RETRY"])
        if env.get("CONSULT_RETENTION_MONTHS"):
            values["retention_months"] = int(env["CONSULT_RETENTION_MONTHS"])
        if env.get("CONSULT_REQUIRE_CONSENT"):
            values["require_consent"] = env["CONSULT_REQUIRE_CONSENT"].lower() in TRUE
        if env.get("CONSULT_REMINDER_DAY_BEFORE"):
            values["reminder_day_before"] = _time_or_off(env["CONSULT_REMINDER_DAY_BEFORE"])
        if env.get("CONSULT_REMINDER_BEFORE"):
            text = env["CONSULT_REMINDER_BEFORE"].strip().lower()
            values["reminder_before"] = None if text == "off" else parse_duration(text)
        if env.get("CONSULT_LINK_IDLE_MONTHS"):
            months = float(env["CONSULT_LINK_IDLE_MONTHS"])
            values["link_idle"] = timedelta(days=months * 365 / 12) if months > 0 else None
        if env.get("CONSULT_BOOKING_BURST"):
            values["booking_burst"] = int(env["CONSULT_BOOKING_BURST"])
        if env.get("CONSULT_BOOKING_PER_MINUTE"):
            values["booking_per_minute"] = float(env["CONSULT_BOOKING_PER_MINUTE"])
        if "CONSULT_LOG_LEVEL" in env:
            values["log_level"] = env["CONSULT_LOG_LEVEL"]
        if "CONSULT_DATABASE_URL" in env:
            values["database_url"] = env["CONSULT_DATABASE_URL"]
        if env.get("CONSULT_STILLS_DIR"):
            values["stills_folder"] = Path(env["CONSULT_STILLS_DIR"])
        if env.get("CONSULT_RECORDINGS_DIR"):
            values["recordings_folder"] = Path(env["CONSULT_RECORDINGS_DIR"])
        if env.get("CONSULT_NODE_ID"):
            values["node_id"] = env["CONSULT_NODE_ID"]
        if env.get("CONSULT_STAFF_KEY"):
            values["staff_key"] = env["CONSULT_STAFF_KEY"]
        if "CONSULT_MAX_UPLOAD_MB" in env:
            values["max_upload_bytes"] = int(float(env["CONSULT_MAX_UPLOAD_MB"]) * 1024 * 1024)
        if "CONSULT_MAX_UPLOAD_MEGAPIXELS" in env:
            values["max_upload_pixels"] = int(float(env["CONSULT_MAX_UPLOAD_MEGAPIXELS"]) * 1e6)
        if "CONSULT_LINK_TTL_HOURS" in env:
            values["link_ttl"] = timedelta(hours=float(env["CONSULT_LINK_TTL_HOURS"]))
        if env.get("CONSULT_FORWARDING"):
            if env["CONSULT_FORWARDING"] not in ("packets", "frames"):
                raise ValueError("CONSULT_FORWARDING must be packets or frames")
            values["forwarding"] = env["CONSULT_FORWARDING"]
        if env.get("CONSULT_EVENT_LOOP"):
            if env["CONSULT_EVENT_LOOP"] not in ("uvloop", "asyncio"):
                raise ValueError("CONSULT_EVENT_LOOP must be uvloop or asyncio")
            values["event_loop"] = env["CONSULT_EVENT_LOOP"]
        if env.get("CONSULT_AUDIT_KEEP_DAYS"):
            values["audit_keep"] = timedelta(days=float(env["CONSULT_AUDIT_KEEP_DAYS"]))
        if env.get("CONSULT_ADMIT_CPU"):
            off = env["CONSULT_ADMIT_CPU"] == "off"
            values["admit_cpu"] = None if off else float(env["CONSULT_ADMIT_CPU"])
        if env.get("CONSULT_MAX_CALLS"):
            values["max_calls"] = int(env["CONSULT_MAX_CALLS"])
        # issue 13A: nodes
        if env.get("CONSULT_NODE_URL"):
            values["node_url"] = env["CONSULT_NODE_URL"]
        if env.get("CONSULT_MEDIA_ADDRESS") and "media_addresses" not in values:
            values["media_addresses"] = tuple(env["CONSULT_MEDIA_ADDRESS"].split(","))
        if env.get("CONSULT_DRAIN_GRACE"):
            values["drain_grace"] = float(env["CONSULT_DRAIN_GRACE"])
        bitrates = {
            name: int(env[f"CONSULT_VIDEO_{name.upper()}_KBPS"])
            for name in ("start", "min", "max")
            if f"CONSULT_VIDEO_{name.upper()}_KBPS" in env
        }
        if env.get("CONSULT_VIDEO_BITRATES") == "off":
            values["bitrates"] = None
        elif bitrates:
            values["bitrates"] = Bitrates(**bitrates)
        values.update({k: v for k, v in overrides.items() if v is not None and v != ()})
        return cls(**values)  # type: ignore[arg-type]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``."""
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS:
        raise ValueError(f"not a duration: {text!r} (e.g. 30m, 24h, 7d)")
    try:
        return timedelta(seconds=float(text[:-1]) * _UNITS[text[-1]])
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (e.g. 30m, 24h, 7d)") from None


def _time_or_off(text: str) -> time | None:
    """``10:00``, or ``off``."""
    if text.strip().lower() == "off":
        return None
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a time of day: {text!r} (e.g. 10:00, or off)") from None


def backup_secret(key_file: Path | None, env: Mapping[str, str] | None = None) -> bytes | None:
    """What backups are encrypted with: the key file's content (a passphrase or random bytes;
    a final newline is not part of it), else ``CONSULT_BACKUP_PASSPHRASE``, else None."""
    env = os.environ if env is None else env
    if key_file is not None:
        secret = key_file.read_bytes().rstrip(b"\r\n")
        if not secret:
            raise ValueError(f"the key file {key_file} is empty")
        return secret
    passphrase = env.get("CONSULT_BACKUP_PASSPHRASE")
    return passphrase.encode() if passphrase else None


def load_staff_key(settings: Settings) -> str:
    """The staff key: from settings, else generated once and kept in the data folder."""
    if settings.staff_key:
        return settings.staff_key
    key = read_or_create(
        settings.data_dir / "staff.key", lambda: secrets.token_urlsafe(32).encode()
    )
    return key.decode()
