"""Backups: one archive of everything a service needs, taken while it serves, and its restore.

An archive is a tar stream (stills are PNG and JPEG already: nothing to gain by compressing)::

    consult-backup.json        first: format, schema revision, database kind, when
    database/consult.db        the database, a consistent snapshot (SQLite's online backup API)
    keys/link-seal.key ...     the data folder's keys (the staff key unless left out)
    stills/<id>/<still>...     every file a still (or attachment) row of the snapshot names
    recordings/<id>/<rec>...   every finished recording of the snapshot (format 2 on)
    manifest.json              last: counts, schema revision, and size and SHA-256 of every file

followed by a trailer line ``consult-backup sha256 <hex>\\n`` over every byte before it, so a
flipped byte anywhere (tar padding included) is found. Encrypted archives wrap all of it
(consult/recording/encryption.py).

Consistency without stopping the service: the snapshot is one step of SQLite's backup API,
i.e. one read transaction; under WAL, writers go on meanwhile. Still files are placed (fsynced,
renamed) before their row is inserted and never change afterwards (consult/recording/files.py),
so every file a row of the snapshot names is complete on disk, and files of later rows or
half-received uploads (``.staging``) are simply not in the archive. Recordings likewise: a
finished one's file is placed before its row is completed (consult/recording/recordings.py),
and one being written when the snapshot was taken is left out, its row dropped at restore (no
restored service could finish it: its staged file is another node's, and not in the archive).

The database part is a ``DatabaseSnapshot``: SQLite now; PostgreSQL slots in as a second one
(``pg_dump`` in a repeatable-read transaction, with the still rows read from the same exported
snapshot), restored by ``pg_restore`` instead of a file copy.

Synchronous, file I/O all through: the CLI runs it in a process of its own, as does `serve`
for scheduled backups (consult/recording/schedule.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Protocol

import sqlalchemy as sa

from .encryption import DecryptingReader, DecryptionError, EncryptingWriter, is_encrypted
from .files import fsync_dir
from .schema import metadata
from .store import schema_revisions, upgrade_schema

__all__ = [
    "BackupError",
    "Progress",
    "Summary",
    "read_archive",
    "restore",
    "write_archive",
]

#: The archive format; a reader refuses a newer one. 2: recordings are in it (a reader of 1
#: would refuse their files as unexpected; it says "upgrade" instead).
FORMAT = 2
HEADER = "consult-backup.json"
MANIFEST = "manifest.json"
DATABASE = "database/consult.db"
#: The keys of the data folder, in the archive under ``keys/``.
KEYS = ("link-seal.key", "session.key", "staff.key")
STAFF_KEY = "staff.key"
TRAILER = b"consult-backup sha256 "
TRAILER_SIZE = len(TRAILER) + 64 + 1
COPY = 1 << 20
SYNC_EVERY = 32 << 20

#: Called with bytes done and bytes in all.
Progress = Callable[[int, int], None]


class BackupError(Exception):
    """A backup that cannot be made, or an archive that cannot be restored: ``str()`` says why."""


@dataclass(frozen=True)
class Summary:
    """What an archive holds (its manifest)."""

    path: Path
    schema_revision: str
    counts: dict[str, int]
    files: int
    bytes: int
    encrypted: bool
    created_at: str
    missing: list[str] = field(default_factory=list)
    #: Finished recordings whose file was not in the recordings folder (another node's own).
    missing_recordings: list[str] = field(default_factory=list)


# the database


class DatabaseSnapshot(Protocol):
    """One consistent view of the database: copied into the archive, and read for its rows."""

    kind: str

    def take(self, dest: Path) -> None: ...

    def schema_revision(self, copy: Path) -> str: ...

    def counts(self, copy: Path) -> dict[str, int]: ...

    def still_files(self, copy: Path) -> list[str]: ...

    def recording_files(self, copy: Path) -> list[str]: ...


class SqliteSnapshot:
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def take(self, dest: Path) -> None:
        if not self.path.exists():
            raise BackupError(f"no database at {self.path}")
        source = sqlite3.connect(self.path, timeout=30)
        target = sqlite3.connect(dest)
        try:
            # One step (pages=-1): one read transaction, so the copy is of one moment and, under
            # WAL, never holds up a writer. Several small steps would restart on every write.
            source.backup(target)
            # A file that stands alone: no -wal beside it in the archive.
            target.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            raise BackupError(f"could not copy the database: {exc}") from exc
        finally:
            target.close()
            source.close()

    def schema_revision(self, copy: Path) -> str:
        with contextlib.closing(sqlite3.connect(copy)) as db:
            try:
                row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.Error:
                row = None
        if row is None:
            raise BackupError("the database has no schema version (alembic_version)")
        return str(row[0])

    def counts(self, copy: Path) -> dict[str, int]:
        with contextlib.closing(sqlite3.connect(copy)) as db:
            present = {
                r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            return {
                t.name: int(db.execute(f'SELECT count(*) FROM "{t.name}"').fetchone()[0])
                for t in metadata.sorted_tables
                if t.name in present
            }

    def still_files(self, copy: Path) -> list[str]:
        with contextlib.closing(sqlite3.connect(copy)) as db:
            rows = db.execute("SELECT file, thumb FROM stills ORDER BY created_at, id").fetchall()
            # Attachments (voice, video, files) are kept beside the stills: the same folder.
            # A database from before them (restoring an older backup) has no such table.
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'attachments'").fetchone():
                rows += db.execute(
                    "SELECT file FROM attachments ORDER BY created_at, id"
                ).fetchall()
        return [name for row in rows for name in row]

    def recording_files(self, copy: Path) -> list[str]:
        """The finished recordings' files (a database from before recordings has none)."""
        with contextlib.closing(sqlite3.connect(copy)) as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'recordings'").fetchone():
                return []
            rows = db.execute(
                "SELECT file FROM recordings WHERE status = 'complete' ORDER BY started_at, id"
            ).fetchall()
        return [row[0] for row in rows]


def database_snapshot(url: str) -> DatabaseSnapshot:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return SqliteSnapshot(Path(str(parsed.database)))
    raise BackupError(
        f"backups of a {parsed.get_backend_name()} database are not supported yet (SQLite only)"
    )


# writing


class _Sink:
    """The plaintext archive's bytes on their way out: hashed for the trailer, counted."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self._out.write(data)
        return len(data)


class _Paced:
    """The archive file, written back to disk every SYNC_EVERY bytes.

    Otherwise gigabytes of stills pile up in the page cache as dirty pages, and the kernel's
    writeback of them stalls the service's own fsyncs (every chat message and still is
    fsynced) for seconds: the pause a backup causes is I/O, not locks.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._unsynced = 0

    def write(self, data: bytes) -> int:
        written = self._raw.write(data)
        self._unsynced += len(data)
        if self._unsynced >= SYNC_EVERY:
            self._raw.flush()
            os.fdatasync(self._raw.fileno())
            _forget(self._raw.fileno())
            self._unsynced = 0
        return written


def _forget(fd: int) -> None:
    """Drop a file's pages from the cache: a backup reads and writes everything once, and
    should not push out what the service reads (recent stills, the database)."""
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


class _HashingReader:
    def __init__(self, f: BinaryIO, progress: Callable[[int], None]) -> None:
        self._f = f
        self._progress = progress
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self.hash.update(data)
        self._progress(len(data))
        return data


def write_archive(
    data_dir: Path,
    database_url: str,
    out: Path,
    *,
    secret: bytes | None = None,
    staff_key: bool = True,
    progress: Progress | None = None,
    stills_dir: Path | None = None,
    recordings_dir: Path | None = None,
) -> Summary:
    """Write an archive of the service in ``data_dir`` (stills in ``stills_dir``, default
    ``data_dir/stills``; recordings in ``recordings_dir``, default ``data_dir/recordings``) to
    ``out``.

    Written under a temporary name beside ``out`` (``.NAME.PID.partial``) and renamed at the
    end: an interrupted backup never leaves a file that looks complete. A failure (a full disk)
    removes what it wrote and raises BackupError.
    """
    snapshot = database_snapshot(database_url)
    out = out.absolute()
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    copy = out.with_name(f".{out.name}.{os.getpid()}.db.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        snapshot.take(copy)
        folders = {
            "stills": stills_dir or data_dir / "stills",
            "recordings": recordings_dir or data_dir / "recordings",
        }
        summary = _write(
            snapshot, copy, data_dir, folders, out, partial, secret, staff_key, progress
        )
        os.replace(partial, out)
        fsync_dir(out.parent)
        return summary
    except OSError as exc:
        raise BackupError(f"could not write {out}: {exc.strerror or exc}") from exc
    finally:
        copy.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def _write(
    snapshot: DatabaseSnapshot,
    copy: Path,
    data_dir: Path,
    folders: dict[str, Path],
    out: Path,
    partial: Path,
    secret: bytes | None,
    staff_key: bool,
    progress: Progress | None,
) -> Summary:
    revision = snapshot.schema_revision(copy)
    members: list[tuple[str, Path]] = [(DATABASE, copy)]
    members += [
        (f"keys/{name}", data_dir / name)
        for name in KEYS
        if (staff_key or name != STAFF_KEY) and (data_dir / name).is_file()
    ]
    missing: dict[str, list[str]] = {"stills": [], "recordings": []}
    named = {"stills": snapshot.still_files(copy), "recordings": snapshot.recording_files(copy)}
    for folder, names in named.items():
        for name in names:
            path = folders[folder] / name
            if _safe_name(name) and path.is_file():
                members.append((f"{folder}/{name}", path))
            else:
                missing[folder].append(name)
    sizes = [path.stat().st_size for _name, path in members]
    total, done = sum(sizes), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None and n:
            progress(done, total)

    created_at = datetime.now(UTC).isoformat()
    header = {
        "format": FORMAT,
        "created_at": created_at,
        "database": snapshot.kind,
        "schema_revision": revision,
    }
    files: dict[str, dict[str, Any]] = {}
    with partial.open("xb") as raw:
        paced = _Paced(raw)
        encrypter = EncryptingWriter(paced, secret) if secret is not None else None  # type: ignore[arg-type]
        sink = _Sink(encrypter if encrypter is not None else paced)  # type: ignore[arg-type]
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, bufsize=COPY) as tar:  # type: ignore[call-overload]
            tar.copybufsize = COPY
            _add_bytes(tar, HEADER, json.dumps(header, indent=1).encode())
            for (name, path), size in zip(members, sizes, strict=True):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = size, int(time.time())
                info.mode = 0o600 if name.startswith("keys/") else 0o644
                with path.open("rb") as f:
                    reader = _HashingReader(f, advance)
                    tar.addfile(info, reader)
                    _forget(f.fileno())
                files[name] = {"bytes": size, "sha256": reader.hash.hexdigest()}
            manifest = {
                **header,
                "counts": snapshot.counts(copy),
                "missing_stills": missing["stills"],
                "missing_recordings": missing["recordings"],
                "files": files,
            }
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
        sink.write(TRAILER + sink.hash.hexdigest().encode() + b"\n")
        if encrypter is not None:
            encrypter.close()
        raw.flush()
        os.fsync(raw.fileno())
    return _summary(out, manifest, encrypted=secret is not None)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def _summary(path: Path, manifest: dict[str, Any], encrypted: bool) -> Summary:
    files = manifest["files"]
    return Summary(
        path=path,
        schema_revision=manifest["schema_revision"],
        counts=dict(manifest["counts"]),
        files=len(files),
        bytes=sum(int(f["bytes"]) for f in files.values()),
        encrypted=encrypted,
        created_at=manifest["created_at"],
        missing=list(manifest["missing_stills"]),
        missing_recordings=list(manifest.get("missing_recordings", [])),
    )


# reading


class _HoldBack:
    """Gives every byte of ``raw`` but the last TRAILER_SIZE (the trailer), hashing them."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._buffer = bytearray()
        self._start = 0
        self._eof = False
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        want = COPY if size < 0 else size
        while not self._eof and len(self._buffer) - self._start < want + TRAILER_SIZE:
            data = self._raw.read(COPY)
            if not data:
                self._eof = True
                break
            # Compact only when refilling: once per COPY bytes, not once per read.
            del self._buffer[: self._start]
            self._start = 0
            self._buffer += data
        n = max(0, min(want, len(self._buffer) - self._start - TRAILER_SIZE))
        out = bytes(self._buffer[self._start : self._start + n])
        self._start += n
        self.hash.update(out)
        return out

    def trailer(self) -> bytes:
        while self.read(COPY):
            pass
        return bytes(self._buffer[self._start :])


def read_archive(
    archive: Path,
    *,
    secret: bytes | None = None,
    extract_to: Path | None = None,
    check_header: Callable[[dict[str, Any]], None] | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Read the whole archive and check every file's SHA-256 against the manifest and the
    trailer against everything: BackupError if anything differs. ``extract_to``: write the
    files there as a data folder. ``check_header``: called with the first member (raise to
    stop before reading the rest)."""
    try:
        total = archive.stat().st_size
        with archive.open("rb") as raw:
            return _read(raw, total, archive, secret, extract_to, check_header, progress)
    except DecryptionError as exc:
        raise BackupError(f"{archive}: {exc}") from None
    except (tarfile.TarError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise BackupError(f"{archive} is damaged ({exc})") from None
    except OSError as exc:
        raise BackupError(f"{archive}: {exc.strerror or exc}") from None


def _read(
    raw: BinaryIO,
    total: int,
    archive: Path,
    secret: bytes | None,
    extract_to: Path | None,
    check_header: Callable[[dict[str, Any]], None] | None,
    progress: Progress | None,
) -> Summary:
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None and n:
            progress(min(done, total), total)

    encrypted = is_encrypted(raw.read(64))
    raw.seek(0)
    if encrypted and secret is None:
        raise BackupError(
            f"{archive} is encrypted: give its passphrase or key file (--key-file FILE or"
            " CONSULT_BACKUP_PASSPHRASE)"
        )
    counted = _Counted(raw, advance)
    plain: Any = DecryptingReader(counted, secret) if encrypted and secret else counted  # type: ignore[arg-type]
    body = _HoldBack(plain)
    hashes: dict[str, dict[str, Any]] = {}
    header: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    with tarfile.open(fileobj=body, mode="r|", bufsize=COPY) as tar:  # type: ignore[call-overload]
        for member in tar:
            if manifest is not None:
                raise BackupError(f"{archive} is damaged (a file after the manifest)")
            if not member.isreg():
                raise BackupError(f"{archive} is damaged (not a file: {member.name})")
            f = tar.extractfile(member)
            assert f is not None
            if header is None:
                if member.name != HEADER:
                    raise BackupError(f"{archive} is not a consult backup")
                header = json.loads(f.read(1 << 20))
                if int(header["format"]) > FORMAT:
                    raise BackupError(
                        f"{archive} was written by a newer consult (archive format"
                        f" {header['format']}); upgrade consult to read it"
                    )
                if check_header is not None:
                    check_header(header)
                continue
            if member.name == MANIFEST:
                manifest = json.loads(f.read())
                continue
            target = _destination(extract_to, member.name) if extract_to is not None else None
            hashes[member.name] = _copy(f, target, member.size)
    trailer = body.trailer()
    if header is None or manifest is None:
        raise BackupError(f"{archive} is damaged or cut short (no manifest)")
    expected = TRAILER + body.hash.hexdigest().encode() + b"\n"
    for name, recorded in manifest["files"].items():
        if hashes.get(name) != {"bytes": recorded["bytes"], "sha256": recorded["sha256"]}:
            raise BackupError(f"{archive} is damaged: {name} does not match its SHA-256")
    if set(hashes) != set(manifest["files"]) or DATABASE not in hashes:
        raise BackupError(f"{archive} is damaged: its files differ from its manifest")
    if trailer != expected:
        raise BackupError(f"{archive} is damaged (its checksum does not match)")
    return _summary(archive, manifest, encrypted=encrypted)


class _Counted:
    def __init__(self, raw: BinaryIO, progress: Callable[[int], None]) -> None:
        self._raw = raw
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._progress(len(data))
        return data


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and bool(path.parts)


def _destination(root: Path, name: str) -> Path:
    """Where a member goes in the data folder; refuses any name outside the layout."""
    path = PurePosixPath(name)
    if not _safe_name(name):
        raise BackupError(f"refusing a file outside the data folder: {name}")
    if name == DATABASE:
        return root / "consult.db"
    if path.parts[0] == "keys" and len(path.parts) == 2 and path.name in KEYS:
        return root / path.name
    if (
        path.parts[0] in ("stills", "recordings")
        and len(path.parts) == 3
        and not path.parts[1].startswith(".")
    ):
        return root.joinpath(*path.parts)
    raise BackupError(f"refusing an unexpected file in the archive: {name}")


def _copy(f: IO[bytes], target: Path | None, size: int) -> dict[str, Any]:
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        out = None
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            out = stack.enter_context(os.fdopen(fd, "wb"))
        while chunk := f.read(COPY):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    return {"bytes": size, "sha256": digest.hexdigest()}


# restoring


def restore(
    archive: Path,
    data_dir: Path,
    *,
    secret: bytes | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Restore ``archive`` as the data folder ``data_dir`` (absent or empty), upgrading its
    schema if it is older than this code's. Everything is written to a folder beside it and
    renamed into place once every file matched its SHA-256 and the schema is upgraded: a
    refused or interrupted restore leaves the target as it was."""
    data_dir = data_dir.absolute()
    _check_empty(data_dir)
    known = schema_revisions()

    def check(header: dict[str, Any]) -> None:
        if header.get("database") != "sqlite":
            raise BackupError(f"{archive} holds a {header.get('database')} database (SQLite only)")
        if header["schema_revision"] not in known:
            raise BackupError(
                f"{archive} was made by a newer consult (schema {header['schema_revision']};"
                f" this one knows up to {known[-1]}): upgrade consult first"
            )

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = data_dir.with_name(f".{data_dir.name}.restoring.{os.getpid()}")
    try:
        staging.mkdir(mode=0o700)
        summary = read_archive(
            archive, secret=secret, extract_to=staging, check_header=check, progress=progress
        )
        (staging / "stills").mkdir(exist_ok=True)
        _drop_unfinished_recordings(staging / "consult.db")
        if summary.schema_revision != known[-1]:
            engine = sa.create_engine(f"sqlite:///{staging / 'consult.db'}")
            try:
                with engine.begin() as conn:
                    upgrade_schema(conn)
            finally:
                engine.dispose()
        for folder in _folders(staging):
            fsync_dir(folder)
        _check_empty(data_dir)
        if data_dir.exists():
            data_dir.rmdir()  # empty: checked just above
        os.rename(staging, data_dir)
        fsync_dir(data_dir.parent)
        return summary
    except OSError as exc:
        raise BackupError(f"could not restore into {data_dir}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _drop_unfinished_recordings(database: Path) -> None:
    """The rows of recordings being written when the backup was taken: their files are not in
    the archive, and a restored service would keep them as unfinished for ever."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'recordings'").fetchone():
            with db:
                db.execute("DELETE FROM recordings WHERE status != 'complete'")


def _check_empty(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore into a new or empty folder")


def _folders(root: Path) -> Iterator[Path]:
    yield root
    yield from (p for p in root.rglob("*") if p.is_dir())
