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
from pydantic import model_validator

from curate.errors import CurateError, did_you_mean
from curate.steps.base import GlobalFilter, StepParams, as_table, numbers

KeepRule = Literal["first", "longest", "highest"]


class KeepPolicy(StepParams):
    """Params mixin: `keep` (first | longest | highest) and, for highest, `score_column`."""

    keep: KeepRule = "first"
    score_column: str | None = None

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
    out: list[tuple[int, list[int]]] = []
    for group in groups:
        members = sorted({int(i) for i in group})
        if not members:
            continue
        if keep == "first":
            kept = members[0]
        elif keep == "longest":
            # max over (length, -index): the longest, and among equals the earliest
            kept = max(members, key=lambda i: (lengths[i], -i))
        else:
            kept = max(members, key=lambda i: (_rank_score(scores[i]), -i))
        out.append((kept, [i for i in members if i != kept]))
    return out


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
    row-locally) or a score column (read)."""

    def reads(self) -> dict[str, str]:
        return {"score_column": self.params.score_column} if self.params.keep == "highest" else {}

    def resolve(self, groups: Sequence[Sequence[int]], table: pa.Table, keys: dict) -> list[tuple[int, list[int]]]:
        """`choose_kept` with the lengths or scores the policy needs. The score column is checked even
        when there are no groups, so a typo in a recipe fails on every run rather than only on data that
        happens to contain duplicates."""
        policy = self.params
        if policy.keep == "highest":
            return choose_kept(groups, "highest", scores=score_values(table, policy.score_column, self.ctx.where))
        if policy.keep == "longest":
            return choose_kept(groups, "longest", lengths=keys["length"])
        return choose_kept(groups, "first")
