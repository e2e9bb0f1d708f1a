"""Which row of a duplicate group survives: the keep policy shared by the deduplicators.

`keep: first` keeps the earliest row, `longest` the row with the most characters across all its
messages, `highest` the row with the highest value in `score_column` (NaN or missing scores rank
last). Ties always go to the earliest row, so the choice is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from datasets import Dataset
from pydantic import model_validator

from curate.errors import CurateError, did_you_mean
from curate.steps.base import StepParams

KeepRule = Literal["first", "longest", "highest"]


class KeepPolicy(StepParams):
    """Params mixin: `keep` (first | longest | highest) and, for highest, `score_column`."""

    keep: KeepRule = "first"
    score_column: str | None = None

    @model_validator(mode="after")
    def _score_column_for_highest(self):
        if self.keep == "highest" and not self.score_column:
            raise ValueError("keep: highest needs score_column (the score that decides which duplicate stays)")
        return self


def choose_kept(
    groups: Sequence[Sequence[int]],
    keep: KeepRule = "first",
    *,
    lengths: Sequence[float] | np.ndarray | None = None,
    scores: Sequence[float] | np.ndarray | None = None,
) -> list[tuple[int, list[int]]]:
    """For each group of duplicate row indices, `(kept index, dropped indices in row order)`.

    `lengths` (for longest) and `scores` (for highest) are indexed by row index, so they cover every
    row that appears in a group. NaN / None scores rank below every number.
    """
    if keep == "longest" and lengths is None:
        raise ValueError("keep='longest' needs lengths")
    if keep == "highest" and scores is None:
        raise ValueError("keep='highest' needs scores")
    out: list[tuple[int, list[int]]] = []
    for group in groups:
        members = sorted({int(i) for i in group})
        if not members:
            continue
        if keep == "first":
            kept = members[0]
        elif keep == "longest":
            # max over (length, -index): the longest, and among equals the earliest
            kept = max(members, key=lambda i: (lengths[i], -i))
        else:
            kept = max(members, key=lambda i: (_rank_score(scores[i]), -i))
        out.append((kept, [i for i in members if i != kept]))
    return out


def _rank_score(v) -> tuple[int, float]:
    # (0, ...) sorts below (1, ...): a missing score loses to any real one, even -inf
    if v is None:
        return (0, 0.0)
    f = float(v)
    return (0, 0.0) if math.isnan(f) else (1, f)


def conversation_lengths(messages: Sequence[list[dict]], rows: Sequence[int]) -> dict[int, int]:
    """Characters across all messages of each listed row (what keep: longest compares)."""
    return {int(i): sum(len(m["content"] or "") for m in messages[i]) for i in rows}


def score_values(ds: Dataset, column: str, where: str | None) -> np.ndarray:
    """The score column as float64 (None as NaN); a missing or non-numeric column is the user's error."""
    if column not in ds.column_names:
        raise CurateError(
            f"keep: highest needs the score column {column!r}, which is not in the data"
            f"{did_you_mean(column, ds.column_names)}; add the scorer that writes it before this step "
            f"(columns here: {', '.join(ds.column_names)})",
            where,
        )
    try:
        return np.asarray([np.nan if v is None else v for v in ds[column]], dtype=np.float64)
    except (TypeError, ValueError):
        raise CurateError(f"score column {column!r} is not numeric, so it cannot pick the row to keep", where) from None


def resolve(
    groups: Sequence[Sequence[int]],
    policy: KeepPolicy,
    ds: Dataset,
    messages: Sequence[list[dict]] | None,
    where: str | None,
) -> list[tuple[int, list[int]]]:
    """`choose_kept` with the lengths or scores the policy needs read from the dataset.

    `messages` (the rows' message lists, if the caller already has them) saves re-reading them
    for keep: longest. The score column is checked even when there are no groups, so a typo in a
    recipe fails on every run rather than only on data that happens to contain duplicates.
    """
    if policy.keep == "highest":
        return choose_kept(groups, "highest", scores=score_values(ds, policy.score_column, where))
    if policy.keep == "longest":
        if messages is None:
            messages = ds["messages"][:]
        members = sorted({int(i) for g in groups for i in g})
        return choose_kept(groups, "longest", lengths=conversation_lengths(messages, members))
    return choose_kept(groups, "first")
