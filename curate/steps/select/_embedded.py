"""What the selectors over embeddings share: the vectors, the budget over rows that have one, the
shortfall rule, and the coverage report beside a matched random subset."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.errors import CurateError
from curate.steps.base import Budget, Selector
from curate.steps.select._common import budget_notes
from curate.vectors import coverage, embedding_matrix

COVERAGE_METRIC = "cosine distance from each pool row (with a vector) to its nearest selected row"


class EmbeddingBudget(Budget):
    """A budget (rows or tokens) plus the embedding column to read."""

    column: str = Field("embedding", min_length=1)


class EmbeddingSelector(Selector):
    """Base for selectors that read the vectors of an `embed` step. Rows without a vector are never chosen."""

    Params = EmbeddingBudget

    def reads(self) -> dict[str, str]:
        p = self.params
        score = getattr(p, "score", None)
        return {"column": p.column, **({"score": score} if score else {}), **super().reads()}

    def vectors(self, ds: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        return embedding_matrix(ds, self.params.column, f"{self.ctx.where}.column")

    def check_eligible(self, ds: pa.Table, eligible: np.ndarray, why_not: str = "have no embedding") -> None:
        """The budget must fit in the rows that can be chosen; the message says how many cannot."""
        p = self.params
        costs = self.row_costs(ds)
        available = int(costs[eligible].sum())
        wanted = p.rows if p.rows is not None else p.tokens
        unit = "rows" if p.rows is not None else "tokens"
        if wanted > available:
            left_out = int((~eligible).sum())
            extra = f" ({left_out} of the {len(ds)} rows {why_not})" if left_out else ""
            raise CurateError(f"budget of {wanted} {unit} is larger than the {available} {unit} available at this "
                              f"step{extra}", f"{self.ctx.where}.{unit}")

    def short(self, chosen: list[int], spent: int, why: str) -> None:
        """The walk ended before the budget was met: an error, or (on_short: keep) a note."""
        p = self.params
        wanted, unit = (p.rows, "rows") if p.rows is not None else (p.tokens, "tokens")
        msg = f"selected only {len(chosen)} rows ({spent} of the {wanted} {unit} budgeted): {why}"
        if getattr(p, "on_short", "error") == "error":
            raise CurateError(msg + "; or set on_short: keep to accept the smaller selection", self.ctx.where)
        self.ctx.notes["short"] = msg

    def report(self, ds: pa.Table, X: np.ndarray, ok: np.ndarray, chosen: list[int]) -> dict:
        """budget notes + coverage of the selection and of the matched random subset (the one the
        pipeline writes as baseline_random: same pool, same budget, seed + 1)."""
        notes = budget_notes(self, ds, chosen)
        baseline = self.random_baseline(ds, chosen)
        notes["coverage"] = {
            "metric": COVERAGE_METRIC,
            "pool_rows_with_vector": int(ok.sum()),
            "selected": coverage(X, ok, chosen),
            "random": coverage(X, ok, baseline),
        }
        return notes

    def random_baseline(self, ds: pa.Table, chosen: list[int]) -> list[int]:
        from curate.steps.select.random import random_subset

        p = self.params
        budget = (Budget(tokens=p.tokens, token_column=p.token_column) if p.tokens is not None
                  else Budget(rows=max(len(chosen), 1)))
        return random_subset(ds, budget, self.ctx.seed + 1)


OnShort = Literal["error", "keep"]
