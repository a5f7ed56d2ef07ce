"""`consult migrate-store`: a SQLite data folder's database moved to PostgreSQL, all of it,
checked, and never into a database that holds anything."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from consult.recording.palette import SwatchEvent, SwatchFields
from consult.recording.schema import metadata
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key
from consult.salon import Salon, parse_hours
from consult.service import ServiceLock

from .datafolder import add_call_files, fill, sqlite_url

pytestmark = pytest.mark.timeout(120)
TTL = timedelta(days=7)


def migrate(data: Path, url: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "consult", "migrate-store", "--to", url, "--data", str(data)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


async def everything(store: Store) -> dict[str, Any]:
    """What the service shows of a store, consultation by consultation."""
    consultations: dict[str, Any] = {}
    for c in await store.list_consultations():
        consultations[c.id] = (
            c,
            await store.links(c.id),
            await store.messages(c.id),
            await store.read_marks(c.id),
            await store.list_stills(c.id),
            await store.swatch_log.events(c.id),
        )
    return {
        "palette": await store.palette.list(),
        "salon": await store.get_salon(),
        "consultations": consultations,
    }


async def row_counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                t.name: int(await conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0)
                for t in metadata.sorted_tables
            }
    finally:
        await engine.dispose()


async def a_salon_in_use(data: Path) -> None:
    """Beyond fill(): revoked links, read marks, an edited palette, swatches shown, hours."""
    store = await Store.open(sqlite_url(data), TokenSealer(load_seal_key(data)))
    try:
        (first,) = await store.list_consultations()
        await store.revoke_links(first.id, TTL)
        await store.mark_read(first.id, "stylist", 2)
        await store.update_notes(first.id, notes="likes nude", summary="Nude, almond")
        now = datetime.now(UTC)
        swatch = await store.palette.create(
            SwatchFields(name="Ballet", hex="#f2d7d0", finish="cream", family="nude"), now
        )
        await store.swatch_log.add(SwatchEvent(first.id, "shown", swatch.to_json(), "stylist", now))
        await store.set_salon(Salon(parse_hours("Europe/London", {"mon": [["09:00", "17:00"]]})))
        await store.create_consultation(customer_name="Ann", link_ttl=TTL, based_on=first.id)
    finally:
        await store.close()


async def test_a_data_folder_moves_to_postgresql_whole_and_checked(
    tmp_path: Path, postgres_url: str
) -> None:
    data = tmp_path / "data"
    files = await fill(data, stills=3)
    await a_salon_in_use(data)
    call_files = await add_call_files(data)
    sealer = TokenSealer(load_seal_key(data))
    source = await Store.open(sqlite_url(data), sealer)
    before = await everything(source)
    await source.close()

    result = await asyncio.to_thread(migrate, data, postgres_url)
    assert result.returncode == 0, result.stderr
    assert (
        "every table matches by count and SHA-256; the files of 3 stills, 1 attachments,"
        " 1 recordings match their SHA-256"
    ) in result.stdout
    assert "missing" not in result.stderr
    assert await row_counts(postgres_url) == await row_counts(sqlite_url(data))

    target = await Store.open(postgres_url, sealer)
    try:
        assert await everything(target) == before
        # The links still open their consultations (sealed with the data folder's key).
        assert len(before["consultations"]) == 2
        for _consultation, links, _m, _r, stills, _s in before["consultations"].values():
            assert links.customer
            await target.resolve_token(links.customer)
            # Stills point into the same folder, byte for byte.
            for still in stills:
                blob = (data / "stills" / still.file).read_bytes()
                assert hashlib.sha256(blob).hexdigest() == still.sha256 == files[still.file]
        # So do the recordings and the chat's files (the one being written: when it ends).
        (consultation_id, *_) = before["consultations"]
        moved = {f"recordings/{r.file}": r.sha256
                 for r in await target.recordings.of(consultation_id) if r.sha256}  # fmt: skip
        moved |= {f"stills/{a.file}": a.sha256
                  for a in (await target.attachments.of(consultation_id)).values()}  # fmt: skip
        assert moved == call_files
        for file, digest in moved.items():
            assert hashlib.sha256((data / file).read_bytes()).hexdigest() == digest
        # New rows follow the copied ones (PostgreSQL's sequences were moved on).
        created, links = await target.create_consultation(customer_name="Eve", link_ttl=TTL)
        assert links.customer and (await target.resolve_token(links.customer)).role == "customer"
        await target.revoke_links(created.id, TTL)
    finally:
        await target.close()

    # Once more into the same database: refused, and nothing changes.
    counts = await row_counts(postgres_url)
    again = await asyncio.to_thread(migrate, data, postgres_url)
    assert again.returncode == 1
    assert "not empty" in again.stderr and "nothing written" in again.stderr
    assert await row_counts(postgres_url) == counts


async def test_a_still_that_does_not_match_its_row_stops_the_move(
    tmp_path: Path, postgres_url: str
) -> None:
    data = tmp_path / "data"
    files = await fill(data, stills=2)
    name = next(iter(files))
    (data / "stills" / name).write_bytes(b"not what was saved")
    result = await asyncio.to_thread(migrate, data, postgres_url)
    assert result.returncode == 1
    assert "does not match its SHA-256: nothing written" in result.stderr
    # Not even a schema was made.
    engine = create_async_engine(postgres_url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    await engine.dispose()
    assert tables == []


@pytest.mark.parametrize("folder", ["recordings", "stills"])
async def test_a_recording_or_attachment_that_does_not_match_its_row_stops_the_move(
    tmp_path: Path, postgres_url: str, folder: str
) -> None:
    data = tmp_path / "data"
    await fill(data, stills=1)
    call_files = await add_call_files(data)
    name = next(f for f in call_files if f.startswith(f"{folder}/"))
    (data / name).write_bytes(b"not what was saved")
    result = await asyncio.to_thread(migrate, data, postgres_url)
    assert result.returncode == 1
    assert f"{name.split('/', 1)[1]} does not match its SHA-256: nothing written" in result.stderr
    # And a file that is not there is named.
    (data / name).unlink()
    result = await asyncio.to_thread(migrate, data, postgres_url)
    assert result.returncode == 0, result.stderr
    assert f"file missing: {'recordings' if folder == 'recordings' else 'attachments'}: " in (
        result.stderr
    )


async def test_a_used_palette_counts_as_not_empty(tmp_path: Path, postgres_url: str) -> None:
    # A service ran on the target and staff edited its palette: nothing of theirs is replaced.
    target = await Store.open(postgres_url, TokenSealer(load_seal_key(tmp_path)))
    first = (await target.palette.list())[0]
    fields = SwatchFields(name=first.name, hex="#000000", finish=first.finish, family=first.family)
    await target.palette.update(first.id, fields, datetime.now(UTC))
    await target.close()
    data = tmp_path / "data"
    await fill(data, stills=1)
    result = await asyncio.to_thread(migrate, data, postgres_url)
    assert result.returncode == 1 and "palette" in result.stderr
    assert (await row_counts(postgres_url))["consultations"] == 0


async def test_not_while_a_service_runs_on_the_data_folder(
    tmp_path: Path, postgres_url: str
) -> None:
    data = tmp_path / "data"
    await fill(data, stills=1)
    lock = ServiceLock(data)  # what a running consult serve holds
    lock.acquire()
    try:
        result = await asyncio.to_thread(migrate, data, postgres_url)
    finally:
        lock.release()
    assert result.returncode == 1 and "stop the service" in result.stderr
    assert (await row_counts(sqlite_url(data)))["consultations"] == 1
