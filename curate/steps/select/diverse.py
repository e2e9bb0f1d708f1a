"""`select.diverse`: DEITA's score-first, diversity-aware selection over embeddings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.steps.base import as_table
from pydantic import Field, model_validator

from curate.steps.registry import register
from curate.steps.select._common import ranked, scores_of
from curate.steps.select._embedded import EmbeddingBudget, EmbeddingSelector, OnShort


@register
class Diverse(EmbeddingSelector):
    """Walk rows best score first and accept a row only if it is far from every row accepted so far
    (DEITA's score-first, diversity-aware selection), until the budget is spent.

    Params:
    - `score` (null): the column to walk by, best first (e.g. a quality or complexity score); rows with
      a NaN score are never chosen. Without a score the rows are walked in a seeded random order.
    - `descending` (true): whether a higher score is better.
    - `tau` (0.1): a row is accepted when its cosine distance (1 - cosine similarity) to every
      accepted row is at least tau; 0.1 is DEITA's similarity threshold of 0.9.
    - `on_short` ("error"): when the walk runs out of rows before the budget is met (tau so large that
      few rows are far enough apart), "error" stops the run with a message saying how many rows were
      selected and why; "keep" keeps the smaller selection and says so in the notes (`short`).
    - `column` ("embedding"): the vectors of an earlier `embed` step; rows without one are never chosen.
    - the budget: `rows` or `tokens` (with `token_column`); under a token budget a row that does not
      fit is skipped and later, shorter rows may still be taken.

    Notes: `rejected_as_similar` (rows passed over for being within tau of an accepted row) and
    `coverage`: the mean and max cosine distance from every pool row to its nearest selected row, for
    the selection and for the matched random subset (same pool and budget, as in baseline_random).
    Returned indices are in dataset order.
    """

    name = "select.diverse"

    class Params(EmbeddingBudget):
        score: str | None = None
        descending: bool = True
        tau: float = Field(0.1, ge=0.0, le=2.0)
        on_short: OnShort = "error"

        @model_validator(mode="after")
        def _descending_needs_score(self):
            if self.score is None and "descending" in self.model_fields_set:
                raise ValueError("`descending` only applies with `score`")
            return self

    def select(self, ds: pa.Table) -> list[int]:
        ds = as_table(ds)
        p = self.params
        X, ok = self.vectors(ds)
        if p.score is not None:
            scores = scores_of(ds, p.score, f"{self.ctx.where}.score")
            order = [int(i) for i in ranked(scores, p.descending) if ok[i]]
            why_not = "have no embedding or no score"
        else:
            rows = np.flatnonzero(ok)
            order = rows[self.ctx.rng().permutation(len(rows))].tolist()
            why_not = "have no embedding"
        eligible = np.zeros(len(ds), dtype=bool)
        eligible[order] = True
        self.check_eligible(ds, eligible, why_not)
        costs = self.row_costs(ds)
        chosen, spent, rejected = diverse_walk(X, order, costs, self._limit(), p.rows is not None, p.tau)
        # Short because of tau: budget left over that a passed-over row would have filled.
        if rejected and self._limit() - spent >= min(costs[i] for i in rejected):
            self.short(chosen, spent, f"tau={p.tau:g} passed over {len(rejected)} of the {len(order)} candidate rows "
                                      f"as within cosine distance {p.tau:g} of an accepted row; lower tau or the budget")
        notes = self.report(ds, X, ok, chosen)
        notes.update(tau=p.tau, rejected_as_similar=len(rejected), walked_by=p.score or "seeded random order")
        self.ctx.notes.update(notes)
        return sorted(chosen)

    def _limit(self) -> int:
        return self.params.rows if self.params.rows is not None else self.params.tokens


def diverse_walk(X: np.ndarray, order, costs: np.ndarray, limit: int, by_rows: bool, tau: float):
    """(chosen, spent, rejected rows): walk `order`, taking rows that fit and whose cosine distance to
    every taken row is >= tau, until `limit` is spent."""
    threshold = 1.0 - tau  # a similarity above this is too close
    accepted = np.empty((min(len(order), limit if by_rows else len(order)), X.shape[1]), dtype=np.float32)
    chosen: list[int] = []
    rejected: list[int] = []
    spent = 0
    for i in order:
        c = int(costs[i])
        if spent + c > limit:
            if by_rows:
                break
            continue
        m = len(chosen)
        if m and float((accepted[:m] @ X[i]).max()) > threshold:
            rejected.append(int(i))
            continue
        accepted[m] = X[i]
        chosen.append(int(i))
        spent += c
        if spent >= limit:
            break
    return chosen, spent, rejected
