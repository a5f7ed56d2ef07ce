"""A network namespace for tests, kept alive by a process in it; programs join it with
nsenter (``command``, ``popen``), Chromium through ``wrapper``. What is linked to it (a veth
pair) is for its user to make: tests/turn.py's blocked network, tests/test_two_namespaces.py's
two nodes."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Namespace"]


class Namespace:
    def __init__(self) -> None:
        self._holder = subprocess.Popen(["unshare", "-n", "sleep", "infinity"])
        own = os.readlink("/proc/self/ns/net")
        for _ in range(200):
            if os.readlink(f"/proc/{self._holder.pid}/ns/net") != own:
                return
            time.sleep(0.01)
        self.close()
        raise AssertionError("the network namespace was not made")

    @property
    def pid(self) -> int:
        return self._holder.pid

    def command(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside the namespace."""
        return ["nsenter", "-t", str(self.pid), "-n", *command]

    def popen(self, command: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self.command(command), **kwargs)

    def run(self, script: str, **kwargs: Any) -> None:
        """A shell ``script`` inside the namespace; it must succeed."""
        subprocess.run(
            self.command(["sh", "-c", script]), check=True, capture_output=True, **kwargs
        )

    def wrapper(self, path: Path, program: str) -> Path:
        """An executable at ``path`` that runs ``program`` inside the namespace, with the same
        arguments and open files: Playwright launches Chromium through it
        (``executable_path``) and drives it over its pipes as usual."""
        path.write_text(f'#!/bin/sh\nexec {" ".join(self.command([program]))} "$@"\n')
        path.chmod(0o755)
        return path

    def close(self) -> None:
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()
