"""`curate ablate RECIPE --train`: fine-tune every point of an ablation grid, place each on domain gain (x)
against general retention (y), both changes against the base model (see curate.evals.suite); the points no
other point beats on both are the Pareto front. Then fit a mixing law per metric to the runs and recommend a
general share (curate.train.grid_fit). Writes `<ablate dir>/train/`: `pareto.json`, `pareto.png` (with the
fitted curves), `fit.json`, `fit.png`, `results.md`, `<point>/seed<k>/`.

A point whose grid changes `train.*` values (the `schedule` axis sets `train.stages`; `grid:` may set any) trains
with them. Eval tasks with `heldout: <component>` evaluate the rows that mix component held out at every point.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from curate.errors import CurateError
from curate.atomic import staged_folder
from curate.io import check_replaceable
from curate.train.context import RecipeContext
from curate.specs.evals import EvalSpec
from curate.specs.train import TrainSpec
from curate.train.stats import pareto_front, summarize

FORMAT_VERSION = 1


# -- ablate --train ---------------------------------------------------------------------------------------


def train_ablation(recipe_path, overrides: list[str] | None = None, *, ablate_dir: str | Path | None = None,
                   progress: Callable | None = None) -> Path:
    """`curate ablate RECIPE --train`: train every point of the recipe's grid (already built by
    `run_ablation`) with its `train:` and `evals:` sections; seeds are `compare.seeds` when the recipe gives
    them, else `train.seed`. Returns `<ablate dir>/train`."""
    ctx = RecipeContext(recipe_path, overrides)
    a = ctx.recipe.ablate
    folder = Path(ablate_dir) if ablate_dir else Path(a.dir if a and a.dir else f"runs/{ctx.recipe.name}-ablate")
    seeds = ctx.compare_spec.seeds if ctx.given("compare", "seeds") else [ctx.train_spec.seed]
    return train_grid(folder, ctx.train_spec, ctx.eval_spec, seeds=seeds, cache_dir=ctx.cache_dir,
                      base_dir=ctx.recipe_dir, confidence=ctx.compare_spec.confidence, progress=progress,
                      retention=a.retention if a else 0.98, iterations=a.bootstrap if a else 200)


def suggest_ratios(recipe_path, overrides: list[str] | None, n: int) -> tuple[dict, list[dict], list[str], list[str]]:
    """`curate ablate RECIPE --suggest N`: refit the trained grid (`<ablate dir>/train/pareto.json`) with the recipe's
    `ablate.retention` and return (the fit document, the next `n` ratios per group, the fit's report lines, the
    suggestion lines with the `--set` that adds them to the grid)."""
    from curate.recipe import load_recipe
    from curate.train.fit_report import fit_markdown
    from curate.train.grid_fit import fit_grid, suggestions

    recipe = load_recipe(recipe_path, overrides)
    a = recipe.ablate
    if a is None:
        raise CurateError("the recipe has no `ablate:` section (ratios, sizes or grid)", "ablate")
    path = Path(a.dir if a.dir else f"runs/{recipe.name}-ablate") / "train" / "pareto.json"
    if not path.is_file():
        raise CurateError("no trained grid: run `curate ablate RECIPE --train` first", str(path))
    result = json.loads(path.read_text(encoding="utf-8"))
    doc = fit_grid(result, retention=a.retention, iterations=a.bootstrap)
    picks = suggestions(doc, n)
    lines = []
    for s in picks:
        where = f" ({s['group']})" if len(picks) > 1 else ""
        if not s["r"]:
            lines.append(f"No ratio to suggest{where}: every candidate is within 0.05 of a trained one.")
            continue
        shown = ", ".join(s["ratios"]) if all(s["ratios"]) else ", ".join(f"r = {r:g}" for r in s["r"])
        lines.append(f"Next {len(s['r'])} ratio(s) to train{where}, where the fit is least certain: {shown}")
        if all(s["ratios"]):
            ratios = list(dict.fromkeys([*a.ratios, *s["ratios"]]))
            lines.append(f"  --set 'ablate.ratios={json.dumps(ratios)}'")
    return doc, picks, fit_markdown(doc), lines


def check_grid_training(recipe_path, overrides: list[str] | None = None) -> None:
    """Fail before any grid point is built when the recipe cannot be trained as a grid."""
    from curate.train import require_train_extra

    require_train_extra()
    ctx = RecipeContext(recipe_path, overrides)
    if ctx.recipe.ablate is None:
        raise CurateError("the recipe has no `ablate:` section (ratios, sizes or grid)", f"{ctx.where}: ablate")
    _check_pareto_evals(ctx.eval_spec)


def _check_pareto_evals(eval_spec: EvalSpec) -> None:
    roles = {t.role for t in eval_spec.tasks.values()}
    if not ({"domain", "general"} <= roles) and not (eval_spec.domain_metric and eval_spec.general_metric):
        raise CurateError("the Pareto front needs at least one domain and one general evaluation "
                          f"(roles given: {sorted(roles) or 'none'})", "evals.tasks")


def train_grid(ablate_dir: str | Path, train_spec: TrainSpec, eval_spec: EvalSpec, *, seeds: list[int] | None = None,
               cache_dir: str | Path | None = ".curate/cache/evals", base_dir: str | Path = ".",
               confidence: float = 0.95, progress: Callable | None = None, retention: float = 0.98,
               iterations: int = 200) -> Path:
    """Fine-tune and evaluate every point of `<ablate_dir>/index.json`; write `<ablate_dir>/train/`."""
    from curate.evals.suite import Suite
    from curate.train.runs import sayer, train_and_eval

    started = time.perf_counter()
    say = sayer(progress)
    ablate_dir = Path(ablate_dir)
    index_path = ablate_dir / "index.json"
    if not index_path.is_file():
        raise CurateError("no index.json: build the grid first (`curate ablate RECIPE`)", str(ablate_dir))
    index = json.loads(index_path.read_text(encoding="utf-8"))
    _check_pareto_evals(eval_spec)
    seeds = list(seeds or [train_spec.seed])
    from curate.train.heldout import grid_heldout

    suite = Suite(eval_spec, heldout=grid_heldout(ablate_dir, index, eval_spec))
    info = suite.metric_info()
    out = ablate_dir / "train"
    check_replaceable(out, "pareto.json", "a trained ablation folder")
    with staged_folder(out) as tmp:
        say("evaluating the base model")
        base = suite.run_base(train_spec.model, cache_dir=cache_dir, base_dir=base_dir, progress=say)
        points = []
        for p in index["points"]:
            runs = []
            point_spec = point_train_spec(train_spec, p.get("changes") or {}, p["point"])
            for seed in seeds:
                rel = Path(p["dir"]) / f"seed{seed}"
                say(f"[{p['point']} seed {seed}] training on {p['rows']} rows")
                runs.append(train_and_eval(ablate_dir / p["dir"], point_spec.model_copy(update={"seed": seed}),
                                            tmp / rel, out / rel, suite, base, None, base_dir, progress,
                                            point=p["point"], seed=seed))
            dg = summarize([r["domain_gain"] for r in runs], confidence)
            gr = summarize([r["general_retention"] for r in runs], confidence)
            points.append({
                "point": p["point"], "dir": p["dir"], "changes": p.get("changes", {}), "rows": p.get("rows"),
                "general_share": p.get("general_share"),
                "mix": p.get("mix", {}), "seeds": seeds,
                "metrics": {m: summarize([r["metrics"].get(m) for r in runs], confidence)["mean"] for m in info},
                "domain_gain": dg["mean"], "general_retention": gr["mean"],
                "forgetting": -gr["mean"] if gr["mean"] is not None else None,
                "ci": {"domain_gain": dg["ci"], "general_retention": gr["ci"]},
                "runs": [{k: v for k, v in r.items() if not k.startswith("_") and k != "point"} for r in runs],
            })
        flags = pareto_front([(q["domain_gain"], q["general_retention"]) for q in points])
        for q, f in zip(points, flags):
            q["pareto"] = f
            for r in q["runs"]:
                r["dir"] = os.path.relpath(r["dir"], out)
        x_def = (f"change of {eval_spec.domain_metric} against the base model" if eval_spec.domain_metric else
                 "mean change of the domain tasks' primary metrics against the base model (positive = better)")
        y_def = (f"change of {eval_spec.general_metric} against the base model" if eval_spec.general_metric else
                 "mean change of the general tasks' primary metrics against the base model (0 = nothing forgotten)")
        from curate import __version__

        result = {
            "format_version": FORMAT_VERSION, "kind": "ablate-train", "curate_version": __version__,
            "recipe": index.get("recipe"), "ablate_dir": str(ablate_dir), "seeds": seeds, "confidence": confidence,
            "general": index.get("general") or {},
            "x": {"name": "domain_gain", "definition": x_def},
            "y": {"name": "general_retention", "definition": y_def},
            "metrics": info,
            "base": {"metrics": base["metrics"], "model": base.get("model"), "cached": base.get("cached")},
            "points": points,
            "front": [q["point"] for q in sorted((q for q in points if q["pareto"]), key=lambda q: q["domain_gain"])],
            "settings": {"train": train_spec.model_dump(mode="json"), "evals": eval_spec.model_dump(mode="json")},
            "files": {"table": "results.md", "plot": "pareto.png", "fit": "fit.json", "fit_plot": "fit.png"},
            "seconds": round(time.perf_counter() - started, 1),
        }
        from curate.io import write_json_atomic

        write_json_atomic(tmp / "pareto.json", result)
        say("fitting the mixing law")
        write_fit(tmp, result, retention=retention, iterations=iterations)
    return out


def write_fit(folder: Path, result: dict, *, retention: float, iterations: int) -> dict:
    """fit.json, fit.png, pareto.png (points and fitted curves) and results.md of a trained grid's results."""
    from curate.io import write_json_atomic, write_text_atomic
    from curate.train.fit_report import fit_markdown
    from curate.train.grid_fit import fit_grid
    from curate.train.plots import fit_plot, pareto_plot

    doc = fit_grid(result, retention=retention, iterations=iterations)
    write_json_atomic(folder / "fit.json", doc)
    write_text_atomic(folder / "results.md", grid_markdown(result) + fit_markdown(doc))
    pareto_plot(result["points"], folder / "pareto.png", "domain gain (vs base)", "general retention (vs base)",
                title=f"{result['recipe']}: domain gain vs general retention ({len(result['seeds'])} seed(s))", fit=doc)
    fit_plot(doc, result, folder / "fit.png")
    return doc


def point_train_spec(spec: TrainSpec, changes: dict, point: str) -> TrainSpec:
    """The training settings of a grid point: `spec` with the point's `train.*` changes."""
    train = {k.split(".", 1)[1]: v for k, v in changes.items() if k.startswith("train.")}
    if not train:
        return spec
    from pydantic import ValidationError

    from curate.recipe import apply_override

    raw = spec.model_dump(mode="json")
    for key, value in train.items():
        apply_override(raw, f"{key}={json.dumps(value)}")
    try:
        return TrainSpec.model_validate(raw)
    except ValidationError as e:
        raise CurateError(f"grid point {point}: {e.errors()[0]['msg']}", f"train.{'.'.join(map(str, e.errors()[0]['loc']))}") from None


def grid_markdown(result: dict) -> list[str]:
    from curate.numbers import metric

    metrics = [m for m, i in result["metrics"].items() if i["primary"]]
    head = ["point", "rows", "domain gain", "general retention", "Pareto", *metrics]
    lines = [f"# Ablation grid, trained: {result['recipe']}", "",
             f"x = domain gain: {result['x']['definition']}; y = general retention: {result['y']['definition']}. "
             f"Seeds {result['seeds']}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.append("| base | – | 0 | 0 | – | " + " | ".join(metric(result["base"]["metrics"].get(m)) for m in metrics) + " |")
    for p in result["points"]:
        cells = [p["point"], str(p["rows"]), metric(p["domain_gain"]), metric(p["general_retention"]),
                 "yes" if p["pareto"] else "", *[metric(p["metrics"].get(m)) for m in metrics]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Pareto front: {', '.join(result['front']) or '(none)'}.", ""]
    return lines
