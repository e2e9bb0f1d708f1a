"""The lima_style pipeline end to end on the ~7.3k-row real pool (no model-based steps).

Prints per-step seconds and rows/s for a cold run (no cache), then the same recipe again served
from the step cache, and a run where only the last step (the selection budget) changed.

    python bench/bench_pipeline.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from curate.pipeline import run_recipe
from curate.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]


def overrides(data: Path, work: Path, extra=()) -> list[str]:
    return [
        f"sources.alpaca_gpt4.path={data / 'alpaca_gpt4_en_demo_999.json'}",
        f"sources.cherry_alpaca.path={data / 'cherry_alpaca_5_percent.json'}",
        f"sources.code_alpaca.path={data / 'code_alpaca_2k.json'}",
        f"sources.lima.path={data / 'lima_train.json'}",
        f"sources.self_instruct_seeds.path={data / 'self_instruct_seed_tasks.jsonl'}",
        *[f"steps.10.decontaminate.eval_sets.{i}.path={data / 'eval_prompts' / f'{n}_test_set.jsonl'}"
          for i, n in enumerate(["lima", "vicuna", "koala", "wizardlm", "sinstruct"])],
        f"outputs.dir={work / 'run'}", f"cache.dir={work / 'cache'}", *extra,
    ]


def timed(recipe, **kw):
    t = time.perf_counter()
    result = run_recipe(recipe, **kw)
    return result, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        recipe = load_recipe(ROOT / "recipes" / "lima_style.yaml", overrides(args.data, work))
        cold, cold_s = timed(recipe)
        rows_in = cold.manifest["totals"]["rows_in"]
        print(f"lima_style, cold (no cache): {rows_in} rows in {cold_s:.2f} s = {rows_in / cold_s:,.0f} rows/s end to end")
        print(f"  load {cold.manifest['timings']['load_s']:.2f} s")
        print(f"  {'step':<20}{'rows in':>9}{'seconds':>9}{'rows/s':>11}")
        for s in cold.steps:
            rate = f"{s.rows_in / s.seconds:,.0f}" if s.seconds > 0 else "-"
            print(f"  {s.label:<20}{s.rows_in:>9}{s.seconds:>9.2f}{rate:>11}")
        steps = cold.manifest["timings"]["steps"].values()
        step_s = sum(v["seconds"] for v in steps)
        cache_s = sum(v["with_cache_io"] - v["seconds"] for v in steps)
        print(f"  steps {step_s:.2f} s, writing the step cache {cache_s:.2f} s, template "
              f"{cold.manifest['timings']['template_s']:.2f} s, the rest (outputs, ledger) "
              f"{cold_s - step_s - cache_s - cold.manifest['timings']['template_s'] - cold.manifest['timings']['load_s']:.2f} s")
        _, warm_s = timed(recipe)
        print(f"same recipe again, every step from the cache: {warm_s:.2f} s ({cold_s / warm_s:.1f}x faster)")
        last = len(recipe.steps) - 1
        changed = load_recipe(ROOT / "recipes" / "lima_style.yaml",
                              overrides(args.data, work, [f"steps.{last}.select.diverse.rows=500"]))
        _, late_s = timed(changed)
        print(f"only the selection budget changed (earlier steps from the cache): {late_s:.2f} s ({cold_s / late_s:.1f}x faster)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
