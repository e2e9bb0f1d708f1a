"""`select.kcenter`: greedy k-center (farthest-first traversal) over embeddings: coverage first."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.steps.base import as_table

from curate.errors import CurateError
from curate.steps.registry import register
from curate.steps.select._embedded import EmbeddingBudget, EmbeddingSelector


@register
class KCenter(EmbeddingSelector):
    """Greedy k-center: start from a seeded random row, then repeatedly take the row farthest (by
    cosine distance) from everything taken so far, until the budget is spent.

    This is the classic 2-approximation of the k-center problem: it minimises the largest distance from
    any pool row to its nearest selected row, so it covers outliers and rare kinds of rows first
    (and near-duplicates last: a copy of a taken row is at distance 0).

    Params:
    - `column` ("embedding"): the vectors of an earlier `embed` step; rows without one are never chosen.
    - the budget: `rows` or `tokens` (with `token_column`); under a token budget the farthest row that
      still fits is taken, so the walk continues until no row fits.

    The only randomness is the first row (from the step's seed). Ties go to the earliest row. Notes:
    `coverage` for the selection and for the matched random subset (see select.diverse), and
    `last_distance`, the distance of the last row taken (every pool row is at most about this far from
    the selection). Returned indices are in dataset order.
    """

    name = "select.kcenter"

    class Params(EmbeddingBudget):
        pass

    def select(self, ds: pa.Table) -> list[int]:
        ds = as_table(ds)
        p = self.params
        X, ok = self.vectors(ds)
        self.check_eligible(ds, ok)
        costs = self.row_costs(ds)
        limit = p.rows if p.rows is not None else p.tokens
        rows = np.flatnonzero(ok)
        fits = np.flatnonzero(costs[rows] <= limit)  # positions in rows; the first row must fit
        if not len(fits):
            raise CurateError(f"no row fits in a budget of {limit} tokens (the shortest has {int(costs[rows].min())})",
                              f"{self.ctx.where}.tokens")
        first = int(fits[self.ctx.rng().integers(len(fits))])
        chosen, last = kcenter_walk(X[rows], costs[rows], limit, first)
        chosen = [int(rows[i]) for i in chosen]
        notes = self.report(ds, X, ok, chosen)
        notes["last_distance"] = round(float(last), 6)
        self.ctx.notes.update(notes)
        return sorted(chosen)


def kcenter_walk(V: np.ndarray, costs: np.ndarray, limit: int, first: int) -> tuple[list[int], float]:
    """(positions taken, distance of the last one): farthest-first from `first` while rows fit under `limit`."""
    n = len(V)
    costs = np.asarray(costs, dtype=np.int64)
    taken = np.zeros(n, dtype=bool)
    best = np.full(n, -np.inf, dtype=np.float32)  # similarity to the nearest taken row
    chosen: list[int] = []
    spent, last, i = 0, 2.0, first
    while True:
        if spent + costs[i] > limit:
            break
        chosen.append(int(i))
        taken[i] = True
        spent += int(costs[i])
        if spent >= limit:
            break
        np.maximum(best, V @ V[i], out=best)
        # the farthest row that is not taken and still fits
        dist = 1.0 - best
        dist[taken | (costs > limit - spent)] = -np.inf
        i = int(dist.argmax())
        if not np.isfinite(dist[i]):
            break
        last = float(dist[i])
    return chosen, last
