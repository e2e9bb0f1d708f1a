"""Write a realistic N-row instruction pool for the scale benchmark, from the real ~7.3k-row pool.

    python bench/make_pool.py N [--out bench/.cache/pool-N] [--data ../shared/data] [--seed 0]

Rows are drawn (seeded) from the five real sets of ../shared/data and perturbed: a few words swapped with
their neighbours and a few deleted, so that copies of one real row are not near-duplicates of each other.
About 10% of the rows are exact copies of an earlier row and about 10% near-duplicates of one (one
or two words changed). Each source keeps its share of the real pool and is written as alpaca-format JSON
Lines (instruction / input / output, and history for LIMA's multi-turn rows), one file per source:
`<out>/<source>.jsonl`, plus `<out>/recipe.yaml`, the no-embedding lima_style pipeline over them.
"""

from __future__ import annotations

import argparse
import json
import random
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {  # name -> (file, license)
    "alpaca_gpt4": ("alpaca_gpt4_en_demo_999.json", "cc-by-nc-4.0"),
    "cherry_alpaca": ("cherry_alpaca_5_percent.json", "cc-by-nc-4.0"),
    "code_alpaca": ("code_alpaca_2k.json", "cc-by-nc-4.0"),
    "lima": ("lima_train.json", "cc-by-nc-sa-4.0"),
    "self_instruct_seeds": ("self_instruct_seed_tasks.jsonl", "apache-2.0"),
}

# the lima_style recipe without its model-based steps (embed, semantic dedup, decontamination, the diverse
# walk): what the scale issue measures. The selection is stratified by source, 1,000 rows.
RECIPE = """\
name: scale
description: The no-embedding lima_style pipeline over a generated pool (bench/make_pool.py).
seed: 0
sources:
{sources}
steps:
  - clean: {{strip_links: true, drop_article_refs: true}}
  - dedup.exact: {{key: prompt, keep: longest}}
  - dedup.exact: {{key: response}}
  - score.heuristics: {{}}
  - score.language: {{key: conversation, languages: [en, de, fr, es, pt, it, nl, zh, ja, ru]}}
  - filter:
      rules: ["response_words >= 3", "rep_ngram_ratio <= 0.5", "nonalnum_ratio <= 0.4", "refusal < 1", "lang == en"]
  - filter.pattern:
      patterns: ["\\\\bas an ai language model\\\\b", "\\\\bI (?:don't|do not) have (?:personal )?(?:opinions|feelings)\\\\b"]
  - dedup.minhash: {{key: conversation, threshold: 0.8, keep: longest}}
  - select.stratified: {{by: source, within: top, score: response_words, rows: 1000}}
template: {{format: chatml}}
outputs: {{dir: runs/scale, formats: [jsonl, parquet]}}
"""


def real_rows(data: Path) -> dict[str, list[dict]]:
    out = {}
    for name, (file, _) in SOURCES.items():
        path = data / file
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            rows = [{"instruction": r["instruction"], "input": r["instances"][0]["input"],
                     "output": r["instances"][0]["output"]} for r in rows]
        else:
            rows = json.loads(path.read_text(encoding="utf-8"))
        out[name] = [{k: r.get(k) or "" for k in ("instruction", "input", "output")} | ({"history": r["history"]} if r.get("history") else {})
                     for r in rows]
    return out


def perturb(text: str, rng: random.Random, swaps: int, deletions: int) -> str:
    """Swap `swaps` adjacent word pairs and delete `deletions` words, inside lines (layout kept)."""
    lines = text.split("\n")
    spots = [(i, len(line.split(" "))) for i, line in enumerate(lines) if len(line.split(" ")) > 3]
    if not spots:
        return text
    for _ in range(swaps + deletions):
        i, _n = rng.choice(spots)
        words = lines[i].split(" ")
        if len(words) <= 3:
            continue
        k = rng.randrange(len(words) - 1)
        if swaps > 0:
            words[k], words[k + 1] = words[k + 1], words[k]
            swaps -= 1
        else:
            del words[k]
        lines[i] = " ".join(words)
    return "\n".join(lines)


def variant(row: dict, rng: random.Random, heavy: bool) -> dict:
    out = dict(row)
    for field in ("instruction", "output"):
        if not row.get(field):
            continue
        words = len(row[field].split())
        n = max(1, words // 6) if heavy else 1
        out[field] = perturb(row[field], rng, swaps=n, deletions=n if heavy else 0)
    return out


def make_pool(n: int, out: Path, data: Path, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    pools = real_rows(data)
    total = sum(len(v) for v in pools.values())
    counts = {name: round(n * len(rows) / total) for name, rows in pools.items()}
    counts[max(counts, key=counts.get)] += n - sum(counts.values())
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in pools.items():
        made: list[dict] = []
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for i in range(counts[name]):
                roll = rng.random()
                if made and roll < 0.10:
                    row = made[rng.randrange(len(made))]  # an exact duplicate
                elif made and roll < 0.20:
                    row = variant(made[rng.randrange(len(made))], rng, heavy=False)  # a near duplicate
                else:
                    base = rows[i % len(rows)] if i < len(rows) else rows[rng.randrange(len(rows))]
                    row = base if i < len(rows) else variant(base, rng, heavy=True)
                if len(made) < 50_000:
                    made.append(row)
                elif rng.random() < 0.05:
                    made[rng.randrange(len(made))] = row
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    sources = "\n".join(f"  {name}: {{path: {name}.jsonl, license: {SOURCES[name][1]}}}" for name in pools)
    (out / "recipe.yaml").write_text(RECIPE.format(sources=sources), encoding="utf-8")
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = args.out or ROOT / "bench" / ".cache" / f"pool-{args.n}"
    counts = make_pool(args.n, out, args.data, args.seed)
    size = sum(p.stat().st_size for p in out.glob("*.jsonl"))
    print(f"wrote {sum(counts.values()):,} rows ({size / 1e6:,.0f} MB) to {out}: " +
          ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(textwrap.dedent(f"""\
        run it:  curate run {out / 'recipe.yaml'}"""))


if __name__ == "__main__":
    main()
