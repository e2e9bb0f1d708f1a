"""`select.stratified`: a budget split across the distinct values of a column, then filled per stratum."""

from __future__ import annotations

import json
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import model_validator

from curate.errors import CurateError
from curate.steps.base import Budget, Selector, as_table, take_within, values
from curate.steps.registry import register
from curate.steps.select._common import budget_notes, ranked, require_column, scores_of


@register
class Stratified(Selector):
    """Split the budget across strata (distinct values of `by`) and fill each stratum on its own.

    Params:
    - `by` (default "source"): any column; each distinct value is a stratum.
    - `allocation` (default "proportional"): "proportional" gives each stratum a share of the budget in
      proportion to what it holds (rows, or tokens under a token budget), rounded by largest remainder;
      "equal" gives every stratum the same share, and what a short stratum cannot fill is redistributed
      equally over the others.
    - `within` (default "random"): how a stratum is filled: "random" (seeded permutation) or "top" (best
      `score` first, ties in dataset order; rows with a NaN score are never chosen).
    - `score`: the score column, required for `within: top` and only allowed with it.
    - `descending` (default True): for `within: top`, whether higher scores are better.
    - the budget: `rows` or `tokens`, with `token_column`.
    Quotas are exact in rows; under a token budget each stratum packs rows up to its token quota, so the
    realised total can fall a little short. Realised per-stratum counts go to the manifest notes.
    Ties in the rounding go to the larger stratum, then to the stratum that sorts first.
    Returned indices are in dataset order.
    """

    name = "select.stratified"

    class Params(Budget):
        by: str = "source"
        allocation: Literal["proportional", "equal"] = "proportional"
        within: Literal["random", "top"] = "random"
        score: str | None = None
        descending: bool = True

        @model_validator(mode="after")
        def _score_for_top(self):
            if self.within == "top" and self.score is None:
                raise ValueError("within: top needs `score`, the column to rank each stratum by")
            if self.within == "random" and self.score is not None:
                raise ValueError("`score` is only used with within: top")
            return self

    def reads(self) -> dict[str, str]:
        p = self.params
        return {"by": p.by, **({"score": p.score} if p.score else {}), **super().reads()}

    def select(self, ds: pa.Table) -> list[int]:
        ds = as_table(ds)
        p = self.params
        require_column(ds, p.by, f"{self.ctx.where}.by")
        costs = self.row_costs(ds)
        by_rows = p.rows is not None
        budget = p.rows if by_rows else p.tokens

        # Rows that can be chosen, per stratum, in the order they would be taken.
        if p.within == "top":
            scores = scores_of(ds, p.score, f"{self.ctx.where}.score")
            eligible = ranked(scores, p.descending)
        else:
            eligible = np.arange(len(ds))
        keys = [_key(v) for v in values(ds, p.by)]
        strata: dict[str, list[int]] = {}
        for i in sorted(int(i) for i in eligible):
            strata.setdefault(keys[i], []).append(i)
        names = sorted(strata)
        capacity = [int(costs[strata[s]].sum()) for s in names]
        self.check_budget(ds, eligible=sum(capacity))

        if p.allocation == "proportional":
            quota = largest_remainder(budget, capacity)
        else:
            quota = equal_split(budget, capacity)

        rng = self.ctx.rng()
        if p.within == "top":
            rank = np.empty(len(ds), dtype=np.int64)
            rank[eligible] = np.arange(len(eligible))
        chosen: list[int] = []
        report = {}
        for s, q, cap in zip(names, quota, capacity):
            members = np.asarray(strata[s])
            if p.within == "top":
                order = members[np.argsort(rank[members], kind="stable")]
            else:
                order = members[rng.permutation(len(members))]  # one generator, strata in sorted order
            taken = take_within(order, costs, q, by_rows)
            chosen.extend(taken)
            entry = {"available": len(members), "target": q, "selected": len(taken)}
            if not by_rows:
                entry.update(available_tokens=cap, tokens=int(costs[taken].sum()) if taken else 0)
            report[s] = entry

        chosen.sort()
        notes = budget_notes(self, ds, chosen)
        notes.update(by=p.by, allocation=p.allocation, within=p.within, strata=report)
        self.ctx.notes.update(notes)
        return chosen


def _key(value) -> str:
    # Strata must be hashable and JSON-safe for the manifest; lists/dicts become their JSON text.
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def largest_remainder(total: int, sizes: list[int]) -> list[int]:
    """Split `total` in proportion to `sizes` (Hamilton's method); the parts sum to `total` exactly.

    Needs total <= sum(sizes); then no part exceeds its size. Remainder ties go to the larger size,
    then the earlier position.
    """
    whole = sum(sizes)
    if whole == 0:
        return [0] * len(sizes)
    if total > whole:
        raise CurateError(f"cannot split {total} over strata holding {whole}")
    # Integer arithmetic: exact floors and remainders, no float ties.
    floors = [total * n // whole for n in sizes]
    rema = [total * n % whole for n in sizes]
    left = total - sum(floors)
    for j in sorted(range(len(sizes)), key=lambda j: (-rema[j], -sizes[j], j))[:left]:
        floors[j] += 1
    return floors


def equal_split(total: int, caps: list[int]) -> list[int]:
    """Split `total` equally, capping each part at `caps[j]` and sharing what a capped part leaves.

    Parts sum to min(total, sum(caps)). A leftover that does not divide evenly goes one each to the
    earliest parts that still have room.
    """
    alloc = [0] * len(caps)
    active = list(range(len(caps)))
    remaining = total
    while remaining > 0 and active:
        share, extra = divmod(remaining, len(active))
        full = [j for j in active if caps[j] - alloc[j] <= share]
        if full:
            # These cannot take an equal share; fill them and split again over the rest.
            for j in full:
                remaining -= caps[j] - alloc[j]
                alloc[j] = caps[j]
            active = [j for j in active if j not in full]
            continue
        for n, j in enumerate(active):
            alloc[j] += share + (1 if n < extra else 0)
        remaining = 0
    return alloc
