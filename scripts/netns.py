"""Run the calling script again inside a loopback-only network namespace when one can be made.

Benchmarks call ``reexec_isolated()`` first: every packet they make then stays on the machine,
whatever a browser or library would otherwise try to reach.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

MARK = "CONSULT_ISOLATED"


def reexec_isolated() -> None:
    if os.environ.get(MARK) or not shutil.which("unshare") or not shutil.which("ip"):
        return
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        print("netns: unshare -n is not permitted here; media stays on 127.0.0.1", file=sys.stderr)
        return
    os.environ[MARK] = "1"
    os.execvp(
        "unshare",
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "_", sys.executable,
         *sys.argv],
    )  # fmt: skip
