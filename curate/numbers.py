"""Numbers as curate shows and stores them: what counts as missing, rounding for JSON reports, and the
short form for tables and terminal output."""

from __future__ import annotations

import math


def is_missing(v) -> bool:
    """None or NaN: a value a scorer could not give (the row has a `<column>_why` instead)."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def rounded(x, digits: int = 6) -> float | None:
    """`x` as a float rounded for a report (None stays None), so reports do not carry float noise."""
    return None if x is None else round(float(x), digits)


def fmt(v) -> str:
    """A value for a table or the terminal: thousands separators, 3 significant digits, "–" for None."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if math.isinf(v):
            return str(v)  # "inf", "-inf" (a perplexity can be infinite)
        if v == int(v) and abs(v) < 1e9:
            return f"{int(v):,}"
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def metric(v) -> str:
    """A metric in a results table (evals, compare, ablate): 4 decimals, 1 from 100 up, "–" for None."""
    if v is None:
        return "–"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)
