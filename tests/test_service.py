"""Starting `consult serve`: one service per data folder, and nothing said before it listens."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from consult.service import record_served_url, running, served_url

from .process import free_port, start_serve, wait_healthy

pytestmark = pytest.mark.timeout(90)


def create(data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consult", "create", "--data", str(data),
         "--customer-name", "Jane Doe", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip


async def refused(data: Path, port: int) -> tuple[int, str]:
    proc = start_serve(data, port)
    out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
    return proc.returncode, out


async def test_a_port_in_use_is_one_line_with_no_banner_and_no_server_json(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    record_served_url(data, "http://127.0.0.1:9")  # where it served before
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = await refused(data, port)
    assert code == 1
    assert out.splitlines() == [
        f"consult: port {port} is already in use on 127.0.0.1 (another program listens there);"
        f" choose another with --port, e.g. --port {port + 1}"
    ]
    assert served_url(data) == "http://127.0.0.1:9"  # not the port nobody serves
    assert not running(data)


async def test_a_second_serve_on_the_same_data_folder_is_refused(
    served: tuple[subprocess.Popen[str], int, Path],
) -> None:
    proc, port, data = served
    await wait_healthy(port)
    assert running(data)
    assert served_url(data) == f"http://127.0.0.1:{port}"

    code, out = await refused(data, free_port())
    assert code == 1
    assert out.splitlines() == [
        f"consult: another consult serve (pid {proc.pid}) is already running on the data folder"
        f" {data}; stop it first, or give this one another --data"
    ]
    # Links still name the service that runs, and the CLI says nothing more.
    made = await asyncio.to_thread(create, data)
    assert json.loads(made.stdout)["customer_link"].startswith(f"http://127.0.0.1:{port}/c/")
    assert made.stderr == ""

    proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.wait, 30)
    assert not running(data)
    # Stopped: the links name where it served last, and the CLI says that nothing serves them.
    made = await asyncio.to_thread(create, data)
    assert json.loads(made.stdout)["customer_link"].startswith(f"http://127.0.0.1:{port}/c/")
    assert made.stderr == (
        f"consult: no service is running on {data} now; the links name where it last"
        f" served, http://127.0.0.1:{port}\n"
    )
    # And a new service may start on the folder once the first has gone.
    again = start_serve(data, port)
    try:
        await wait_healthy(port)
    finally:
        again.kill()
        await asyncio.to_thread(again.wait, 30)
