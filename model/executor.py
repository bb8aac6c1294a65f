"""One seam for running many independent model runs: in this process, on local cores,
or on a Dask cluster.

Every job that runs the model more than once (replicates, comparisons, calibration)
hands its tasks to ``run_tasks``. Seeds belong to the tasks, never to the workers, so a
task's result is the same whichever executor ran it.

Local processes use the ``spawn`` start method: importing mesa switches the process to
it anyway, and it is safe with threaded numerical libraries. Starting a pool costs
about a second, so a job keeps one pool for all its tasks (``executor`` below).

Workers never outlive the process that started them, whatever ends it:

* each worker asks the kernel to kill it when its parent dies (Linux
  ``PR_SET_PDEATHSIG``, through ``prctl``), and a watchdog thread in each worker ends it
  as soon as its parent's pid changes (every system), so a SIGKILL or an out-of-memory
  kill of the main process leaves no worker running (or holding its stdout open);
* workers ignore Ctrl-C (SIGINT goes to the whole terminal process group): the main
  process alone handles it. They start with SIGINT blocked, so a Ctrl-C during their
  start-up cannot print a traceback either;
* when the job fails or is interrupted, the pool's workers are terminated at once
  rather than left to finish their runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
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


#: How often a worker's watchdog checks that its parent is alive (seconds).
WATCH_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent:  # re-parented: the process that started us is gone
            os._exit(1)


def _worker_start(parent: int, death_signal: bool) -> None:
    """Pool initializer: ignore Ctrl-C, die with the parent (module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # blocked by the parent while it started us
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if death_signal and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone does it
            pass
    if os.getppid() != parent:  # the parent died before the death signal was set
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="mpsim-watch-parent").start()
    # One BLAS thread per worker: the workers already use every core, and threaded BLAS
    # on top of them oversubscribes the machine (a Gaussian-process fit ran 7x slower).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


class WorkerPool(ProcessPoolExecutor):
    """A spawn process pool whose workers die with this process (module docstring).

    All workers start at once, with SIGINT blocked meanwhile: a Ctrl-C then waits
    (pending, not lost) until they are started and ignore it.
    """

    def __init__(self, workers: int):
        # The kernel's death signal follows the thread that started the worker: use it
        # only when that is the main thread, which lives as long as the process.
        on_main = threading.current_thread() is threading.main_thread()
        super().__init__(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                         initializer=_worker_start, initargs=(os.getpid(), on_main))
        launch = getattr(self, "_launch_processes", None)
        if launch is None:  # a Python without it starts workers on first use
            return
        masked = on_main and hasattr(signal, "pthread_sigmask")
        if masked:
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            launch()
        finally:
            if masked:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def terminate_workers(self) -> None:
        """End every worker now (SIGTERM), whatever it is running."""
        for process in list(getattr(self, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                process.terminate()


#: How long to wait for a Dask scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = "10s"


def _dask_client(dask_address: str, where: str):
    try:
        from distributed import Client
    except ImportError:
        raise MpsimError(f"{where}: the Dask scheduler needs the 'distributed' "
                         "package; install it with: pip install 'mpsim[dask]'") from None
    try:
        return Client(dask_address, timeout=CONNECT_TIMEOUT)
    except (ValueError, TypeError) as exc:  # a malformed address
        raise MpsimError(f"{where}: not a Dask scheduler address ({exc}); expected "
                         "one like tcp://HOST:8786") from None
    except OSError as exc:
        raise MpsimError(f"{where}: cannot reach the Dask scheduler: {exc}") from None


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
        client = _dask_client(dask_address, where)
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
    pool = WorkerPool(workers)
    try:
        yield pool
    except BaseException:  # failed or interrupted: do not wait for running tasks
        pool.terminate_workers()
        raise
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
