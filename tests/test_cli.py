"""The `consult` command beside the service: its help, and a data folder that is not there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def consult(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consult", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "command",
    [["create", "--customer-name", "Jane"], ["list"], ["export", "0123"]],
)
def test_a_data_folder_that_is_not_there_is_refused_not_made(
    tmp_path: Path, command: list[str]
) -> None:
    typo = tmp_path / "typo"
    result = consult(*command, "--data", str(typo))
    assert result.returncode == 2
    assert result.stderr == (
        f"consult: there is no data folder {typo} (consult serve makes it; give the one it"
        " uses with --data)\n"
    )
    assert result.stdout == ""
    assert not typo.exists()


def test_help_names_every_command_and_what_the_link_flags_do() -> None:
    top = consult("--help").stdout
    for command in ("serve", "create", "list", "export"):
        assert f"    {command} " in top, command
    for command in ("create", "list"):
        text = " ".join(consult(command, "--help").stdout.split())
        assert "listen" not in text
        assert "--host HOST the host the links name" in text
        assert "--port PORT the port the links name" in text
    serve = " ".join(consult("serve", "--help").stdout.split())
    assert "--host HOST address to listen on" in serve
    assert "--port PORT port to listen on" in serve
    export = " ".join(consult("export", "--help").stdout.split())
    assert "--without-notes leave out the stylist's private notes" in export
