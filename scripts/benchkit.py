"""What the benchmarks share: a real `consult serve` on loopback, a consultation, CPU readings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
STAFF_KEY = "bench-staff-key-0123456789abcdef"


@dataclass
class Served:
    base: str
    port: int
    pid: int
    http: aiohttp.ClientSession
    data: Path

    @property
    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {STAFF_KEY}"}

    async def consultation(self) -> dict[str, Any]:
        async with self.http.post(
            "/api/consultations", json={"customer_name": "Bench"}, headers=self.staff
        ) as r:
            result: dict[str, Any] = await r.json()
            return result

    def ws_url(self, link: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={link.rsplit('/', 1)[1]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """A process's CPU time (user + system), or one of its threads' (``tid``)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (a supervisor and its workers: `consult serve --workers`)."""
    found = [pid]
    for member in found:
        with contextlib.suppress(OSError):
            found += [
                int(c) for c in Path(f"/proc/{member}/task/{member}/children").read_text().split()
            ]
    return found


def family_cpu_seconds(pid: int) -> dict[int, float]:
    """The CPU time of ``pid`` and of each of its descendants, by process id."""
    times = {}
    for member in family(pid):
        with contextlib.suppress(OSError):
            times[member] = cpu_seconds(member)
    return times


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def cpu_limited(pid: int, cores: float) -> Iterator[None]:
    """Process ``pid`` in a cgroup of its own with a CPU quota of ``cores`` (v2 or v1's cpu
    controller; needs root), removed afterwards."""
    period = 100_000
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    folder = Path("/sys/fs/cgroup" if v2 else "/sys/fs/cgroup/cpu") / f"consult-bench-{pid}"
    folder.mkdir()
    try:
        if v2:
            (folder / "cpu.max").write_text(f"{int(cores * period)} {period}")
        else:
            (folder / "cpu.cfs_period_us").write_text(str(period))
            (folder / "cpu.cfs_quota_us").write_text(str(int(cores * period)))
        (folder / "cgroup.procs").write_text(str(pid))
        yield
    finally:
        for _ in range(50):  # empty once the process has exited
            try:
                folder.rmdir()
                break
            except OSError:
                time.sleep(0.1)


@asynccontextmanager
async def serve(
    env: Mapping[str, str] | None = None,
    cpus: str | None = None,
    data_dir: Path | None = None,
    args: Sequence[str] = (),
    cpu_quota: float | None = None,
    workers: int = 1,
) -> AsyncIterator[Served]:
    """`consult serve` in its own process (so its CPU can be measured), on loopback; with
    ``cpus`` (e.g. "0"), pinned to those cores; with ``cpu_quota``, in a cgroup that lets it
    use that many cores' time (a container's CPU limit); on ``data_dir`` (default: a new
    temporary folder), with more flags ``args``; ``workers``: `consult serve --workers`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        data = str(data_dir or stack.enter_context(tempfile.TemporaryDirectory()))
        pin = ["taskset", "-c", cpus] if cpus is not None else []
        # BENCH_SERVER_LOG=FILE: the server's log (warnings and errors) appended there.
        log_file = os.environ.get("BENCH_SERVER_LOG")
        log = stack.enter_context(Path(log_file).open("a")) if log_file else subprocess.DEVNULL  # noqa: ASYNC230 (before the server starts)
        server = subprocess.Popen(
            [*pin, sys.executable, "-m", "consult", "serve", "--port", str(port), "--data", data,
             "--media-address", "127.0.0.1", "--log-level", "warning",
             "--workers", str(workers), *args],
            env={**os.environ, "CONSULT_STAFF_KEY": STAFF_KEY, **(env or {})},
            stdout=log, stderr=log,
        )  # fmt: skip
        if cpu_quota is not None:
            stack.enter_context(cpu_limited(server.pid, cpu_quota))
        try:
            # No connection limit: past N=50 the load's websockets alone pass aiohttp's 100,
            # and a join would wait for a free connection until it timed out.
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(base_url=base, connector=connector) as http:
                for _ in range(300):
                    try:
                        async with http.get("/healthz") as r:
                            # Several workers: server.json is written once all accept.
                            if r.status == 200 and (
                                workers == 1 or (Path(data) / "server.json").exists()
                            ):
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise RuntimeError("the server did not start")
                yield Served(base, port, server.pid, http, Path(data))
        finally:
            server.terminate()
            server.wait(timeout=30)
