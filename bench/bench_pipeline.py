"""The lima_style pipeline end to end on the ~7.3k-row real pool.

Prints per-step seconds and rows/s for a cold run (no cache), then the same recipe again served
from the step cache, and a run where only the last step (the selection budget) changed.

    python bench/bench_pipeline.py [--data ../shared/data] [--no-embed] [--workers N]

`--no-embed` runs the recipe without its model-based steps (embed, semantic dedup, decontamination, the
diverse selection), ending in a 1,000-row stratified selection instead: the 7-operation pipeline of the
first benchmarks and of bench/make_pool.py's pools.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from curate.pipeline import run_recipe
from curate.recipe import load_raw, load_recipe, validate_recipe

ROOT = Path(__file__).resolve().parents[1]


def overrides(data: Path, work: Path, extra=(), evals: bool = True) -> list[str]:
    return [
        f"sources.alpaca_gpt4.path={data / 'alpaca_gpt4_en_demo_999.json'}",
        f"sources.cherry_alpaca.path={data / 'cherry_alpaca_5_percent.json'}",
        f"sources.code_alpaca.path={data / 'code_alpaca_2k.json'}",
        f"sources.lima.path={data / 'lima_train.json'}",
        f"sources.self_instruct_seeds.path={data / 'self_instruct_seed_tasks.jsonl'}",
        *[f"steps.10.decontaminate.eval_sets.{i}.path={data / 'eval_prompts' / f'{n}_test_set.jsonl'}"
          for i, n in enumerate(["lima", "vicuna", "koala", "wizardlm", "sinstruct"]) if evals],
        f"outputs.dir={work / 'run'}", f"cache.dir={work / 'cache'}", *extra,
    ]


def make_recipe(args, work: Path, extra=()):
    path = ROOT / "recipes" / "lima_style.yaml"
    more = [f"executor.workers={args.workers}"]
    if not args.no_embed:
        return load_recipe(path, overrides(args.data, work, [*more, *extra]))
    raw = load_raw(path, overrides(args.data, work, more, evals=False))
    last = next(i for i, s in enumerate(raw["steps"]) if "dedup.minhash" in s)
    raw["steps"] = raw["steps"][: last + 1] + [
        {"select.stratified": {"by": "source", "within": "top", "score": "response_words", "rows": 1000}}]
    for item in extra:  # the late change, applied to the shortened recipe
        from curate.recipe import apply_override

        apply_override(raw, item)
    return validate_recipe(raw, str(path)).with_base_dir(path.parent)


def timed(recipe, **kw):
    t = time.perf_counter()
    result = run_recipe(recipe, **kw)
    return result, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--no-embed", action="store_true", help="without the model-based steps (see above)")
    ap.add_argument("--workers", default="auto", help="executor.workers (auto: one per core)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        recipe = make_recipe(args, work)
        cold, cold_s = timed(recipe)
        rows_in = cold.manifest["totals"]["rows_in"]
        print(f"lima_style, cold (no cache): {rows_in} rows in {cold_s:.2f} s = {rows_in / cold_s:,.0f} rows/s end to end")
        print(f"  load {cold.manifest['timings']['load_s']:.2f} s")
        print(f"  {'step':<20}{'rows in':>9}{'seconds':>9}{'rows/s':>11}")
        for s in cold.steps:
            rate = f"{s.rows_in / s.seconds:,.0f}" if s.seconds > 0 else "-"
            print(f"  {s.label:<20}{s.rows_in:>9}{s.seconds:>9.2f}{rate:>11}")
        timings = cold.manifest["timings"]
        step_s = sum(v["seconds"] for v in timings["steps"].values())
        print(f"  steps {step_s:.2f} s (a row-local step's seconds are summed over its parts), template and "
              f"outputs {timings['template_and_write_s']:.2f} s, start-up and the rest "
              f"{cold_s - timings['total_s']:.2f} s")
        _, warm_s = timed(recipe)
        print(f"same recipe again, every step from the cache: {warm_s:.2f} s ({cold_s / warm_s:.1f}x faster)")
        last = len(recipe.steps) - 1
        selector = "select.stratified" if args.no_embed else "select.diverse"
        changed = make_recipe(args, work, [f"steps.{last}.{selector}.rows=500"])
        _, late_s = timed(changed)
        print(f"only the selection budget changed (earlier steps from the cache): {late_s:.2f} s ({cold_s / late_s:.1f}x faster)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
