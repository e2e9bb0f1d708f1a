"""`decontaminate` recall on planted copies of real eval items, by item length and edit, and what it drops
from the real instruction pool.

Eval sets: ARC-Easy validation (570 questions), MMLU val (all subjects) and GSM8K train, from ../shared/data,
with the step's defaults (the question of each item; 13-word n-grams; the whole item with one word changed
for 8-25 words; the whole item for 4-7 words). Planted rows: for every item length from 5 to 60 words, up to
`--per-length` items (seeded), each planted five ways: exact, with a "Question: " prefix, upper-cased, one
word replaced, one number changed (items without a number skip that one). The edits are those of
tests/steps/filter/test_decontaminate.py.

    python bench/bench_decontaminate.py [--data ../shared/data] [--per-length 20]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_decontaminate import LIMA_GSM8K, edit, eval_questions, eval_sets  # noqa: E402

BUCKETS = ((5, 7), (8, 12), (13, 25), (26, 60))
KINDS = ("exact", "prefix", "casing", "word", "number")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--per-length", type=int, default=20)
    args = ap.parse_args()

    import pyarrow as pa

    from curate.recipe import Source
    from curate.sources.load import load_source
    from curate.steps.base import StepContext
    from curate.steps.filter.decontaminate import Decontaminate
    from curate.steps.filter.overlap import words
    from tests.helpers import pairs_dataset

    step = Decontaminate(Decontaminate.Params(eval_sets=eval_sets(args.data)),
                         StepContext(label="decontaminate", where="bench", seed=0))
    t0 = time.perf_counter()
    step._eval_index()
    index_s = time.perf_counter() - t0

    rng = random.Random(0)
    by_length: dict[int, list[str]] = {}
    for q in eval_questions(args.data):
        if len(q.split()) == len(words(q)):  # one whitespace token per word, so an edit touches one word
            by_length.setdefault(len(q.split()), []).append(q)
    planted = []
    for length in range(5, 61):
        pool = by_length.get(length, [])
        for q in rng.sample(pool, min(args.per_length, len(pool))):
            planted += [(length, kind, text) for kind in KINDS if (text := edit(q, kind, rng)) is not None]
    t0 = time.perf_counter()
    out = step.decide(pairs_dataset([(text, "The answer is below.") for _, _, text in planted]))
    planted_s = time.perf_counter() - t0

    found: dict[tuple, list[bool]] = {}
    for (length, kind, _), drop in zip(planted, out):
        bucket = next(b for b in BUCKETS if b[0] <= length <= b[1])
        found.setdefault((bucket, kind), []).append(drop is not None)
    print(f"eval index: {index_s:.1f} s; {len(planted):,} planted rows checked in {planted_s:.1f} s\n")
    print("| item length (words) | " + " | ".join(KINDS) + " |")
    print("|---|" + "---:|" * len(KINDS))
    for bucket in BUCKETS:
        cells = []
        for kind in KINDS:
            hits = found.get((bucket, kind), [])
            cells.append(f"{sum(hits) / len(hits):.1%} ({sum(hits)}/{len(hits)})" if hits else "-")
        print(f"| {bucket[0]}-{bucket[1]} | " + " | ".join(cells) + " |")

    rows = []
    for name in ("alpaca_gpt4_en_demo_999.json", "cherry_alpaca_5_percent.json", "code_alpaca_2k.json", "lima_train.json"):
        rows += load_source(name.split(".")[0], Source(path=str(args.data / name))).rows
    rows += load_source("seeds", Source(path=str(args.data / "self_instruct_seed_tasks.jsonl"), format="columns",
                                        options={"prompt": "instruction", "response": "instances.0.output"})).rows
    step.ctx.notes, step.ctx.counts = {}, {}
    t0 = time.perf_counter()
    out = step.decide(pa.Table.from_pylist(rows))
    pool_s = time.perf_counter() - t0
    dropped = {rows[i]["id"] for i, d in enumerate(out) if d is not None}
    notes = step.ctx.notes
    print(f"\nreal pool: {len(rows):,} rows in {pool_s:.1f} s ({len(rows) / pool_s:,.0f} rows/s); dropped "
          f"{len(dropped)}: {len(dropped & LIMA_GSM8K)} real GSM8K copies in LIMA (of {len(LIMA_GSM8K)} known), "
          f"{len(dropped - LIMA_GSM8K)} others")
    print(f"items by how they are checked: {notes['by_check']}; too short to check: {notes['too_short']}")


if __name__ == "__main__":
    main()
