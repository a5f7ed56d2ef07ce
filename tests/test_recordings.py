"""Recordings' rows and files: a deleted consultation's go whole (finished files, another node's
staged one), another consultation's untouched; on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consult.recording.deletion import remove_files
from consult.recording.recordings import Recording, RecordingFiles
from consult.recording.store import Store
from consult.recording.tokens import TokenSealer, load_seal_key


async def test_a_consultations_recordings_are_removed_on_every_node(
    tmp_path: Path, database_url: str
) -> None:
    store = await Store.open(database_url, TokenSealer(load_seal_key(tmp_path)))
    # Two nodes sharing the recordings folder, each staging in its own.
    here, there = (RecordingFiles(tmp_path / "recordings", node) for node in ("a", "b"))
    here.prepare()
    there.prepare()
    rows = store.recordings
    try:
        gone, _ = await store.create_consultation(customer_name="Jane", link_ttl=timedelta(1))
        kept, _ = await store.create_consultation(customer_name="Ann", link_ttl=timedelta(1))

        async def recording(consultation_id: str, files: RecordingFiles, finish: bool) -> str:
            recording_id = secrets.token_hex(8)
            staged = files.staged(recording_id)
            staged.write_bytes(b"\x1a\x45\xdf\xa3" + secrets.token_bytes(1000))
            row = Recording(
                recording_id, consultation_id, "customer", "s", "recording",
                datetime.now(UTC), str(staged.relative_to(files.root)),
            )  # fmt: skip
            await rows.begin(row)
            if finish:
                finished = files.place(recording_id, consultation_id, "webm", 1.0)
                await rows.complete(recording_id, finished, datetime.now(UTC))
            return recording_id

        await recording(gone.id, here, finish=True)
        await recording(gone.id, there, finish=True)
        live = await recording(gone.id, there, finish=False)  # node b is writing it
        there.staged(live).with_suffix(".fixed").write_bytes(b"a recovery's copy")
        other = await recording(kept.id, here, finish=True)
        other_file = next((here.root / kept.id).iterdir())

        folders = {"stills": here.path, "recordings": here.path}
        await store.deletion.consultations([gone.id], actor="owner")
        assert await remove_files(store.deletion, folders) == 3
        assert await rows.of(gone.id) == []
        assert await rows.unfinished() == []
        assert not (here.root / gone.id).exists()
        assert not list(there.staging.iterdir())
        assert here.staging.is_dir() and there.staging.is_dir()
        # The other consultation's recording is as it was.
        assert [r.id for r in await rows.of(kept.id)] == [other]
        assert other_file.is_file()
        # Nothing left to remove: nothing is.
        assert await remove_files(store.deletion, folders) == 0
    finally:
        await store.close()
