"""Every script under scripts/ runs as `scripts/NAME.py`, on the system's python too."""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
RUNNABLE = sorted(p for p in SCRIPTS.glob("*.py") if 'if __name__ == "__main__"' in p.read_text())
#: Modules the scripts import: stdlib only, or run by _venv first.
HELPERS = {"_venv.py", "benchkit.py", "benchload.py", "netns.py"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_every_script_is_runnable_or_a_helper() -> None:
    assert RUNNABLE
    assert {p.name for p in SCRIPTS.glob("*.py")} == {p.name for p in RUNNABLE} | HELPERS
    for path in RUNNABLE:
        assert path.read_text().startswith("#!/usr/bin/env python3\n"), path.name
        assert os.access(path, os.X_OK), f"{path.name} is not executable"
        names = imported(path)
        # .venv first: nothing else is importable on the system's python.
        assert "_venv" in names, path.name
        tests = {n for n in names if n == "tests" or n.startswith("tests.")}
        assert not {n for n in tests if n.split(".")[-1].startswith(("test_", "conftest"))}, (
            f"{path.name} imports test modules: {tests}"
        )


async def test_every_script_answers_help_from_the_system_python() -> None:
    # The system's python, as `scripts/NAME.py` finds it: not the one running the tests.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"

    async def run(path: Path) -> tuple[Path, int, str]:
        proc = await asyncio.create_subprocess_exec(
            str(path), "--help", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        out, _ = await proc.communicate()
        return path, proc.returncode or 0, out.decode()

    for path, code, out in await asyncio.gather(*(run(p) for p in RUNNABLE)):
        assert code == 0, (path.name, out)
        assert f"usage: {path.name}" in out, (path.name, out)
