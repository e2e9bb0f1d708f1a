"""A global filter's decision as a chain of group-bys, which one process or a cluster can run alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pyarrow as pa


@dataclass
class Grouping:
    """A global filter's decision as a chain of group-bys (exact dedup: rows grouped by digest, one kept per
    group; MinHash: band buckets -> candidate pairs, then pairs -> verified edges).

    `rows` holds one row per row to group (its position in the step's table as `_pos`, plus what the stages
    need); `expand` (optional, row-local) turns a batch of them into the first stage's rows (MinHash: one row
    per band, ~`fanout` rows per row). Every stage's input carries `_hash` (uint64, equal within a group);
    a stage gets a table holding whole groups (any number of them) and returns its results, which carry
    `_hash` again for the next stage. `finish(results)` turns the last stage's results, in any order, into
    the step's decisions. In one process that is `decide()`; on a cluster the engine hash-partitions each
    stage's input on `_hash` and runs the stage on each partition in parallel: the same results, since a
    stage sees whole groups either way. Stages and `expand` must be picklable (module-level functions or
    functools.partial of them)."""

    rows: pa.Table
    stages: tuple[Callable[[pa.Table], pa.Table], ...]
    finish: Callable[[pa.Table], list]
    expand: Callable[[pa.Table], pa.Table] | None = None
    fanout: int = 1  # rows `expand` makes of one row: sizes the cluster's partitions
    partition_rows: int | None = None  # a cluster's partition holds about this many rows (None: the engine's)

    def decide(self) -> list:
        return self.finish(self.results(self.rows))

    def results(self, rows: pa.Table) -> pa.Table:
        """The last stage's results for `rows` (whole groups), in one process."""
        table = self.expand(rows) if self.expand is not None else rows
        for stage in self.stages:
            table = stage(table)
        return table
