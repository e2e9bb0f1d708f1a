"""`curate compare RECIPE`: train the same way on the selection and on matched baselines, compare item by item.

The arms (`compare.conditions`, curate.train.arms) train with identical hyperparameters, once per seed:
`subset` (the recipe's selection), `random` (as many uniformly random pool rows), `random_tokens` (random pool
rows with the subset's tokens), `random_balanced` (random pool rows with the subset's per-source counts),
`full` (the pool) and `full_steps` (the pool for the subset's number of optimizer steps). The pool is the set of
rows the last selector chose from: rebuilt by running the recipe with that selector (and every step after it)
removed, into `compare/pool/` (the earlier steps come from the cache, and the rows come out rendered by the
recipe's template exactly like `data`), or read from `compare.pool`.

A shared held-out set (`compare.holdout_rows`) is drawn from pool rows that no arm can train on (rows not
selected, and not in the random baseline when it is reused): their loss is the metric `pool_heldout.loss` and
the validation curve of every run; every other arm draws from the pool less these rows. Every run goes through
the evaluation suite (`evals:`); the base model once (cached). Statistics (curate.train.stats): per metric and
arm the mean over seeds with a t-interval and the change against the base model; per metric and arm against
the subset the paired per-item difference with a bootstrap interval over items × seeds and win / tie / loss
counts (curate.train.compare_report).

Writes `<run folder>/compare/` (or `compare.dir`), swapped in whole at the end: `results.json`, `results.md`,
`compare.png` (one panel per metric: means with intervals, base model dashed), `loss_curves.png` (each arm's
first seed), `pool/` (the pool run folder) and `<condition>/seed<k>/` (one training folder per run: train.json,
loss.csv, loss.png, evals.json with the per-item results, adapter/).

`curate ablate --train` lives in curate.train.grid (re-exported here).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from curate.errors import CurateError
from curate.atomic import staged_folder
from curate.io import check_replaceable
from curate.train.context import RecipeContext
from curate.train.runs import sayer, train_and_eval


def compare(recipe_path, overrides: list[str] | None = None, *, rerun: bool = False,
            progress: Callable | None = None) -> Path:
    """Train every arm for every seed, evaluate, write the comparison. Returns its folder."""
    from curate.train.arms import TokenCounter, arm_rows, holdout, subset_rows
    from curate.train.compare_report import compare_results, write_compare
    from curate.train.data import read_rows

    started = time.perf_counter()
    say = sayer(progress)
    ctx = RecipeContext(recipe_path, overrides)
    tspec, espec, cspec = ctx.train_spec, ctx.eval_spec, ctx.compare_spec
    from curate.train.heldout import check_heldout_unused

    check_heldout_unused(espec, "compare")
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
        held, rest = holdout(pool, subset, baseline, cspec, ctx.recipe.seed)
        say(f"pool {len(pool)} rows: subset {len(subset)}, held out {len(held)}, full {len(rest)}"
            + (f" (runs use {cspec.rows} rows)" if cspec.rows else ""))
        count = TokenCounter.for_spec(tspec, ctx.recipe_dir) if "random_tokens" in cspec.conditions else None

        from curate.evals.suite import LossSet, Suite

        loss_sets = {"pool_heldout": LossSet(held, cspec.holdout_role)} if held else {}
        suite = Suite(espec, loss_sets)
        info = suite.metric_info()
        say("evaluating the base model")
        base = suite.run_base(tspec.model, cache_dir=ctx.cache_dir, base_dir=ctx.recipe_dir, progress=say)
        val_rows = held[: tspec.val_max_rows] if held else None

        runs = []
        order = ["subset"] + [c for c in cspec.conditions if c != "subset"]  # full_steps needs the subset's steps
        for seed in cspec.seeds:
            spec = tspec.model_copy(update={"seed": seed})
            chosen, _ = subset_rows(seed, subset, cspec)
            steps = None
            for cond in order:
                rows, what = arm_rows(cond, seed, chosen, rest, baseline, cspec, count)
                run_spec = spec.model_copy(update={"max_steps": steps}) if cond == "full_steps" else spec
                say(f"[{cond} seed {seed}] training on {len(rows)} rows ({what})")
                rel = Path(cond) / f"seed{seed}"
                run = train_and_eval(rows, run_spec, tmp / rel, out / rel, suite, base, val_rows, ctx.recipe_dir,
                                     progress, cond=cond, seed=seed, what=what)
                if cond == "subset":
                    steps = run["steps"]
                runs.append(run)
        runs.sort(key=lambda r: (cspec.seeds.index(r["seed"]), cspec.conditions.index(r["cond"])))

        results = compare_results(ctx, manifest, sel_label, cspec, tspec, espec, info, base, runs, held, pool,
                                  subset, rest, started)
        write_compare(tmp, out, results, cspec, runs)
    return out


def _has_rows(folder: Path, stem: str) -> bool:
    return any((folder / f"{stem}{ext}").exists() for ext in (".jsonl", ".parquet", ""))
