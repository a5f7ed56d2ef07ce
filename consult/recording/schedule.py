"""Scheduled backups: ``consult serve --backup-dir DIR --backup-every 24h --backup-keep 14``.

Every node polls; the one that takes the ``backup`` lease (a leased job:
consult/recording/leased_job.py) when a backup is due runs ``consult backup`` in a child
process (niced) while it goes on serving. Archives are named by the time they were made
(``consult-20261129T031500Z.backup``: sorting by name sorts by time); after each success all
but the newest ``keep`` of them are removed. A failure (a full disk, a missing folder) is
logged and shown, and tried again after ``RETRY`` (or the interval, if shorter); it never
touches the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .leased_job import LeasedJob
from .store import Store

__all__ = ["BackupSchedule", "BackupStatus", "archive_name", "to_remove"]

logger = logging.getLogger(__name__)

LEASE = "backup"
#: The lease outlives a holder that died by this much; a live holder renews it every third.
LEASE_TTL = timedelta(minutes=5)
RETRY = timedelta(minutes=15)
POLL = timedelta(seconds=30)
#: The backup process's nice value: the calls on the same cores come first.
PRIORITY = 10
#: A temporary file untouched this long is left over from a backup that was killed.
STALE = timedelta(hours=1)
ARCHIVE = re.compile(r"^consult-\d{8}T\d{6}Z\.backup$")


def archive_name(at: datetime) -> str:
    return f"consult-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}.backup"


def to_remove(names: Iterable[str], keep: int) -> list[str]:
    """Archives beyond the newest ``keep``; other files are never touched."""
    archives = sorted(n for n in names if ARCHIVE.match(n))
    return archives[: max(0, len(archives) - keep)]


@dataclass
class BackupStatus:
    """What the dashboard and /metrics show: this node's last success and last failure."""

    running: bool = False
    last_success_at: datetime | None = None
    last_success_file: str | None = None
    last_success_bytes: int | None = None
    last_failure_at: datetime | None = None
    last_failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "last_success_at": _iso(self.last_success_at),
            "last_success_file": self.last_success_file,
            "last_success_bytes": self.last_success_bytes,
            "last_failure_at": _iso(self.last_failure_at),
            "last_failure": self.last_failure,
        }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


class BackupSchedule:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        database_url: str,
        folder: Path,
        every: timedelta,
        keep: int,
        key_file: Path | None,
        staff_key: bool = True,
    ) -> None:
        self._store = store
        self._data_dir = data_dir
        self._database_url = database_url
        self.folder = folder
        self.every = every
        self.keep = keep
        self._key_file = key_file
        self._staff_key = staff_key
        self._job = LeasedJob(
            store.leases, LEASE, self._make, every=every, ttl=LEASE_TTL, poll=min(POLL, every / 3)
        )
        self._retry_at: datetime | None = None
        self.status = BackupStatus()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sweep_partial()
        newest = sorted(n.name for n in self.folder.iterdir() if ARCHIVE.match(n.name))
        if newest:
            # After a restart the folder says when the last backup was made.
            path = self.folder / newest[-1]
            self.status.last_success_file = path.name
            self.status.last_success_bytes = path.stat().st_size
            self.status.last_success_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        self._job.start()

    async def close(self) -> None:
        await self._job.close()

    async def run_due(self) -> Path | None:
        """Make a backup if one is due and no other node is making it; the archive, or None."""
        return await self._job.run_due()

    async def _make(self, now: datetime) -> Path | None:
        if self._retry_at is not None and now < self._retry_at:
            return None  # not done: due again once the failure's delay has passed
        self.status.running = True
        started = time.monotonic()
        out = self.folder / archive_name(now)
        try:
            error = await self._backup(out)
        finally:
            self.status.running = False
        if error is not None:
            self._failed(error)
            return None
        self._succeeded(out, datetime.now(UTC), time.monotonic() - started)
        return out

    async def _backup(self, out: Path) -> str | None:
        """``consult backup`` in a process of its own, at a lower priority: the service's
        event loop never shares its interpreter (or GIL) with gigabytes of hashing and copying.
        None, or why it failed."""
        command = [sys.executable, "-m", "consult", "backup", "-o", str(out),
                   "--data", str(self._data_dir)]  # fmt: skip
        if self._key_file is not None:
            command += ["--key-file", str(self._key_file)]
        if not self._staff_key:
            command.append("--no-staff-key")
        env = {**os.environ, "CONSULT_DATABASE_URL": self._database_url}
        proc = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, PRIORITY)
        try:
            _out, err = await proc.communicate()
        except asyncio.CancelledError:
            # SIGINT: the backup removes its temporary files on the way out.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
            raise
        if proc.returncode == 0:
            return None
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        return reason.removeprefix("consult: ")

    def _succeeded(self, out: Path, at: datetime, seconds: float) -> None:
        size = out.stat().st_size
        self._retry_at = None
        self.status.last_success_at = at
        self.status.last_success_file = out.name
        self.status.last_success_bytes = size
        logger.info("backup %s: %d bytes in %.1f s", out, size, seconds)
        for name in to_remove((p.name for p in self.folder.iterdir()), self.keep):
            logger.info("backup: removing %s (keeping the newest %d)", name, self.keep)
            (self.folder / name).unlink(missing_ok=True)

    def _failed(self, message: str) -> None:
        self._retry_at = datetime.now(UTC) + min(RETRY, self.every)
        self.status.last_failure_at = datetime.now(UTC)
        self.status.last_failure = message
        logger.error("scheduled backup failed: %s", message)

    def _sweep_partial(self) -> None:
        cutoff = time.time() - STALE.total_seconds()
        for path in self.folder.glob(".consult-*.partial"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
