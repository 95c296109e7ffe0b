"""CPU threads: as many as the process may really use, and waiting that yields the core.

A machine's core count says little on a shared server, an HPC node or a container: the process
may be pinned to fewer cores (affinity) or given a CPU quota (cgroups). Torch and the BLAS
libraries start one thread per machine core by default, and OpenMP threads spin while they wait:
on a loaded machine that oversubscribes the cores and a run can become several times slower
instead of taking its share. :func:`configure` sets the thread count to :func:`available_cores`
(or the number asked for) and shortens the OpenMP spin, before torch is imported.

The spin: GNU OpenMP (torch's runtime) lets an idle thread spin 300,000 times before it sleeps.
Sleeping at once (``OMP_WAIT_POLICY=passive``) costs a wake-up per parallel region, and code of
many small tensor operations (the NMF solvers: 31 batched problems at k = 4 ran at 84 images/s
against 213 with one thread) becomes slower with two threads than with one. A short spin of
:data:`SPIN_COUNT` keeps threads awake between the operations of one computation (234 images/s
there) and lets them sleep soon when there is nothing to do: a spin of 10,000 made a run beside
two busy processes take 8.5x its idle time.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

#: The environment variables that size the thread pools of torch (OpenMP) and of BLAS.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: ``GOMP_SPINCOUNT``: spins of an idle OpenMP thread before it sleeps.
SPIN_COUNT = 1_000


def _cgroup_cores(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPU quota of the process's cgroup in whole cores (rounded up), or None."""
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else max(1, math.ceil(quota_us / period_us))
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """The cores this process may run on: its affinity, capped by its cgroup's CPU quota."""
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    quota = _cgroup_cores()
    return max(1, min(cores, quota) if quota is not None else cores)


def configure(threads: int | None = None) -> int:
    """Size torch's and BLAS's thread pools and make waiting OpenMP threads sleep.

    Parameters
    ----------
    threads : int or None
        Threads to use; None for :func:`available_cores`, unless the environment already
        sets ``OMP_NUM_THREADS`` (then it is kept).

    Returns
    -------
    int
        The thread count now in force for torch.

    Notes
    -----
    Environment variables take effect when the libraries start, so call this before torch is
    imported (the command line does it first); torch's count is also set if it is loaded.
    ``GOMP_SPINCOUNT`` is set to :data:`SPIN_COUNT` unless the environment sets it or
    ``OMP_WAIT_POLICY`` (which it would override).
    """
    if threads is not None and threads < 1:
        from unseg.errors import ParameterError

        raise ParameterError(f"threads must be at least 1, got {threads}")
    if threads is None:
        given = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(given) if given.isdigit() and int(given) > 0 else available_cores()
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", str(SPIN_COUNT))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return threads
