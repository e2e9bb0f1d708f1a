"""What `curate compare` writes: `results.json` (built here from the runs), `results.md` (rendered by the data
card's compare section, curate.card.sections.compare), the plots.

The statistics themselves live in curate.train.stats: per condition the mean over seeds with a t-interval
(`summarize`); per arm against the subset the paired per-item comparison (`paired`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from curate.train.stats import paired, summarize

FORMAT_VERSION = 2  # 2: conditions report tokens and steps; `paired` holds the per-item comparisons


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
    write_text_atomic(tmp / "results.md", results_markdown(results))
    compare_plot(results["metrics"], list(cspec.conditions), tmp / "compare.png",
                 title=f"{results['recipe']}: {' vs '.join(cspec.conditions)} ({len(results['seeds'])} seeds, "
                       f"{int(results['confidence'] * 100)}% CI)")
    first = {}
    for r in runs:
        first.setdefault(r["cond"], r["_log"])
    curves_plot(first, tmp / "loss_curves.png", title=f"{results['recipe']}: loss curves (seed {results['seeds'][0]})")


def results_markdown(results: dict) -> list[str]:
    """results.md: the data card's rendering of compare's results (curate.card.sections.compare) under a heading."""
    from curate.card.sections.compare import compare_markdown

    return [f"# Compare: {results['recipe']}", "", compare_markdown(results, "results.json"), ""]
