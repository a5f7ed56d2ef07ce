"""How much CPU this process may use: the quota of its cgroup (a container's CPU limit).

A worker in a container limited to half a core has half a core of headroom, whatever the
machine has: admission (consult/admission.py) judges the event loop against what it can get.
cgroup v2 says it in ``cpu.max`` ("max 100000", or "50000 100000" for half a core); v1 in
``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (-1: no quota). The quota of the process's own
cgroup is read, and of each parent up to the root (a limit anywhere above applies too).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["cores_allowed", "usable_cores", "whole_cores"]

ROOT = Path("/sys/fs/cgroup")


def usable_cores() -> int:
    """Whole cores this process may use (the default number of workers)."""
    return whole_cores(cores_allowed(), len(os.sched_getaffinity(0)))


def whole_cores(quota: float | None, cpus: int) -> int:
    """The CPUs a process may run on (``sched_getaffinity``), fewer under a quota (rounded
    down: a worker per core, never two sharing one), and at least one."""
    if quota is not None:
        cpus = min(cpus, int(quota))
    return max(1, cpus)


def cores_allowed(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = ROOT) -> float | None:
    """The cores this process's cgroups allow it (the tightest quota); None: no quota."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: the unified hierarchy
            quotas += _walk(root, path, _v2)
        elif "cpu" in controllers.split(","):
            for mount in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
                if mount.is_dir():
                    quotas += _walk(mount, path, _v1)
                    break
    return min(quotas) if quotas else None


def _walk(mount: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    found: list[float] = []
    folder = mount / path.lstrip("/")
    while True:
        quota = read(folder)
        if quota is not None:
            found.append(quota)
        if folder == mount or mount not in folder.parents:
            return found
        folder = folder.parent


def _v2(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota < 0 else quota / period
