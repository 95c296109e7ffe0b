"""CPU threads: the cores a process may use, and the command line's --threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unseg import _threads
from unseg.data.synthetic import quadrants
from unseg.io import write_image


@pytest.mark.parametrize(("files", "cores"), [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 2),
    ({"cpu.max": "50000 100000\n"}, 1),
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_quota_in_whole_cores(tmp_path: Path, files: dict[str, str], cores) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _threads._cgroup_cores(tmp_path) == cores


def test_available_cores_is_the_affinity_capped_by_the_quota(monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(_threads, "_cgroup_cores", lambda: 2)
    assert _threads.available_cores() == 2
    monkeypatch.setattr(_threads, "_cgroup_cores", lambda: None)
    assert _threads.available_cores() == 4


def test_the_command_line_uses_the_threads_asked_for(tmp_path: Path) -> None:
    write_image(tmp_path / "in" / "q.png", quadrants(32)[0])

    def threads(*extra: str) -> int:
        env = {k: v for k, v in os.environ.items() if k not in _threads.THREAD_VARIABLES}
        subprocess.run([sys.executable, "-m", "unseg.cli.main", "segment", "random",
                        str(tmp_path / "in"), "--out", str(tmp_path / "out"), *extra],
                       check=True, capture_output=True, env=env)
        return json.loads((tmp_path / "out" / "run.json").read_text())["threads"]

    assert threads("--threads", "1") == 1
    assert threads() == _threads.available_cores()


@pytest.mark.parametrize(("given", "spin"), [
    ({}, str(_threads.SPIN_COUNT)),
    ({"GOMP_SPINCOUNT": "50"}, "50"),
    ({"OMP_WAIT_POLICY": "passive"}, None),  # a spin count would override the user's policy
])
def test_openmp_spin_is_short_unless_the_environment_says(monkeypatch, given, spin) -> None:
    import torch

    for variable in (*_threads.THREAD_VARIABLES, "GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
        monkeypatch.setenv(variable, "")  # so that monkeypatch restores what configure sets
        monkeypatch.delenv(variable)
    for variable, value in given.items():
        monkeypatch.setenv(variable, value)
    threads = torch.get_num_threads()
    try:
        assert _threads.configure(1) == 1
    finally:
        torch.set_num_threads(threads)
    assert os.environ.get("GOMP_SPINCOUNT") == spin
    assert os.environ["OMP_NUM_THREADS"] == "1"
