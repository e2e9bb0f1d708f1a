"""`dedup.semantic mode: fast` against full mode: how many of MiniLM's duplicate decisions it keeps, how
many rows MiniLM still embeds, and the time, at several candidate thresholds.

Full mode embeds every row with all-MiniLM-L6-v2 and links pairs with cosine > 0.9. Fast mode embeds every
row with a static model2vec model distilled from MiniLM (once, cached in .curate/models), takes the pairs
above `candidate_threshold` as candidates, embeds only their rows with MiniLM and links those MiniLM finds
above 0.9. So fast mode can only miss pairs (never add one): its recall of full mode's dropped rows is
what a threshold costs.

The pool is the one of bench_semdedup.py (7,331 real rows + 300 planted paraphrases), and, with --pool, a
generated pool (bench/make_pool.py) for the fraction of rows embedded at scale.

    python bench/bench_semdedup_fast.py [--data ../shared/data] [--pool bench/.cache/pool-100000]

On the generated pool only the static stage runs (candidate pairs, rows MiniLM would embed); MiniLM's time
there is projected from its rate on the real pool.

Times are wall seconds on this machine, MiniLM embedding included (no embedding cache), the one-off
distillation excluded (printed separately).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_minhash_f1 import generated_pool  # noqa: E402
from bench_semdedup import found, load_pool, plant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.6, 0.7, 0.75, 0.8, 0.85)


def pool_rows(folder: Path) -> list[dict]:
    from curate.rows import make_row

    return [make_row(source, messages, {}) for source, messages in generated_pool(folder)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--pool", type=Path, default=None, help="a generated pool folder (bench/make_pool.py)")
    ap.add_argument("--rate", type=float, default=None,
                    help="MiniLM rows/s measured before: skips the real pool, only the --pool part runs")
    args = ap.parse_args()

    from curate.embeddings import DEFAULT_MODEL, static_model_path
    from curate.steps.base import StepContext
    from curate.steps.dedup.semantic import SemanticDedup

    def ctx(label):
        return StepContext(label=label, where=f"bench.{label}", seed=1234)

    t = time.perf_counter()
    static = static_model_path(DEFAULT_MODEL, cache_root=ROOT / ".curate" / "models")
    print(f"static model {static.name}: {time.perf_counter() - t:.1f} s (distilled once, then read from disk)")

    def fast(table, threshold):
        step = SemanticDedup(SemanticDedup.Params(mode="fast", fast_model=str(static), candidate_threshold=threshold,
                                                  cache_dir=None), ctx("dedup.semantic"))
        t0 = time.perf_counter()
        out = step.decide(table)
        return time.perf_counter() - t0, {i for i, d in enumerate(out) if d is not None}, step.ctx.notes

    rate = real_pool(args, static, fast, ctx) if args.rate is None else args.rate
    if args.pool:
        candidates_only(args.pool, static, ctx, rate)


def real_pool(args, static, fast, ctx) -> float:
    """The real pool with planted paraphrases: fast against full. Returns MiniLM's rows/s (embed + dedup)."""
    import pyarrow as pa

    from curate.steps.dedup.semantic import SemanticDedup
    from curate.steps.score.embed import Embed

    pool = load_pool(args.data)
    planted, originals = plant(pool)
    n_pool = len(pool)
    table = pa.Table.from_pylist(pool + planted)
    t0 = time.perf_counter()
    cols = Embed(Embed.Params(key="prompt", cache_dir=None), ctx("embed")).score(table)
    embedded = table.append_column("embedding", pa.array(cols["embedding"])).append_column(
        "embedding_why", pa.array(cols["embedding_why"]))
    full_step = SemanticDedup(SemanticDedup.Params(), ctx("dedup.semantic"))
    full = {i for i, d in enumerate(full_step.decide(embedded)) if d is not None}
    full_s = time.perf_counter() - t0
    print(f"\n{n_pool} pool rows + {len(planted)} planted = {table.num_rows} rows; {os.cpu_count()} cpus")
    print("| mode | s | rows MiniLM embeds | candidate pairs | rows dropped | of full mode's drops | planted found (of 300) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| full (embed + dedup) | {full_s:.1f} | {table.num_rows} | - | {len(full)} | - | "
          f"{found(full, n_pool, originals)} |")
    for threshold in THRESHOLDS:
        secs, dropped, notes = fast(table, threshold)
        both = len(dropped & full)
        print(f"| fast, candidate_threshold {threshold:g} | {secs:.1f} | {notes['rows_embedded']} | "
              f"{notes['candidate_pairs']} | {len(dropped)} | {both} ({both / max(len(full), 1):.1%}) | "
              f"{found(dropped, n_pool, originals)} |")
    return table.num_rows / full_s


def candidates_only(folder: Path, static: Path, ctx, rate: float) -> None:
    """A generated pool: what the static stage costs and how many rows MiniLM would embed."""
    import numpy as np
    import pyarrow as pa

    from curate.steps.dedup.semantic import SemanticDedup

    class Counting(SemanticDedup):
        def _decided_by_reference(self, table, a, b):
            members = np.unique(np.concatenate([a, b]))
            self.ctx.notes.update({"candidate_pairs": len(a), "rows_embedded": len(members)})
            return a[:0], b[:0], np.zeros(0)

    big = pa.Table.from_pylist(pool_rows(folder))
    print(f"\n{folder.name}: {big.num_rows:,} rows; MiniLM time projected at {rate:.0f} rows/s (embed + dedup)")
    print("| candidate_threshold | static stage s | candidate pairs | rows MiniLM would embed | share | "
          "projected fast s | projected full s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for threshold in THRESHOLDS[2:]:  # below 0.75 every row of a generated pool is a candidate
        step = Counting(Counting.Params(mode="fast", fast_model=str(static), candidate_threshold=threshold),
                        ctx("dedup.semantic"))
        t0 = time.perf_counter()
        step.decide(big)
        secs = time.perf_counter() - t0
        notes = step.ctx.notes
        print(f"| {threshold:g} | {secs:.1f} | {notes['candidate_pairs']:,} | {notes['rows_embedded']:,} | "
              f"{notes['rows_embedded'] / big.num_rows:.1%} | {secs + notes['rows_embedded'] / rate:,.0f} | "
              f"{big.num_rows / rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
