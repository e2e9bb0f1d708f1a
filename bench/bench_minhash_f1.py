"""`dedup.minhash` (verify: exact, cluster: star) against the truth: every pair compared by brute force.

For a pool, the truth is the rows a perfect near-dedup drops: all pairs of rows whose word 5-gram shingle
sets have an exact Jaccard >= 0.8 (computed for every pair at once, as a sparse product of the rows'
shingle-set matrix), clustered as the step clusters them (stars, keep first). F1 compares the rows the
step drops with those. The step's throughput is set against raw rensa (one RMinHash per document +
RMinHashLSH, union-find; what a caller would write, see bench_minhash.py) on the same texts, best of 3.

Pools: the 7.3k real rows of ../shared/data plus 1,000 planted near-duplicates (one response word
changed), and a generated pool (bench/make_pool.py: ~10% exact copies and ~10% near-duplicates with one
or two words changed, every row a perturbed copy of a real one).

    python bench/bench_minhash_f1.py [--data ../shared/data] [--pool bench/.cache/pool-100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_minhash import (  # noqa: E402
    NGRAM, SEED, THRESHOLD, alpaca_messages, best_of, from_texts, load_pool, plant_near_duplicates, rensa_per_doc,
)

ROOT = Path(__file__).resolve().parents[1]


def generated_pool(folder: Path) -> list[tuple[str, list[dict]]]:
    return [(f.stem, alpaca_messages(json.loads(line))) for f in sorted(folder.glob("*.jsonl"))
            for line in f.open(encoding="utf-8")]


def all_pairs(texts: list[str], threshold: float, block: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j) with exact shingle-set Jaccard >= threshold, by brute force: the rows' shingle
    sets as a sparse 0/1 matrix X, intersections X X^T block by block (the step's 32-bit shingle hashes)."""
    from scipy import sparse

    from curate.steps.dedup.shingles import shingle_hashes

    flat, offsets = shingle_hashes(texts, NGRAM, "word")
    small = (flat & np.uint64(0xFFFFFFFF)).astype(np.int64)  # the 32-bit hashes exact_jaccard uses
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(offsets).astype(np.int64))
    cells = np.unique((rows << 32) | small)
    rows, shingle = cells >> 32, cells & 0xFFFFFFFF
    cols = np.unique(shingle, return_inverse=True)[1]
    X = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(texts), cols.max() + 1))
    sizes = np.asarray(X.sum(axis=1)).ravel()
    XT = X.T.tocsc()
    found = []
    for lo in range(0, len(texts), block):
        inter = (X[lo:lo + block] @ XT).tocoo()
        i, j, k = inter.row + lo, inter.col, inter.data
        keep = j > i
        i, j, k = i[keep], j[keep], k[keep]
        jac = k / (sizes[i] + sizes[j] - k)
        ok = jac >= threshold - 1e-12
        found.append((i[ok], j[ok], jac[ok]))
    return tuple(np.concatenate(x) for x in zip(*found)) if found else (np.array([]),) * 3


def f1(truth: set, got: set) -> tuple[float, float, float]:
    tp = len(truth & got)
    precision = tp / len(got) if got else 1.0
    recall = tp / len(truth) if truth else 1.0
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


def measure(name: str, pool, repeat: int) -> None:
    import pyarrow as pa

    from curate.rows import conversation_text, make_row
    from curate.steps.base import StepContext
    from curate.steps.dedup.lsh import star_clusters
    from curate.steps.dedup.minhash import MinHashDedup

    texts = [conversation_text(m) for _, m in pool]
    table = pa.Table.from_pylist([make_row(src, m, {}) for src, m in pool])
    step = MinHashDedup(MinHashDedup.Params(), StepContext(label="dedup.minhash", where="bench", seed=SEED))

    step_s, decided = best_of(step.decide, table, repeat)
    got = {i for i, d in enumerate(decided) if d is not None}
    rensa_s, rensa_dropped = best_of(from_texts(rensa_per_doc), texts, repeat)
    t0 = time.perf_counter()
    a, b, sim = all_pairs(texts, THRESHOLD)
    truth_s = time.perf_counter() - t0
    priority = np.arange(len(texts))  # keep: first
    truth = {int(i) for _, dropped in star_clusters(a, b, sim, priority) for i, _ in dropped}
    precision, recall, score = f1(truth, got)
    n = len(texts)
    print(f"| {name} | {n:,} | {len(a):,} | {len(truth):,} | {len(got):,} | {precision:.4f} | {recall:.4f} | "
          f"**{score:.4f}** | {n / step_s:,.0f} | {n / rensa_s:,.0f} ({rensa_dropped:,}) | "
          f"**{rensa_s / step_s:.2f}x** | {truth_s:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--pool", type=Path, action="append", default=[], help="a generated pool folder (repeatable)")
    ap.add_argument("--repeat", type=int, default=3, help="timings: the best of this many runs")
    args = ap.parse_args()

    print("| pool | rows | true pairs (exact J>=0.8) | truth drops | step drops | precision | recall | F1 | "
          "step docs/s | raw rensa docs/s (its drops) | step / rensa | brute force s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    real = load_pool(args.data)
    measure("real 7.3k + 1,000 planted", real + plant_near_duplicates(real, 1000), args.repeat)
    for folder in args.pool:
        measure(folder.name, generated_pool(folder), args.repeat)


if __name__ == "__main__":
    main()
