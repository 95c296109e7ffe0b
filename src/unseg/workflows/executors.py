"""Where tasks run: in this process, or on a Dask cluster.

An executor runs one task function over many argument tuples, with one large object (a fitted
segmenter) shared by every task: :meth:`run` yields each task's key and result as it completes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from unseg.errors import ParameterError, UnsegError

K = TypeVar("K")
R = TypeVar("R")


class Executor(Protocol):
    """What the runners need of an executor."""

    workers: int

    def run(self, function: Callable[..., R], shared: Any,
            tasks: Iterable[tuple[K, tuple[Any, ...]]]) -> Iterator[tuple[K, R]]:
        """Yield ``(key, function(shared, *args))`` for each ``(key, args)`` as it completes."""
        ...

    def close(self) -> None:
        """Release the workers."""
        ...


class LocalExecutor:
    """Runs tasks one after another in this process."""

    workers = 1

    def run(self, function: Callable[..., R], shared: Any,
            tasks: Iterable[tuple[K, tuple[Any, ...]]]) -> Iterator[tuple[K, R]]:
        """Yield ``(key, function(shared, *args))`` for each ``(key, args)``, in order."""
        for key, args in tasks:
            yield key, function(shared, *args)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Runs tasks on a Dask cluster: a new LocalCluster of ``workers`` or ``scheduler``'s.

    ``shared`` is sent to every worker once; tasks take paths the workers can read, not data.
    At most two tasks per worker are in flight, so memory stays bounded.
    """

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None) -> None:
        from unseg._optional import optional_import

        distributed = optional_import("distributed", "dask")
        if (workers is None) == (scheduler is None):
            raise ParameterError("give either workers (a local cluster) or a scheduler address")
        self._cluster = None
        if scheduler is None:
            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which makes
            # glibc map and unmap every large array: torch features run 3.5x slower with it.
            with optional_import("dask", "dask").config.set(
                {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
            ):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=40)
            self.client = distributed.Client(self._cluster)
        else:
            try:
                self.client = distributed.Client(scheduler, timeout="20s")
            except OSError as exc:
                raise UnsegError(
                    f"cannot reach the Dask scheduler at {scheduler} ({exc}). Fix: check the "
                    "address (tcp://host:8786) and that the scheduler is running."
                ) from exc
        self.client.run(_limit_threads)
        self.workers = max(1, len(self.client.scheduler_info()["workers"]))

    def run(self, function: Callable[..., R], shared: Any,
            tasks: Iterable[tuple[K, tuple[Any, ...]]]) -> Iterator[tuple[K, R]]:
        """Yield ``(key, function(shared, *args))`` for each ``(key, args)`` as it completes."""
        from distributed import as_completed

        remote = self.client.scatter(shared, broadcast=True)
        tasks = iter(tasks)
        keys: dict[Any, Any] = {}
        pending = as_completed()

        def submit() -> bool:
            item = next(tasks, None)
            if item is None:
                return False
            key, args = item
            future = self.client.submit(function, remote, *args, pure=False)
            keys[future.key] = key
            pending.add(future)
            return True

        for _ in range(2 * self.workers):
            if not submit():
                break
        for future in pending:
            result = future.result()
            key = keys.pop(future.key)
            future.release()
            submit()
            yield key, result

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _limit_threads(dask_worker: Any) -> None:
    """On a worker: let torch use as many threads as the worker runs tasks."""
    import torch

    torch.set_num_threads(max(1, dask_worker.state.nthreads))
