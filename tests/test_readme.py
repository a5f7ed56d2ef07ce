"""README.md's commands, run as written: the docs cannot drift from the code."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import zipfile
from pathlib import Path

import pytest

from .process import wait_healthy

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The one placeholder: a consultation's id, which only exists once one is made.
PLACEHOLDER = re.compile(r"\bID\b")


def shell_blocks(text: str) -> list[str]:
    """The ```sh blocks, dedented (those in a numbered list are indented)."""
    blocks = []
    for match in re.finditer(r"^( *)```sh\n(.*?)^\1```", text, re.M | re.S):
        indent = len(match.group(1))
        blocks.append("".join(line[indent:] + "\n" for line in match.group(2).splitlines()))
    return blocks


async def test_the_readmes_commands_work_as_written(tmp_path: Path) -> None:
    # scripts/serve would install the project from the folder it runs in (scripts/test has
    # installed it here: its extras include the service).
    stamp = ROOT / ".venv" / ".installed"
    assert stamp.exists() and stamp.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime
    # A folder like the clone, with the clone's .venv and scripts (its own ./data).
    for name in (".venv", "scripts", "pyproject.toml"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULT_")}
    start, *others = shell_blocks(README.read_text())
    # The first block starts the service, and runs this suite (what CI runs: .ci/run).
    assert [line.split()[0] for line in start.splitlines()] == ["scripts/serve", "scripts/test"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = await asyncio.create_subprocess_exec(
            "bash", "-c", start.splitlines()[0], cwd=tmp_path, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        try:
            await wait_healthy(8080)
        except AssertionError:
            raise AssertionError(log.read_text()) from None

        async def run(block: str) -> str:
            result = await asyncio.to_thread(
                subprocess.run, ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path,
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert result.returncode == 0, (block, result.stdout, result.stderr)
            return result.stdout

        create, curl, export = others
        out = await run(create)
        consultation_id = out.split()[1]
        assert "customer link: http://127.0.0.1:8080/c/" in out
        made = json.loads(await run(curl))
        assert made["customer_link"].startswith("http://127.0.0.1:8080/c/")
        out = await run(PLACEHOLDER.sub(consultation_id, export))
        assert consultation_id in out and "Jane Doe" in out
        with zipfile.ZipFile(tmp_path / "consultation.zip") as archive:
            assert json.loads(archive.read("record.json"))["id"] == consultation_id
        with zipfile.ZipFile(tmp_path / "for-the-customer.zip") as archive:
            assert "notes" not in json.loads(archive.read("record.json"))
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        await asyncio.wait_for(serve.wait(), 30)
    assert serve.returncode == 0, log.read_text()
    assert "consult is serving on http://127.0.0.1:8080" in log.read_text()
