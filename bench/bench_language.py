"""`score.language`'s batched py3langid (curate.steps.score.langid_batch) against py3langid's own
`classify`, one text at a time, on the responses of the real pool (first 2,000 characters, as the step
reads them): texts/s of each in this process, the ratio, and that the labels agree.

    python bench/bench_language.py [--data ../shared/data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_minhash import load_pool  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from curate.steps.score.langid_batch import classify_many
    from curate.steps.score.language import _identifier

    texts = [messages[-1]["content"][:2000] for _, messages in load_pool(args.data)]
    identifier = _identifier()

    def best(fn):
        secs, out = float("inf"), None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = fn()
            secs = min(secs, time.perf_counter() - t0)
        return secs, out

    one_s, theirs = best(lambda: [identifier.classify(t) for t in texts])
    many_s, ours = best(lambda: classify_many(identifier, texts))
    same = sum(a[0] == b[0] for a, b in zip(ours, theirs))
    diff = max(abs(a[1] - b[1]) for a, b in zip(ours, theirs))
    n = len(texts)
    print(f"{n} responses, {sum(map(len, texts)) / n:.0f} chars each on average; best of {args.repeat}")
    print(f"py3langid classify, one by one: {one_s:.2f} s = {n / one_s:,.0f} texts/s")
    print(f"classify_many (batched):        {many_s:.2f} s = {n / many_s:,.0f} texts/s  ({one_s / many_s:.1f}x)")
    print(f"same label: {same}/{n}; largest confidence difference {diff:.1e}")


if __name__ == "__main__":
    main()
