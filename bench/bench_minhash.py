"""Near-duplicate detection throughput: rensa vs datasketch vs the `dedup.minhash` step.

Loads the ~7.3k-row pool from ../shared/data (alpaca_gpt4 demo, cherry alpaca 5%, code alpaca 2k,
LIMA, self-instruct seeds), builds each row's "conversation" text, and times on the same texts with
the same parameters (word 5-gram shingles of the normalised text, 128 permutations, Jaccard 0.8):

  rensa per-doc   RMinHash per document + RMinHashLSH insert/query + Jaccard check + union-find
  rensa batch     the same through rensa's batch calls (from_token_sets, insert_many, query_all)
  datasketch      MinHash per document (update_batch) + MinHashLSH insert/query + check + union-find
  step            dedup.minhash end to end on a datasets.Dataset (texts, hashing, LSH, clusters, Drops)

Both raw libraries are fed Python string shingles, the way a caller would write it. Best of 3 runs
each. Usage: python bench/bench_minhash.py [--data DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import unicodedata
from pathlib import Path

NGRAM, NUM_PERM, THRESHOLD, SEED = 5, 128, 0.8, 1234
LSH_WEIGHTS = (0.1, 0.9)  # as in dedup.minhash
RENSA_BANDS = 16  # rensa's LSH needs bands dividing num_perm: 16 x 8 is the nearest to the step's 14 x 9
FILES = [
    "alpaca_gpt4_en_demo_999.json",
    "cherry_alpaca_5_percent.json",
    "code_alpaca_2k.json",
    "lima_train.json",
    "self_instruct_seed_tasks.jsonl",
]


def load_pool(data: Path) -> list[tuple[str, list[dict]]]:
    """(source, messages) for every row of the five files: alpaca prompt = instruction + input."""
    rows = []
    for name in FILES:
        path = data / name
        if name.endswith(".jsonl"):
            with path.open(encoding="utf-8") as f:
                records = [json.loads(line) for line in f if line.strip()]
            records = [{"instruction": r["instruction"], **r["instances"][0]} for r in records]
        else:
            records = json.loads(path.read_text(encoding="utf-8"))
        rows += [(path.stem, alpaca_messages(r)) for r in records]
    return rows


def alpaca_messages(r: dict) -> list[dict]:
    """An alpaca record (instruction, input, output, optional history) as chat messages."""
    messages = []
    for q, a in r.get("history") or []:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    prompt = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
    return messages + [{"role": "user", "content": prompt}, {"role": "assistant", "content": r["output"]}]


def shingles(text: str) -> list[str]:
    """Word 5-grams of the normalised text: the same sets the step builds (it hashes them instead)."""
    words = unicodedata.normalize("NFC", text).lower().split()
    if len(words) <= NGRAM:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)]


def count_dropped(n: int, pairs) -> int:
    """Rows a keep-first policy drops: members of each connected component but one."""
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    linked = {x for p in pairs for x in p}
    return len(linked) - len({find(x) for x in linked})


def rensa_per_doc(token_sets: list[list[str]]) -> int:
    from rensa import RMinHash, RMinHashLSH

    lsh = RMinHashLSH(THRESHOLD, NUM_PERM, RENSA_BANDS)
    sketches = []
    for i, tokens in enumerate(token_sets):
        m = RMinHash(NUM_PERM, SEED)
        if tokens:  # an empty text has no set to compare
            m.update(tokens)
            lsh.insert(i, m)
        sketches.append((m, bool(tokens)))
    pairs = []
    for i, (m, ok) in enumerate(sketches):
        if ok:
            pairs += [(i, j) for j in lsh.query(m) if j > i and m.jaccard(sketches[j][0]) >= THRESHOLD]
    return count_dropped(len(token_sets), pairs)


def rensa_batch(token_sets: list[list[str]]) -> int:
    from rensa import RMinHash, RMinHashLSH

    keep = [i for i, s in enumerate(token_sets) if s]
    sketches = RMinHash.from_token_sets([token_sets[i] for i in keep], NUM_PERM, SEED)
    lsh = RMinHashLSH(THRESHOLD, NUM_PERM, RENSA_BANDS)
    lsh.insert_many(sketches)
    pairs = []
    for a, found in enumerate(lsh.query_all(sketches)):
        pairs += [(keep[a], keep[b]) for b in found if b > a and sketches[a].jaccard(sketches[b]) >= THRESHOLD]
    return count_dropped(len(token_sets), pairs)


def datasketch_per_doc(token_sets: list[list[str]]) -> int:
    from datasketch import MinHash, MinHashLSH

    # the step's banding: datasketch's rule with weights (0.1, 0.9) gives 14 bands x 9 rows
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, weights=LSH_WEIGHTS)
    sketches = []
    for i, tokens in enumerate(token_sets):
        m = MinHash(num_perm=NUM_PERM, seed=SEED)
        if tokens:
            m.update_batch([s.encode("utf-8") for s in tokens])
            lsh.insert(i, m)
        sketches.append((m, bool(tokens)))
    pairs = []
    for i, (m, ok) in enumerate(sketches):
        if ok:
            pairs += [(i, j) for j in lsh.query(m) if j > i and m.jaccard(sketches[j][0]) >= THRESHOLD]
    return count_dropped(len(token_sets), pairs)


def plant_near_duplicates(pool, k: int, seed: int = 0):
    """k extra rows: copies of random long rows (>= 100 words) with one response word replaced."""
    import random

    rng = random.Random(seed)
    long_rows = [m for _, m in pool if len(" ".join(x["content"] for x in m).split()) >= 100]
    planted = []
    for messages in rng.sample(long_rows, k):
        words = messages[-1]["content"].split()
        words[rng.randrange(len(words))] = "zzzz"
        planted.append(("planted", messages[:-1] + [{"role": "assistant", "content": " ".join(words)}]))
    return planted


def from_texts(fn):
    """The end-to-end variant: shingle the texts in Python, then call the library."""
    return lambda texts: fn([shingles(t) for t in texts])


def python_shingling_only(texts: list[str]) -> int:
    return sum(len(shingles(t)) for t in texts)


def best_of(fn, arg, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(arg)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=here.parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import datasets
    from datasets import Dataset

    from curate.rows import conversation_text, make_row
    from curate.steps.base import StepContext
    from curate.steps.dedup.minhash import MinHashDedup

    datasets.disable_progress_bars()
    pool = load_pool(args.data)
    texts = [conversation_text(m) for _, m in pool]
    ds = Dataset.from_list([make_row(src, m, {}) for src, m in pool])
    step = MinHashDedup(MinHashDedup.Params(), StepContext(label="dedup.minhash", where="bench", seed=SEED))

    def run_step(d):
        return sum(x is not None for x in step.decide(d))

    n = len(texts)
    print(
        f"{n} rows, {sum(map(len, texts)) / n:.0f} chars/row; word {NGRAM}-grams, num_perm {NUM_PERM}, "
        f"threshold {THRESHOLD}; rensa {_version('rensa')}, "
        f"datasketch {_version('datasketch')}; {os.cpu_count()} cpus; best of {args.repeat}"
    )
    token_sets = [shingles(t) for t in texts]
    results = {}
    print("texts in, near-duplicates out:")
    for name, fn, arg in [
        ("rensa per-doc", from_texts(rensa_per_doc), texts),
        ("rensa batch", from_texts(rensa_batch), texts),
        ("datasketch per-doc", from_texts(datasketch_per_doc), texts),
        ("dedup.minhash step", run_step, ds),
        ("(python shingling alone)", python_shingling_only, texts),
        ("-- library only, shingles prebuilt:", None, None),
        ("rensa per-doc (lib only)", rensa_per_doc, token_sets),
        ("rensa batch (lib only)", rensa_batch, token_sets),
        ("datasketch (lib only)", datasketch_per_doc, token_sets),
    ]:
        if fn is None:
            print(name)
            continue
        results[name] = best_of(fn, arg, args.repeat)
        secs, found = results[name]
        what = "shingles" if name.startswith("(") else "near-dups dropped"
        print(f"  {name:26s} {secs:8.3f} s {n / secs:10.0f} docs/s   {found} {what}", flush=True)

    planted = pool + plant_near_duplicates(pool, 1000)
    p_texts = [conversation_text(m) for _, m in planted]
    p_ds = Dataset.from_list([make_row(src, m, {}) for src, m in planted])
    print("\nsame pool + 1000 planted near-duplicates (one response word changed in a >=100-word row):")
    for name, fn, arg in [
        ("rensa per-doc", from_texts(rensa_per_doc), p_texts),
        ("datasketch per-doc", from_texts(datasketch_per_doc), p_texts),
        ("dedup.minhash step", run_step, p_ds),
    ]:
        print(f"  {name:26s} {fn(arg)} near-dups dropped (1014 expected: 14 + 1000)", flush=True)

    rate = {k: n / v[0] for k, v in results.items()}
    print()
    print(f"step / rensa per-doc       {rate['dedup.minhash step'] / rate['rensa per-doc']:.2f}x")
    print(f"step / rensa batch         {rate['dedup.minhash step'] / rate['rensa batch']:.2f}x")
    print(f"rensa per-doc / datasketch {rate['rensa per-doc'] / rate['datasketch per-doc']:.1f}x")
    print(f"rensa batch / datasketch   {rate['rensa batch'] / rate['datasketch per-doc']:.1f}x")
    print(f"library only: rensa per-doc / datasketch {rate['rensa per-doc (lib only)'] / rate['datasketch (lib only)']:.1f}x")


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
