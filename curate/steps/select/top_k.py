"""`select.top_k`: the best rows by one score column, within the budget."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.steps.base import Budget, Selector, as_table
from curate.steps.registry import register
from curate.steps.select._common import budget_notes, ranked, scores_of


@register
class TopK(Selector):
    """Take rows from the best score down until the budget is spent.

    Params: `by` (score column, required); `descending` (default True: higher is better; False for
    scores where lower is better, e.g. perplexity); plus the budget (`rows` or `tokens`, `token_column`).
    Rows whose score is NaN/None were not scored and are never chosen. Ties keep dataset order, so the
    result does not depend on the seed. The budget must fit in the scored rows. Under a token budget a row
    that does not fit is skipped and the next-best that fits is taken. Returned indices are in dataset order.
    """

    name = "select.top_k"

    class Params(Budget):
        by: str
        descending: bool = True

    def reads(self) -> dict[str, str]:
        return {"by": self.params.by, **super().reads()}

    def select(self, ds: pa.Table) -> list[int]:
        ds = as_table(ds)
        p = self.params
        scores = scores_of(ds, p.by, f"{self.ctx.where}.by")
        order = ranked(scores, p.descending)
        # NaN rows cannot be taken, so they do not count as available budget.
        self.check_budget(ds, eligible=int(self.row_costs(ds)[order].sum()))
        chosen = self.take_in_order(ds, order)
        notes = budget_notes(self, ds, chosen)
        notes["unscored"] = int(np.isnan(scores).sum())
        if chosen:
            # The score at the cut: everything taken is at least this good.
            notes["cutoff"] = float(scores[chosen[-1]])
        self.ctx.notes.update(notes)
        return sorted(chosen)
