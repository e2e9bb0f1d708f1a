"""`select.threshold`: rows whose score lies within [min, max], optionally capped by a budget."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import model_validator

from curate.steps.base import Budget, Selector, as_table
from curate.steps.registry import register
from curate.steps.select._common import budget_notes, ranked, scores_of


@register
class Threshold(Selector):
    """Keep every row with `min <= score <= max`; with a budget, at most that much of them.

    Params: `by` (score column, required); `min` and `max` (inclusive bounds, at least one); optional budget
    `rows` or `tokens` (with `token_column`) acting as a cap: when more rows pass than fit, the best are taken
    first — highest score when `descending` (default True), lowest when False; ties keep dataset order.
    Rows with a NaN score never pass. Fewer passing rows than the cap is not an error (it is a cap), but a cap
    larger than the whole pool is. Returned indices are in dataset order.
    """

    name = "select.threshold"

    class Params(Budget):
        by: str
        min: float | None = None
        max: float | None = None
        descending: bool = True

        # Same name as Budget's validator, so it replaces the exactly-one rule with at-most-one.
        @model_validator(mode="after")
        def _one_budget(self):
            if self.rows is not None and self.tokens is not None:
                raise ValueError("give at most one budget: rows or tokens")
            if (self.rows or 1) < 1 or (self.tokens or 1) < 1:
                raise ValueError("the budget must be at least 1")
            if self.min is None and self.max is None:
                raise ValueError("give min, max or both")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
            return self

    def reads(self) -> dict[str, str]:
        return {"by": self.params.by, **super().reads()}

    def select(self, ds: pa.Table) -> list[int]:
        ds = as_table(ds)
        p = self.params
        capped = p.rows is not None or p.tokens is not None
        if capped:
            self.check_budget(ds)
        scores = scores_of(ds, p.by, f"{self.ctx.where}.by")
        passing = ~np.isnan(scores)
        if p.min is not None:
            passing &= scores >= p.min
        if p.max is not None:
            passing &= scores <= p.max
        n_pass = int(passing.sum())
        order = [i for i in ranked(scores, p.descending) if passing[i]]
        chosen = self.take_in_order(ds, order) if capped else [int(i) for i in order]
        notes = budget_notes(self, ds, chosen) if capped else {"selected": len(chosen), "pool": len(ds)}
        notes.update(passing=n_pass, unscored=int(np.isnan(scores).sum()), capped=capped and len(chosen) < n_pass)
        self.ctx.notes.update(notes)
        return sorted(chosen)
