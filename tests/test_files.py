"""Still files in a folder several nodes share (CONSULT_STILLS_DIR): a still saved through one
node is served, sampled and exported through another, and no node's start-up sweep takes a
file another node is still writing."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from consult.app import create_app
from consult.recording.files import SHARED_GRACE, StillFiles

from .conftest import STAFF_KEY, create_consultation, make_settings, token_of

pytestmark = pytest.mark.timeout(60)
STAFF = {"Authorization": f"Bearer {STAFF_KEY}"}


async def test_a_still_saved_through_one_node_is_read_through_another(
    aiohttp_server: Any, tmp_path: Path, postgres_url: str
) -> None:
    shared = tmp_path / "shared-stills"
    a_settings, b_settings = (
        make_settings(
            tmp_path / name, database_url=postgres_url, node_id=name, stills_folder=shared
        )
        for name in ("a", "b")
    )
    # The nodes share their keys (docs/operations.md): B shows the links A sealed.
    a = await aiohttp_server(create_app(a_settings))
    b_settings.data_dir.mkdir(parents=True)
    shutil.copy(a_settings.data_dir / "link-seal.key", b_settings.data_dir / "link-seal.key")
    b = await aiohttp_server(create_app(b_settings))
    _ok, jpeg = cv2.imencode(".jpg", np.full((300, 400, 3), (80, 120, 200), np.uint8))
    photo = bytes(jpeg)
    async with aiohttp.ClientSession() as http:
        async with aiohttp.ClientSession(base_url=str(a.make_url(""))) as on_a:
            consultation = await create_consultation(on_a, STAFF)
        customer = {"Authorization": f"Bearer {token_of(consultation['customer_link'])}"}
        # Saved through B...
        async with http.post(
            b.make_url(f"/api/consultations/{consultation['id']}/chat-photos"),
            params={"id": "p1"},
            data=photo,
            headers=customer | {"Content-Type": "image/jpeg"},
        ) as r:
            assert r.status == 201, await r.text()
            still = (await r.json())["message"]["still"]
        # ...served by A, whole and by Range, byte for byte.
        async with http.get(a.make_url(f"/api/stills/{still['id']}"), headers=customer) as r:
            assert r.status == 200
            assert hashlib.sha256(await r.read()).hexdigest() == hashlib.sha256(photo).hexdigest()
        ranged = customer | {"Range": "bytes=100-199"}
        async with http.get(a.make_url(f"/api/stills/{still['id']}"), headers=ranged) as r:
            assert r.status == 206 and await r.read() == photo[100:200]
        # Sampled and exported through A.
        async with http.post(
            a.make_url(f"/api/stills/{still['id']}/sample"),
            json={"x": 200, "y": 150},
            headers=STAFF,
        ) as r:
            assert r.status == 200, await r.text()
        async with http.get(
            a.make_url(f"/api/consultations/{consultation['id']}/export"), headers=STAFF
        ) as r:
            assert r.status == 200
            archive = zipfile.ZipFile(io.BytesIO(await r.read()))
        assert photo in [archive.read(name) for name in archive.namelist()]
    # Nothing of the stills went into either node's own data folder.
    for settings in (a_settings, b_settings):
        assert not (settings.data_dir / "stills").exists()


def test_the_sweep_of_a_shared_folder_leaves_recent_files_alone(tmp_path: Path) -> None:
    files = StillFiles(tmp_path, shared=True)
    files.prepare()
    # Another node's upload in progress: staged, or placed with its row not yet written.
    staged, f = files.stage()
    f.close()
    placed = files.write("c1", "s1.jpg", b"fresh")
    # Debris of a node that crashed long ago.
    old_staged, f = files.stage()
    f.close()
    old_placed = files.write("c1", "s0.jpg", b"old")
    long_ago = time.time() - SHARED_GRACE - 60
    for path in (old_staged, files.path(old_placed)):
        os.utime(path, (long_ago, long_ago))
    assert files.sweep(known=set()) == 2
    assert staged.exists() and files.path(placed).exists()
    assert not old_staged.exists() and not files.path(old_placed).exists()
    # A folder of one node's own is swept whole at its start, as before.
    assert StillFiles(tmp_path).sweep(known=set()) == 2
