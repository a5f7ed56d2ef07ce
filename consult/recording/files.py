"""Still files on disk: written atomically, never half there.

Layout under the stills folder (``DATA/stills`` by default)::

    <consultation id>/<still id>.png|.jpg     the original, byte for byte
    <consultation id>/<still id>.thumb.jpg    its thumbnail
    .staging/                                 uploads being received

A file is written to ``.staging``, flushed and fsynced, then renamed into place and its folder
fsynced; only then does the store get its row. A crash leaves at most a staged file (removed at
the next start) or a placed file without a row (an upload never acknowledged, also removed).
Synchronous: call from an executor.

A folder ``shared`` by several nodes (``CONSULT_STILLS_DIR`` on a network mount) may hold
another node's upload between its write and its row when a node starts: there the sweep
removes only what is older than ``SHARED_GRACE``, far longer than any upload takes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from pathlib import Path
from typing import BinaryIO

__all__ = ["StillFiles", "fsync_dir"]

logger = logging.getLogger(__name__)


#: Seconds a file in a shared stills folder is left alone by the sweep.
SHARED_GRACE = 3600.0


class StillFiles:
    def __init__(self, root: Path, shared: bool = False) -> None:
        self.root = root.resolve()
        self.staging = self.root / ".staging"
        self.shared = shared

    def prepare(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)

    def stage(self) -> tuple[Path, BinaryIO]:
        """A new staged file, open for writing."""
        path = self.staging / f"{secrets.token_hex(8)}.part"
        return path, path.open("xb")

    def place(self, staged: Path, consultation_id: str, name: str) -> str:
        """Move a complete staged file into place; returns its path inside the root."""
        with staged.open("rb+") as f:
            os.fsync(f.fileno())
        folder = self.root / consultation_id
        if folder.resolve().parent != self.root or "/" in name:
            # Ids come from the store; anything else must never reach outside the folder.
            raise ValueError(f"not a consultation's folder: {consultation_id!r}")
        folder.mkdir(exist_ok=True)
        os.replace(staged, folder / name)
        fsync_dir(folder)
        return f"{consultation_id}/{name}"

    def write(self, consultation_id: str, name: str, data: bytes) -> str:
        path, f = self.stage()
        try:
            with f:
                f.write(data)
            return self.place(path, consultation_id, name)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def path(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if self.root not in path.parents:
            raise ValueError(f"outside the stills folder: {relative}")
        return path

    def remove(self, relative: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.path(relative).unlink(missing_ok=True)

    def sweep(self, known: set[str]) -> int:
        """At start-up: remove staged files and placed files no row points to."""
        removed = 0
        settled = time.time() - SHARED_GRACE if self.shared else None
        for staged in self.staging.glob("*"):
            if _settled(staged, settled):
                staged.unlink(missing_ok=True)
                removed += 1
        for folder in self.root.iterdir():
            if not folder.is_dir() or folder == self.staging:
                continue
            for file in folder.iterdir():
                if f"{folder.name}/{file.name}" not in known and _settled(file, settled):
                    logger.warning("removing %s: no still refers to it", file)
                    file.unlink(missing_ok=True)
                    removed += 1
        return removed


def _settled(path: Path, before: float | None) -> bool:
    """Whether ``path`` was last written before ``before`` (None: anything is)."""
    if before is None:
        return True
    try:
        return path.stat().st_mtime < before
    except FileNotFoundError:
        return False


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
