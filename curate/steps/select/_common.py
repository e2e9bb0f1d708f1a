"""Helpers shared by the selectors: column lookup with a did-you-mean, and scores as floats."""

from __future__ import annotations

import numpy as np
from datasets import Dataset

from curate.errors import CurateError, did_you_mean


def require_column(ds: Dataset, name: str, where: str) -> None:
    """A missing column is the user's typo far more often than a missing step, so suggest a name."""
    if name not in ds.column_names:
        # difflib is case-sensitive; a column differing only in case is the likeliest meaning.
        same = [c for c in ds.column_names if c.lower() == name.lower()]
        hint = f" (did you mean {same[0]!r}?)" if same else did_you_mean(name, ds.column_names)
        raise CurateError(
            f"no column {name!r} to select by{hint}; "
            f"columns here: {', '.join(ds.column_names)}",
            where,
        )


def scores_of(ds: Dataset, name: str, where: str) -> np.ndarray:
    """The column as float64, with None (a row a scorer could not score) as NaN."""
    require_column(ds, name, where)
    values = list(ds[name])
    try:
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise CurateError(f"column {name!r} is not numeric, so it cannot rank rows", where) from None


def ranked(scores: np.ndarray, descending: bool = True) -> np.ndarray:
    """Indices of the non-NaN rows, best first; ties keep dataset order so the result is deterministic."""
    valid = np.flatnonzero(~np.isnan(scores))
    key = -scores[valid] if descending else scores[valid]
    # lexsort sorts by the last key first: score, then position.
    return valid[np.lexsort((valid, key))]


def budget_notes(selector, ds: Dataset, chosen: list[int]) -> dict:
    """What every selector reports: rows chosen and, for a token budget, the tokens they hold."""
    out = {"selected": len(chosen), "pool": len(ds)}
    if selector.params.tokens is not None:
        out["tokens"] = int(selector.row_costs(ds)[chosen].sum()) if chosen else 0
        out["token_budget"] = selector.params.tokens
    else:
        out["row_budget"] = selector.params.rows
    return out
