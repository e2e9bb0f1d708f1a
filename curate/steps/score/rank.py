"""`score.rank`: a score as a percentile, optionally within groups (e.g. within each source)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from curate.errors import CurateError, did_you_mean
from curate.steps.base import Scorer, StepParams, as_table, numbers, values
from curate.steps.registry import register


@register
class Rank(Scorer):
    """Turn a score into its percentile rank, over the whole pool or within each group.

    Sources differ in what "long" or "high" means (LIMA's answers are long, Code Alpaca's short), so a
    selector walking raw scores takes one source almost only; the percentile within each source lets
    every source offer its best rows first.

    Column: `<column>_pct` (or `name`), in (0, 1]: 1 for the highest score of its group (the lowest when
    `descending` is false). Ties share the average rank. A row whose score is missing gets NaN, with the
    reason in `<name>_why`.

    Params:
    - `column` (required): the score to rank.
    - `by` (null): a column whose values form the groups, e.g. `source`; null ranks the whole pool.
    - `name` (null): the new column's name; default `<column>_pct`.
    - `descending` (true): higher scores rank higher.
    """

    name = "score.rank"

    class Params(StepParams):
        column: str
        by: str | None = None
        name: str | None = None
        descending: bool = True

    scope = "global"  # a rank is within all rows of its group

    def reads(self) -> dict[str, str]:
        return {k: v for k, v in (("column", self.params.column), ("by", self.params.by)) if v is not None}

    def adds(self) -> list[str]:
        name = self.params.name or f"{self.params.column}_pct"
        return [name, f"{name}_why"]

    def score(self, table: pa.Table) -> dict[str, list]:
        table = as_table(table)
        p = self.params
        for field, col in (("column", p.column), ("by", p.by)):
            if col is not None and col not in table.column_names:
                raise CurateError(f"no column {col!r}{did_you_mean(col, table.column_names)}; add the step that makes it first",
                                  f"{self.ctx.where}.{field}")
        scores = numbers(table, p.column, f"{self.ctx.where}.column")
        groups = values(table, p.by) if p.by else [None] * table.num_rows
        out = np.full(table.num_rows, math.nan)
        for g in dict.fromkeys(groups):
            idx = np.asarray([i for i, x in enumerate(groups) if x == g])
            ok = idx[~np.isnan(scores[idx])]
            if len(ok):
                v = scores[ok] if p.descending else -scores[ok]
                # average rank of ties, 1..n, as a share of n: the best row of a group gets 1.0
                order = v.argsort(kind="stable")
                ranks = np.empty(len(ok))
                ranks[order] = np.arange(1, len(ok) + 1)
                for value in np.unique(v):
                    same = v == value
                    ranks[same] = ranks[same].mean()
                out[ok] = ranks / len(ok)
        name = p.name or f"{p.column}_pct"
        why = [f"{p.column} is missing" if math.isnan(x) else None for x in out]
        return {name: out.tolist(), f"{name}_why": why}
