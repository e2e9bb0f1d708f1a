"""What `curate compare` writes: `results.json` (built here from the runs), `results.md`, the plots.

The statistics themselves live in curate.train.stats: per condition the mean over seeds with a t-interval
(`summarize`); per arm against the subset the paired per-item comparison (`paired`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from curate.numbers import metric
from curate.train.stats import NO_DIFFERENCE, paired, summarize

FORMAT_VERSION = 2  # 2: conditions report tokens and steps; `paired` holds the per-item comparisons
WHAT = {"random": "a uniform random draw of as many pool rows", "random_tokens": "uniform random pool rows with the "
        "subset's tokens", "random_balanced": "random pool rows with the subset's per-source counts",
        "full": "the pool", "full_steps": "the pool, for the subset's number of optimizer steps"}


def compare_results(ctx, manifest, sel_label, cspec, tspec, espec, info, base, runs, holdout, pool, subset, rest,
                    started) -> dict:
    from curate import __version__

    conf = cspec.confidence
    metrics = {}
    for m, i in info.items():
        entry = {"role": i["role"], "higher_is_better": i["higher_is_better"], "primary": i["primary"],
                 "base": base["metrics"].get(m), "by_condition": {}}
        for cond in cspec.conditions:
            rs = [r for r in runs if r["cond"] == cond]
            s = summarize([r["metrics"].get(m) for r in rs], conf)
            s["change_vs_base"] = summarize([r["changes"].get(m) for r in rs], conf)
            entry["by_condition"][cond] = s
        metrics[m] = entry
    summary = {}
    for cond in cspec.conditions:
        rs = [r for r in runs if r["cond"] == cond]
        summary[cond] = {k: summarize([r[k] for r in rs], conf) for k in ("domain_gain", "general_retention", "forgetting")}
        summary[cond]["train_loss_last"] = summarize([r["train_loss_last"] for r in rs], conf)
        summary[cond]["staircase_score"] = summarize([r["staircase_score"] for r in rs], conf)
    conditions = {}
    for cond in cspec.conditions:
        rs = [r for r in runs if r["cond"] == cond]
        conditions[cond] = {k: [r[k] for r in rs] for k in ("rows", "tokens", "steps", "tokens_trained")}
        conditions[cond]["description"] = rs[0]["what"] if rs else None
    return {
        "format_version": FORMAT_VERSION,
        "kind": "compare",
        "curate_version": __version__,
        "recipe": ctx.recipe.name,
        "recipe_hash": manifest.get("recipe_hash"),
        "run_dir": str(ctx.run_dir),
        "selector": sel_label,
        "pool": {"rows": len(pool), "selection_rows": len(subset), "full_rows": len(rest),
                 "built_by": f"read from {cspec.pool}" if cspec.pool else
                 f"the recipe without {sel_label} and later steps (compare/pool/)"},
        "holdout": {"rows": len(holdout), "role": cspec.holdout_role if holdout else None,
                    "metric": "pool_heldout.loss" if holdout else None},
        "seeds": list(cspec.seeds),
        "conditions": conditions,
        "confidence": conf,
        "base": {"metrics": base["metrics"], "model": base.get("model"), "cached": base.get("cached")},
        "metrics": metrics,
        "paired": paired_results(info, runs, cspec),
        "summary": summary,
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        "settings": {"train": tspec.model_dump(mode="json"), "evals": espec.model_dump(mode="json"),
                     "compare": cspec.model_dump(mode="json")},
        "files": {"table": "results.md", "plot": "compare.png", "curves": "loss_curves.png",
                  "pool": None if cspec.pool else "pool/"},
        "seconds": round(time.perf_counter() - started, 1),
    }


def paired_results(info: dict, runs: list[dict], cspec) -> dict:
    """metric -> arm -> the paired comparison with the subset (curate.train.stats.paired), for the metrics with
    per-item values; the runs are matched by seed."""
    out = {}
    if "subset" not in cspec.conditions:
        return out
    by = {(r["cond"], r["seed"]): r for r in runs}
    for m, i in info.items():
        row = {}
        for cond in cspec.conditions:
            if cond == "subset":
                continue
            seeds = [s for s in cspec.seeds if ("subset", s) in by and (cond, s) in by]
            res = paired([by[("subset", s)]["_items"].get(m) for s in seeds], [by[(cond, s)]["_items"].get(m) for s in seeds],
                         higher_is_better=i["higher_is_better"], confidence=cspec.confidence,
                         iterations=cspec.bootstrap, seed=f"{m}:{cond}")
            if res is not None:
                row[cond] = res
        if row:
            out[m] = row
    return out


def write_compare(tmp: Path, out: Path, results: dict, cspec, runs: list[dict]) -> None:
    from curate.io import write_json_atomic, write_text_atomic
    from curate.train.plots import compare_plot, curves_plot

    for r in results["runs"]:
        r["dir"] = os.path.relpath(r["dir"], out)  # relative to the compare folder
    write_json_atomic(tmp / "results.json", results)
    write_text_atomic(tmp / "results.md", compare_markdown(results))
    compare_plot(results["metrics"], list(cspec.conditions), tmp / "compare.png",
                 title=f"{results['recipe']}: {' vs '.join(cspec.conditions)} ({len(results['seeds'])} seeds, "
                       f"{int(results['confidence'] * 100)}% CI)")
    first = {}
    for r in runs:
        first.setdefault(r["cond"], r["_log"])
    curves_plot(first, tmp / "loss_curves.png", title=f"{results['recipe']}: loss curves (seed {results['seeds'][0]})")


def compare_markdown(results: dict) -> list[str]:
    conds = list(results["conditions"])
    conf = int(round(results["confidence"] * 100))
    what = dict(WHAT, subset=f"the selection by `{results['selector']}`")
    lines = [f"# Compare: {results['recipe']}", "",
             f"Trained with identical settings on {'; '.join(f'{what.get(c, c)} ({c})' for c in conds)}; "
             f"{len(results['seeds'])} seed(s) {results['seeds']}; mean ± half-width of the {conf}% t-interval over "
             "seeds (none with one seed). Base = the model before fine-tuning.", ""]
    lines += ["| condition | rows per run | tokens per run | optimizer steps | tokens trained | what |",
              "|---|---|---|---|---|---|"]
    for c, v in results["conditions"].items():
        cells = [", ".join(str(x) for x in v.get(k) or []) for k in ("rows", "tokens", "steps", "tokens_trained")]
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {v['description']} |")
    lines += ["", "| metric | role | base | " + " | ".join(conds) + " |", "|---|---|---|" + "---|" * len(conds)]
    for m, e in results["metrics"].items():
        arrow = "↑" if e["higher_is_better"] else "↓"
        cells = [pm(e["by_condition"][c]) for c in conds]
        lines.append(f"| {m} {arrow} | {e['role'] or '-'} | {metric(e['base'])} | " + " | ".join(cells) + " |")
    lines += paired_markdown(results)
    lines += ["", "| condition | domain gain | general retention (forgetting = −retention) | final train loss | staircase score |",
              "|---|---|---|---|---|"]
    for c in conds:
        s = results["summary"][c]
        lines.append(f"| {c} | {pm(s['domain_gain'])} | {pm(s['general_retention'])} | {pm(s['train_loss_last'])} | "
                     f"{pm(s['staircase_score'])} |")
    lines += ["", f"Held-out: {results['holdout']['rows']} pool rows in no condition's training data "
              f"(`pool_heldout.loss`, role {results['holdout']['role']}). Pool: {results['pool']['rows']} rows "
              f"({results['pool']['built_by']}).", ""]
    return lines


def paired_markdown(results: dict) -> list[str]:
    pairs = results.get("paired") or {}
    if not pairs:
        return []
    conf = int(round(results["confidence"] * 100))
    lines = ["", f"**Paired against the subset** (same eval items, same seed index): the subset's advantage is the "
             f"mean per-item difference, signed so that positive means the subset is better (for a loss: the arm's "
             f"loss minus the subset's, token-weighted); {conf}% bootstrap interval over items × seeds; wins / ties "
             "/ losses of the subset over the (seed, item) pairs. The interval covering 0 reads "
             f"\"{NO_DIFFERENCE}\".", "",
             "| metric | arm | items × seeds | subset's advantage | interval | wins / ties / losses | verdict |",
             "|---|---|---|---|---|---|---|"]
    for m, row in pairs.items():
        for arm, p in row.items():
            verdict = p["verdict"] if p["verdict"] != "arm better" else f"{arm} better"
            lines.append(f"| {m} | {arm} | {p['items']} × {p['seeds']} | {metric(p['advantage'])} | "
                         f"[{metric(p['ci'][0])}, {metric(p['ci'][1])}] | {p['wins']} / {p['ties']} / {p['losses']} | {verdict} |")
    return lines


def pm(s: dict) -> str:
    if not s or s.get("mean") is None:
        return "–"
    if s.get("ci"):
        half = (s["ci"][1] - s["ci"][0]) / 2
        return f"{metric(s['mean'])} ± {metric(half)}"
    return metric(s["mean"])


