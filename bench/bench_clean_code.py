"""`clean`'s code detection: the early-exit `is_code` against the full count it replaced, same process.

    python bench/bench_clean_code.py [--pool bench/.cache/pool-73000] [--repeat 3]

Texts: the instructions and outputs of the first 2,500 rows of each Alpaca-format file of a generated pool
(`python bench/make_pool.py 73000`). Checks that both give the same answer at several thresholds, then
prints the best of `--repeat` CPU times of each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from curate.steps.clean.code import is_code, looks_like_code

ROOT = Path(__file__).resolve().parents[1]


def full_count(text: str, threshold: float) -> bool:
    """What `clean` did before: count every line, then compare the share."""
    lines = [line for line in text.split("\n") if line.strip()]
    return bool(lines) and sum(1 for line in lines if looks_like_code(line)) / len(lines) >= threshold


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=Path, default=ROOT / "bench" / ".cache" / "pool-73000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    texts = []
    for name in ("alpaca_gpt4", "cherry_alpaca", "code_alpaca", "lima"):
        with open(args.pool / f"{name}.jsonl", encoding="utf-8") as f:
            for line in itertools.islice(f, 2500):
                row = json.loads(line)
                texts += [row.get("instruction", ""), row.get("output", "")]
    for threshold in (0.3, 0.5, 0.7, 1.0):
        assert [full_count(t, threshold) for t in texts] == [is_code(t, threshold) for t in texts], threshold
    best = {}
    for label, fn in (("full count (before)", full_count), ("is_code, early exit", is_code)):
        times = []
        for _ in range(args.repeat):
            t = time.process_time()
            for text in texts:
                fn(text, 0.5)
            times.append(time.process_time() - t)
        best[label] = min(times)
        print(f"{label:22} {best[label]:.3f} CPU s for {len(texts):,} texts")
    print(f"same answers at thresholds 0.3/0.5/0.7/1.0; speed-up {best['full count (before)'] / best['is_code, early exit']:.2f}x")


if __name__ == "__main__":
    main()
