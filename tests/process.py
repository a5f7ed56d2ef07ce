"""`consult serve` as its own process, as a salon runs it: for tests of signals and crashes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
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
) -> subprocess.Popen[str]:
    """``stills_disk`` (e.g. "3m"): the stills folder is a tmpfs of that size, in a mount
    namespace of the server's own, so a test can fill the disk. ``extra``: more flags.
    ``lan_address``: the server runs in a network namespace of its own whose only address
    besides loopback is this one, as on a salon's Wi-Fi (the test cannot reach it there).
    ``backup_disk`` (folder, size): that folder is a tmpfs of that size, as ``stills_disk``.
    ``environment``: ``CONSULT_*`` settings for it (none are taken from the test's own).
    ``recordings_disk``: the recordings folder is a tmpfs of that size, as ``stills_disk``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    env |= environment or {}
    command = [sys.executable, "-m", "consult", "serve", "--port", str(port), "--data", str(data),
               "--media-address", "127.0.0.1", *extra]  # fmt: skip
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
