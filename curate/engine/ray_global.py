"""Global steps as distributed jobs on a Ray cluster: a step's decision as hash shuffles, one global state.

A global filter that can say its decision as a chain of group-bys (`Grouping`, curate/steps/base.py) runs
here as a Ray Data job, never as a dedup per worker:

- its rows (built on the driver from the keys the passes computed) go to the cluster in a few blocks; an
  optional row-local `expand` makes the first stage's rows there (MinHash: one row per band; semantic
  dedup: one row per probed cluster, with the row's vector);
- each stage is a shuffle: every row goes to partition `_hash % parts` (Ray Data `groupby` on that number),
  and one task runs the step's own vectorised stage function over each partition (whole groups);
- only the last stage's results come back to the driver (exact dedup: the dropped rows; MinHash: the
  linked pairs; semantic dedup: the similar pairs), where the step finishes as in one process.

The step's code decides in both executors, and a stage sees whole groups however the rows are partitioned,
so the decisions are the local executor's (tests/engine/test_ray_global.py cuts the stages into 1, 3 and 8
partitions and runs them on Ray).

Memory: the driver gathers the keys from the row passes (as before) and builds the first stage's rows (exact
dedup ~32 B/row; MinHash 8 B/row of positions; semantic dedup its vectors, 4 B a dimension) and stores each
large array a stage takes once in the object store (MinHash's signatures, 512 B/row: one copy, read in place
by the tasks); the grouping, the candidate pairs and their verification run on the workers, ~PARTITION_ROWS
rows a task (fewer where the grouping's rows are larger: `Grouping.partition_rows`).
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from functools import partial

import numpy as np
import pyarrow as pa

PARTITION_ROWS = 1_000_000  # rows per shuffle partition (~40 MB of exact-dedup rows for one task)
PART = "_partition"
ERROR = "_error"


def partitions(rows: int, cpus: float, per_partition: int | None = None) -> int:
    """Partitions for a shuffle of `rows`: two per CPU (so every CPU has work), more when each would hold
    more than `per_partition` rows (PARTITION_ROWS unless the grouping's rows are larger: semantic dedup's
    vectors)."""
    return max(2 * max(int(cpus), 1), math.ceil(rows / (per_partition or PARTITION_ROWS)))


def run_grouping(grouping, cpus: float) -> tuple[pa.Table, dict]:
    """The grouping's stages on the cluster, each a hash shuffle on `_hash` (Ray Data `groupby` on a partition
    number) with the stage run once per partition: the last stage's results, concatenated in no particular
    order, and what ran (for the manifest's executor block)."""
    import ray

    rows = grouping.rows
    n = rows.num_rows
    if n == 0:  # nothing to shuffle: the same functions on the empty table
        return grouping.results(rows), {"shuffles": 0, "rows": 0}
    parts = partitions(n * grouping.fanout, cpus, grouping.partition_rows)
    with _sort_shuffle(ray):
        results, stored = _run(ray, grouping, rows, parts, cpus)
    ran = {"shuffles": len(grouping.stages), "rows": n, "partitions": parts, "stored_arrays": stored}
    return (pa.concat_tables(results) if results else grouping.results(rows.slice(0, 0))), ran


@contextmanager
def _sort_shuffle(ray):
    """Ray Data's pull-based sort shuffle for these jobs: plain tasks, where its hash shuffle starts
    aggregator actors (measured on the test machine: 0.14 s against 3.8 s for one small shuffle, which made a
    run's few dedup steps a minute slower). The rows still go to partitions by their hash: the sort only
    routes each partition number to one task."""
    from ray.data.context import ShuffleStrategy

    ctx = ray.data.DataContext.get_current()
    before = ctx.shuffle_strategy
    ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        yield
    finally:
        ctx.shuffle_strategy = before


def _run(ray, grouping, rows: pa.Table, parts: int, cpus: float) -> tuple[list[pa.Table], int]:
    n = rows.num_rows
    per_block = math.ceil(n / (2 * max(int(cpus), 1)))  # the input in a few blocks: every CPU expands some
    ds = ray.data.from_arrow([rows.slice(lo, per_block) for lo in range(0, n, per_block)])
    stored: dict[int, object] = {}
    cwd = os.getcwd()  # a stage may read the row store (MinHash's texts), by paths relative to it
    if grouping.expand is not None:
        ds = ds.map_batches(_expand, fn_args=(_by_ref(ray, grouping.expand, stored), parts, cwd), batch_size=None,
                            batch_format="pyarrow")
    else:
        ds = ds.map_batches(_partitioned, fn_args=(parts,), batch_size=None, batch_format="pyarrow")
    for k, stage in enumerate(grouping.stages):
        last = k == len(grouping.stages) - 1
        ds = ds.groupby(PART, num_partitions=parts).map_groups(
            _run_stage, fn_args=(_by_ref(ray, stage, stored), None if last else parts, cwd), batch_format="pyarrow")
    results = [t for t in (_table(b) for b in ds.iter_batches(batch_size=None, batch_format="pyarrow")) if t.num_rows]
    for t in results:
        if ERROR in t.column_names:  # a stage's error, sent back as a value: raised here as itself
            from curate.engine.ray_executor import unwrap

            unwrap(t.column(ERROR)[0].as_py())
    return results, len(stored)


SHARED_BYTES = 1 << 20  # an array argument this large goes to the object store once, by reference


class _Stored:
    """An array argument of a stage, in Ray's object store (one copy, read in place by every task)."""

    def __init__(self, ref):
        self.ref = ref


def _by_ref(ray, fn, stored: dict[int, object]):
    """`fn` (a functools.partial) with its large array arguments (MinHash's signatures) replaced by references
    to one stored copy each: otherwise Ray Data would store a copy with every stage that takes them."""
    if not isinstance(fn, partial):
        return fn
    kwargs = {}
    for name, value in fn.keywords.items():
        if isinstance(value, np.ndarray) and value.nbytes >= SHARED_BYTES:
            if id(value) not in stored:
                stored[id(value)] = _Stored(ray.put(value))
            value = stored[id(value)]
        kwargs[name] = value
    return partial(fn.func, *fn.args, **kwargs)


def _resolved(fn):
    """`fn` with its stored arguments read back from the object store (zero-copy for numpy arrays)."""
    if not isinstance(fn, partial) or not any(isinstance(v, _Stored) for v in fn.keywords.values()):
        return fn
    import ray

    kwargs = {k: ray.get(v.ref) if isinstance(v, _Stored) else v for k, v in fn.keywords.items()}
    return partial(fn.func, *fn.args, **kwargs)


def _table(batch) -> pa.Table:
    return pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch


# -- on the workers -----------------------------------------------------------------------------------------


def _partitioned(table: pa.Table, parts: int) -> pa.Table:
    """The table with its rows' partition (`_hash` mod parts): what the next shuffle groups on."""
    part = (table.column("_hash").to_numpy() % np.uint64(parts)).astype(np.int64)
    return table.append_column(PART, pa.array(part))


def _expand(batch: pa.Table, expand, parts: int, cwd: str) -> pa.Table:
    """map_batches' function: the step's row-local expansion of a batch (MinHash: one row per band)."""
    return _partitioned(_step_code(expand, batch, cwd), parts)


def _run_stage(batch: pa.Table, stage, parts: int | None, cwd: str) -> pa.Table:
    """map_groups' function: one hash partition (whole groups) through the step's stage; its results get
    their partition for the next stage (`parts`), if there is one."""
    out = _step_code(stage, batch.drop_columns([PART]), cwd)
    return out if parts is None else _partitioned(out, parts)


def _step_code(fn, table: pa.Table, cwd: str) -> pa.Table:
    """fn(table) in the driver's working directory. An error comes back as a value (a one-row table with the
    pickled error, which later stages pass on), as a part task's does: so the driver raises the step's own
    exception (a file the node cannot see: the shared-filesystem message), not Ray's wrapping of it."""
    from curate.engine.ray_executor import at_driver_cwd, error_blob

    if ERROR in table.column_names:
        return table.slice(0, 1)
    at_driver_cwd(cwd)
    try:
        return _resolved(fn)(table)
    except Exception as e:  # noqa: BLE001 - every error goes back to the driver
        return pa.table({ERROR: pa.array([error_blob(e)], pa.large_binary()), "_hash": pa.array([0], pa.uint64())})
