"""Semantic dedup on the ~7.3k-row real pool: speed, and recall of planted paraphrase duplicates,
against MinHash and the `semhash` package on the same embeddings.

The pool is the five instruction sets in ../shared/data, read by curate's own loader (7,331 rows).
Planted duplicates: 300 rows of the pool, picked with a fixed seed among prompts of 4 to 60 words,
copied with their prompt reworded by fixed rules (instruction verbs and common words swapped for
synonyms, a polite wrapper added; at least two words changed) and their answer kept, appended to the
pool. A planted row is found when the dedup drops it or its original (either way, one of the pair goes).

Every variant compares the rows' prompts (`key: prompt`); the embeddings are all-MiniLM-L6-v2 (the
packaged copy), computed once by the `embed` step and cached in bench/.cache/embeddings (the first run
embeds ~7.6k prompts: a few minutes on 2 cores; later runs read the cache).

    python bench/bench_semdedup.py [--data ../shared/data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache" / "embeddings"
SOURCES = {
    "alpaca_gpt4": ("alpaca_gpt4_en_demo_999.json", {}),
    "cherry_alpaca": ("cherry_alpaca_5_percent.json", {}),
    "code_alpaca": ("code_alpaca_2k.json", {}),
    "lima": ("lima_train.json", {}),
    "self_instruct_seeds": ("self_instruct_seed_tasks.jsonl", {
        "format": "columns",
        "options": {"prompt": "instruction", "input": "instances.0.input", "response": "instances.0.output"}}),
}

# Rewording rules: a leading instruction verb, then common words, each swapped for a synonym.
VERBS = {
    "write": "compose", "compose": "write", "generate": "produce", "create": "make", "make": "create",
    "describe": "explain", "explain": "describe", "give": "provide", "provide": "give", "list": "name",
    "name": "list", "find": "identify", "identify": "find", "suggest": "recommend", "summarize": "sum up",
    "rewrite": "rephrase", "classify": "categorize", "translate": "convert", "construct": "build",
    "design": "devise", "edit": "revise", "calculate": "compute", "determine": "work out",
    "choose": "pick", "analyze": "examine", "compare": "contrast", "come": "think", "tell": "let",
    "convert": "turn", "develop": "build", "propose": "suggest", "brainstorm": "think of",
}
WORDS = {
    "short": "brief", "brief": "short", "following": "given", "given": "following", "example": "instance",
    "examples": "instances", "paragraph": "passage", "story": "tale", "ways": "methods", "tips": "pointers",
    "important": "significant", "different": "distinct", "benefits": "advantages", "people": "individuals",
    "use": "utilize", "help": "assist", "big": "large", "small": "little", "best": "top",
    "answer": "response", "question": "query", "text": "passage", "article": "piece", "main": "key",
    "sentence": "line", "words": "terms", "function": "routine", "program": "script", "list": "set",
    "describe": "explain", "explain": "describe", "create": "make", "make": "create", "find": "locate",
    "about": "regarding", "simple": "basic", "reasons": "grounds", "difference": "distinction",
}
WRAPPERS = ["Please {l}.", "Could you {l}?", "I need your help with this: {p}", "{p} Thanks!",
            "Task for you: {p}", "Here is what I would like. {p}"]


def reword(prompt: str, rng: random.Random) -> tuple[str, int]:
    """(reworded prompt, words changed) by the fixed rules above; deterministic given rng."""
    changed = 0

    def swap(m: re.Match, table: dict) -> str:
        nonlocal changed
        w = m.group(0)
        new = table.get(w.lower())
        if new is None:
            return w
        changed += 1
        return new.capitalize() if w[0].isupper() else new

    first, rest = (prompt.split(" ", 1) + [""])[:2]
    first = re.sub(r"[A-Za-z]+", lambda m: swap(m, VERBS), first, count=1)
    rest = re.sub(r"\b[A-Za-z]+\b", lambda m: swap(m, WORDS), rest)
    text = f"{first} {rest}".strip()
    wrapper = rng.choice(WRAPPERS)
    lower = text[0].lower() + text[1:] if text else text
    return wrapper.format(p=text, l=lower.rstrip(".?!")), changed + 1


def load_pool(data: Path):
    from curate.recipe import Source
    from curate.sources.load import load_source

    rows = []
    for name, (file, extra) in SOURCES.items():
        rows += load_source(name, Source(path=str(data / file), **extra)).rows
    return rows


def plant(rows, k: int = 300, seed: int = 0):
    """(planted rows, index of each one's original in rows)."""
    from curate.rows import make_row, prompt_text

    rng = random.Random(seed)
    candidates = [i for i, r in enumerate(rows)
                  if len(r["messages"]) == 2 and 4 <= len(prompt_text(r["messages"]).split()) <= 60]
    planted, originals = [], []
    for i in rng.sample(candidates, len(candidates)):
        if len(planted) == k:
            break
        messages = rows[i]["messages"]
        new, changed = reword(messages[0]["content"], rng)
        if changed < 2:
            continue
        planted.append(make_row("planted", [{"role": "user", "content": new}, messages[1]], {"original": i}))
        originals.append(i)
    return planted, originals


def found(dropped: set[int], n_pool: int, originals: list[int]) -> int:
    return sum(1 for j, o in enumerate(originals) if n_pool + j in dropped or o in dropped)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import datasets
    from datasets import Dataset

    from curate.rows import prompt_text
    from curate.steps.base import StepContext
    from curate.steps.dedup.minhash import MinHashDedup
    from curate.steps.dedup.semantic import SemanticDedup
    from curate.steps.score.embed import Embed
    from curate.vectors import embedding_matrix

    datasets.disable_progress_bars()
    pool = load_pool(args.data)
    planted, originals = plant(pool)
    n_pool = len(pool)
    ds = Dataset.from_list(pool + planted)
    print(f"{n_pool} pool rows + {len(planted)} planted paraphrases = {len(ds)} rows; key: prompt; "
          f"{os.cpu_count()} cpus; best of {args.repeat}")
    for j in (0, 1, 2):
        print(f"  e.g. {prompt_text(pool[originals[j]]['messages'])[:90]!r}\n    -> {prompt_text(planted[j]['messages'])[:90]!r}")

    def ctx(label):
        return StepContext(label=label, where=f"bench.{label}", seed=1234)

    t = time.perf_counter()
    embed = Embed(Embed.Params(key="prompt", cache_dir=str(CACHE)), ctx("embed"))
    cols = embed.score(ds)
    embed_s = time.perf_counter() - t
    ds = ds.add_column("embedding", cols["embedding"]).add_column("embedding_why", cols["embedding_why"])
    print(f"embed step (all-MiniLM-L6-v2, {embed.ctx.notes['model_origin']}): {embed_s:.1f} s "
          f"(from the cache when a previous run embedded these prompts)")

    def best(fn):
        out, secs = None, float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = fn()
            secs = min(secs, time.perf_counter() - t0)
        return secs, out

    def run_step(step):
        return {i for i, d in enumerate(step.decide(ds)) if d is not None}

    rows = []
    for eps in (0.05, 0.1, 0.15):
        for clusters, probes in ((None, 2), (8, 1), (8, 2), (30, 1), (30, 2)):
            step = SemanticDedup(SemanticDedup.Params(eps=eps, clusters=clusters, probes=probes), ctx("dedup.semantic"))
            secs, dropped = best(lambda step=step: run_step(step))
            k = step.ctx.notes["clusters"]
            label = (f"dedup.semantic eps={eps:g} (cos>{1 - eps:g}), " + ("default: clusters=1 (every pair)" if clusters is None
                     else f"clusters={k}, probes={probes}"))
            rows.append((label, secs, len(dropped), found(dropped, n_pool, originals), len(dropped & set(range(n_pool)))))

    # semhash on the same embeddings: exact (basic) and its default ANN backend (usearch)
    try:
        from semhash import SemHash
        from vicinity import Backend

        X = embedding_matrix(ds, "embedding", "bench")[0]
        records = [{"i": str(i), "text": prompt_text(m)} for i, m in enumerate(ds["messages"])]

        class Precomputed:  # semhash's Encoder protocol; never called, the vectors are given
            def encode(self, inputs, **kw):
                raise RuntimeError("not used")

        for eps in (0.05, 0.1, 0.15):
            for backend in (Backend.BASIC, Backend.USEARCH):
                def run_semhash(backend=backend, eps=eps):
                    sh = SemHash.from_embeddings(X, records, Precomputed(), columns=["text"], ann_backend=backend)
                    res = sh.self_deduplicate(threshold=1 - eps)
                    return {int(d.record["i"]) for d in res.filtered}
                secs, dropped = best(run_semhash)
                rows.append((f"semhash {backend.value} threshold={1 - eps:g}", secs, len(dropped),
                             found(dropped, n_pool, originals), len(dropped & set(range(n_pool)))))
    except ImportError:
        print("semhash not installed (pip install semhash): skipped")

    for key in ("prompt", "conversation"):
        step = MinHashDedup(MinHashDedup.Params(key=key), ctx("dedup.minhash"))
        secs, dropped = best(lambda step=step: run_step(step))
        rows.append((f"dedup.minhash key={key} (word 5-grams, jaccard>=0.8)", secs, len(dropped),
                     found(dropped, n_pool, originals), len(dropped & set(range(n_pool)))))

    print(f"\n| variant | s | rows dropped | planted pairs found (of {len(planted)}) | recall | pool rows dropped |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, secs, n, hit, natural in rows:
        print(f"| {label} | {secs:.3f} | {n} | {hit} | {hit / len(planted):.1%} | {natural} |")


if __name__ == "__main__":
    main()
