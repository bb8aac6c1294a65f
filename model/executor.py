"""One seam for running many independent model runs: in this process, on local cores,
or on a Dask cluster.

Every job that runs the model more than once (replicates, comparisons, calibration)
hands its tasks to ``run_tasks``. Seeds belong to the tasks, never to the workers, so a
task's result is the same whichever executor ran it.

Local processes use the ``spawn`` start method: importing mesa switches the process to
it anyway, and it is safe with threaded numerical libraries. Starting a pool costs
about a second, so a job keeps one pool for all its tasks (``executor`` below).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from typing import Any

from tqdm.auto import tqdm

from .errors import MpsimError

DASK_ENV = "MPSIM_DASK_ADDRESS"


class _InProcess:
    """Runs tasks one after another in this process (``workers=1``)."""

    def submit(self, fn, *args):
        from concurrent.futures import Future

        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed back to the caller through the future
            future.set_exception(exc)
        return future


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def executor(workers: int | None = None, dask_address: str | None = None) -> Iterator[Any]:
    """An executor for a whole job: in-process, a local process pool, or Dask.

    ``dask_address`` (or the ``MPSIM_DASK_ADDRESS`` environment variable) names a
    running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
    """
    where = f"--dask {dask_address}" if dask_address else None
    if not dask_address and os.environ.get(DASK_ENV):
        dask_address = os.environ[DASK_ENV]
        where = f"{DASK_ENV}={dask_address}"
    if dask_address:
        try:
            from distributed import Client
        except ImportError:
            raise MpsimError(f"{where}: the Dask scheduler needs the 'distributed' "
                             "package; install it with: pip install 'mpsim[dask]'") from None
        try:
            client = Client(dask_address, timeout="10s")
        except OSError as exc:
            raise MpsimError(f"{where}: cannot reach the Dask scheduler: {exc}") from None
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
        return
    workers = workers or default_workers()
    if workers < 1:
        raise MpsimError(f"--workers {workers}: must be at least 1")
    if workers == 1:
        yield _InProcess()
        return
    pool: Executor = ProcessPoolExecutor(max_workers=workers,
                                         mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_tasks(fn: Callable[[Any], Any], tasks: Iterable[Any], pool, *,
              desc: str = "runs", progress: bool = True,
              on_result: Callable[[Any], None] | None = None) -> list[Any]:
    """Run ``fn(task)`` for every task on ``pool``; results in task order.

    A progress bar counts finished tasks; ``on_result`` is called with each result as
    it arrives. The first failure cancels what has not started and is raised.
    """
    tasks = list(tasks)
    futures = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
    results: list[Any] = [None] * len(tasks)
    with tqdm(total=len(tasks), desc=desc, unit="run", disable=not progress,
              leave=False, dynamic_ncols=True) as bar:
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
                if on_result is not None:
                    on_result(results[futures[future]])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results
