"""The selectors over embeddings on the ~7.3k-row real pool: time, and coverage against the matched
random subset that every selection reports.

The pool: the five instruction sets in ../shared/data (curate's loader), exact duplicates by prompt
removed, each row's prompt embedded with all-MiniLM-L6-v2 (cached in bench/.cache/embeddings; the first
run embeds ~7.3k prompts, a few minutes on 2 cores). Each selector picks 1,000 rows; coverage is the
mean and max cosine distance from every pool row to its nearest selected row (lower is better), for
the selection and for a seeded random 1,000 rows of the same pool. select.target aims at ARC-Easy
train questions, so its own figure is the distance from each of those targets to the selection.

    python bench/bench_select_embed.py [--data ../shared/data] [--rows 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--rows", type=int, default=1000)
    args = ap.parse_args()

    import datasets
    from bench_semdedup import CACHE, load_pool
    from datasets import Dataset

    from curate.rows import normalise, prompt_text, response_text
    from curate.steps.base import StepContext
    from curate.steps.score.embed import Embed
    from curate.steps.select.cluster_balanced import ClusterBalanced
    from curate.steps.select.diverse import Diverse
    from curate.steps.select.kcenter import KCenter
    from curate.steps.select.target import Target

    datasets.disable_progress_bars()
    seen, rows = set(), []
    for r in load_pool(args.data):
        key = normalise(prompt_text(r["messages"]))
        if key not in seen:
            seen.add(key)
            rows.append(r)
    ds = Dataset.from_list(rows)
    ds = ds.add_column("response_words", [float(len(response_text(r["messages"]).split())) for r in rows])
    embed = Embed(Embed.Params(key="prompt", cache_dir=str(CACHE)), StepContext("embed", "bench", 0))
    cols = embed.score(ds)
    ds = ds.add_column("embedding", cols["embedding"]).add_column("embedding_why", cols["embedding_why"])
    print(f"{len(ds)} rows (exact duplicate prompts removed), prompts embedded with all-MiniLM-L6-v2; "
          f"{args.rows} rows selected by each")

    n = args.rows
    arc = {"path": str(args.data / "arc_easy_train.json"), "field": "question"}
    variants = [
        ("select.kcenter", KCenter, {}),
        ("select.diverse tau=0.2, seeded order", Diverse, {"tau": 0.2}),
        ("select.diverse tau=0.3, seeded order", Diverse, {"tau": 0.3}),
        ("select.diverse tau=0.2, by response_words", Diverse, {"tau": 0.2, "score": "response_words"}),
        ("select.cluster_balanced (equal, k=sqrt(n))", ClusterBalanced, {}),
        ("select.cluster_balanced (equal, k=100)", ClusterBalanced, {"clusters": 100}),
        ("select.target ARC-Easy train, round_robin", Target, {"targets": [arc], "cache_dir": str(CACHE)}),
        ("select.target ARC-Easy train, max", Target, {"targets": [arc], "cache_dir": str(CACHE), "aggregate": "max"}),
    ]
    print("\n| selector | s | mean dist. | random | max dist. | random | notes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, cls, params in variants:
        step = cls(cls.Params(rows=n, **params), StepContext(label, "bench", 1234))
        t = time.perf_counter()
        step.select(ds)
        secs = time.perf_counter() - t
        notes = step.ctx.notes
        cov = notes["coverage"]
        extra = ""
        if "rejected_as_similar" in notes:
            extra = f"passed over {notes['rejected_as_similar']} rows as too close"
        if "target_coverage" in notes:
            tc, ts = notes["target_coverage"], notes["target_similarity"]
            extra = (f"targets -> selection: mean {tc['selected']['mean_distance']:.3f} vs random "
                     f"{tc['random']['mean_distance']:.3f}; selection -> nearest target similarity "
                     f"{ts['selected']:.3f} vs {ts['random']:.3f}")
        s, r = cov["selected"], cov["random"]
        print(f"| {label} | {secs:.2f} | {s['mean_distance']:.3f} | {r['mean_distance']:.3f} | "
              f"{s['max_distance']:.3f} | {r['max_distance']:.3f} | {extra} |")


if __name__ == "__main__":
    main()
