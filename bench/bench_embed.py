"""The `embed` step against raw `SentenceTransformer.encode` on the same texts in the same process,
and the second run served from the cache.

Texts: the prompts of the first N rows (default 1,000) of the five-file pool in ../shared/data (the
same loader as bench_semdedup.py), embedded with all-MiniLM-L6-v2 (hub cache, or the packaged copy).

  raw     model.encode(texts, batch_size=64, normalize_embeddings=True): the library alone
  step    the `embed` step on a Dataset of those rows, with an empty cache: text extraction, cache
          lookup, encode, cache write, Arrow column
  cached  the step again: every text from the cache, the model not called
  new process, cached   `embed_texts` in a fresh interpreter: no torch import at all

Raw and step runs alternate (raw, step, raw, step, ...) and the best of each counts, so machine noise
hits both alike; CPU time (process_time) is printed beside wall time, being less sensitive to other
work on a shared machine. The step's own work is also timed alone, with the model's encode replaced by
a stub. Goal: step >= 90% of raw throughput.

    python bench/bench_embed.py [--data ../shared/data] [--rows 1000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import datasets
    import numpy as np
    from bench_semdedup import load_pool
    from datasets import Dataset

    from curate.embeddings import DEFAULT_MODEL, load_model, resolve_model
    from curate.rows import prompt_text
    from curate.steps.base import StepContext
    from curate.steps.score.embed import Embed

    datasets.disable_progress_bars()
    rows = load_pool(args.data)
    rng = np.random.default_rng(0)
    rows = [rows[i] for i in sorted(rng.choice(len(rows), args.rows, replace=False))]
    ds = Dataset.from_list(rows)
    texts = [prompt_text(r["messages"]) for r in rows]
    ref = resolve_model(DEFAULT_MODEL)
    model = load_model(ref)
    import torch

    print(f"{len(texts)} prompts, {sum(map(len, texts)) / len(texts):.0f} chars on average; all-MiniLM-L6-v2 "
          f"({ref.origin}) on {model.device}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cpus; best of {args.repeat}")
    model.encode(texts[:64], batch_size=64)  # warm-up

    raw_best = step_best = float("inf")
    raw_runs, step_runs, raw_cpu, step_cpu = [], [], [], []
    raw_vecs = step_vecs = None
    work = Path(tempfile.mkdtemp(prefix="curate-bench-embed-"))
    try:
        for r in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            raw_vecs = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
            raw_runs.append(time.perf_counter() - t)
            raw_cpu.append(time.process_time() - c)
            raw_best = min(raw_runs)

            cache = work / f"cache{r}"  # empty: everything is embedded
            step = Embed(Embed.Params(key="prompt", cache_dir=str(cache)), StepContext("embed", "bench", 0))
            t, c = time.perf_counter(), time.process_time()
            cols = step.score(ds)
            step_runs.append(time.perf_counter() - t)
            step_cpu.append(time.process_time() - c)
            step_best = min(step_runs)
            step_vecs = np.asarray(cols["embedding"].to_pylist(), dtype=np.float32)

        # the step's own work: the same run with the model's encode replaced by a stub
        encode = model.encode
        model.encode = lambda batch, **kw: np.zeros((len(batch), raw_vecs.shape[1]), dtype=np.float32)
        try:
            t = time.perf_counter()
            Embed(Embed.Params(key="prompt", cache_dir=str(work / "stub")), StepContext("embed", "bench", 0)).score(ds)
            overhead = time.perf_counter() - t
        finally:
            model.encode = encode

        t = time.perf_counter()
        step = Embed(Embed.Params(key="prompt", cache_dir=str(cache)), StepContext("embed", "bench", 0))
        cached = step.score(ds)
        cached_s = time.perf_counter() - t
        same = np.array_equal(np.asarray(cached["embedding"].to_pylist(), dtype=np.float32), step_vecs)

        # a fresh interpreter reading the same cache: resolves the model (fingerprint), never imports torch
        code = ("import json,sys,time; t=time.perf_counter(); from curate.embeddings import embed_texts; "
                f"texts=json.load(open({str(work / 'texts.json')!r})); "
                f"v=embed_texts(texts, cache_dir={str(cache)!r}); "
                "print(round(time.perf_counter()-t,3), 'torch' in sys.modules)")
        import json

        (work / "texts.json").write_text(json.dumps(texts))
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        fresh_total = time.perf_counter() - t
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = len(texts)
    print("\n| variant | s (wall, best) | texts/s | vs raw | CPU s (best) | vs raw (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| raw SentenceTransformer.encode (batch 64) | {raw_best:.2f} | {n / raw_best:.1f} | 100% | "
          f"{min(raw_cpu):.2f} | 100% |")
    print(f"| `embed` step, empty cache | {step_best:.2f} | {n / step_best:.1f} | {raw_best / step_best:.0%} | "
          f"{min(step_cpu):.2f} | {min(raw_cpu) / min(step_cpu):.0%} |")
    print(f"| the step's own work (encode stubbed) | {overhead:.3f} | | {overhead / raw_best:.2%} of raw | | |")
    print(f"| `embed` step again, from the cache | {cached_s:.3f} | {n / cached_s:,.0f} | {raw_best / cached_s:.0f}x | | |")
    print(f"| new process, `embed_texts` from the cache (incl. imports) | {fresh_total:.2f} | {n / fresh_total:,.0f} | "
          f"{raw_best / fresh_total:.1f}x | | |")
    print(f"\nall runs (s): raw {', '.join(f'{x:.2f}' for x in raw_runs)}; step {', '.join(f'{x:.2f}' for x in step_runs)}")
    print(f"step vectors equal raw within 1e-5: {np.allclose(step_vecs, raw_vecs, atol=1e-5)}; "
          f"cached vectors identical to the first run's: {same}; in the new process: {out[0]} s inside, "
          f"torch imported: {out[1]}")


if __name__ == "__main__":
    main()
