"""Global steps as distributed jobs on a Ray cluster: a step's decision as a hash shuffle, one global state.

A global filter that can say its decision as a group-by (`Grouping`, curate/steps/base.py: exact dedup's
rows grouped by digest) runs here as a Ray Data job: its rows are hash-partitioned on the group's hash into
`partitions(n)` partitions (`groupby` on the partition number: a shuffle across the nodes, never a dedup per
worker), the step's own vectorised `groups` function decides each partition in a task, and only the results
(the dropped rows: position, kept row, group size) come back to the driver, which finishes as in one
process. The step's code decides in both executors, so the decisions are the same by construction.

Memory: the driver still gathers the keys from the row passes (exact dedup: 16 + 8 bytes a row) and builds
the shuffle's rows (~32 bytes a row); the grouping itself (sort, group boundaries, the keep policy) runs on the
workers, ~PARTITION_ROWS rows a task, and the driver holds the dropped rows' results (24 bytes each).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

PARTITION_ROWS = 1_000_000  # rows per shuffle partition (~40 MB of exact-dedup rows for one task)
PART = "_partition"


def partitions(rows: int, cpus: float) -> int:
    """Partitions for a shuffle of `rows`: two per CPU (so every CPU has work), more when each would hold
    more than PARTITION_ROWS."""
    return max(2 * max(int(cpus), 1), math.ceil(rows / PARTITION_ROWS))


def run_grouping(grouping, cpus: float) -> tuple[pa.Table, dict]:
    """`grouping.groups` over hash partitions of `grouping.rows` on the cluster: the results, concatenated
    (in no particular order), and what ran (for the manifest's executor block)."""
    import ray

    rows = grouping.rows
    n = rows.num_rows
    if n == 0:  # nothing to shuffle: the same function on the empty table
        return grouping.groups(rows), {"shuffle": "none (no rows)", "rows": 0}
    parts = partitions(n, cpus)
    part = (np.asarray(grouping.partition, dtype=np.uint64) % np.uint64(parts)).astype(np.int64)
    rows = rows.append_column(PART, pa.array(part))
    per_block = math.ceil(n / parts)
    blocks = [rows.slice(lo, per_block) for lo in range(0, n, per_block)]
    ds = ray.data.from_arrow(blocks)
    done = ds.groupby(PART, num_partitions=parts).map_groups(_decide_partition, fn_args=(grouping.groups,),
                                                              batch_format="pyarrow")
    results = [pa.Table.from_batches([b]) if isinstance(b, pa.RecordBatch) else b
               for b in done.iter_batches(batch_size=None, batch_format="pyarrow")]
    empty = grouping.groups(grouping.rows.slice(0, 0))  # the results' schema, for a run where none came back
    results = [t.select(empty.column_names).cast(empty.schema) for t in results if t.num_rows]
    return pa.concat_tables([empty, *results]), {"shuffle": "hash", "rows": n, "partitions": parts}


def _decide_partition(batch: pa.Table, groups) -> pa.Table:
    """map_groups' function: one hash partition (whole groups), decided by the step's own function."""
    return groups(batch.drop_columns([PART]))
