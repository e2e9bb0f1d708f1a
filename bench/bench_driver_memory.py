"""What the driver holds per row when a global step decides: the bound behind "one global state on the driver".

    python bench/bench_driver_memory.py [N ...] [--semantic KMEANS_SAMPLE]    (default 300000 1000000)

With any executor the global steps' decisions run in the driver (the Ray executor computes their keys on the
cluster, in the pass before them; then it gathers them). For N synthetic rows shaped like the engine's
(16-character ids, five sources, 10% exact copies and 10% near copies) this builds exactly what the engine
passes to each step — the table of `id` and the columns the step reads, and the keys — and measures, per row:

- `input`: those columns and keys (Arrow buffers + numpy arrays): what is gathered to the driver;
- `peak`: the extra memory the decision allocates at its peak (tracemalloc: Python objects and numpy;
  Arrow buffers are counted through pyarrow's allocator);
- `s/row`: its driver CPU time.

`, on Ray` rows: what the driver still does when the step runs as shuffles on a Ray cluster (building the
shuffle's rows, finishing from the results; the stages run on the workers).

The row store's own masks (`alive`, `dropped_at`: 5 bytes per row) come on top.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def table_of(n: int, rng) -> pa.Table:
    ids = pa.array([f"{x:016x}" for x in rng.integers(0, 2**63, n)], pa.string())
    sources = pa.array(np.array(["alpaca_gpt4", "cherry_alpaca", "code_alpaca", "lima", "seeds"])[rng.integers(0, 5, n)])
    return pa.table({"id": ids, "source": sources, "response_words": pa.array(rng.integers(1, 800, n))})


def copies(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Rows that copy an earlier row (10% exact, 10% near), and the rows they copy."""
    who = rng.choice(np.arange(1, n), size=n // 5, replace=False)
    return who, (rng.random(len(who)) * who).astype(np.int64)


def exact_keys(n: int, rng) -> dict:
    digest = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    who, src = copies(n, rng)
    digest[who[: len(who) // 2]] = digest[src[: len(who) // 2]]
    return {"digest": digest.view("S16").ravel(), "length": rng.integers(10, 5000, n)}


def minhash_keys(n: int, rng, num_perm: int = 128) -> dict:
    sig = rng.integers(0, 2**32, (n, num_perm), dtype=np.uint32)
    who, src = copies(n, rng)
    sig[who] = sig[src]
    near = who[len(who) // 2:]  # ~6% of slots changed: estimated Jaccard ~0.94, verified by the estimate
    for k in range(0, num_perm, 16):
        sig[near, k] = rng.integers(0, 2**32, len(near), dtype=np.uint32)
    return {"sig": sig, "has_text": np.ones(n, dtype=bool), "length": rng.integers(10, 5000, n)}


def semantic_table(table: pa.Table, rng, dim: int = 384) -> pa.Table:
    """The table `dedup.semantic` gets: ids, sources and an `embed` step's column (unit float32 vectors, 20%
    near copies of an earlier row: cosine ~0.99)."""
    n = table.num_rows
    X = rng.normal(size=(n, dim)).astype(np.float32)
    who, src = copies(n, rng)
    X[who] = X[src] + 0.1 * rng.normal(size=(len(who), dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), dim)
    return table.select(["id", "source"]).append_column("embedding", vectors)


def measure(label: str, n: int, inputs: tuple, call) -> None:
    table, keys = inputs
    size = table.nbytes + sum(v.nbytes for v in (keys or {}).values())
    arrow0 = pa.total_allocated_bytes()
    tracemalloc.start()
    t = time.process_time()
    call()
    seconds = time.process_time() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak += max(0, pa.total_allocated_bytes() - arrow0)
    print(f"{label:<34} {n:>9,} rows  input {size / n:6.0f} B/row  peak {peak / n:6.0f} B/row  "
          f"{seconds / n * 1e6:6.2f} us/row", flush=True)


def on_ray(cls, label: str, n: int, table: pa.Table, keys: dict, **params) -> None:
    """The driver's part of the step when it runs as shuffles on Ray (`executor.global_steps: cluster`):
    building the shuffle's rows (`grouping`) and finishing from the results that come back; the stages
    themselves run on the workers (here, unmeasured, before)."""
    from tests.helpers import build

    grouping = build(cls, **params).grouping(table, keys)
    results = grouping.results(grouping.rows)
    del grouping
    step = build(cls, **params)
    measure(f"{label}, on Ray", n, (table, keys), lambda: step.grouping(table, keys).finish(results))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[300_000, 1_000_000])
    ap.add_argument("--semantic", type=int, metavar="KMEANS_SAMPLE",
                    help="also dedup.semantic (384-dim vectors, k-means on this many rows); its local decision "
                         "compares every pair of each 10k-row cluster: minutes per 100k rows on one core")
    args = ap.parse_args()
    from curate.steps.dedup.exact import ExactDedup
    from curate.steps.dedup.minhash import MinHashDedup
    from curate.steps.dedup.semantic import SemanticDedup
    from curate.steps.select.stratified import Stratified
    from tests.helpers import build

    for n in args.sizes:
        rng = np.random.default_rng(0)
        table = table_of(n, rng)
        keys = exact_keys(n, rng)
        for keep in ("first", "longest"):
            step = build(ExactDedup, keep=keep)
            measure(f"dedup.exact (keep {keep})", n, (table.select(["id", "source"]), keys),
                    lambda: step.decide(table.select(["id", "source"]), keys))
        on_ray(ExactDedup, "dedup.exact (keep first)", n, table.select(["id", "source"]), keys)
        del keys
        keys = minhash_keys(n, rng)
        step = build(MinHashDedup, verify="estimate", keep="longest")
        measure("dedup.minhash (verify estimate)", n, (table.select(["id", "source"]), keys),
                lambda: step.decide(table.select(["id", "source"]), keys))
        on_ray(MinHashDedup, "dedup.minhash (verify estimate)", n, table.select(["id", "source"]), keys,
               verify="estimate", keep="longest")
        del keys
        if args.semantic is not None:
            vectors = semantic_table(table, rng)
            step = build(SemanticDedup, kmeans_sample=args.semantic)
            measure("dedup.semantic (384 dims)", n, (vectors, {}), lambda v=vectors: step.decide(v))
            on_ray(SemanticDedup, "dedup.semantic (384 dims)", n, vectors, {}, kmeans_sample=args.semantic)
            del vectors
        step = build(Stratified, by="source", within="top", score="response_words", rows=min(n // 10, 100_000))
        measure("select.stratified (top)", n, (table, None), lambda: step.select(table))


if __name__ == "__main__":
    main()
