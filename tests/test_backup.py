"""Backups: a live service backed up mid-call and restored as a new one; damaged archives,
non-empty targets, other schemas, SIGKILL and a full disk all refused or failed cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from consult.recording.backup import BackupError, read_archive, restore, write_archive
from consult.recording.store import MIGRATIONS, schema_revisions

from .attachment_media import voice_webm
from .calls import agree_both
from .client import CallClient
from .datafolder import fill, sqlite_url
from .fake_camera import HANDS, load_photo
from .media import PhotoTrack
from .process import free_port, start_serve, wait_healthy

pytestmark = pytest.mark.timeout(240)


def consult(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consult", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data = tmp_path_factory.mktemp("backup") / "data"
    return data, asyncio.run(fill(data))


@pytest.fixture(scope="module")
def archive(folder: tuple[Path, dict[str, str]]) -> Path:
    data, _files = folder
    out = data.parent / "archive.backup"
    write_archive(data, sqlite_url(data), out)
    return out


async def _create(http: aiohttp.ClientSession, staff: dict[str, str], name: str) -> Any:
    async with http.post("/api/consultations", json={"customer_name": name}, headers=staff) as r:
        assert r.status == 201
        return await r.json()


def _token(link: str) -> str:
    return link.rsplit("/", 1)[1]


async def _record(http: aiohttp.ClientSession, staff: dict[str, str], cid: str) -> Any:
    async with http.get(f"/api/consultations/{cid}", headers=staff) as r:
        assert r.status == 200
        return await r.json()


async def test_a_live_call_backed_up_is_restored_whole(
    served: tuple[subprocess.Popen[str], int, Path], tmp_path: Path
) -> None:
    _proc, port, data = served
    await wait_healthy(port)
    staff = {"Authorization": f"Bearer {(data / 'staff.key').read_text().strip()}"}
    archive, restored = tmp_path / "salon.backup", tmp_path / "restored"
    photo = load_photo(HANDS / "thumb_up_blue_bg_640x521.jpg")
    _ok, png = cv2.imencode(".png", photo)
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
        quiet = await _create(http, staff, "Ann")
        consultation = await _create(http, staff, "Jane")
        ws = f"ws://127.0.0.1:{port}/ws?token="
        # Ann writes while nobody is there: a consultation with chat and no call.
        ann = CallClient(http, ws + _token(quiet["customer_link"]), "customer")
        await ann.connect()
        await ann.send({"type": "chat", "text": "can I come at 3?", "id": "a1"})
        await ann.expect("chat")
        await ann.close()
        # ... and a voice message: a file beside the stills that the backup must carry.
        voice = voice_webm(1.0)
        async with http.post(
            f"/api/consultations/{quiet['id']}/attachments",
            params={"kind": "voice", "id": "a2"},
            data=voice,
            headers={"Authorization": f"Bearer {_token(quiet['customer_link'])}"},
        ) as r:
            assert r.status == 201, await r.text()

        token = _token(consultation["customer_link"])
        customer = CallClient(http, ws + token, "customer")
        stylist = CallClient(http, ws + _token(consultation["stylist_link"]), "stylist")
        chat: list[tuple[int, str]] = []
        stills: list[str] = []
        stop = asyncio.Event()

        async def call_goes_on() -> None:
            """Chat, and a capture with the customer's photo every few messages."""
            i = 0
            while not stop.is_set():
                await customer.send({"type": "chat", "text": f"message {i}", "id": f"m{i}"})
                ack = await customer.expect("chat")
                chat.append((ack["seq"], ack["text"]))
                if i % 4 == 0:
                    await stylist.send({"type": "capture"})
                    request = await customer.expect("capture-request")
                    headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
                    async with http.post(
                        request["upload_url"], data=bytes(png), headers=headers
                    ) as r:
                        assert r.status == 201
                        stills.append((await r.json())["still"]["id"])
                i += 1
                # A person's pace, under the server's message rate limit (20/s).
                await asyncio.sleep(0.1)

        try:
            await customer.connect()
            await customer.start_media(PhotoTrack(photo, 640, 480))
            await stylist.connect()
            await stylist.start_media()
            await stylist.wait_for(lambda: any(not s.card for s in stylist.received.video), 15)
            # A finished recording (in the archive), and one being written while the backup
            # runs (not in it: its file is not finished, and its row goes at restore).
            await agree_both(customer, stylist)
            await asyncio.sleep(2)
            await stylist.send({"type": "record", "action": "stop"})
            for client in (customer, stylist):
                while (await client.expect("recording"))["state"] != "off":
                    pass
            recorded = (await _record(http, staff, consultation["id"]))["recordings"]
            assert len(recorded) == 2
            await agree_both(customer, stylist)
            traffic = asyncio.create_task(call_goes_on())
            while len(stills) < 2:
                await asyncio.sleep(0.1)
            chat_before, stills_before = list(chat), list(stills)
            backup = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "consult", "backup", "-o", str(archive), "--data", str(data),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await backup.communicate()
            assert backup.returncode == 0, err.decode()
            assert "Wrote" in out.decode() and "Backing up [" in err.decode()
            stop.set()
            await traffic
            assert len(chat) > len(chat_before)  # the call went on while it was backed up
            live = await _record(http, staff, consultation["id"])
        finally:
            await customer.close()
            await stylist.close()

    verified = consult("backup", "--verify", archive)
    assert verified.returncode == 0, verified.stderr
    assert "every SHA-256 matches" in verified.stdout
    restoring = consult("restore", archive, "--data", restored)
    assert restoring.returncode == 0, restoring.stderr
    assert (restored / "staff.key").read_text() == (data / "staff.key").read_text()
    with contextlib.closing(sqlite3.connect(restored / "consult.db")) as db:
        statuses = db.execute("SELECT status, count(*) FROM recordings GROUP BY status").fetchall()
    assert statuses == [("complete", 2)]

    port2 = free_port()
    proc2 = start_serve(restored, port2)
    try:
        await wait_healthy(port2)
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port2}") as http:
            async with http.get("/api/consultations", headers=staff) as r:
                listed = {c["id"] for c in (await r.json())["consultations"]}
            assert listed == {quiet["id"], consultation["id"]}
            record = await _record(http, staff, consultation["id"])
            # A moment of the call: everything acknowledged before the backup began, and
            # nothing that did not happen (messages a prefix of the live ones, stills a subset).
            messages = [(m["seq"], m["text"]) for m in record["messages"]]
            assert messages == [(m["seq"], m["text"]) for m in live["messages"]][: len(messages)]
            assert messages[: len(chat_before)] == chat_before
            live_stills = {s["id"]: s["sha256"] for s in live["stills"]}
            restored_stills = {s["id"]: s["sha256"] for s in record["stills"]}
            assert set(stills_before) <= set(restored_stills)
            assert all(live_stills[i] == sha for i, sha in restored_stills.items())
            for still in record["stills"]:
                async with http.get(still["url"], headers=staff) as r:
                    assert hashlib.sha256(await r.read()).hexdigest() == still["sha256"]
                async with http.get(f"/api/stills/{still['id']}/thumb", headers=staff) as r:
                    assert r.status == 200 and (await r.read())[:2] == b"\xff\xd8"
            assert record["recordings"] == recorded
            for entry in recorded:
                async with http.get(f"/api/recordings/{entry['id']}", headers=staff) as r:
                    assert r.status == 200
                    assert hashlib.sha256(await r.read()).hexdigest() == entry["sha256"]
            ann_says = (await _record(http, staff, quiet["id"]))["messages"]
            assert [m["text"] for m in ann_says] == ["can I come at 3?", ""]
            async with http.get(ann_says[1]["attachment"]["url"], headers=staff) as r:
                assert await r.read() == voice
            # The old links open the restored service: pages and calls.
            for link in (consultation["customer_link"], consultation["stylist_link"]):
                async with http.get(f"/{link.split('/', 3)[3]}") as r:
                    assert r.status == 200
            again = CallClient(http, f"ws://127.0.0.1:{port2}/ws?token={token}", "customer")
            welcome = await again.connect()
            history = [(m["seq"], m["text"]) for m in welcome["history"] if m["type"] == "chat"]
            assert history == messages
            await again.send({"type": "chat", "text": "after the restore", "id": "r1"})
            assert (await again.expect("chat"))["seq"] == len(messages) + 1
            await again.close()
            async with http.get(
                "/api/consultations", headers={"Authorization": "Bearer wrong"}
            ) as r:
                assert r.status == 401
    finally:
        proc2.kill()
        proc2.wait()


def test_restored_files_are_the_originals(
    folder: tuple[Path, dict[str, str]], archive: Path, tmp_path: Path
) -> None:
    data, files = folder
    summary = restore(archive, tmp_path / "new")
    assert summary.counts["stills"] == 3 and summary.counts["messages"] == 2
    assert summary.files == 1 + 2 + len(files)  # the database, two keys, the stills
    for name, sha in files.items():
        assert hashlib.sha256((tmp_path / "new/stills" / name).read_bytes()).hexdigest() == sha
    for key in ("link-seal.key", "staff.key"):
        assert (tmp_path / "new" / key).read_bytes() == (data / key).read_bytes()
        assert (tmp_path / "new" / key).stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("where", [0.001, 0.3, 0.6, 0.999, -1])
def test_a_flipped_byte_is_found(archive: Path, tmp_path: Path, where: float) -> None:
    damaged = tmp_path / "damaged.backup"
    data = bytearray(archive.read_bytes())
    data[int(len(data) * where)] ^= 0x04
    damaged.write_bytes(data)
    verified = consult("backup", "--verify", damaged)
    assert verified.returncode == 1
    assert "damaged" in verified.stderr or "not a consult backup" in verified.stderr
    target = tmp_path / "target"
    restoring = consult("restore", damaged, "--data", target)
    assert restoring.returncode == 1
    assert "damaged" in restoring.stderr or "not a consult backup" in restoring.stderr
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.backup"]  # nothing left


def test_a_cut_archive_is_refused(archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.backup"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupError, match=r"damaged|cut short"):
        read_archive(cut)


def test_restore_refuses_a_non_empty_target(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    restoring = consult("restore", archive, "--data", target)
    assert restoring.returncode == 1
    assert "is not empty" in restoring.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    # An empty folder is fine.
    (target / "notes.txt").unlink()
    assert consult("restore", archive, "--data", target).returncode == 0


def test_restore_refuses_a_newer_schema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(fill(data, stills=1))
    with sqlite3.connect(data / "consult.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    write_archive(data, sqlite_url(data), tmp_path / "newer.backup")
    restoring = consult("restore", tmp_path / "newer.backup", "--data", tmp_path / "target")
    assert restoring.returncode == 1
    assert "newer consult" in restoring.stderr and "9999" in restoring.stderr
    assert not (tmp_path / "target").exists()


def test_restore_upgrades_an_older_schema(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = asyncio.run(fill(data, stills=2))
    engine = sa.create_engine(f"sqlite:///{data / 'consult.db'}")
    with engine.begin() as conn:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    engine.dispose()
    summary = write_archive(data, sqlite_url(data), tmp_path / "older.backup")
    assert summary.schema_revision == "0007"
    restore(tmp_path / "older.backup", tmp_path / "target")
    with sqlite3.connect(tmp_path / "target/consult.db") as db:
        assert (
            db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            == (schema_revisions()[-1])
        )
        assert db.execute("SELECT count(*) FROM stills").fetchone()[0] == 2
    for name in files:
        assert (tmp_path / "target/stills" / name).is_file()


def test_encrypted_archives(folder: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    data, files = folder
    key = tmp_path / "backup.key"
    key.write_text("a long passphrase the salon keeps elsewhere\n")
    out = tmp_path / "salon.backup"
    made = consult("backup", "-o", out, "--data", data, "--key-file", key, "--no-staff-key")
    assert made.returncode == 0, made.stderr
    assert b"staff-key-of-the-salon" not in out.read_bytes()
    assert next(iter(files)).encode() not in out.read_bytes()  # names are encrypted too
    no_key = consult("backup", "--verify", out)
    assert no_key.returncode == 1 and "is encrypted" in no_key.stderr
    wrong = consult("backup", "--verify", out, env={"CONSULT_BACKUP_PASSPHRASE": "guess"})
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    right = consult(
        "backup", "--verify", out,
        env={"CONSULT_BACKUP_PASSPHRASE": "a long passphrase the salon keeps elsewhere"},
    )  # fmt: skip
    assert right.returncode == 0, right.stderr
    assert consult("restore", out, "--data", tmp_path / "new", "--key-file", key).returncode == 0
    assert not (tmp_path / "new/staff.key").exists()  # left out, as asked
    assert (tmp_path / "new/link-seal.key").read_bytes() == (data / "link-seal.key").read_bytes()
    damaged = bytearray(out.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    out.write_bytes(damaged)
    refused = consult("restore", out, "--data", tmp_path / "other", "--key-file", key)
    assert refused.returncode == 1 and "damaged" in refused.stderr
    assert not (tmp_path / "other").exists()


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough stills (80 MB) that a backup takes a while."""
    data = tmp_path_factory.mktemp("big") / "data"
    asyncio.run(fill(data, stills=40, still_bytes=2_000_000))
    return data


def test_sigkill_mid_backup_leaves_nothing_that_looks_complete(
    big_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "salon.backup"
    proc = subprocess.Popen(
        [sys.executable, "-m", "consult", "backup", "-o", str(out), "--data", str(big_folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = [
            p for p in tmp_path.iterdir() if p.name.endswith(".partial") and ".db." not in p.name
        ]
        if partial and partial[0].stat().st_size > 1_000_000:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial, "the backup never started writing"
    assert not out.exists()
    assert all(
        p.name.startswith(".salon.backup.") and p.name.endswith(".partial")
        for p in tmp_path.iterdir()
    )
    with pytest.raises(BackupError):
        read_archive(partial[0])


def test_a_full_backup_disk_fails_cleanly(big_folder: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        'mount -t tmpfs -o size=20m tmpfs "$1" && "$2" -m consult backup -o "$1/salon.backup"'
        ' --data "$3"; echo "rc=$?"; ls -A "$1"'
    )
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "_", str(disk), sys.executable, str(big_folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "rc=1" in run.stdout, run.stdout + run.stderr
    assert "No space left on device" in run.stderr
    assert run.stdout.strip().splitlines()[-1] == "rc=1"  # and the disk is left empty


def test_only_sqlite_for_now(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"postgresql database are not supported yet"):
        write_archive(tmp_path, "postgresql+asyncpg://u@h/db", tmp_path / "x.backup")
