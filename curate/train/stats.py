"""The statistics of `curate compare` and `curate ablate --train`, apart from the code that runs them.

- `summarize(values)`: mean, standard deviation and a t-distribution interval over seeds (per condition).
- `paired(subset_items, arm_items, ...)`: the paired comparison of an arm against the subset on the same eval
  items and the same seed index. Each run gives, per metric, its per-item values (`{"ids", "values",
  "weights"}`, see curate.evals.suite); for seed index k and item i the difference is
  `d[k, i] = subset - arm` (`arm - subset` for a metric where lower is better), so a positive difference is an
  advantage of the subset. The estimate is the weighted mean of d over items and seeds (weights: 1 per item, or
  the item's assistant tokens for a loss, so that it equals the difference of the token-mean losses), with a
  bootstrap interval that resamples items and seeds together (a two-way bootstrap: both the item sample and the
  training seed are sources of variance, Miller 2024), and win / tie / loss counts over the (seed, item) pairs.
  "no difference detected" when the interval covers 0.
- `pareto_front(points)`: which (x, y) points no other point beats on both.

Everything here is plain numbers in, plain numbers out (numpy and scipy only), seeded: the same inputs give the
same interval.
"""

from __future__ import annotations

import math

from curate.numbers import is_missing, rounded
from curate.seeds import derive_seed

TIE = 1e-9  # per-item differences smaller than this are ties (losses are floats)
NO_DIFFERENCE = "no difference detected"


def summarize(values: list, confidence: float = 0.95) -> dict:
    """`{"values", "n", "mean", "std", "ci": [lo, hi] | None}`: a t-distribution interval for the mean
    (None with fewer than two values); missing values are left out."""
    xs = [float(v) for v in values if not is_missing(v)]
    n = len(xs)
    out = {"values": [rounded(v) for v in values], "n": n, "mean": None, "std": None, "ci": None}
    if n == 0:
        return out
    mean = sum(xs) / n
    out["mean"] = rounded(mean)
    if n >= 2:
        from scipy import stats

        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
        out["std"] = rounded(sd)
        out["ci"] = [rounded(mean - half), rounded(mean + half)]
    return out


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For each (x, y), whether no other point is at least as good on both and better on one (maximising)."""
    flags = []
    for i, (x, y) in enumerate(points):
        if x is None or y is None:
            flags.append(False)
            continue
        dominated = any(
            j != i and qx is not None and qy is not None and qx >= x and qy >= y and (qx > x or qy > y)
            for j, (qx, qy) in enumerate(points)
        )
        flags.append(not dominated)
    return flags


# -- paired differences ----------------------------------------------------------------------------------


def paired(subset_items: list[dict | None], arm_items: list[dict | None], *, higher_is_better: bool = True,
           confidence: float = 0.95, iterations: int = 2000, seed: str = "") -> dict | None:
    """The paired comparison of an arm with the subset for one metric.

    `subset_items[k]` / `arm_items[k]`: the per-item results of the runs with seed index k (`{"ids", "values",
    "weights"}` or None when the metric has no per-item values). Items are matched by id; only items with a value
    in every run take part. Returns None when nothing pairs, else `{"items", "seeds", "pairs", "advantage",
    "ci", "wins", "ties", "losses", "verdict", "unpaired"}` (advantage > 0: the subset is better)."""
    import numpy as np

    runs = [(s, a) for s, a in zip(subset_items, arm_items) if s and a]
    if not runs:
        return None
    tables = []
    for s, a in runs:
        sv, av = _by_id(s), _by_id(a)
        tables.append((sv, av))
    common = [i for i in runs[0][0]["ids"] if all(i in sv and i in av for sv, av in tables)]
    common = list(dict.fromkeys(common))
    total = len(set(runs[0][0]["ids"]) | set(runs[0][1]["ids"]))
    if not common:
        return None
    sign = 1.0 if higher_is_better else -1.0
    d = np.array([[sign * (sv[i][0] - av[i][0]) for i in common] for sv, av in tables], dtype=np.float64)
    w = np.array([tables[0][0][i][1] for i in common], dtype=np.float64)
    estimate = float((d * w).sum() / (w.sum() * d.shape[0]))
    lo, hi = bootstrap_interval(d, w, confidence=confidence, iterations=iterations, seed=seed)
    wins, ties, losses = int((d > TIE).sum()), int((np.abs(d) <= TIE).sum()), int((d < -TIE).sum())
    if lo <= 0 <= hi:
        verdict = NO_DIFFERENCE
    else:
        verdict = "subset better" if lo > 0 else "arm better"
    return {"items": len(common), "seeds": int(d.shape[0]), "pairs": int(d.size), "advantage": rounded(estimate),
            "ci": [rounded(lo), rounded(hi)], "wins": wins, "ties": ties, "losses": losses, "verdict": verdict,
            "unpaired": total - len(common)}


def bootstrap_interval(d, w, *, confidence: float = 0.95, iterations: int = 2000, seed: str = "") -> tuple[float, float]:
    """A percentile interval of the weighted mean of `d` (seeds x items) under a two-way bootstrap: each
    iteration draws the items (with replacement, the same items for every seed) and the seeds (with
    replacement). `w`: per-item weights. Seeded by `seed` (a string): the same inputs give the same interval."""
    import numpy as np

    d = np.asarray(d, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    k, n = d.shape
    rng = np.random.default_rng(derive_seed("paired", seed, digits=16))
    stats = np.empty(iterations)
    dw = d * w  # k x n
    chunk = max(1, min(iterations, 2_000_000 // max(n, 1)))
    for start in range(0, iterations, chunk):
        b = min(chunk, iterations - start)
        items = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)  # b x n: how often each item
        seeds = rng.multinomial(k, np.full(k, 1.0 / k), size=b).astype(np.float64)  # b x k
        num = ((seeds @ dw) * items).sum(axis=1)
        den = seeds.sum(axis=1) * (items @ w)
        stats[start:start + b] = num / np.where(den == 0, 1.0, den)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _by_id(items: dict) -> dict:
    """id -> (value, weight) for the items with a value."""
    weights = items.get("weights") or [1.0] * len(items["ids"])
    return {i: (float(v), float(wt)) for i, v, wt in zip(items["ids"], items["values"], weights)
            if not is_missing(v) and wt}

