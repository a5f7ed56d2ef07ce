"""`consult serve` as its own process, as a salon runs it: for tests of signals and crashes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import aiohttp
import pytest


def start_serve(
    data: Path,
    port: int,
    stills_disk: str | None = None,
    extra: Sequence[str] = (),
    lan_address: str | None = None,
    backup_disk: tuple[Path, str] | None = None,
    environment: Mapping[str, str] | None = None,
    recordings_disk: str | None = None,
    workers: int | None = 1,
) -> subprocess.Popen[str]:
    """``stills_disk`` (e.g. "3m"): the stills folder is a tmpfs of that size, in a mount
    namespace of the server's own, so a test can fill the disk. ``extra``: more flags.
    ``lan_address``: the server runs in a network namespace of its own whose only address
    besides loopback is this one, as on a salon's Wi-Fi (the test cannot reach it there).
    ``backup_disk`` (folder, size): that folder is a tmpfs of that size, as ``stills_disk``.
    ``environment``: ``CONSULT_*`` settings for it (none are taken from the test's own).
    ``recordings_disk``: the recordings folder is a tmpfs of that size, as ``stills_disk``.
    ``workers``: ``--workers``, one process by default; None: the service's own default (a
    worker per core)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env |= environment or {}
    command = [sys.executable, "-m", "consult", "serve", "--port", str(port), "--data", str(data),
               "--media-address", "127.0.0.1", *extra]  # fmt: skip
    command += [] if workers is None else ["--workers", str(workers)]
    disks = [(data / "stills", stills_disk)] if stills_disk else []
    disks += [backup_disk] if backup_disk else []
    disks += [(data / "recordings", recordings_disk)] if recordings_disk else []
    if disks:
        for folder, _size in disks:
            folder.mkdir(parents=True, exist_ok=True)
        mount = "".join(
            f'mount -t tmpfs -o size={size} tmpfs "{folder}" && ' for folder, size in disks
        )
        command = ["unshare", "-m", "sh", "-c", mount + 'exec "$@"', "_", *command]
    if lan_address:
        network = f'ip link set lo up && ip addr add {lan_address}/32 dev lo && exec "$@"'
        command = ["unshare", "-n", "sh", "-c", network, "_", *command]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port = free_port()
    proc = start_serve(tmp_path / "data", port)
    try:
        yield proc, port, tmp_path / "data"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


class Output:
    """A server's output read as it comes (by a thread: a full pipe would stop the server)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """The first line holding ``text``, once it is there."""

        def wait() -> str | None:
            with self._changed:
                found = self._changed.wait_for(
                    lambda: next((line for line in self.lines if text in line), None),
                    timeout,
                )
                return found

        found = await asyncio.to_thread(wait)
        if found is None:
            raise AssertionError(f"{text!r} never came; the output:\n{self.text}")
        return found


async def wait_healthy(port: int, seconds: float = 20) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(int(seconds * 10)):
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200 and await r.json() == {"status": "ok"}:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server never became healthy")
