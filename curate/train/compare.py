"""`curate compare RECIPE` and `curate ablate RECIPE --train`: train the same way on different data, compare.

**compare** trains on three conditions with identical hyperparameters, once per seed:

- `subset`: the run folder's `data` (the recipe's selection);
- `random`: a random subset of the same pool with the selector's budget (curate's `select.random`; a fresh
  draw per seed when `compare.redraw_random`, else the run folder's `baseline_random`);
- `full`: the pool the last selector chose from. It is rebuilt by running the recipe with that selector
  (and every step after it) removed, into `compare/pool/`: the earlier steps come from the cache, and the rows
  come out rendered by the recipe's template exactly like `data`. (The alternative, the selection plus the
  rows in rejects.jsonl that the selector dropped, would lack `text` and `assistant_spans`: rejects are not
  rendered.)

A shared held-out set (`compare.holdout_rows`) is drawn from pool rows that no condition can train on (rows not
selected, and not in the random baseline when it is reused): their loss is the metric `pool_heldout.loss` and
the validation curve of every run, so all runs are measured on the same rows; `full` trains on the pool less
these rows. Every run goes through the evaluation suite (`evals:`); the base model once (cached).
For every metric: the mean over seeds, the standard deviation and a t-distribution confidence interval per
condition, and the change against the base model.

Writes `<run folder>/compare/` (or `compare.dir`), swapped in whole at the end:
`results.json`, `results.md`, `compare.png` (one panel per metric: means with intervals, base model dashed),
`loss_curves.png` (each condition's first seed), `pool/` (the pool run folder) and `<condition>/seed<k>/`
(one training folder per run: train.json, loss.csv, loss.png, evals.json, adapter/).

**train_grid** fine-tunes every point of an ablation grid (`<ablate dir>/index.json`) and places each on
domain gain (x) against general retention (y), both changes against the base model (see
curate.evals.suite); the points no other point beats on both are the Pareto front. Writes
`<ablate dir>/train/`: `pareto.json`, `pareto.png`, `results.md`, `<point>/seed<k>/`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Callable

from curate.errors import CurateError
from curate.io import check_replaceable, staged_folder
from curate.train.spec import CompareSpec, EvalSpec, TrainSpec, split_sections

FORMAT_VERSION = 1
# recipe keys that do not change the data a run writes (the manifest's recipe is compared without them)
NOT_DATA = ("train", "evals", "compare", "card", "ablate", "description", "cache")


# -- statistics ------------------------------------------------------------------------------------------


def summarize(values: list, confidence: float = 0.95) -> dict:
    """`{"values", "n", "mean", "std", "ci": [lo, hi] | None}`: a t-distribution interval for the mean
    (None with fewer than two values); missing values are left out."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    n = len(xs)
    out = {"values": [_r(v) for v in values], "n": n, "mean": None, "std": None, "ci": None}
    if n == 0:
        return out
    mean = sum(xs) / n
    out["mean"] = _r(mean)
    if n >= 2:
        from scipy import stats

        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
        out["std"] = _r(sd)
        out["ci"] = [_r(mean - half), _r(mean + half)]
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


def _r(x):
    return None if x is None else round(float(x), 6)


# -- the run folder of a recipe --------------------------------------------------------------------------


class RecipeContext:
    """A recipe with its training sections split off, and its run folder (run when missing or stale)."""

    def __init__(self, recipe_path, overrides=None):
        from curate.recipe import load_raw, validate_recipe

        self.path = Path(recipe_path)
        self.where = str(recipe_path)
        raw = load_raw(recipe_path, overrides)
        self.data_raw, self.train_spec, self.eval_spec, self.compare_spec = split_sections(raw, self.where)
        self.raw = raw
        self.recipe = validate_recipe(copy.deepcopy(self.data_raw), where=self.where)
        self.run_dir = self.recipe.output_dir()
        self.recipe_dir = str(self.path.parent)

    @property
    def cache_dir(self) -> Path:
        return Path(self.recipe.cache.dir) / "evals"

    def given(self, section: str, key: str) -> bool:
        """Whether the recipe (or an override) sets `section.key`."""
        value = self.raw.get(section)
        return isinstance(value, dict) and key in value

    def ensure_run(self, rerun: bool = False, progress=None) -> dict:
        """The run folder's manifest, running the recipe first when the folder is missing, was written by a
        different recipe (data-relevant keys differ), or `rerun`."""
        manifest_path = self.run_dir / "manifest.json"
        if not rerun and manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if _data_view(manifest.get("recipe", {})) == _data_view(self.recipe.resolved()):
                return manifest
        from curate.pipeline import run_recipe

        if progress:
            progress(f"running the recipe {self.where} into {self.run_dir}")
        result = run_recipe(self.recipe, recipe_dir=self.recipe_dir)
        if progress and result.removed_note():
            progress(result.removed_note())
        return result.manifest

    def selector(self) -> tuple[int, str, dict]:
        """(index, label, params) of the last select step."""
        from curate.registry import get_step

        found = None
        for i, (label, name, params) in enumerate(self.recipe.step_entries()):
            if get_step(name).role == "select":
                found = (i, label, params)
        if found is None:
            raise CurateError("the recipe has no select step: there is no selection to compare with a random subset "
                              "of its pool", f"{self.where}: steps")
        return found

    def build_pool(self, out_dir: Path, progress=None) -> list[dict]:
        """The rows the last selector chose from, rendered by the recipe's template (a run of the recipe
        without that selector and the steps after it; the earlier steps come from the cache)."""
        from curate.pipeline import run_recipe
        from curate.recipe import validate_recipe
        from curate.train.data import read_rows

        index, label, _ = self.selector()
        raw = copy.deepcopy(self.data_raw)
        raw["steps"] = list(raw.get("steps") or [])[:index]
        for key in ("mix", "ablate", "card"):
            raw.pop(key, None)
        raw["name"] = f"{self.recipe.name}-pool"
        # parquet: a pool carries every score column (embeddings too), 5-10x smaller than jsonl
        raw["outputs"] = {"dir": str(out_dir), "formats": ["parquet"], "random_baseline": False}
        if progress:
            progress(f"rebuilding the pool before {label} into {out_dir}")
        run_recipe(validate_recipe(raw, where=f"{self.where} (pool before {label})"), recipe_dir=self.recipe_dir)
        return read_rows(out_dir)


def _data_view(resolved: dict) -> dict:
    return {k: v for k, v in resolved.items() if k not in NOT_DATA}


# -- compare ---------------------------------------------------------------------------------------------


def compare(recipe_path, overrides: list[str] | None = None, *, rerun: bool = False,
            progress: Callable | None = None) -> Path:
    """Train on subset / random / full for every seed, evaluate, write the comparison. Returns its folder."""
    from curate.train.data import read_rows

    started = time.perf_counter()
    say = _sayer(progress)
    ctx = RecipeContext(recipe_path, overrides)
    tspec, espec, cspec = ctx.train_spec, ctx.eval_spec, ctx.compare_spec
    if ctx.recipe.mix is not None:
        raise CurateError("compare contrasts a selection with random subsets of its pool; a recipe with a `mix:` is "
                          "compared point by point with `curate ablate --train`", f"{ctx.where}: mix")
    _, sel_label, _ = ctx.selector()
    manifest = ctx.ensure_run(rerun, say)
    run_dir = ctx.run_dir
    out = Path(cspec.dir) if cspec.dir else run_dir / "compare"
    check_replaceable(out, "results.json", "a compare folder")
    with staged_folder(out) as tmp:
        subset = read_rows(run_dir, "data")
        pool = read_rows(cspec.pool) if cspec.pool else ctx.build_pool(tmp / "pool", say)
        if cspec.pool:
            missing = {r.get("id") for r in subset} - {r.get("id") for r in pool}
            if missing:
                raise CurateError(f"{len(missing)} of the {len(subset)} selected rows are not in this pool: it is not the "
                                  f"pool this recipe's selector chose from", "compare.pool")
        baseline = None
        if "random" in cspec.conditions and not cspec.redraw_random:
            baseline = read_rows(run_dir, "baseline_random") if _has_rows(run_dir, "baseline_random") else None
            if baseline is None:
                raise CurateError("compare.redraw_random is false but the run folder has no baseline_random "
                                  "(set outputs.random_baseline: true)", "compare.redraw_random")
        holdout, rest = _holdout(pool, subset, baseline, cspec, ctx.recipe.seed)
        budget = _budget(manifest, len(subset))
        say(f"pool {len(pool)} rows: subset {len(subset)}, held out {len(holdout)}, full {len(rest)}"
            + (f" (runs use {cspec.rows} rows)" if cspec.rows else ""))

        from curate.evals.suite import LossSet, Suite

        loss_sets = {"pool_heldout": LossSet(holdout, cspec.holdout_role)} if holdout else {}
        suite = Suite(espec, loss_sets)
        info = suite.metric_info()
        say("evaluating the base model")
        base = suite.run_base(tspec.model, cache_dir=ctx.cache_dir, base_dir=ctx.recipe_dir, progress=say)
        val_rows = holdout[: tspec.val_max_rows] if holdout else None

        runs = []
        for seed in cspec.seeds:
            spec = tspec.model_copy(update={"seed": seed})
            for cond in cspec.conditions:
                rows, what = _condition_rows(cond, seed, subset, rest, baseline, budget, cspec)
                say(f"[{cond} seed {seed}] training on {len(rows)} rows ({what})")
                run_dir_rel = Path(cond) / f"seed{seed}"
                runs.append(_train_and_eval(rows, spec, tmp / run_dir_rel, out / run_dir_rel, suite, base, val_rows,
                                            ctx.recipe_dir, progress, cond=cond, seed=seed, what=what))

        results = _compare_results(ctx, manifest, sel_label, cspec, tspec, espec, info, base, runs, holdout, pool,
                                   subset, rest, started)
        _write_compare(tmp, out, results, cspec, runs)
    return out


def _has_rows(folder: Path, stem: str) -> bool:
    return any((folder / f"{stem}{ext}").exists() for ext in (".jsonl", ".parquet", ""))


def _holdout(pool, subset, baseline, cspec: CompareSpec, seed: int):
    """(held-out rows, the pool less them): drawn from rows no condition trains on."""
    if cspec.holdout_rows == 0:
        return [], list(pool)
    taken = {r.get("id") for r in subset} | {r.get("id") for r in (baseline or [])}
    eligible = [i for i, r in enumerate(pool) if r.get("id") not in taken]
    if not eligible:
        raise CurateError("no pool row is outside the selection to hold out; set compare.holdout_rows: 0",
                          "compare.holdout_rows")
    k = min(cspec.holdout_rows, len(eligible))
    picked = set(random.Random(f"{seed}:holdout").sample(eligible, k))
    return [pool[i] for i in sorted(picked)], [r for i, r in enumerate(pool) if i not in picked]


def _budget(manifest: dict, n_subset: int) -> dict:
    info = manifest.get("random_baseline") or {}
    budget = dict(info.get("budget") or {})
    if budget.get("rows") is None and budget.get("tokens") is None:
        budget = {"rows": n_subset}
    return budget


def _condition_rows(cond, seed, subset, rest, baseline, budget, cspec: CompareSpec):
    """(rows, a description) of a condition for a seed."""
    rng = random.Random(f"{seed}:{cond}")
    if cond == "subset":
        if cspec.rows and cspec.rows < len(subset):
            return _sample(subset, cspec.rows, rng), f"a seeded sample of {cspec.rows} rows of the selection"
        return list(subset), "the selection"
    if cond == "random":
        if not cspec.redraw_random:
            rows = baseline
            if cspec.rows and cspec.rows < len(rows):
                return _sample(rows, cspec.rows, rng), f"{cspec.rows} rows of the run folder's baseline_random"
            return list(rows), "the run folder's baseline_random"
        from datasets import Dataset

        from curate.steps.base import Budget
        from curate.steps.select.random import random_subset

        if cspec.rows:  # the same number of rows as the subset's sample
            b = Budget(rows=min(cspec.rows, len(subset), len(rest)))
        elif budget.get("tokens") is not None:
            col = budget.get("token_column", "n_tokens")
            if any(col not in r for r in rest[:1]):
                raise CurateError(f"the selector's token budget needs the column {col!r} in the pool rows", "compare")
            b = Budget(tokens=budget["tokens"], token_column=col)
        else:
            b = Budget(rows=min(budget["rows"], len(rest)))
        col = b.token_column
        table = Dataset.from_dict({col: [r.get(col, 0) for r in rest]}) if b.tokens is not None else \
            Dataset.from_dict({"_": [0] * len(rest)})
        picked = random_subset(table, b, _seed_int(f"compare-random:{seed}"))
        what = f"a random draw from the pool ({'%d rows' % b.rows if b.rows else '%d tokens' % b.tokens}, seed {seed})"
        return [rest[i] for i in picked], what
    if cspec.full_rows and cspec.full_rows < len(rest):
        return _sample(rest, cspec.full_rows, rng), f"a seeded sample of {cspec.full_rows} pool rows"
    return list(rest), "the whole pool less the held-out rows"


def _seed_int(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _sample(rows, k, rng):
    return [rows[i] for i in sorted(rng.sample(range(len(rows)), k))]


def _train_and_eval(rows, spec: TrainSpec, tmp_dir: Path, final_dir: Path, suite, base, val_rows, base_dir,
                    progress, **labels) -> dict:
    """Train one run, evaluate the tuned model, write evals.json into its folder; the run's record."""
    from curate.train.trainer import train

    res = train(rows, spec, tmp_dir, val_rows=val_rows, base_dir=base_dir, keep_model=True,
                progress=_train_progress(progress, labels))
    say = _sayer(progress)
    say(f"[{labels.get('cond') or labels.get('point')} seed {labels['seed']}] evaluating")
    tuned = suite.run(res.model, res.tokenizer, progress=say)
    scores = suite.scores(tuned["metrics"], base["metrics"])
    evals = {"tuned": tuned, "base_metrics": base["metrics"], **scores}
    (tmp_dir / "evals.json").write_text(json.dumps(evals, indent=2, default=str), encoding="utf-8")
    del res.model
    r = res.summary["results"]
    return {**labels, "dir": str(final_dir), "rows": res.summary["data"]["train_rows"] + res.summary["data"]["val_rows"]
            if not isinstance(rows, list) else len(rows), "train_rows": res.summary["data"]["train"]["kept"],
            "steps": res.summary["steps"], "train_loss_first": r["train_loss_first"], "train_loss_last": r["train_loss_last"],
            "eval_loss_last": r["eval_loss_last"], "tokens_per_second": r["tokens_per_second"],
            "staircase_score": res.staircase["score"], "staircase_flagged": res.staircase["flagged"],
            "metrics": tuned["metrics"], "changes": scores["changes"], "domain_gain": scores["domain_gain"],
            "general_retention": scores["general_retention"], "forgetting": scores["forgetting"],
            "_log": res.log}


def _compare_results(ctx, manifest, sel_label, cspec, tspec, espec, info, base, runs, holdout, pool, subset, rest,
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
        conditions[cond] = {"rows": [r["rows"] for r in rs], "description": rs[0]["what"] if rs else None}
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
        "summary": summary,
        "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs],
        "settings": {"train": tspec.model_dump(mode="json"), "evals": espec.model_dump(mode="json"),
                     "compare": cspec.model_dump(mode="json")},
        "files": {"table": "results.md", "plot": "compare.png", "curves": "loss_curves.png",
                  "pool": None if cspec.pool else "pool/"},
        "seconds": round(time.perf_counter() - started, 1),
    }


def _write_compare(tmp: Path, out: Path, results: dict, cspec: CompareSpec, runs: list[dict]) -> None:
    from curate.io import write_json_atomic, write_text_atomic
    from curate.train.plots import compare_plot, curves_plot

    for r in results["runs"]:
        r["dir"] = os.path.relpath(r["dir"], out)  # relative to the compare folder
    write_json_atomic(tmp / "results.json", results)
    write_text_atomic(tmp / "results.md", compare_markdown(results))
    compare_plot(results["metrics"], list(cspec.conditions), tmp / "compare.png",
                 title=f"{results['recipe']}: subset vs random vs full ({len(results['seeds'])} seeds, "
                       f"{int(results['confidence'] * 100)}% CI)")
    first = {}
    for r in runs:
        first.setdefault(r["cond"], r["_log"])
    curves_plot(first, tmp / "loss_curves.png", title=f"{results['recipe']}: loss curves (seed {results['seeds'][0]})")


def compare_markdown(results: dict) -> list[str]:
    conds = list(results["conditions"])
    conf = int(round(results["confidence"] * 100))
    what = {"subset": f"the selection by `{results['selector']}`",
            "random": "a random subset of the same pool with the same budget", "full": "the pool"}
    lines = [f"# Compare: {results['recipe']}", "",
             f"Trained with identical settings on {'; '.join(what[c] for c in conds)}; {len(results['seeds'])} seed(s) "
             f"{results['seeds']}; mean ± half-width of the {conf}% t-interval (none with one seed). "
             "Base = the model before fine-tuning.", ""]
    lines += ["| condition | rows per run | what |", "|---|---|---|"]
    for c, v in results["conditions"].items():
        lines.append(f"| {c} | {', '.join(str(x) for x in v['rows'])} | {v['description']} |")
    lines += ["", "| metric | role | base | " + " | ".join(conds) + " |", "|---|---|---|" + "---|" * len(conds)]
    for m, e in results["metrics"].items():
        arrow = "↑" if e["higher_is_better"] else "↓"
        cells = [_pm(e["by_condition"][c]) for c in conds]
        lines.append(f"| {m} {arrow} | {e['role'] or '-'} | {_num(e['base'])} | " + " | ".join(cells) + " |")
    lines += ["", "| condition | domain gain | general retention (forgetting = −retention) | final train loss | staircase score |",
              "|---|---|---|---|---|"]
    for c in conds:
        s = results["summary"][c]
        lines.append(f"| {c} | {_pm(s['domain_gain'])} | {_pm(s['general_retention'])} | {_pm(s['train_loss_last'])} | "
                     f"{_pm(s['staircase_score'])} |")
    lines += ["", f"Held-out: {results['holdout']['rows']} pool rows in no condition's training data "
              f"(`pool_heldout.loss`, role {results['holdout']['role']}). Pool: {results['pool']['rows']} rows "
              f"({results['pool']['built_by']}).", ""]
    return lines


def _pm(s: dict) -> str:
    if not s or s.get("mean") is None:
        return "–"
    if s.get("ci"):
        half = (s["ci"][1] - s["ci"][0]) / 2
        return f"{_num(s['mean'])} ± {_num(half)}"
    return _num(s["mean"])


def _num(v) -> str:
    if v is None:
        return "–"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"


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
                      base_dir=ctx.recipe_dir, confidence=ctx.compare_spec.confidence, progress=progress)


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
               confidence: float = 0.95, progress: Callable | None = None) -> Path:
    """Fine-tune and evaluate every point of `<ablate_dir>/index.json`; write `<ablate_dir>/train/`."""
    from curate.evals.suite import Suite

    started = time.perf_counter()
    say = _sayer(progress)
    ablate_dir = Path(ablate_dir)
    index_path = ablate_dir / "index.json"
    if not index_path.is_file():
        raise CurateError("no index.json: build the grid first (`curate ablate RECIPE`)", str(ablate_dir))
    index = json.loads(index_path.read_text(encoding="utf-8"))
    _check_pareto_evals(eval_spec)
    seeds = list(seeds or [train_spec.seed])
    suite = Suite(eval_spec)
    info = suite.metric_info()
    out = ablate_dir / "train"
    check_replaceable(out, "pareto.json", "a trained ablation folder")
    with staged_folder(out) as tmp:
        say("evaluating the base model")
        base = suite.run_base(train_spec.model, cache_dir=cache_dir, base_dir=base_dir, progress=say)
        points = []
        for p in index["points"]:
            runs = []
            for seed in seeds:
                rel = Path(p["dir"]) / f"seed{seed}"
                say(f"[{p['point']} seed {seed}] training on {p['rows']} rows")
                runs.append(_train_and_eval(ablate_dir / p["dir"], train_spec.model_copy(update={"seed": seed}),
                                            tmp / rel, out / rel, suite, base, None, base_dir, progress,
                                            point=p["point"], seed=seed))
            dg = summarize([r["domain_gain"] for r in runs], confidence)
            gr = summarize([r["general_retention"] for r in runs], confidence)
            points.append({
                "point": p["point"], "dir": p["dir"], "changes": p.get("changes", {}), "rows": p.get("rows"),
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
            "x": {"name": "domain_gain", "definition": x_def},
            "y": {"name": "general_retention", "definition": y_def},
            "metrics": info,
            "base": {"metrics": base["metrics"], "model": base.get("model"), "cached": base.get("cached")},
            "points": points,
            "front": [q["point"] for q in sorted((q for q in points if q["pareto"]), key=lambda q: q["domain_gain"])],
            "settings": {"train": train_spec.model_dump(mode="json"), "evals": eval_spec.model_dump(mode="json")},
            "files": {"table": "results.md", "plot": "pareto.png"},
            "seconds": round(time.perf_counter() - started, 1),
        }
        from curate.io import write_json_atomic, write_text_atomic
        from curate.train.plots import pareto_plot

        write_json_atomic(tmp / "pareto.json", result)
        write_text_atomic(tmp / "results.md", grid_markdown(result))
        pareto_plot(points, tmp / "pareto.png", "domain gain (vs base)", "general retention (vs base)",
                    title=f"{result['recipe']}: domain gain vs general retention ({len(seeds)} seed(s))")
    return out


def grid_markdown(result: dict) -> list[str]:
    metrics = [m for m, i in result["metrics"].items() if i["primary"]]
    head = ["point", "rows", "domain gain", "general retention", "Pareto", *metrics]
    lines = [f"# Ablation grid, trained: {result['recipe']}", "",
             f"x = domain gain: {result['x']['definition']}; y = general retention: {result['y']['definition']}. "
             f"Seeds {result['seeds']}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.append("| base | – | 0 | 0 | – | " + " | ".join(_num(result["base"]["metrics"].get(m)) for m in metrics) + " |")
    for p in result["points"]:
        cells = [p["point"], str(p["rows"]), _num(p["domain_gain"]), _num(p["general_retention"]),
                 "yes" if p["pareto"] else "", *[_num(p["metrics"].get(m)) for m in metrics]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Pareto front: {', '.join(result['front']) or '(none)'}.", ""]
    return lines


# -- shared ----------------------------------------------------------------------------------------------


def _sayer(progress):
    def say(msg):
        if progress:
            progress(msg)
    return say


def _train_progress(progress, labels):
    if not progress:
        return None
    tag = f"{labels.get('cond') or labels.get('point')} seed {labels.get('seed')}"

    def show(row):
        if row["kind"] == "eval":
            progress(f"[{tag}] step {row['step']}: validation loss {row['loss']:.4f}")
        elif row["kind"] == "epoch_end":
            progress(f"[{tag}] epoch {row['epoch']:g} done at step {row['step']}")
        elif row["kind"] == "train" and (row["step"] == 1 or row["step"] % 10 == 0):
            progress(f"[{tag}] step {row['step']}: loss {row['loss']:.4f}")
    return show
