"""Secrets kept in the data folder: made once, private to the service's user, never rewritten."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["read_or_create"]


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret in ``path``; if there is none yet, ``make()`` one and keep it (mode 0600)."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = make()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        # link() fails if another process made the file first: everybody ends up with its secret.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()
