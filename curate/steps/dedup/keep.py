"""Which row of a duplicate group survives: the keep policy shared by the deduplicators.

`keep: first` keeps the earliest row, `longest` the row with the most characters across all its
messages, `highest` the row with the highest value in `score_column` (NaN or missing scores rank
last). Ties always go to the earliest row, so the choice is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curate.errors import CurateError, did_you_mean
from curate.steps.base import GlobalFilter, StepParams, as_table, numbers

KeepRule = Literal["first", "longest", "highest"]


class KeepPolicy(StepParams):
    """Params mixin: `keep` (first | longest | highest) and, for highest, `score_column`."""

    keep: KeepRule = "first"
    score_column: str | None = None
    alarm_share: float = Field(0.5, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _score_column_for_highest(self):
        if self.keep == "highest" and not self.score_column:
            raise ValueError("keep: highest needs score_column (the score that decides which duplicate stays)")
        return self


def choose_kept(
    groups: Sequence[Sequence[int]],
    keep: KeepRule = "first",
    *,
    lengths: Sequence[float] | np.ndarray | None = None,
    scores: Sequence[float] | np.ndarray | None = None,
) -> list[tuple[int, list[int]]]:
    """For each group of duplicate row indices, `(kept index, dropped indices in row order)`.

    `lengths` (for longest) and `scores` (for highest) are indexed by row index, so they cover every
    row that appears in a group. NaN / None scores rank below every number.
    """
    if keep == "longest" and lengths is None:
        raise ValueError("keep='longest' needs lengths")
    if keep == "highest" and scores is None:
        raise ValueError("keep='highest' needs scores")
    members = [m for m in (sorted({int(i) for i in g}) for g in groups) if m]
    rows = np.asarray([i for m in members for i in m], dtype=np.int64)
    group = np.repeat(np.arange(len(members)), [len(m) for m in members])
    # positions in `rows` stand for the rows: in row order within each group, so ties still go to the earliest
    table = {"_pos": np.arange(len(rows)), "_group": group}
    if keep == "longest":
        table["length"] = np.asarray([lengths[i] for i in rows], dtype=np.float64)
    elif keep == "highest":
        table["score"] = np.asarray([math.nan if scores[i] is None else float(scores[i]) for i in rows], dtype=np.float64)
    decided = keep_groups(pa.table(table), keep, ("_group",))
    kept = [m[0] for m in members]  # a group of one keeps its row
    dropped: list[list[int]] = [[] for _ in members]
    for at, by in zip(decided.column("_pos").to_pylist(), decided.column("kept").to_pylist()):
        kept[group[at]] = int(rows[by])
        dropped[group[at]].append(int(rows[at]))
    return [(k, sorted(d)) for k, d in zip(kept, dropped)]


def keep_groups(rows: pa.Table, keep: KeepRule, by: tuple[str, ...]) -> pa.Table:
    """`choose_kept` vectorised over a table holding whole groups (rows with equal `by` columns): for each
    row that is not kept, its `_pos`, the `kept` row's `_pos` and the group's `size`. The rows carry `length`
    (keep: longest) or `score` (keep: highest, NaN for a missing one). The same decisions whichever groups
    share the table and in whatever order its rows come: what lets a cluster decide per hash partition."""
    pos = rows.column("_pos").to_numpy()
    if keep == "longest":
        policy = [-rows.column("length").to_numpy().astype(np.float64)]
    elif keep == "highest":
        score = rows.column("score").to_numpy()
        missing = np.isnan(score)
        policy = [-np.where(missing, -np.inf, score), missing]  # a real score before NaN, then the highest
    else:
        policy = []
    group = [rows.column(c).to_numpy() for c in by]
    order = np.lexsort((pos, *policy, *reversed(group)))  # by group, then the best row first, ties: earliest
    n = len(order)
    same = np.ones(max(n - 1, 0), dtype=bool)  # each sorted row is in the group of the row before it
    for g in group:
        same &= g[order][1:] == g[order][:-1]
    new = np.concatenate([[True], ~same]) if n else np.zeros(0, dtype=bool)
    head = np.flatnonzero(new)
    size = np.diff(np.append(head, len(order)))
    which = np.cumsum(new) - 1  # each sorted row's group
    dropped = ~new
    kept = pos[order][head]
    return pa.table({"_pos": pa.array(pos[order][dropped], pa.int64()),
                     "kept": pa.array(kept[which[dropped]], pa.int64()),
                     "size": pa.array(size[which[dropped]], pa.int64())})


def _rank_score(v) -> tuple[int, float]:
    # (0, ...) sorts below (1, ...): a missing score loses to any real one, even -inf
    if v is None:
        return (0, 0.0)
    f = float(v)
    return (0, 0.0) if math.isnan(f) else (1, f)


def conversation_lengths(messages: Sequence[list[dict]]) -> np.ndarray:
    """Characters across all messages of each row (what keep: longest compares)."""
    return np.asarray([sum(len(m["content"] or "") for m in msgs) for msgs in messages], dtype=np.int64)


def score_values(table: pa.Table, column: str, where: str | None) -> np.ndarray:
    """The score column as float64 (None as NaN); a missing or non-numeric column is the user's error."""
    table = as_table(table)
    if column not in table.column_names:
        raise CurateError(
            f"keep: highest needs the score column {column!r}, which is not in the data"
            f"{did_you_mean(column, table.column_names)}; add the scorer that writes it before this step "
            f"(columns here: {', '.join(table.column_names)})",
            where,
        )
    return numbers(table, column, where, "pick the row to keep")


class KeepFilter(GlobalFilter):
    """A deduplicator: `keep` decides which row of a group stays, from the rows' lengths (a key computed
    row-locally) or a score column (read). It reports its largest clusters, and raises an alarm (a note,
    a warning in the funnel and the card) when it drops more than `alarm_share` of any source's rows."""

    def reads(self) -> dict[str, str]:
        out = {"source": "source"}
        return {**out, "score_column": self.params.score_column} if self.params.keep == "highest" else out

    def priority(self, table: pa.Table, keys: dict) -> np.ndarray:
        """Each row's rank under the keep policy (0 is kept first); ties go to the earlier row."""
        n = table.num_rows
        policy = self.params
        if policy.keep == "longest":
            order = np.lexsort((np.arange(n), -np.asarray(keys["length"], dtype=np.float64)))
        elif policy.keep == "highest":
            scores = score_values(table, policy.score_column, self.ctx.where)
            missing = np.isnan(scores)
            order = np.lexsort((np.arange(n), -np.where(missing, -np.inf, scores), missing))
        else:
            return np.arange(n)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        return rank

    def fetch(self, table: pa.Table, indices: np.ndarray, columns: list[str]) -> pa.Table:
        """Columns of some rows: from the run's store when the engine runs the step (`ctx.fetch`), else from
        `table` itself."""
        if self.ctx.fetch is not None:
            return self.ctx.fetch(indices, columns)
        return table.take(pa.array(indices, pa.int64())).select(columns)

    def note_clusters(self, decided: list[tuple[int, list]], table: pa.Table | None = None) -> None:
        self.note_sizes([len(dropped) + 1 for _, dropped in decided])

    def note_sizes(self, sizes) -> None:
        """The clusters' count and the five largest sizes, for the manifest."""
        sizes = sorted((int(s) for s in sizes), reverse=True)
        self.ctx.notes.update({"clusters": len(sizes), "largest_clusters": sizes[:5]})

    def policy_columns(self, table: pa.Table, keys: dict, pos: np.ndarray) -> dict[str, np.ndarray]:
        """What `keep_groups` needs of the rows `pos` besides their group: `length` or `score`. The score
        column is checked even when no row is grouped, so a typo in a recipe fails on every run rather than only
        on data that happens to hold duplicates."""
        policy = self.params
        if policy.keep == "highest":
            return {"score": score_values(table, policy.score_column, self.ctx.where)[pos]}
        if policy.keep == "longest":
            return {"length": np.asarray(keys["length"])[pos]}
        return {}

    def check_alarm(self, table: pa.Table, decisions: list) -> None:
        """Note (and so warn) when the step drops more than alarm_share of a source's rows."""
        if "source" not in table.column_names:
            return
        # counted by Arrow: no Python string per row (on a 100M-row pool the driver's largest cost here)
        dropped = np.fromiter((d is not None for d in decisions), dtype=bool, count=len(decisions))
        counts = pa.table({"source": table.column("source"), "dropped": dropped}).group_by("source").aggregate(
            [("dropped", "count"), ("dropped", "sum")]).to_pylist()
        alarm = {c["source"]: {"dropped": int(c["dropped_sum"]), "rows": int(c["dropped_count"]),
                               "share": round(c["dropped_sum"] / c["dropped_count"], 4)}
                 for c in sorted(counts, key=lambda c: c["source"])
                 if c["dropped_sum"] > self.params.alarm_share * c["dropped_count"]}
        if alarm:
            self.ctx.notes["alarm"] = alarm

    def ids_of(self, table: pa.Table, rows) -> dict[int, str]:
        """The ids of some rows (the kept ones), by position: not a Python string for every row."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        return dict(zip(rows.tolist(), table.column("id").take(pa.array(rows)).to_pylist()))
