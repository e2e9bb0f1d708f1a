"""A mixing law: a metric as a smooth function of the general share r of a two-part mix, fitted to a trained grid.

The form is the Data Mixing Laws one (Ye et al. 2024: a domain's loss is `c + k·exp(t·r)` in the mixture
proportions; with two parts the other proportion is 1 - r and folds into k). It is written here as

    f(r) = a + b·(exp(c·r) - 1)/c        (f(r) = a + b·r as c -> 0)

the same family with parameters that stay finite when the curve is nearly straight: a = f(0), b = f'(0) (the
slope at r = 0), c = f''/f' (the curvature: c < 0 is diminishing returns, c > 0 accelerating). It is monotone in
r, saturates or accelerates, and has three parameters: the fewest that can bend, so three ratios determine it
and a fourth checks it. It is fitted by least squares (scipy.optimize.curve_fit, c bounded to +-C_MAX, started
from a few curvatures with a and b from a linear fit) to every run of every ratio (each seed one point).

Uncertainty is a bootstrap over seeds: each replicate redraws, at every ratio independently, as many runs as it
has (with replacement) and refits; bands and the recommended ratio's interval are percentiles of the replicates.
Seeded: the same inputs give the same bands.
"""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np

C_MAX = 12.0  # |c|: beyond this the curve is a step, which a grid cannot pin down
STARTS = (-3.0, -0.5, 0.5, 3.0)  # starting curvatures


def law(r, a, b, c):
    """f(r) = a + b·(exp(c·r) - 1)/c, smooth through c = 0 (a Taylor series near it)."""
    r = np.asarray(r, dtype=np.float64)
    if abs(c) < 1e-4:
        return a + b * (r + c * r ** 2 / 2 + c ** 2 * r ** 3 / 6)
    return a + b * np.expm1(c * r) / c


def dml_form(params) -> dict:
    """The same curve as Data Mixing Laws write it: `const + k·exp(t·r)` (None for a straight line)."""
    a, b, c = params
    if abs(c) < 1e-4:
        return {"const": None, "k": None, "t": None, "linear": {"intercept": a, "slope": b}}
    return {"const": a - b / c, "k": b / c, "t": c}


def fit(r, y, starts=STARTS) -> tuple[np.ndarray, float] | None:
    """(params a, b, c; the residual sum of squares) of the least-squares fit, or None when it fails or the data
    cannot determine three parameters (fewer than three distinct r)."""
    from scipy.optimize import OptimizeWarning, curve_fit

    r = np.asarray(r, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(y)
    r, y = r[ok], y[ok]
    if len(np.unique(r)) < 3:
        return None
    best = None
    for c0 in starts:
        g = law(r, 0.0, 1.0, c0)
        (b0, a0), *_ = np.linalg.lstsq(np.column_stack([g, np.ones_like(g)]), y, rcond=None)
        try:
            with warnings.catch_warnings():  # an undetermined covariance is not our concern: the bootstrap is
                warnings.simplefilter("ignore", OptimizeWarning)
                p, _ = curve_fit(law, r, y, p0=[a0, b0, c0], bounds=([-np.inf, -np.inf, -C_MAX], [np.inf, np.inf, C_MAX]),
                                 max_nfev=2000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((law(r, *p) - y) ** 2))
        if best is None or sse < best[1] - 1e-15:
            best = (p, sse)
    return best


def bootstrap(points: list[tuple[float, dict[str, list]]], grid, *, iterations: int = 200,
              seed: str = "") -> dict[str, np.ndarray]:
    """Bootstrap curves on `grid`, per metric: `iterations` rows (NaN where a refit failed). `points`: per ratio,
    (r, metric -> the value of each run at r, the runs in the same order for every metric). A replicate redraws
    the runs of each ratio once and refits every metric on them, so the curves of one replicate belong together
    (the recommended ratio of a replicate uses its own gain and constraint curves)."""
    rng = np.random.default_rng(int(hashlib.sha256(f"mixlaw:{seed}".encode()).hexdigest()[:16], 16))
    grid = np.asarray(grid, dtype=np.float64)
    metrics = list(points[0][1]) if points else []
    starts = {}
    for m in metrics:
        full = fit(*flat(points, m))
        starts[m] = (float(full[0][2]),) if full is not None else STARTS  # a replicate starts where the fit ended
    curves = {m: np.full((iterations, len(grid)), np.nan) for m in metrics}
    for i in range(iterations):
        drawn = []
        for r, values in points:
            k = len(next(iter(values.values())))
            pick = rng.integers(0, k, k)
            drawn.append((r, {m: [values[m][j] for j in pick] for m in metrics}))
        for m in metrics:
            xs, ys = flat(drawn, m)
            res = fit(xs, ys, starts=starts[m]) or fit(xs, ys)
            if res is not None:
                curves[m][i] = law(grid, *res[0])
    return curves


def flat(points, metric: str) -> tuple[list[float], list[float]]:
    """(r, value) of every run with a value for `metric`."""
    pairs = [(r, float(v)) for r, values in points for v in values[metric] if v is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def band(curves: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """The pointwise percentile band of bootstrap curves (NaN rows left out)."""
    alpha = (1 - confidence) / 2
    good = curves[~np.isnan(curves).any(axis=1)]
    if len(good) == 0:
        nan = np.full(curves.shape[1], np.nan)
        return nan, nan
    return np.quantile(good, alpha, axis=0), np.quantile(good, 1 - alpha, axis=0)


def choose(grid, gain, constraints) -> int | None:
    """The index of `grid` with the highest `gain` among those where every constraint holds (each a boolean
    array over `grid`), or None when none does. Ties go to the larger r (more general data, the safer side)."""
    ok = np.ones(len(grid), dtype=bool)
    for c in constraints:
        ok &= c
    gain = np.asarray(gain, dtype=np.float64)
    if not ok.any() or np.isnan(gain[ok]).all():
        return None
    masked = np.where(ok & ~np.isnan(gain), gain, -np.inf)
    best = masked.max()
    return int(np.flatnonzero(np.isclose(masked, best, rtol=0, atol=1e-12))[-1])


def suggest(candidates, uncertainty, taken, n: int, spacing: float = 0.1) -> list[float]:
    """`n` candidates with the largest uncertainty, greedily, none closer than `spacing` to a picked one or
    closer than half of it to a ratio already `taken`. With no uncertainty (no fit) the candidate farthest from
    every taken and picked ratio (filling the largest gap)."""
    cand = np.asarray(candidates, dtype=np.float64)
    score = None if uncertainty is None else np.asarray(uncertainty, dtype=np.float64)  # NaN: not a candidate
    picked: list[float] = []
    for _ in range(n):
        have = list(taken) + picked
        dist_taken = np.min(np.abs(cand[:, None] - np.asarray(list(taken) or [np.inf])[None, :]), axis=1)
        dist_picked = np.min(np.abs(cand[:, None] - np.asarray(picked or [np.inf])[None, :]), axis=1)
        free = (dist_taken >= spacing / 2 - 1e-9) & (dist_picked >= spacing - 1e-9)
        if score is not None:
            free &= ~np.isnan(score)
        if not free.any():
            break
        if score is None:
            far = np.min(np.abs(cand[:, None] - np.asarray(have or [np.inf])[None, :]), axis=1)
            i = int(np.argmax(np.where(free, far, -1)))
        else:
            i = int(np.argmax(np.where(free, score, -np.inf)))
        picked.append(float(cand[i]))
    return picked


def finite(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x
