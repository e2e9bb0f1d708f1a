"""`select.target`: the rows most similar to a target set (RDS-style representation-based selection)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curate.embeddings import DEFAULT_MODEL, Embedder
from curate.errors import CurateError
from curate.steps.base import as_table
from curate.steps.registry import register
from curate.steps.select._embedded import EmbeddingBudget, EmbeddingSelector
from curate.textsets import TextSet, load_texts
from curate.vectors import BLOCK, distance_stats


@register
class Target(EmbeddingSelector):
    """Select the rows closest to a target set (e.g. the eval prompts of the domain you train for), by
    cosine similarity of embeddings, as RDS (representation-based data selection) does.

    Params:
    - `targets`: a list of text sets; each is a source spec (`path` files or a `hub` id, with `format`,
      `options`, `config`, `split`, `limit`, ... as under `sources:`) plus `key` (which text of each
      target row: prompt by default), `field` (for prompt-only files: the field holding the text,
      e.g. `field: question` for ARC's question alone) and `name`. Relative paths are tried against
      the recipe's folder first.
    - `texts`: target texts written inline (with or instead of `targets`).
    - `model` ("sentence-transformers/all-MiniLM-L6-v2"), `batch_size` (64), `device` (null),
      `cache_dir` (".curate/embeddings"): how the targets are embedded; use the model of the `embed`
      step that wrote `column` (a different dimension is an error; a different model of the same
      dimension is not detectable, and meaningless).
    - `aggregate` ("round_robin"): "round_robin" (RDS+): visit the targets in turn, each taking its most
      similar row not yet taken, so every target gets near rows; "max": rank rows by their highest
      similarity to any target; "mean": rank rows by similarity to the mean of the target vectors.
    - `column` ("embedding"): the pool's vectors from an earlier `embed` step; rows without one are never chosen.
    - the budget: `rows` or `tokens` (with `token_column`); under a token budget a row that does not
      fit is passed over for the next.

    Deterministic (no randomness; ties go to the earliest row). Notes: `targets` (how many target texts,
    and how many were empty and left out), `target_similarity` (mean similarity of each selected row
    to its nearest target, for the selection and for the matched random subset), `target_coverage`
    (mean and max cosine distance from each target to its nearest selected row, selection and random)
    and `coverage` of the pool as for every embedding selector. Returned indices are in dataset order.
    """

    name = "select.target"

    class Params(EmbeddingBudget):
        targets: list[TextSet] = Field(default_factory=list)
        texts: list[str] = Field(default_factory=list)
        model: str = DEFAULT_MODEL
        batch_size: int = Field(64, ge=1, le=4096)
        device: str | None = None
        cache_dir: str | None = ".curate/embeddings"
        aggregate: Literal["round_robin", "max", "mean"] = "round_robin"

        @model_validator(mode="after")
        def _some_targets(self):
            if not self.targets and not self.texts:
                raise ValueError("give `targets` (text sets) or `texts` (inline target texts)")
            return self

    @classmethod
    def cache_token(cls, params, recipe_dir: str = ".") -> list:
        """The target sets' contents (sha256 of local files), for the pipeline's step cache key."""
        from curate.textsets import fingerprint

        return [fingerprint(spec, recipe_dir) for spec in params.targets]

    def select(self, ds: pa.Table) -> list[int]:
        ds = as_table(ds)
        p = self.params
        X, ok = self.vectors(ds)
        self.check_eligible(ds, ok)
        T, n_targets, n_blank = self._targets()
        if X.shape[1] != T.shape[1]:
            raise CurateError(f"the targets' vectors have {T.shape[1]} dimensions and {p.column!r} has {X.shape[1]}: "
                              f"embed both with the same model (`model` here, `model` of the embed step)",
                              f"{self.ctx.where}.model")
        rows = np.flatnonzero(ok)
        costs = self.row_costs(ds)
        limit = p.rows if p.rows is not None else p.tokens
        if p.aggregate == "round_robin":
            picked = round_robin(X[rows], T, costs[rows], limit, p.rows is not None)
        else:
            if p.aggregate == "max":
                score = np.concatenate([(X[rows[s:s + BLOCK]] @ T.T).max(axis=1) for s in range(0, len(rows), BLOCK)])
            else:
                centre = T.mean(axis=0)
                score = X[rows] @ (centre / max(np.linalg.norm(centre), 1e-12))
            order = np.lexsort((np.arange(len(rows)), -score.astype(np.float64)))
            picked = _take(order, costs[rows], limit, p.rows is not None)
        chosen = sorted(int(rows[i]) for i in picked)

        notes = self.report(ds, X, ok, chosen)
        baseline = [i for i in self.random_baseline(ds, chosen) if ok[i]]
        notes["targets"] = {"texts": n_targets, "empty_left_out": n_blank, "aggregate": p.aggregate}
        notes["target_similarity"] = {"selected": _mean_nearest(X[chosen], T), "random": _mean_nearest(X[baseline], T)}
        notes["target_coverage"] = {"metric": "cosine distance from each target to its nearest selected row",
                                    "selected": distance_stats(T, X[chosen]), "random": distance_stats(T, X[baseline])}
        self.ctx.notes.update(notes)
        return chosen

    def _targets(self) -> tuple[np.ndarray, int, int]:
        p = self.params
        texts = list(p.texts)
        for j, spec in enumerate(p.targets):
            texts += load_texts(spec, f"{self.ctx.where}.targets[{j}]", self.ctx.recipe_dir).texts
        embedder = Embedder(p.model, p.batch_size, p.cache_dir, p.device, recipe_dir=self.ctx.recipe_dir,
                            where=f"{self.ctx.where}.model")
        T = embedder.encode(texts)
        good = np.isfinite(T).all(axis=1)
        if not good.any():
            raise CurateError("every target text is empty", f"{self.ctx.where}.targets")
        return T[good], len(texts), int((~good).sum())


def round_robin(V: np.ndarray, T: np.ndarray, costs: np.ndarray, limit: int, by_rows: bool) -> list[int]:
    """RDS+ round robin: targets take turns, each taking its most similar row not yet taken that fits."""
    n = len(V)
    # Each target walks its rows most similar first (ties: earliest row). Only the head of each list is
    # ranked up front (about what a target's share of the budget needs); a target that runs through its
    # head gets a head twice as long.
    share = -(-limit // len(T)) if by_rows else 64
    heads = [_head(V, T[s:s + 256], min(n, 4 * share + 32)) for s in range(0, len(T), 256)]
    heads = [h for block in heads for h in block]
    taken = np.zeros(n, dtype=bool)
    pointer = [0] * len(T)
    active = list(range(len(T)))
    chosen: list[int] = []
    spent = 0
    while active and spent < limit:
        still = []
        for t in active:
            while True:
                head, ptr = heads[t], pointer[t]
                while ptr < len(head) and (taken[head[ptr]] or spent + costs[head[ptr]] > limit):
                    ptr += 1
                pointer[t] = ptr
                if ptr < len(head) or len(head) == n:
                    break
                heads[t] = _head(V, T[t : t + 1], min(n, 2 * len(head)))[0]
            if pointer[t] == len(heads[t]):
                continue  # this target has nothing left that fits
            i = int(heads[t][pointer[t]])
            taken[i] = True
            chosen.append(i)
            spent += int(costs[i])
            still.append(t)
            if spent >= limit:
                break
        active = still
    return chosen


def _head(V: np.ndarray, T: np.ndarray, length: int) -> list[np.ndarray]:
    """For each target row, the `length` most similar rows of V, most similar first, ties by index."""
    sims = T @ V.T
    out = []
    for row in sims:
        top = np.argpartition(-row, length - 1)[:length] if length < len(row) else np.arange(len(row))
        out.append(top[np.lexsort((top, -row[top].astype(np.float64)))])
    return out


def _take(order, costs, limit, by_rows) -> list[int]:
    from curate.steps.base import take_within

    return take_within(order, costs, limit, by_rows)


def _mean_nearest(A: np.ndarray, T: np.ndarray) -> float | None:
    if not len(A):
        return None
    best = np.concatenate([(A[s:s + BLOCK] @ T.T).max(axis=1) for s in range(0, len(A), BLOCK)])
    return round(float(best.mean()), 6)
