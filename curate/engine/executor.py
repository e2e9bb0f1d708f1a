"""The local executor: runs the engine's part tasks in this process or in a pool of worker processes.

`workers: 1` runs everything in-process (for debugging: breakpoints work, tracebacks are plain).
`workers: auto` uses one process per core once a pass has enough parts to gain from them; a small run (the
quickstart) stays in-process, where starting processes would cost more than it saves. Results always come
back in part order, so the output bytes do not depend on the number of workers.

Workers are started with `forkserver` (`spawn` where that does not exist): never `fork`, whose copy of a
process with running threads (pyarrow's, torch's) can deadlock.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, TypeVar

from curate.errors import CurateError

T = TypeVar("T")
R = TypeVar("R")

MIN_PARTS = 3  # a pass over fewer parts than this runs in-process


def resolve_workers(workers: int | str | None) -> int:
    if workers in (None, "auto"):
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return max(1, int(workers))


class LocalExecutor:
    kind = "local"

    def __init__(self, workers: int | str | None = "auto"):
        self.workers = resolve_workers(workers)
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> dict:
        return {"kind": self.kind, "workers": self.workers}

    def map(self, fn: Callable[[T], R], tasks: Iterable[T], parallel: bool = True, n: int | None = None,
            steps: tuple[str, ...] = ()) -> Iterator[R]:
        """fn(task) for each task, results in order. `parallel=False` (a step holding a model) or a small
        pass runs in this process; otherwise at most 2 tasks per worker are in flight, so memory stays
        bounded however many parts there are. `steps` (the labels of the pass's steps) matters only on Ray."""
        tasks = list(tasks) if n is None else tasks
        count = len(tasks) if n is None else n
        if not parallel or self.workers == 1 or count < MIN_PARTS:
            for task in tasks:
                yield fn(task)
            return
        pool = self._get_pool()
        window: deque = deque()
        try:
            for task in tasks:
                window.append(pool.submit(fn, task))
                if len(window) >= 2 * self.workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        except BrokenProcessPool:
            self._pool = None
            raise CurateError("a worker process died (killed by the system: out of memory?); run again with fewer "
                              "workers (--workers) or smaller parts (executor.part_rows)") from None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            if ctx.get_start_method() == "forkserver":
                ctx.set_forkserver_preload(["curate.engine.forkserver_guard", "curate.engine.worker", "curate.steps.registry"])
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _init_worker() -> None:
    # One compute thread per worker process (numpy, torch if a step imports it): the processes already
    # use every core.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    die_with_parent()


def die_with_parent() -> None:
    """On Linux, a worker is killed when its parent goes (a run killed by SIGKILL must not leave workers
    behind): prctl(PR_SET_PDEATHSIG, SIGKILL)."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
