"""Rejects as JSON Lines: one `json.dumps` per row (what the engine did) against curate.jsonl's column-at-a-time
encoding, same process, same rows.

    python bench/bench_jsonl.py [--rows 5000] [--repeat 3]

Rows: the real LIMA, Code Alpaca and Alpaca-GPT4 files of ../shared/data (made into canonical rows, as a run
loads them) with the 15 columns `score.heuristics` adds, as rejects hold them. Checks that all three give the
same text, then prints the best of `--repeat` CPU times per row of each: row by row with `json.dumps` (before
this change), row by row with the made-once encoder (`curate.io.dumps` now), and column by column.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyarrow as pa

from curate.io import dumps, row_for_json
from curate.jsonl import encode_rows
from curate.rows import make_row
from curate.steps.base import StepContext
from curate.steps.score.heuristics import Heuristics

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pool(limit: int) -> pa.Table:
    rows = []
    for name in ("lima_train.json", "code_alpaca_2k.json", "alpaca_gpt4_en_demo_999.json"):
        for i, r in enumerate(json.loads((DATA / name).read_text(encoding="utf-8"))[:limit // 3]):
            prompt = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
            messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": r["output"]}]
            rows.append(make_row(name, messages, {"source_row": f"{name}:{i}"}))
    table = pa.Table.from_pylist(rows)
    step = Heuristics(Heuristics.Params(), StepContext("score.heuristics", "bench", 0))
    for column, values in step.apply(table).columns.items():
        table = table.append_column(column, values)
    return table


def best_cpu(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    table = pool(args.rows)
    n = table.num_rows

    def before():
        return [json.dumps(row_for_json(r), ensure_ascii=False, allow_nan=False, default=str) for r in table.to_pylist()]

    def encoder_once():
        return [dumps(row_for_json(r)) for r in table.to_pylist()]

    def columns():
        return encode_rows(table)

    assert before() == encoder_once() == columns(), "the encodings differ"
    print(f"{n:,} rows, {table.num_columns} columns, {sum(map(len, columns())) / n:,.0f} characters a line: the same text")
    base = None
    for label, fn in (("row by row, json.dumps (before)", before), ("row by row, made-once encoder", encoder_once),
                      ("column by column (curate.jsonl)", columns)):
        us = best_cpu(fn, args.repeat) / n * 1e6
        base = base or us
        print(f"  {label:34s} {us:6.1f} us/row  {base / us:4.2f}x")


if __name__ == "__main__":
    main()
