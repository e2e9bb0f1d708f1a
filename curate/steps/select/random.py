"""`select.random`: a seeded random subset within the budget, the baseline every selector is compared to."""

from __future__ import annotations

import pyarrow as pa

from curate.errors import CurateError
from curate.steps.base import Budget, Selector, StepContext, as_table
from curate.steps.registry import register
from curate.steps.select._common import budget_notes


@register
class RandomSelect(Selector):
    """Pick rows uniformly at random until the budget is spent.

    Params (a `Budget`): exactly one of `rows` or `tokens`; `token_column` (default "n_tokens") holds each
    row's token count for a token budget. Rows are visited in a permutation drawn from the step's seed; under
    a token budget a row that no longer fits is skipped and later, shorter rows may still be taken.
    The same seed and pool give the same subset. Returned indices are in dataset order.
    """

    name = "select.random"

    class Params(Budget):
        pass

    def select(self, ds: pa.Table) -> list[int]:
        ds = as_table(ds)
        self.check_budget(ds)
        order = self.ctx.rng().permutation(len(ds))
        chosen = sorted(self.take_in_order(ds, order))
        self.ctx.notes.update(budget_notes(self, ds, chosen))
        return chosen


def random_subset(ds: pa.Table, budget: Budget, seed: int) -> list[int]:
    """A matched random baseline: the same budget over the same pool, drawn with `seed`.

    `budget` may be any selector's params (only `rows`, `tokens` and `token_column` are read). A selector
    without a budget (e.g. `select.threshold` uncapped) has nothing to match; pass `Budget(rows=len(chosen))`.
    """
    rows, tokens = getattr(budget, "rows", None), getattr(budget, "tokens", None)
    if rows is None and tokens is None:
        raise CurateError("a random baseline needs a budget in rows or tokens", "baseline")
    params = RandomSelect.Params(rows=rows, tokens=tokens, token_column=getattr(budget, "token_column", "n_tokens"))
    ctx = StepContext(label="baseline.random", where="baseline", seed=seed)
    return RandomSelect(params, ctx).select(ds)
