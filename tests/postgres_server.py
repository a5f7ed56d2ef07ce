"""A throwaway PostgreSQL cluster: Debian's server binaries, a cluster in a temporary folder,
reached on a Unix socket only (nothing listens on the network). No pytest and no `consult`
here: the tests' fixtures (tests/postgres.py) and the benchmarks under scripts/ both start
their servers with it.

Run as root, the server runs as the ``postgres`` user (PostgreSQL refuses root); its folder
belongs to that user.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["BIN", "Postgres", "running_postgres"]


def _bin() -> Path:
    """Debian's server binaries (scripts/test installs them): the newest version there."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


BIN = _bin()
#: Not durable, and fast: a throwaway cluster.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class Postgres:
    """One PostgreSQL cluster in its own folder; ``stop()`` and ``start()`` model an outage."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="consult-pg-"))
        self.data = self.folder / "data"
        self._names = itertools.count(1)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(BIN / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip

    def _run(self, *command: object) -> None:
        args = [str(a) for a in command]
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--", *args]
        subprocess.run(args, check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        options = f"-c listen_addresses='' -k {self.folder} {FAST}"
        self._run(BIN / "pg_ctl", "start", "-w", "-D", self.data, "-l",
                  self.folder / "server.log", "-o", options)  # fmt: skip

    def stop(self) -> None:
        self._run(BIN / "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@/{database}?host={self.folder}"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self._run(BIN / "createdb", "-h", self.folder, "-U", "postgres", name)
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A new cluster, started; stopped and removed at the end."""
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.close()
