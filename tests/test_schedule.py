"""Scheduled backups of a serving service: named by time, the newest kept, reported; one node
at a time when two share the database; a full backup disk reported, the service unharmed."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from consult.recording.backup import read_archive
from consult.recording.schedule import archive_name, to_remove

from .datafolder import fill
from .process import free_port, start_serve, wait_healthy

pytestmark = pytest.mark.timeout(120)

STAFF = {"Authorization": "Bearer staff-key-of-the-salon"}  # written by datafolder.fill


def test_names_sort_by_time_and_only_archives_are_removed() -> None:
    names = [archive_name(datetime(2026, 11, day, 3, 0, tzinfo=UTC)) for day in (29, 3, 17, 28)]
    assert names[1] == "consult-20261103T030000Z.backup"
    other = ["notes.txt", ".consult-20261101T030000Z.backup.9.partial", "consult-x.backup"]
    assert to_remove(names + other, 2) == [names[1], names[2]]
    assert to_remove(names, 14) == []


async def _status(port: int) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/api/backups", headers=STAFF) as r,
    ):
        return await r.json()


async def _metrics(port: int) -> dict[str, float]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics", headers=STAFF) as r,
    ):
        text = await r.text()
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("consult_backup_")
    }


async def test_backups_are_made_named_kept_and_reported(tmp_path: Path) -> None:
    data, backups, port = tmp_path / "data", tmp_path / "backups", free_port()
    await fill(data, stills=2)
    extra = ["--backup-dir", str(backups), "--backup-every", "2s", "--backup-keep", "2"]
    proc = start_serve(data, port, extra=extra)
    try:
        await wait_healthy(port)
        made: set[str] = set()
        async with asyncio.timeout(60):
            while len(made) < 4:
                status = await _status(port)
                if status["last_success_file"]:
                    made.add(status["last_success_file"])
                await asyncio.sleep(0.2)
        assert status["enabled"] and status["keep"] == 2 and status["last_failure"] is None
        kept = sorted(p.name for p in backups.iterdir() if not p.name.startswith("."))
        # The newest two (one more may have been made since the last look); older ones gone.
        assert len(kept) == 2 and kept[0] >= sorted(made)[-2]
        newest = read_archive(backups / kept[-1])
        assert newest.counts["stills"] == 2
        metrics = await _metrics(port)
        assert metrics["consult_backup_last_success_timestamp_seconds"] > 0
        assert metrics["consult_backup_last_failure_timestamp_seconds"] == 0
        assert metrics["consult_backup_last_success_bytes"] > 0
    finally:
        proc.kill()
        proc.wait()


async def test_two_nodes_sharing_a_database_take_turns(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await fill(data, stills=1)
    nodes = []

    def made() -> list[datetime]:
        return sorted(
            datetime.strptime(p.name, "consult-%Y%m%dT%H%M%SZ.backup")
            for name in ("a", "b")
            if (tmp_path / name).is_dir()
            for p in (tmp_path / name).iterdir()
            if not p.name.startswith(".")
        )

    # Two nodes: each its own data folder (one service per folder), one database and one
    # stills storage between them, as several machines would share them.
    other = tmp_path / "data-b"
    other.mkdir()
    for key in data.glob("*.key"):
        shutil.copy2(key, other / key.name)
    (other / "stills").symlink_to(data / "stills")
    shared = {"CONSULT_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'consult.db'}"}
    try:
        for name, folder in (("a", data), ("b", other)):  # one after the other: two starting
            port = free_port()  # at once can be slow
            extra = ["--backup-dir", str(tmp_path / name), "--backup-every", "3s"]
            nodes.append((start_serve(folder, port, extra=extra, environment=shared), port))
            await wait_healthy(port)
        async with asyncio.timeout(90):
            while len(made()) < 3:
                await asyncio.sleep(0.2)
    finally:
        for proc, _port in nodes:
            proc.kill()
            proc.wait()
    # One every 3 s across both nodes, never two at once (names are to the second).
    times = made()
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 2, times


async def test_a_full_backup_disk_is_reported_and_the_service_goes_on(tmp_path: Path) -> None:
    data, backups, port = tmp_path / "data", tmp_path / "backups", free_port()
    await fill(data, stills=6, still_bytes=1_000_000)
    extra = ["--backup-dir", str(backups), "--backup-every", "1h"]
    proc = start_serve(data, port, extra=extra, backup_disk=(backups, "2m"))
    try:
        await wait_healthy(port)
        async with asyncio.timeout(30):
            while (status := await _status(port))["last_failure"] is None:
                await asyncio.sleep(0.2)
        assert "No space left on device" in status["last_failure"]
        assert status["last_success_at"] is None and not status["running"]
        metrics = await _metrics(port)
        assert metrics["consult_backup_last_failure_timestamp_seconds"] > 0
        assert metrics["consult_backup_last_success_timestamp_seconds"] == 0
        # Nothing left on the backup disk (a tmpfs in the server's namespace: look through it).
        inside = Path(f"/proc/{proc.pid}/root") / backups.relative_to("/")
        assert list(inside.iterdir()) == []
        # The service goes on.
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{port}/api/consultations",
                json={"customer_name": "Ann"},
                headers=STAFF,
            ) as r,
        ):
            assert r.status == 201
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


async def test_stopping_the_service_mid_backup_leaves_no_archive(tmp_path: Path) -> None:
    data, backups, port = tmp_path / "data", tmp_path / "backups", free_port()
    await fill(data, stills=40, still_bytes=2_000_000)
    proc = start_serve(data, port, extra=["--backup-dir", str(backups), "--backup-every", "1h"])
    try:
        await wait_healthy(port)
        async with asyncio.timeout(30):
            while not any(p.name.endswith(".partial") for p in backups.iterdir()):
                await asyncio.sleep(0.01)
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert list(backups.iterdir()) == []  # the backup process removed its temporary files
