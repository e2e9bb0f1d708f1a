"""How long the data card, the report and the publish folder take for a run folder.

    python bench/bench_card.py [RUN_DIR ...]      (default: runs/quickstart runs/lima_style)

Prints one line per run folder: rows kept and dropped, then seconds for the card (README.md and its
three PNGs), the HTML report and a publish --dry-run, and the report's size. Each is the best of
three, in a scratch folder (nothing in the repository changes).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path


def best_of(fn, n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(run_dirs: list[str]) -> None:
    from curate.card.publish import publish
    from curate.card.report import write_report
    from curate.card.writer import write_card

    warnings.simplefilter("ignore")
    print(f"{'run':<24} {'kept':>7} {'dropped':>8} {'card s':>7} {'report s':>9} {'publish s':>10} {'report MB':>10}")
    for run in map(Path, run_dirs):
        totals = json.loads((run / "manifest.json").read_text())["totals"]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            card = best_of(lambda: write_card(run, out_dir=tmp / "card"))
            report = best_of(lambda: write_report(run, tmp / "report.html"))
            pub = best_of(lambda: publish(run, "bench/bench", dry_run=True, out=tmp / "publish"))
            size = (tmp / "report.html").stat().st_size / 1e6
        print(f"{run.name:<24} {totals['rows_out']:>7,} {totals['dropped']:>8,} {card:>7.2f} {report:>9.2f} {pub:>10.2f} {size:>10.1f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs/quickstart", "runs/lima_style"])
