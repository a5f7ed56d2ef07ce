"""The CPU quota of a process's cgroups, read from cgroup v1 and v2 trees laid out on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from consult.cpuquota import cores_allowed, whole_cores


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_the_tightest_quota_from_the_cgroup_up(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(tmp_path / "self", "0::/kubepods/pod1/worker\n")
    write(root / "kubepods/cpu.max", "150000 100000\n")
    write(root / "kubepods/pod1/cpu.max", "50000 100000\n")
    write(root / "kubepods/pod1/worker/cpu.max", "max 100000\n")
    assert cores_allowed(tmp_path / "self", root) == pytest.approx(0.5)


def test_v2_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(tmp_path / "self", "0::/\n")
    write(root / "cpu.max", "max 100000\n")
    assert cores_allowed(tmp_path / "self", root) is None


def test_v1_cpu_controller(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(tmp_path / "self", "4:memory:/x\n2:cpuacct:/\n1:cpu:/bench\n0::/\n")
    write(root / "cpu/cpu.cfs_quota_us", "-1\n")
    write(root / "cpu/cpu.cfs_period_us", "100000\n")
    write(root / "cpu/bench/cpu.cfs_quota_us", "30000\n")
    write(root / "cpu/bench/cpu.cfs_period_us", "100000\n")
    assert cores_allowed(tmp_path / "self", root) == pytest.approx(0.3)


def test_unreadable_means_no_quota(tmp_path: Path) -> None:
    assert cores_allowed(tmp_path / "missing", tmp_path) is None
    write(tmp_path / "self", "1:cpu:/gone\n")
    assert cores_allowed(tmp_path / "self", tmp_path) is None


# issue 13B: the default number of workers


def test_whole_cores_a_worker_per_core_the_quota_allows() -> None:
    assert whole_cores(None, 2) == 2
    assert whole_cores(1.5, 2) == 1  # never two workers sharing a core and a half
    assert whole_cores(4.0, 2) == 2  # the CPUs it may run on bound it too
    assert whole_cores(0.5, 8) == 1  # at least one
