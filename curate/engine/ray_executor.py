"""The Ray executor: the engine's part tasks as Ray Data `map_batches` on a Ray cluster (`pip install 'curate[ray]'`).

The engine hands every executor the same thing: a list of small, picklable part tasks (read a chunk of JSON
Lines, run a pass of row-local steps over one part of the row store, render or reject one part) and a
function to run on each. Here the tasks become a Ray Dataset, one task per block, and the function runs as
`map_batches` over it:

- row-local passes (`parallel=True`): stateless Ray tasks, `executor.num_cpus` CPUs each (default 1);
- passes holding a model step (`parallel=False`: embed, perplexity, judge, ...): an actor pool, with
  `executor.model_num_gpus` GPUs per actor (default: 1 when the cluster has GPUs, else 0) and
  `executor.model_concurrency` actors (default: as many as the GPUs allow, else 1);
- `executor.steps.<label>` ({num_cpus, num_gpus, concurrency}) sets those for one step's pass.

A step is built once per process (curate.engine.worker.StepSpec.build), so each actor loads the model once
for the whole pass.

Results come back in task order (Ray Data's `preserve_order`, checked here), so the run writes the same bytes
as the local executor. A task whose worker dies is run again by Ray (task retries; actors are restarted; up
to RETRIES times, then the run stops with a message);
an error raised by a step comes back as a value and is raised here as itself (a CurateError stays a clear
message, not a Ray traceback).

Global steps: a step that decides as a group-by (exact, MinHash and semantic dedup) runs as a hash shuffle on the cluster
(curate.engine.ray_global; `executor.global_steps: driver` keeps it on the driver); the others decide on the
driver over the keys the passes computed. Either way one global state, never per-worker. The selectors and
writing the run folder stay on the driver. Tasks name files, not rows: every node reads
and writes the row store, the step cache and the run's work folder by path, so those (and the driver's
working directory, where tasks run) must be on a filesystem every node shares.
"""

from __future__ import annotations

import logging
import os
import pickle
import traceback
import warnings
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

from curate.errors import CurateError

T = TypeVar("T")
R = TypeVar("R")

INSTALL = "pip install 'curate[ray]'"
# Ray Data retries a task whose worker died, and restarts a dead actor, for ever: a step that kills its
# worker every time (a segfault, a model too large for the node) would hang the run. A few tries get
# through a lost node or a killed worker; then the run stops with a message.
RETRIES = 3


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is part of the extra
    except ImportError:
        raise CurateError(f"executor: ray needs Ray Data, which is not installed: {INSTALL}", "executor.kind") from None
    return ray


@contextmanager
def _worker_errors(ray):
    """A task Ray gave up on is a CurateError with where to look, not a Ray traceback."""
    try:
        yield
    except (ray.exceptions.RayError, ray.data.exceptions.SystemException) as e:
        cause = getattr(e, "cause", None) or e.__cause__
        if isinstance(cause, CurateError):  # raised by a shuffle's task (ray_global): the message as it is
            raise CurateError(*cause.args) from None
        raise CurateError(f"a Ray worker failed and Ray gave up retrying its task ({type(e).__name__}: "
                          f"{_first_line(e)}); see the Ray logs (/tmp/ray/session_latest/logs), and run again "
                          "with smaller parts (executor.part_rows) if a worker ran out of memory") from None


class RayExecutor:
    kind = "ray"

    def __init__(self, spec):
        ray = _ray()
        self.spec = spec
        self._nodes: set[str] = set()  # the nodes that ran tasks, for the manifest's executor block
        self._global: dict[str, dict] = {}  # the global steps that ran as shuffles, and how (same block)
        self._own = not ray.is_initialized()  # a session someone else opened (a test, a notebook) stays open
        if self._own:
            self._connect(ray)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # results in task order: the same bytes as local
        ctx.enable_progress_bars = False  # the engine shows one bar per pass
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # "Starting execution of Dataset ..." per pass

    def _connect(self, ray) -> None:
        spec = self.spec
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
        try:
            if spec.address is None:  # a Ray instance on this machine, for this run
                from curate.engine.executor import resolve_workers

                ray.init(num_cpus=resolve_workers(spec.workers), **quiet)
            else:
                # An existing cluster runs the driver's curate code (shipped as a py_module), so no node
                # runs another version of a step; curate's dependencies must be installed on the nodes.
                import curate

                _check_reachable(spec.address)
                ray.init(address=spec.address, runtime_env={"py_modules": [os.path.dirname(curate.__file__)]},
                         **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = "a local Ray instance" if spec.address is None else f"the Ray cluster at {spec.address}"
            raise CurateError(f"could not start or reach {where}: {e}", "executor.address") from None

    def describe(self) -> dict:
        ray = _ray()
        res = ray.cluster_resources()
        return {"kind": self.kind, "address": self.spec.address, "nodes": len([n for n in ray.nodes() if n["Alive"]]),
                "nodes_used": len(self._nodes), "cpus": res.get("CPU", 0), "gpus": res.get("GPU", 0),
                "global_steps": {"on": self.spec.global_steps, **self._global}}

    def map(self, fn: Callable[[T], R], tasks: Iterable[T], parallel: bool = True, n: int | None = None,
            steps: tuple[str, ...] = ()) -> Iterator[R]:
        """fn(task) for each task on the cluster, results in task order. `parallel=False` (a pass with a
        model step) runs on an actor pool that keeps the model loaded between tasks. `steps`: the labels of
        the pass's steps, whose `executor.steps` resources it asks for."""
        ray = _ray()
        items = [{"i": i, "task": pickle.dumps(task, protocol=5)} for i, task in enumerate(tasks)]
        if not items:
            return
        ds = ray.data.from_items(items, override_num_blocks=len(items))  # one task per block
        args = (fn, os.getcwd())
        with warnings.catch_warnings():
            # Ray 2.60 deprecates extra remote args but has no named parameter for retries yet
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
            if parallel:
                cpus, _, concurrency = self.task_resources(steps)
                ds = ds.map_batches(_run_tasks, fn_args=args, batch_size=1, batch_format="pyarrow", num_cpus=cpus,
                                    concurrency=concurrency, max_retries=RETRIES)
            else:
                cpus, gpus, actors = self.model_resources(len(items), steps)
                ds = ds.map_batches(_ModelWorker, fn_args=args, batch_size=1, batch_format="pyarrow",
                                    num_cpus=cpus, num_gpus=gpus, concurrency=actors, max_restarts=RETRIES,
                                    max_task_retries=RETRIES)
        expected = 0
        with _worker_errors(ray):
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1):
                self._nodes.update(batch.column("node").to_pylist())
                for i, blob in zip(batch.column("i").to_pylist(), batch.column("result").to_pylist()):
                    if i != expected:  # would break byte-identity: never let it pass silently
                        raise RuntimeError(f"Ray returned part task {i} where {expected} was expected")
                    expected += 1
                    yield unwrap(blob)

    @property
    def shuffles(self) -> bool:
        """Do global steps that can decide as a group-by run as shuffles on the cluster (executor.global_steps)?"""
        return self.spec.global_steps == "cluster"

    def run_grouping(self, grouping, label: str):
        """A global step's group-by as a hash shuffle on the cluster (curate.engine.ray_global): its results."""
        from curate.engine.ray_global import run_grouping

        ray = _ray()
        with _worker_errors(ray):
            results, ran = run_grouping(grouping, ray.cluster_resources().get("CPU", 1))
        self._global[label] = ran
        return results

    def task_resources(self, steps: tuple[str, ...] = ()) -> tuple[float, float | None, int | None]:
        """(CPUs, GPUs, concurrency) the steps' `executor.steps` entries set for a pass: the most CPUs and
        GPUs any of them asks for (the pass runs them in one task), the fewest tasks or actors at once;
        CPUs default to executor.num_cpus (1), the others to None (unset)."""
        own = [self.spec.steps[s] for s in steps if s in self.spec.steps]
        cpus = max([r.num_cpus for r in own if r.num_cpus is not None], default=self.spec.num_cpus or 1)
        gpus = max([r.num_gpus for r in own if r.num_gpus is not None], default=None)
        concurrency = min([r.concurrency for r in own if r.concurrency is not None], default=None)
        return cpus, gpus, concurrency

    def model_resources(self, tasks: int, steps: tuple[str, ...] = ()) -> tuple[float, float, int]:
        """(CPUs, GPUs per model actor, actors): the steps' or the executor's values, else one GPU per actor
        on a cluster with GPUs (as many actors as GPUs), else one CPU actor."""
        spec = self.spec
        cpus, gpus, actors = self.task_resources(steps)
        cluster_gpus = self._cluster_gpus()
        if gpus is None:
            gpus = spec.model_num_gpus if spec.model_num_gpus is not None else (1.0 if cluster_gpus >= 1 else 0.0)
        if gpus > cluster_gpus:  # Ray Data would wait for such an actor for ever
            raise CurateError(f"a model actor asks for {gpus:g} GPUs and the cluster has {cluster_gpus:g}; set "
                              "executor.model_num_gpus (or executor.steps.<step>.num_gpus) to what one node has "
                              "(0 runs models on CPUs)", "executor.model_num_gpus")
        actors = actors or spec.model_concurrency or (max(1, int(cluster_gpus // gpus)) if gpus else 1)
        return cpus, gpus, max(1, min(actors, tasks))

    def _cluster_gpus(self) -> float:
        return _ray().cluster_resources().get("GPU", 0)

    def close(self) -> None:
        if self._own:
            _ray().shutdown()
            self._own = False


def _check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing listens on fails here in seconds; Ray itself would
    retry for minutes. `auto` is left to Ray."""
    import socket
    from urllib.parse import urlparse

    if address == "auto":
        return
    url = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        host, port = url.hostname, url.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise CurateError(f"{address!r} is not a Ray address: give auto, HOST:PORT or ray://HOST:PORT",
                          "executor.address")
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        raise CurateError(f"nothing answers at {host}:{port} ({e.strerror or e}): is the Ray cluster started "
                          "(`ray start --head`), and is this its address?", "executor.address") from None


# -- on the workers -----------------------------------------------------------------------------------------


def at_driver_cwd(cwd: str) -> None:
    """Work in the driver's working directory: paths in tasks may be relative to it (outputs.dir, cache.dir)."""
    if os.getcwd() != cwd:
        try:
            os.chdir(cwd)
        except OSError:
            pass  # then the first path in a task fails, with the shared-filesystem hint (not_shared)


def not_shared(e: FileNotFoundError) -> CurateError:
    """A file a task cannot see: the folders are not on a filesystem every node shares."""
    import socket

    return CurateError(f"{e.filename or e} is not there on the Ray node {socket.gethostname()}: on a Ray cluster "
                       "the output, work and cache folders (and the working directory) must be on a filesystem "
                       "every node shares")


def _run_tasks(batch, fn, cwd: str):
    """map_batches' function: run fn on each task of the batch, results as pickled values."""
    import pyarrow as pa

    at_driver_cwd(cwd)
    import ray

    out = [_call(fn, pickle.loads(blob)) for blob in batch.column("task").to_pylist()]
    node = ray.get_runtime_context().get_node_id()
    return pa.table({"i": batch.column("i"), "node": pa.array([node] * len(out), pa.string()),
                     "result": pa.array(out, pa.large_binary())})


class _ModelWorker:
    """An actor of the pool that runs a pass with a model step: the step (and its model) is built on the
    first task and kept for the rest (StepSpec.build caches it per process)."""

    def __call__(self, batch, fn, cwd: str):
        return _run_tasks(batch, fn, cwd)


def _call(fn, task) -> bytes:
    """fn(task) as ("ok", result) or ("error", exception, traceback), pickled: a step's error travels as a
    value, so Ray does not retry it and the driver raises the step's own exception."""
    try:
        return pickle.dumps(("ok", fn(task)), protocol=5)
    except Exception as e:  # noqa: BLE001 - every error goes back to the driver
        return error_blob(e)


def error_blob(e: Exception) -> bytes:
    """The error being handled, as ("error", exception, traceback) pickled (see unwrap); a file the node
    cannot see becomes the shared-filesystem message."""
    tb = traceback.format_exc()
    if isinstance(e, FileNotFoundError):
        e = not_shared(e)
    try:
        return pickle.dumps(("error", e, tb), protocol=5)
    except Exception:  # noqa: BLE001 - an exception that cannot be pickled: its text
        return pickle.dumps(("error", RuntimeError(f"{type(e).__name__}: {e}"), tb), protocol=5)


# -- on the driver --------------------------------------------------------------------------------------------


class RemoteTraceback(Exception):
    """Where a task's error was raised on its Ray worker (the __cause__ of the error raised here)."""

    def __str__(self) -> str:
        return "\n" + self.args[0]


def unwrap(blob: bytes):
    status, *rest = pickle.loads(blob)
    if status == "ok":
        return rest[0]
    error, tb = rest
    raise error from RemoteTraceback(tb)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
