"""The fitted ratio of a trained ablation grid: a mixing law per metric (curate.train.mixlaw), the general share
that gains the most on the domain while keeping the recipe's retention target, its interval, the next ratios to
train, and warnings when the grid cannot support a fit.

Input: `curate ablate --train`'s pareto.json (every run of every point, the base model's metrics, each point's
general share r). Points that differ in anything but the ratio (a size, a schedule, a grid value) are fitted
apart, one curve per group.

The recommendation maximises the fitted domain gain over the ratios the grid spans (never beyond: a law fitted on
0–0.7 says little about 0.9) subject to every general metric keeping `retention` of the base model's score:

- a metric where higher is better (accuracy): fitted value >= retention x base;
- a loss: the score is the probability the model gives the held-out text per token, exp(-loss) (1/perplexity),
  so keeping `retention` of it means fitted loss <= base loss - ln(retention): 0.98 lets the loss rise by
  0.0202 nats, the perplexity by a factor 1/0.98 = 1.0204.

The general metrics are `evals.general_metric` when set, else every primary metric of the general tasks.
"""

from __future__ import annotations

import json
import math

import numpy as np

from curate.train import mixlaw

GRID = np.round(np.linspace(0.0, 1.0, 101), 4)  # where curves are drawn and the ratio is chosen
CANDIDATES = np.round(np.arange(0.0, 1.0001, 0.05), 2)  # ratios --suggest may propose
FRACTION = ".fraction"
REACH = 0.1  # --suggest proposes ratios at most this far beyond the trained ones


def fit_grid(result: dict, *, retention: float, iterations: int = 200, confidence: float | None = None) -> dict:
    """The fit document (`fit.json`) of a trained grid's results (`pareto.json`)."""
    confidence = confidence or result.get("confidence") or 0.95
    general = result.get("general") or {}
    info, base = result.get("metrics") or {}, (result.get("base") or {}).get("metrics") or {}
    constraints = [_constraint(m, info[m], base.get(m), retention) for m in _general_metrics(result)]
    doc = {"kind": "ablate-fit", "law": "f(r) = a + b·(exp(c·r) - 1)/c", "form": "Data Mixing Laws (Ye et al. 2024)",
           "r": f"the share of {general.get('component') or 'the general component'} in the mix",
           "general": general, "retention": retention, "confidence": confidence, "iterations": iterations,
           "objective": "domain_gain", "constraints": constraints, "groups": []}
    for label, changes, points in _groups(result["points"]):
        doc["groups"].append(_fit_group(label, changes, points, constraints, general, info,
                                        confidence=confidence, iterations=iterations))
    return doc


def _general_metrics(result: dict) -> list[str]:
    chosen = ((result.get("settings") or {}).get("evals") or {}).get("general_metric")
    if chosen:
        return [chosen]
    return [m for m, i in (result.get("metrics") or {}).items() if i.get("role") == "general" and i.get("primary")]


def _constraint(metric: str, info: dict, base, retention: float) -> dict:
    higher = info.get("higher_is_better", True)
    if base is None:
        return {"metric": metric, "base": None, "bound": None, "higher_is_better": higher,
                "rule": "no base-model value: not constrained"}
    if higher:
        bound = retention * base
        rule = f"{metric} >= {retention:g} x base {base:.4g} = {bound:.4g}"
    else:  # a loss: keep `retention` of the per-token probability exp(-loss)
        bound = base - math.log(retention)
        rule = f"{metric} <= base {base:.4g} - ln({retention:g}) = {bound:.4g} (perplexity at most {1 / retention:.4g}x the base's)"
    return {"metric": metric, "base": base, "bound": round(bound, 6), "higher_is_better": higher, "rule": rule}


def _groups(points: list[dict]):
    """(label, changes, points) of the points that differ only in their ratio; the label is what their names share
    besides the ratio (`schedule-mixed`, `size500`), or "all points"."""
    out: dict[str, tuple[str, dict, list]] = {}
    for p in points:
        rest = {k: v for k, v in (p.get("changes") or {}).items() if not (k.startswith("mix.components.") and k.endswith(FRACTION))}
        key = json.dumps(rest, sort_keys=True, default=str)
        label = "_".join(x for x in str(p.get("point", "")).split("_") if not x.startswith("ratio")) if rest else ""
        out.setdefault(key, (label, rest, []))[2].append(p)
    return list(out.values())


def point_values(result: dict, changes: dict | None, metric: str) -> list[tuple[float, list[float]]]:
    """(r, every run's value of `metric`) per point of the group with these `changes` (what fit.png draws)."""
    for _, rest, pts in _groups(result["points"]):
        if rest == (changes or {}):
            return [(float(p["general_share"]), [v for v in (_value(run, metric) for run in p["runs"]) if v is not None])
                    for p in pts if p.get("general_share") is not None]
    return []


def _fit_group(label, changes, points, constraints, general, info, *, confidence, iterations) -> dict:
    pts = sorted((p for p in points if p.get("general_share") is not None), key=lambda p: p["general_share"])
    metrics = ["domain_gain", "general_retention"] + [c["metric"] for c in constraints]
    metrics += [m for m, i in info.items() if i.get("primary") and m not in metrics]
    data = [(float(p["general_share"]), {m: [_value(run, m) for run in p["runs"]] for m in metrics}) for p in pts]
    ratios = sorted({r for r, _ in data})
    seeds = min((len(p["runs"]) for p in pts), default=0)
    group = {"group": label or "all points", "changes": changes, "ratios": ratios, "seeds": seeds, "metrics": {},
             "warnings": [], "recommendation": None, "suggest": []}
    warn = group["warnings"].append
    if len(ratios) < 3:
        warn(f"too coarse to fit: {len(ratios)} ratio(s) for a law of 3 parameters; train 3 or more "
             "(`curate ablate --suggest N` proposes them)")
        group["suggest"] = mixlaw.suggest(CANDIDATES, None, ratios, 3)
        return group
    if len(ratios) == 3:
        warn("coarse: 3 ratios for 3 parameters: the curve passes through the point means and no spare ratio "
             "checks its shape; add a ratio")
    lo_r, hi_r = ratios[0], ratios[-1]
    inside = (GRID >= lo_r - 1e-9) & (GRID <= hi_r + 1e-9)
    curves = mixlaw.bootstrap(data, GRID, iterations=iterations, seed=label) if seeds >= 2 else None
    if seeds < 2:
        warn("1 seed: no bootstrap over seeds, so no band and no interval; train 2 or more (compare.seeds)")
    elif seeds == 2:
        warn("2 seeds: a bootstrap over 2 runs per ratio has 3 distinct draws and understates the noise; "
             "3 or more seeds give honest intervals")
    for m in metrics:
        entry = _fit_metric(m, data, curves, inside, confidence, warn)
        if entry is not None:
            group["metrics"][m] = entry
    _recommend(group, constraints, curves, inside, confidence, warn, general)
    group["suggest"] = _suggest(group, constraints, curves, ratios)
    return group


def _value(run: dict, metric: str):
    v = run.get(metric) if metric in ("domain_gain", "general_retention") else (run.get("metrics") or {}).get(metric)
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def _fit_metric(metric, data, curves, inside, confidence, warn) -> dict | None:
    xs, ys = mixlaw.flat(data, metric)
    res = mixlaw.fit(xs, ys)
    if res is None:
        if ys:
            warn(f"no fit for {metric}: the least-squares fit failed or fewer than 3 ratios have a value")
        return None
    params, sse = res
    fitted = mixlaw.law(GRID, *params)
    means = [(r, float(np.mean([v for v in vals[metric] if v is not None])))
             for r, vals in data if any(v is not None for v in vals[metric])]
    sds = [np.var([v for v in vals[metric] if v is not None], ddof=1) for _, vals in data
           if sum(v is not None for v in vals[metric]) >= 2]
    runs = max(1, round(len(xs) / max(len(means), 1)))
    se = math.sqrt(float(np.mean(sds)) / runs) if sds else None  # the standard error of a point's mean
    span = float(np.ptp(fitted[inside]))
    entry = {"params": {"a": _r(params[0]), "b": _r(params[1]), "c": _r(params[2])}, "dml": _rd(mixlaw.dml_form(params)),
             "rmse": _r(math.sqrt(sse / len(xs))), "seed_se": _r(se), "span": _r(span),
             "points": [{"r": r, "mean": _r(mu)} for r, mu in means],
             "curve": {"fit": [_r(v) for v in fitted]}}
    if curves is not None:
        lo, hi = mixlaw.band(curves[metric], confidence)
        entry["curve"].update(lo=[_r(v) for v in lo], hi=[_r(v) for v in hi])
    if se is not None and span < 2 * se:
        warn(f"too noisy for {metric}: the fitted curve moves by {span:.4g} across the ratios, less than twice the "
             f"standard error of a point's mean ({se:.4g}): the grid cannot tell its ratios apart on it")
    if se is not None and len(means) > 3:
        lack = math.sqrt(np.mean([(mu - float(mixlaw.law(r, *params))) ** 2 for r, mu in means]))
        if lack > 2 * se:
            warn(f"the law does not fit {metric}: the point means sit {lack:.4g} from the curve (RMS), more than twice "
                 f"their standard error ({se:.4g}); the metric may not be monotone in the ratio")
    return entry


def _recommend(group, constraints, curves, inside, confidence, warn, general) -> None:
    fits = group["metrics"]
    if "domain_gain" not in fits:
        warn("no recommendation: the domain gain could not be fitted")
        return
    active = [c for c in constraints if c["bound"] is not None]
    missing = [c["metric"] for c in active if c["metric"] not in fits]
    if missing:
        warn(f"no recommendation: no fit for the general metric(s) {missing}")
        return
    grid = GRID[inside]

    def pick(gain, values) -> float | None:
        oks = [(v <= c["bound"] + 1e-12) if not c["higher_is_better"] else (v >= c["bound"] - 1e-12)
               for c, v in zip(active, values)]
        i = mixlaw.choose(grid, gain, oks)
        return None if i is None else float(grid[i])

    gain = np.asarray(fits["domain_gain"]["curve"]["fit"])[inside]
    values = [np.asarray(fits[c["metric"]]["curve"]["fit"])[inside] for c in active]
    r = pick(gain, values)
    rec = {"r": r, "ratio": ratio_string(general, r), "interval": None, "feasible_share": None,
           "constraints": [c["rule"] for c in active] or ["none: the recipe's evals have no general metric with a base value"]}
    if r is None:
        margins = np.column_stack([(v - c["bound"]) if c["higher_is_better"] else (c["bound"] - v) for c, v in zip(active, values)])
        rec["closest"] = float(grid[int(np.argmax(margins.min(axis=1)))])  # where the target is missed by the least
        warn(f"no ratio in [{grid[0]:g}, {grid[-1]:g}] keeps the retention target by the fit: "
             + "; ".join(c["rule"] for c in active))
    at = int(np.argmin(np.abs(GRID - r))) if r is not None else None
    if at is not None:
        rec["at_r"] = {m: {"fit": e["curve"]["fit"][at], **({"band": [e["curve"]["lo"][at], e["curve"]["hi"][at]]}
                                                            if "lo" in e["curve"] else {})} for m, e in fits.items()}
    if curves is not None:
        picks = [pick(curves["domain_gain"][i][inside], [curves[c["metric"]][i][inside] for c in active])
                 for i in range(len(curves["domain_gain"]))
                 if not np.isnan(curves["domain_gain"][i]).any()]
        found = [p for p in picks if p is not None]
        rec["feasible_share"] = _r(len(found) / len(picks)) if picks else None
        if found:
            alpha = (1 - confidence) / 2
            rec["interval"] = [float(np.quantile(found, alpha)), float(np.quantile(found, 1 - alpha))]
            width = rec["interval"][1] - rec["interval"][0]
            if width > 0.5 * (grid[-1] - grid[0]):
                warn(f"too noisy: the recommended ratio's {int(confidence * 100)}% interval [{rec['interval'][0]:g}, "
                     f"{rec['interval'][1]:g}] spans more than half the grid")
    if r is not None:
        ratios = group["ratios"]
        gap = next(((a, b) for a, b in zip(ratios, ratios[1:]) if a <= r <= b), None)
        if gap and gap[1] - gap[0] > 0.2 and r not in ratios:
            warn(f"coarse: the recommended r = {r:g} lies between trained ratios {gap[0]:g} and {gap[1]:g} "
                 "(a gap over 0.2): train a ratio inside it to check")
    group["recommendation"] = rec


def _suggest(group, constraints, curves, ratios) -> list[float]:
    """The next ratios to train: where the bands of the decision's curves (domain gain and the constrained general
    metrics), each in units of its seed noise, are widest, within REACH of the trained ratios (the law
    interpolates; far beyond the grid every band is wide and says nothing about the choice)."""
    fits = group["metrics"]
    if curves is None or "domain_gain" not in fits:
        return mixlaw.suggest(CANDIDATES, None, ratios, 3)
    total = np.zeros(len(CANDIDATES))
    idx = [int(np.argmin(np.abs(GRID - c))) for c in CANDIDATES]
    for m in ["domain_gain"] + [c["metric"] for c in constraints if c["metric"] in fits]:
        e = fits[m]
        width = np.asarray(e["curve"]["hi"], dtype=float)[idx] - np.asarray(e["curve"]["lo"], dtype=float)[idx]
        scale = e["seed_se"] or e["span"] or 1.0
        total += np.nan_to_num(width / scale)
    total[(CANDIDATES < ratios[0] - REACH - 1e-9) | (CANDIDATES > ratios[-1] + REACH + 1e-9)] = np.nan
    group["uncertainty"] = {"r": [float(c) for c in CANDIDATES], "score": [_r(v) for v in total]}
    return mixlaw.suggest(CANDIDATES, total, ratios, 3)


def suggestions(doc: dict, n: int) -> list[dict]:
    """The next `n` ratios per group of a fit document, as `ablate.ratios` strings."""
    out = []
    for g in doc["groups"]:
        if g.get("uncertainty"):
            score = [np.nan if v is None else v for v in g["uncertainty"]["score"]]
            rs = mixlaw.suggest(CANDIDATES, score, g["ratios"], n)
        else:
            rs = mixlaw.suggest(CANDIDATES, None, g["ratios"], n)
        out.append({"group": g["group"], "r": rs, "ratios": [ratio_string(doc.get("general") or {}, r) for r in rs]})
    return out


def ratio_string(general: dict, r) -> str | None:
    """`r` as an `ablate.ratios` string in the order of `ablate.components` (percent, "30:70")."""
    comps = general.get("components") or []
    if r is None or len(comps) != 2:
        return None
    g = round(100 * r)
    return f"{g}:{100 - g}" if comps[0] == general.get("component") else f"{100 - g}:{g}"


def _r(x):
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 6)


def _rd(d: dict) -> dict:
    return {k: (_rd(v) if isinstance(v, dict) else _r(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in d.items()}
