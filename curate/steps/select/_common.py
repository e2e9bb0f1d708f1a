"""Helpers shared by the selectors: column lookup with a did-you-mean, and scores as floats."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.steps.base import numbers, require_columns


def require_column(ds: pa.Table, name: str, where: str) -> None:
    """A missing column is the user's typo far more often than a missing step, so suggest a name."""
    require_columns(ds.column_names, {"": name}, where)


def scores_of(ds: pa.Table, name: str, where: str) -> np.ndarray:
    """The column as float64, with None (a row a scorer could not score) as NaN."""
    require_column(ds, name, where)
    return numbers(ds, name, where)


def ranked(scores: np.ndarray, descending: bool = True) -> np.ndarray:
    """Indices of the non-NaN rows, best first; ties keep dataset order so the result is deterministic."""
    valid = np.flatnonzero(~np.isnan(scores))
    key = -scores[valid] if descending else scores[valid]
    # lexsort sorts by the last key first: score, then position.
    return valid[np.lexsort((valid, key))]


def budget_notes(selector, ds: pa.Table, chosen: list[int]) -> dict:
    """What every selector reports: rows chosen and, for a token budget, the tokens they hold."""
    out = {"selected": len(chosen), "pool": len(ds)}
    if selector.params.tokens is not None:
        out["tokens"] = int(selector.row_costs(ds)[chosen].sum()) if chosen else 0
        out["token_budget"] = selector.params.tokens
    else:
        out["row_budget"] = selector.params.rows
    return out
