"""The memorisation (staircase) detector: does the training loss fall at epoch boundaries?

A model that memorises what it has seen once shows a staircase: within an epoch the training loss is
flat (each batch is new), and at the start of the next epoch it drops at once (every batch has been seen).
A model that generalises shows a smooth curve, whose slope carries across the boundary.

For each boundary between epoch e and e+1, with a window of w steps on either side:

- `drop`: mean loss of the last w steps of epoch e minus the mean of the first w steps of epoch e+1;
- `expected`: the drop the within-epoch trend predicts over the same distance (a least-squares line through
  epoch e after its first w steps, i.e. away from the previous boundary), slope x w;
- `excess = drop - expected`, `relative = excess / (mean loss of the last w steps of epoch e)`;
- `z = excess / se`, with se the standard error of the difference of the two window means from the
  residual noise of the trend fit (null when epoch e has fewer than 4 steps to fit).

A boundary is flagged when `relative > threshold` (default 0.05: the loss fell by 5% of itself more than
the trend says) and `z > z_min` (default 3; ignored when z is null). The run's score is the largest
`relative` over its boundaries; the run is flagged when any boundary is.
A decaying smooth curve has excess <= 0 (the trend overstates the drop of a convex curve), so it is not flagged.
The windows average over batches of different difficulty, so the detector needs about 10 or more steps per
epoch; with fewer, the report carries a note. `epoch_means` (the mean training loss of each epoch) is
reported too: set beside the validation loss it shows the gap that memorisation opens.
"""

from __future__ import annotations

import math

from curate.numbers import rounded


def detect_staircase(steps: list[int], losses: list[float], boundaries: list[int], *, threshold: float = 0.05,
                     z_min: float = 3.0, window: int | None = None) -> dict:
    """The staircase report for a training-loss log.

    `steps` / `losses`: the logged (optimizer step, training loss) pairs; `boundaries`: the last step of each
    epoch (the final epoch's end may be included; it is ignored). Returns
    `{"score", "flagged", "threshold", "z_min", "boundaries": [{epoch, step, window, drop, expected, excess,
    relative, z, flagged}], "epoch_means", "note"}`.
    """
    pairs = sorted((int(s), float(v)) for s, v in zip(steps, losses) if v is not None and math.isfinite(float(v)))
    report = {"score": None, "flagged": False, "threshold": threshold, "z_min": z_min, "boundaries": [], "note": None}
    if not pairs:
        report["note"] = "no training loss logged"
        return report
    last_step = pairs[-1][0]
    cuts = sorted({int(b) for b in boundaries if int(b) < last_step})
    if not cuts:
        report["note"] = "fewer than two epochs: no boundary to look at"
        return report
    edges = [0] + cuts + [last_step]
    epochs = [[(s, v) for s, v in pairs if lo < s <= hi] for lo, hi in zip(edges, edges[1:])]
    scores = []
    for e, cut in enumerate(cuts):
        before, after = epochs[e], epochs[e + 1]
        entry = {"epoch": e + 1, "step": cut}
        if len(before) < 2 or len(after) < 1:
            entry.update(window=0, drop=None, expected=None, excess=None, relative=None, z=None, flagged=False)
            report["boundaries"].append(entry)
            continue
        w = window or max(1, min(len(before) // 3, len(after) // 3 or 1, 25))
        w = min(w, len(before), len(after))
        pre = [v for _, v in before[-w:]]
        post = [v for _, v in after[:w]]
        drop = _mean(pre) - _mean(post)
        fit = before[w:] if len(before) - w >= 4 else before
        slope, noise = _trend(fit)
        expected = -slope * w if slope is not None else 0.0
        excess = drop - expected
        level = _mean(pre)
        relative = excess / level if level > 0 else None
        z = None
        if noise is not None and len(fit) >= 4:
            se = noise * math.sqrt(2.0 / w)
            z = excess / se if se > 0 else (math.inf if excess > 0 else 0.0)
        flagged = relative is not None and relative > threshold and (z is None or z > z_min)
        entry.update(window=w, drop=rounded(drop), expected=rounded(expected), excess=rounded(excess), relative=rounded(relative),
                     z=rounded(z) if z is not None and math.isfinite(z) else z, flagged=flagged)
        report["boundaries"].append(entry)
        if relative is not None:
            scores.append(relative)
    report["score"] = rounded(max(scores)) if scores else None
    report["flagged"] = any(b["flagged"] for b in report["boundaries"])
    report["epoch_means"] = [rounded(_mean([v for _, v in ep])) if ep else None for ep in epochs]
    windows = [b["window"] for b in report["boundaries"] if b["window"]]
    if windows and min(windows) < 3:
        report["note"] = (f"only {min(windows)} step(s) per window: with so few steps per epoch the score mostly "
                          "reflects which batches sit at the epoch ends; use >= 10 steps per epoch")
    return report


def _mean(xs):
    return sum(xs) / len(xs)


def _trend(points) -> tuple[float | None, float | None]:
    """(least-squares slope, residual standard deviation) of (step, loss) points."""
    n = len(points)
    if n < 2:
        return None, None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = _mean(xs), _mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    if n < 3:
        return slope, None
    resid = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys)]
    return slope, math.sqrt(sum(r * r for r in resid) / (n - 2))

