"""Imported first by every Python script under scripts/: run it with the project's .venv.

On any python (`scripts/NAME.py` runs the system's), it makes .venv and installs the project
with its dev extras on first use, through scripts/_venv.sh as scripts/serve does, then runs
the script again with .venv's python. Only the standard library here: nothing else is there
yet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
# The benchmarks drive the test clients and Playwright: the dev extras.
EXTRAS = "[dev]"


def _ensure() -> None:
    installer = ROOT / "scripts" / "_venv.sh"
    subprocess.run(["bash", "-c", 'source "$0" "$1"', str(installer), EXTRAS], check=True)
    if Path(sys.prefix).resolve() != VENV.resolve():
        python = VENV / "bin" / "python"
        os.execv(python, [str(python), *sys.argv])


_ensure()
