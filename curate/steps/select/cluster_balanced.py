"""`select.cluster_balanced`: k-means over embeddings, then the budget spread evenly over the clusters."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curate.errors import CurateError
from curate.steps.base import as_table, take_within
from curate.steps.registry import register
from curate.steps.select._common import ranked, scores_of
from curate.steps.select._embedded import EmbeddingBudget, EmbeddingSelector
from curate.steps.select.stratified import equal_split, largest_remainder
from curate.vectors import kmeans


@register
class ClusterBalanced(EmbeddingSelector):
    """Cluster the rows by their embeddings (k-means), then draw from every cluster.

    Params:
    - `clusters` (null: the square root of the rows with a vector, rounded up): the number of k-means
      clusters (capped at the number of rows).
    - `allocation` ("equal"): "equal" gives every cluster the same share of the budget, and what a small
      cluster cannot fill is shared equally over the others; "proportional" gives each a share in
      proportion to its size (largest remainder), i.e. a stratified random sample.
    - `within` ("random"): how each cluster is filled: "random" (seeded), "top" (best `score` first,
      ties in dataset order) or "weighted" (a seeded draw without replacement with probability
      proportional to `score`, which must be >= 0; zero-score rows come last).
    - `score` (null): the score column for `within: top` or `weighted` (rows with a NaN score are never
      chosen); `descending` (true) for top: whether higher is better.
    - `backend` ("sklearn") / `seed` (default: the step's seed): the k-means backend (sklearn or
      faiss) and seed.
    - `column` ("embedding"): the vectors of an earlier `embed` step; rows without one are never chosen.
    - the budget: `rows` or `tokens` (with `token_column`); under a token budget each cluster packs
      rows up to its token share, so the total can fall a little short.

    Notes: `clusters`, the realised rows per cluster (`per_cluster`: cluster sizes and selected counts,
    in cluster order) and `coverage` for the selection and the matched random subset (see
    select.diverse). Returned indices are in dataset order.
    """

    name = "select.cluster_balanced"

    class Params(EmbeddingBudget):
        clusters: int | None = Field(None, ge=1)
        allocation: Literal["equal", "proportional"] = "equal"
        within: Literal["random", "top", "weighted"] = "random"
        score: str | None = None
        descending: bool = True
        backend: Literal["sklearn", "faiss"] = "sklearn"
        seed: int | None = None

        @model_validator(mode="after")
        def _score_for_within(self):
            if self.within != "random" and self.score is None:
                raise ValueError(f"within: {self.within} needs `score`")
            if self.within == "random" and self.score is not None:
                raise ValueError("`score` is only used with within: top or weighted")
            return self

    def select(self, ds: pa.Table) -> list[int]:
        ds = as_table(ds)
        p = self.params
        X, ok = self.vectors(ds)
        eligible = ok.copy()
        rng = self.ctx.rng()
        if p.score is not None:
            scores = scores_of(ds, p.score, f"{self.ctx.where}.score")
            eligible &= ~np.isnan(scores)
            if p.within == "weighted" and (scores[eligible] < 0).any():
                raise CurateError(f"within: weighted needs scores >= 0; {p.score!r} has negative values",
                                  f"{self.ctx.where}.score")
        self.check_eligible(ds, eligible, "have no embedding" + (" or no score" if p.score else ""))
        costs = self.row_costs(ds)
        rows = np.flatnonzero(eligible)
        k = min(p.clusters or math.ceil(math.sqrt(len(rows))), len(rows))
        seed = self.ctx.seed if p.seed is None else p.seed
        labels = kmeans(X[rows], k, seed, p.backend)[0]

        # The order each row would be taken in, over all rows; each cluster walks its own rows in it.
        if p.within == "random":
            rank_order = rows[rng.permutation(len(rows))]
        elif p.within == "top":
            rank_order = np.asarray([i for i in ranked(scores, p.descending) if eligible[i]])
        else:  # Efraimidis-Spirakis: key u ** (1 / w), largest first; w = 0 sorts last
            u = rng.random(len(rows))
            w = scores[rows]
            with np.errstate(divide="ignore"):
                keys = np.where(w > 0, np.log(u) / np.where(w > 0, w, 1.0), -np.inf)
            rank_order = rows[np.lexsort((rows, -keys))]
        position = np.empty(len(ds), dtype=np.int64)
        position[rank_order] = np.arange(len(rank_order))
        label_of = np.full(len(ds), -1)
        label_of[rows] = labels
        members = [rows[labels == c] for c in range(k)]
        capacity = [int(costs[m].sum()) for m in members]
        by_rows = p.rows is not None
        budget = p.rows if by_rows else p.tokens
        quota = equal_split(budget, capacity) if p.allocation == "equal" else largest_remainder(budget, capacity)
        chosen: list[int] = []
        per_cluster = []
        for m, q in zip(members, quota):
            taken = take_within(m[np.argsort(position[m], kind="stable")], costs, q, by_rows)
            chosen.extend(taken)
            per_cluster.append([len(m), len(taken)])
        chosen.sort()
        notes = self.report(ds, X, ok, chosen)
        notes.update(clusters=int(k), allocation=p.allocation, within=p.within, per_cluster=per_cluster)
        self.ctx.notes.update(notes)
        return chosen
