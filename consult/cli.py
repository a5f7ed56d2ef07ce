"""The ``consult`` command: ``serve``, and what staff do from a shell beside it (create,
list, export, backup, restore)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvloop

from . import service, tls
from .config import Settings, backup_secret, load_staff_key, parse_duration
from .errors import ConsultError
from .recording.nodes import KeysDiffer
from .recording.store import Store
from .recording.tokens import TokenSealer, load_seal_key

__all__ = ["main"]


def _links(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data folder (default ./data)")
    parser.add_argument(
        "--public-url",
        help="base of the links printed (default: where the service of the data folder serves)",
    )
    parser.add_argument("--host", help="the host the links name (instead of --public-url)")
    parser.add_argument("--port", type=int, help="the port the links name")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consult",
        description="Video consultations for salons: run the service (serve); create, list"
        " and export consultations from a shell beside it, on the same data folder.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument(
        "--data", type=Path, help="data folder, made at the first start (default ./data)"
    )
    serve.add_argument("--public-url", help="base of the links handed out")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN server, e.g. stun:stun.example.com or turn:user:pass@turn.example.com"
        " (repeatable; default none: nothing is contacted outside this machine)",
    )
    serve.add_argument(
        "--media-address",
        action="append",
        default=[],
        metavar="ADDR",
        help="address offered for media (repeatable; default: this machine's own addresses;"
        " 127.0.0.1 keeps a single-machine demo on loopback)",
    )
    serve.add_argument(
        "--node-url",
        metavar="URL",
        help="the base URL the other nodes sharing the database reach this one on"
        " (CONSULT_NODE_URL; default: this node's port on loopback)",
    )
    serve.add_argument("--log-level", help="debug, info, warning or error (default info)")
    serve.add_argument(
        "--trust-proxy",
        action="store_true",
        default=None,
        help="behind a reverse proxy: take the client's address from X-Forwarded-For"
        " (listen on 127.0.0.1 then, so that only the proxy can set it)",
    )
    tls = serve.add_argument_group("HTTPS (browsers give the camera only to secure pages)")
    tls.add_argument("--tls-cert", type=Path, help="the certificate chain (PEM)")
    tls.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    tls.add_argument(
        "--tls-self-signed",
        action="store_true",
        default=None,
        help="make (once) a certificate for this machine's addresses and print its fingerprint:"
        " for trying the service on a phone over the salon's Wi-Fi",
    )

    create = sub.add_parser("create", help="create a consultation and print its links")
    _links(create)
    create.add_argument("--customer-name", required=True)
    create.add_argument("--customer-ref", help="the salon's own customer reference")
    create.add_argument("--json", action="store_true", help="print JSON")

    export = sub.add_parser("export", help="write a consultation's record as a ZIP")
    export.add_argument("id", help="the consultation's id")
    export.add_argument(
        "-o", "--output", type=Path, help="the ZIP to write (default ./consultation-ID.zip)"
    )
    export.add_argument("--data", type=Path, help="data folder (default ./data)")
    export.add_argument(
        "--without-notes",
        action="store_true",
        help="leave out the stylist's private notes (in by default): a copy to hand over",
    )

    listing = sub.add_parser("list", help="list consultations with their links")
    _links(listing)
    listing.add_argument("--customer-ref")
    listing.add_argument("--json", action="store_true", help="print JSON")
    _backup_parsers(sub, serve)
    _migrate_parser(sub)
    _mail_options(serve)
    _accounts_parser(sub)
    return parser


# Staff accounts (issue 17)


def _accounts_parser(sub: Any) -> None:
    accounts = sub.add_parser("accounts", help="staff accounts: the salon's first owner")
    actions = accounts.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    owner = actions.add_parser(
        "create-owner",
        help="create an owner account; the password is asked for (or read from"
        " CONSULT_OWNER_PASSWORD)",
    )
    owner.add_argument("--email", required=True)
    owner.add_argument("--name", required=True)
    owner.add_argument("--data", type=Path, help="data folder (default ./data)")
    listing = actions.add_parser("list", help="list the staff accounts")
    listing.add_argument("--data", type=Path, help="data folder (default ./data)")


def _new_password() -> str | None:
    import getpass

    if os.environ.get("CONSULT_OWNER_PASSWORD"):
        return os.environ["CONSULT_OWNER_PASSWORD"]
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        print("consult: the two passwords differ", file=sys.stderr)
        return None
    return first


async def create_owner(settings: Settings, email: str, name: str, password: str) -> str:
    from .passwords import strong_hash
    from .recording.accounts import account_email

    store = await _with_store(settings)
    try:
        account = await store.accounts.create(
            email=account_email(email),
            name=name.strip(),
            role="owner",
            password_hash=await strong_hash(password),
            actor="system:cli",
        )
    finally:
        await store.close()
    return account.id


async def list_accounts(settings: Settings) -> None:
    store = await _with_store(settings)
    try:
        for account in await store.accounts.all():
            state = " (disabled)" if account.disabled else ""
            print(f"{account.id}  {account.role:8}  {account.email}  {account.name}{state}")
    finally:
        await store.close()


def accounts_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.accounts_command == "list":
        asyncio.run(list_accounts(settings))
        return 0
    password = _new_password()
    if password is None:
        return 1
    try:
        account_id = asyncio.run(create_owner(settings, args.email, args.name, password))
    except ConsultError as exc:
        print(f"consult: {exc.message}", file=sys.stderr)
        return 1
    print(f"owner account {account_id} created for {args.email.strip().lower()}")
    return 0


def _migrate_parser(sub: Any) -> None:
    migrate = sub.add_parser(
        "migrate-store",
        help="copy the data folder's database into a new, empty one (e.g. PostgreSQL)",
    )
    migrate.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="the target database, e.g. postgresql+asyncpg://consult@db.example/consult;"
        " serve with CONSULT_DATABASE_URL set to it afterwards",
    )
    migrate.add_argument("--data", type=Path, help="data folder (default ./data)")


def _mail_options(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("email to customers (docs/operations.md, Email)")
    group.add_argument(
        "--smtp-url",
        metavar="URL",
        help="the salon's SMTP server: smtp://user:password@host:587?starttls=1, or"
        " smtps://...:465 (default none: no email is sent)",
    )
    group.add_argument("--mail-from", metavar="ADDRESS", help="the address emails come from")


def _backup_parsers(sub: Any, serve: argparse.ArgumentParser) -> None:
    key_help = (
        "encrypt (decrypt) with this passphrase or key file's content; or set"
        " CONSULT_BACKUP_PASSPHRASE (docs/operations.md, Backups)"
    )
    backup = sub.add_parser(
        "backup", help="write an archive of everything (while the service runs), or verify one"
    )
    target = backup.add_mutually_exclusive_group(required=True)
    target.add_argument("-o", "--output", type=Path, help="the archive to write")
    target.add_argument("--verify", type=Path, metavar="FILE", help="check an archive")
    backup.add_argument("--data", type=Path, help="data folder (default ./data)")
    backup.add_argument("--key-file", type=Path, help=key_help)
    backup.add_argument(
        "--no-staff-key", action="store_true", help="leave the staff key out of the archive"
    )
    restore = sub.add_parser("restore", help="restore an archive into a new, empty data folder")
    restore.add_argument("archive", type=Path)
    restore.add_argument("--data", type=Path, required=True, help="the new data folder")
    restore.add_argument("--key-file", type=Path, help=key_help)

    group = serve.add_argument_group("scheduled backups")
    group.add_argument("--backup-dir", type=Path, help="make backups into this folder")
    group.add_argument(
        "--backup-every", type=parse_duration, metavar="DURATION", help="e.g. 24h (default), 6h"
    )
    group.add_argument("--backup-keep", type=int, metavar="N", help="keep the newest N (14)")
    group.add_argument("--backup-key-file", type=Path, help=key_help)
    group.add_argument(
        "--backup-no-staff-key",
        dest="backup_staff_key",
        action="store_false",
        default=None,
        help="leave the staff key out of the archives",
    )

    # issue 17B: privacy (docs/operations.md, Privacy)
    group = serve.add_argument_group("privacy")
    group.add_argument(
        "--require-consent",
        action="store_true",
        default=None,
        help="a customer joins a call only after agreeing to what is kept",
    )
    group.add_argument(
        "--retention-months",
        type=int,
        metavar="N",
        help="remove consultations with no activity for N months (default: keep)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=args.data,
        public_url=getattr(args, "public_url", None),
        ice_servers=tuple(getattr(args, "ice_server", ())),
        media_addresses=tuple(getattr(args, "media_address", ())),
        log_level=getattr(args, "log_level", None),
        tls_cert=getattr(args, "tls_cert", None),
        tls_key=getattr(args, "tls_key", None),
        tls_self_signed=getattr(args, "tls_self_signed", None),
        trust_proxy=getattr(args, "trust_proxy", None),
        backup_dir=getattr(args, "backup_dir", None),
        backup_every=getattr(args, "backup_every", None),
        backup_keep=getattr(args, "backup_keep", None),
        backup_key_file=getattr(args, "backup_key_file", None),
        backup_staff_key=getattr(args, "backup_staff_key", None),
        smtp_url=getattr(args, "smtp_url", None),
        mail_from=getattr(args, "mail_from", None),
        require_consent=getattr(args, "require_consent", None),
        retention_months=getattr(args, "retention_months", None),
        node_url=getattr(args, "node_url", None),
    )
    if args.command in ("create", "list") and not (args.public_url or args.host or args.port):
        # Links point where the service of this data folder last said it serves.
        served = service.served_url(settings.data_dir)
        if served and "CONSULT_PUBLIC_URL" not in os.environ:
            settings = dataclasses.replace(settings, public_url=served)
            if not service.running(settings.data_dir):
                print(
                    f"consult: no service is running on {settings.data_dir} now; the links"
                    f" name where it last served, {served}",
                    file=sys.stderr,
                )
    return settings


def lan_urls(settings: Settings) -> list[str]:
    """Where phones on the salon's network reach a service listening on every address."""
    if settings.public_url or settings.host not in ("0.0.0.0", "::", ""):
        return []
    scheme = "https" if settings.tls else "http"
    addresses = sorted(tls.lan_addresses(), key=lambda a: a.version)  # IPv4 first
    return [
        f"{scheme}://{a if a.version == 4 else f'[{a}]'}:{settings.port}"
        for a in addresses
        if not a.is_loopback and (a.version == 4 or settings.host == "::")
    ]


#: Libraries that log every ICE candidate pair at info (about 20 lines a join): at warning
#: unless --log-level debug, so that one event is one line.
CHATTY_LOGGERS = ("aioice", "aiortc")


def serve(settings: Settings) -> int:
    from .app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().level > logging.DEBUG:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    lock = service.ServiceLock(settings.data_dir)
    try:
        lock.acquire()
        sock = service.listen(settings)
    except service.StartRefused as exc:
        print(f"consult: {exc}", file=sys.stderr)
        return 1
    reachable = lan_urls(settings)
    if reachable:
        # Listening on every address: links must name one that phones can reach, not 0.0.0.0.
        settings = dataclasses.replace(settings, public_url=reachable[0])
    app = create_app(settings)
    staff_key = load_staff_key(settings)
    context = None
    curl = "curl"
    certificate = tls.certificate_for(settings)
    if certificate is not None:
        context = tls.server_context(certificate)
        print(
            f"HTTPS certificate {certificate.cert}\n"
            f"  SHA-256 fingerprint: {certificate.fingerprint}",
            flush=True,
        )
        if settings.tls_self_signed:
            curl = f"curl --cacert {certificate.cert}"  # trusted by nothing else

    def serving() -> None:
        # Said and written only now: a start that fails leaves server.json as it was.
        service.record_served_url(settings.data_dir, settings.base_url)
        print(f"consult is serving on {settings.base_url}", flush=True)
        for url in reachable:
            print(f"  on this network: {url}", flush=True)
        if len(reachable) > 1:
            print("  (links use the first; choose another with --public-url)", flush=True)
        print(
            f"  data folder: {settings.data_dir.resolve()}\n"
            f"  staff key:   {staff_key}\n"
            f"Create a consultation:\n"
            f"  .venv/bin/consult create --data {settings.data_dir} --customer-name 'Jane Doe'\n"
            f"  {curl} -X POST {settings.base_url}/api/consultations"
            f" -H 'Authorization: Bearer {staff_key}'"
            f' -d \'{{"customer_name": "Jane Doe"}}\'',
            flush=True,
        )

    try:
        service.run(
            app, sock, context, settings.base_url, serving,
            loop_factory=uvloop.new_event_loop if settings.event_loop == "uvloop" else None,
        )  # fmt: skip
    except KeysDiffer as exc:
        print(f"consult: refusing to serve: {exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    return 0


async def _with_store(settings: Settings) -> Store:
    return await Store.open(
        settings.db_url,
        TokenSealer(load_seal_key(settings.data_dir)),
        link_idle=settings.link_idle,
    )


async def create(settings: Settings, name: str, ref: str | None, as_json: bool) -> None:
    store = await _with_store(settings)
    try:
        consultation, links = await store.create_consultation(
            customer_name=name, customer_ref=ref, link_ttl=settings.link_ttl
        )
    finally:
        await store.close()
    result = {"id": consultation.id, **links.urls(settings.base_url)}
    if as_json:
        print(json.dumps(result))
    else:
        print(
            f"Consultation {consultation.id} for {consultation.customer_name}\n"
            f"  customer link: {result['customer_link']}\n"
            f"  stylist link:  {result['stylist_link']}\n"
            f"  links expire:  {result['links_expire_at']}"
        )


async def list_(settings: Settings, ref: str | None, as_json: bool) -> None:
    store = await _with_store(settings)
    try:
        rows = []
        for c in await store.list_consultations(ref):
            links = await store.links(c.id)
            rows.append(
                {
                    "id": c.id,
                    "customer_name": c.customer_name,
                    "customer_ref": c.customer_ref,
                    "status": c.status,
                    "created_at": c.created_at.isoformat(),
                    **links.urls(settings.base_url),
                }
            )
    finally:
        await store.close()
    if as_json:
        print(json.dumps(rows))
        return
    for row in rows:
        created = str(row["created_at"])[:16]
        print(f"{row['id']}  {row['status']:<5}  {created}  {row['customer_name']}")
        print(f"    customer: {row['customer_link'] or '(expired or revoked)'}")
        print(f"    stylist:  {row['stylist_link'] or '(expired or revoked)'}")


async def export_record(
    settings: Settings, consultation_id: str, output: Path, *, private_notes: bool = True
) -> Path:
    from .media.stills import Stills
    from .record import write_record_zip
    from .recording.files import StillFiles
    from .recording.recordings import RecordingFiles

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        print(
            f"\rExporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total} files",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )

    store = await _with_store(settings)
    try:
        consultation = await store.get_consultation(consultation_id)
        stills = Stills(store, StillFiles(settings.stills_dir))
        # Read only: the export never stages a recording.
        recordings = RecordingFiles(settings.recordings_dir, node="export")
        return await write_record_zip(
            store,
            stills,
            recordings,
            consultation,
            role="staff",
            out=output,
            progress=progress,
            private_notes=private_notes,
        )
    finally:
        await store.close()


#: Commands that open an existing data folder.
NEEDS_DATA = ("create", "list", "export", "migrate-store", "accounts")


def _bar(verb: str) -> Callable[[int, int], None]:
    shown = -1

    def progress(done: int, total: int) -> None:
        nonlocal shown
        percent = 100 * done // total if total else 100
        if percent == shown:
            return
        shown = percent
        width = 30
        filled = width * percent // 100
        print(
            f"\r{verb} [{'#' * filled}{'.' * (width - filled)}] {percent:3d}%"
            f" of {total / 1e6:,.1f} MB",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )

    return progress


def backup_or_restore(args: argparse.Namespace, settings: Settings) -> int:
    from .recording.backup import BackupError, read_archive, restore, write_archive

    try:
        secret = backup_secret(args.key_file)
        if args.command == "restore":
            summary = restore(
                args.archive, settings.data_dir, secret=secret, progress=_bar("Restoring")
            )
            done = f"Restored {args.archive} into {settings.data_dir}"
        elif args.verify:
            summary = read_archive(args.verify, secret=secret, progress=_bar("Verifying"))
            done = f"{args.verify} is complete: every SHA-256 matches"
        else:
            summary = write_archive(
                settings.data_dir,
                settings.db_url,
                args.output,
                secret=secret,
                staff_key=not args.no_staff_key,
                progress=_bar("Backing up"),
                stills_dir=settings.stills_dir,
                recordings_dir=settings.recordings_dir,
            )
            done = f"Wrote {args.output}" + (" (encrypted)" if secret else "")
    except (BackupError, ValueError, OSError) as exc:
        print(f"\nconsult: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {table}" for table, n in summary.counts.items() if n)
    print(
        f"{done}\n  made {summary.created_at}, schema {summary.schema_revision},"
        f" {summary.files} files, {summary.bytes / 1e6:,.1f} MB\n  {counts}"
    )
    for name in summary.missing:
        print(f"  missing from the data folder when backed up: stills/{name}", file=sys.stderr)
    for name in summary.missing_recordings:
        print(f"  missing when backed up: recordings/{name}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"consult: {exc}", file=sys.stderr)
        return 2
    backs_up = args.command == "backup" and not args.verify
    if (args.command in NEEDS_DATA or backs_up) and not settings.data_dir.is_dir():
        # Never a new, empty folder for a typo: only the service makes one.
        print(
            f"consult: there is no data folder {settings.data_dir} (consult serve makes it;"
            " give the one it uses with --data)",
            file=sys.stderr,
        )
        return 2
    if args.command == "serve":
        return serve(settings)
    elif args.command == "create":
        asyncio.run(create(settings, args.customer_name, args.customer_ref, args.json))
    elif args.command == "list":
        asyncio.run(list_(settings, args.customer_ref, args.json))
    elif args.command == "export":
        output = args.output or Path(f"consultation-{args.id}.zip")
        try:
            written = asyncio.run(
                export_record(settings, args.id, output, private_notes=not args.without_notes)
            )
        except ConsultError as exc:
            print(f"consult: {exc.message}", file=sys.stderr)
            return 1
        print(written)
    elif args.command in ("backup", "restore"):
        return backup_or_restore(args, settings)
    elif args.command == "migrate-store":
        return migrate_store(settings, args.to)
    elif args.command == "accounts":
        return accounts_command(args, settings)
    return 0


def migrate_store(settings: Settings, target_url: str) -> int:
    from .recording.migrate import MigrationError, migrate

    if service.running(settings.data_dir):
        # Writes made during the copy would be left behind.
        print(f"consult: stop the service on {settings.data_dir} first", file=sys.stderr)
        return 1

    def copied(table: str, rows: int) -> None:
        print(f"  {table}: {rows} rows", file=sys.stderr, flush=True)

    try:
        summary = asyncio.run(
            migrate(settings.db_url, target_url, settings.stills_dir, progress=copied)
        )
    except (MigrationError, ConsultError, sa.exc.SQLAlchemyError, OSError) as exc:
        print(f"consult: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {table}" for table, n in summary.counts.items() if n)
    print(
        f"Copied {settings.db_url} to {redact_url(target_url)}\n  {counts}\n"
        f"  every table matches by count and SHA-256; {summary.stills_checked} still files"
        " match their SHA-256"
    )
    for name in summary.missing:
        print(f"  missing from the stills folder: {name}", file=sys.stderr)
    print(
        f"Serve from it: CONSULT_DATABASE_URL={redact_url(target_url)}"
        f" consult serve --data {settings.data_dir}"
    )
    return 0


def redact_url(url: str) -> str:
    """The URL without its password, for printing."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)
