"""Model-based scores with SmolLM2-135M-Instruct: batched scorer vs a naive loop, and IFD on LIMA.

  speed   The response losses behind score.perplexity / score.ifd (each row: the response in context
          and alone) on the same token sequences, two ways: the naive loop that Cherry LLM's script
          runs (one sequence at a time, `model(input_ids, labels=...)`, full logits) and the batched
          scorer of curate.steps.score.lm_forward (length-sorted, dynamically padded batches, the output
          layer only at scored positions), with the score cache off. The rows are cut into chunks and
          each chunk is timed both ways back to back, so load from other work on a shared machine hits
          both alike. Also checks that the two agree, and times a cached re-run.
  lima    score.perplexity then score.ifd, as a recipe runs them (the second served by the cache), on
          LIMA rows; prints the distribution and the 10 highest and 10 lowest IFD rows.

Usage:
  python bench/bench_model_scores.py speed [--rows 32] [--data alpaca_gpt4_en_demo_999.json] [--max-length 512] [--tiny]
  python bench/bench_model_scores.py lima [--rows 300] [--max-length 512]
Options: --threads N (torch threads, default: the CPU count), --chunk 16, --data-dir ../shared/data.
The model is the packaged offline copy when the hub is unreachable (dequantised once, then cached).
Results also go to bench/.cache/model_scores_<part>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / ".cache"


def load_rows(path: Path, limit: int):
    from curate.recipe import Source
    from curate.sources.load import load_source

    loaded = load_source(path.stem, Source(path=str(path), limit=limit, license="see SOURCES.md"))
    from datasets import Dataset

    return Dataset.from_list(loaded.rows)


def setup(max_length: int, tiny: bool = False):
    from curate.models import ModelSpec, load_causal_lm, model_source
    from curate.steps.score.lm_loss import LMParams, quietly
    from curate.steps.score.lm_plan import context_length, templater_for
    from tests.helpers import context

    spec = ModelSpec(max_length=max_length)
    if tiny:  # the tests' tiny random Llama (hidden 32, 2 layers): per-call overhead dominates
        from tests.model_fixtures import tiny_llama

        folder = OUT / "tiny-llama"
        if not (folder / "config.json").is_file():
            tiny_llama(folder)
        spec = ModelSpec(name=str(folder), max_length=max_length)
    t = time.perf_counter()
    model, tok = quietly(lambda: load_causal_lm(spec))
    load_s = time.perf_counter() - t
    params = LMParams(model=spec)
    templater = templater_for(params, tok, model, context("bench"))
    L = context_length(model, tok, spec)
    print(f"model: {model_source(model).label}, {model_source(model).dtype}, loaded in {load_s:.1f} s; "
          f"max_length {L}; torch threads {__import__('torch').get_num_threads()}", flush=True)
    return model, tok, templater, L


def requests_of(plans):
    reqs = []
    for p in plans:
        if p.why is None:
            reqs.append((p.ids, [t.cond for t in p.turns]))
            reqs += [(t.alone, [t.alone_span]) for t in p.turns]
    return reqs


def naive(model, requests):
    """One sequence at a time, as Cherry LLM's script: full logits, labels -100 outside the spans."""
    import torch

    out = []
    with torch.inference_mode():
        for ids, spans in requests:
            res = []
            for a, b in spans:
                labels = [-100] * len(ids)
                labels[a:b] = ids[a:b]
                loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item()
                res.append((loss * (b - a), b - a))
            out.append(res)
    return out


def batched(model, tok, requests, cache=None):
    from curate.steps.score.lm_batches import ScoreCache
    from curate.steps.score.lm_forward import span_losses
    from curate.steps.score.lm_plan import pad_token

    cache = cache or ScoreCache(None, "bench")
    return span_losses(model, requests, cache=cache, batch_tokens=None, batch_size=16, pad_id=pad_token(tok),
                       desc="bench")


def load_now() -> str:
    try:
        return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        return ""


def speed(args) -> dict:
    import shutil

    from curate.steps.score.lm_batches import ScoreCache
    from curate.steps.score.lm_plan import plan_rows

    model, tok, templater, L = setup(args.max_length, args.tiny)
    ds = load_rows(args.data_dir / args.data, args.rows)
    plans = plan_rows(ds["messages"], templater, tok, L, "bench")
    rows = [i for i, p in enumerate(plans) if p.why is None]
    chunks = [rows[i : i + args.chunk] for i in range(0, len(rows), args.chunk)]
    cache_dir = OUT / "bench-scores"
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache = ScoreCache(cache_dir, f"bench-{args.max_length}-{args.tiny}")
    t_naive = t_batched = t_bf16 = 0.0
    tokens = 0
    worst = worst_bf16 = 0.0
    bf16 = None
    if args.bf16:
        import copy

        import torch

        bf16 = copy.deepcopy(model).to(torch.bfloat16)
        bf16.curate_source = model.curate_source
        batched(bf16, tok, requests_of([plans[rows[0]]]))
    print(f"{len(rows)} rows of {args.data} in {len(chunks)} chunks; {load_now()}", flush=True)
    batched(model, tok, requests_of([plans[rows[0]]]))  # warm-up (and the one-off head check)
    for c, chunk in enumerate(chunks):
        reqs = requests_of([plans[i] for i in chunk])
        tokens += sum(len(ids) for ids, _ in reqs)
        order = ("naive", "batched") if c % 2 == 0 else ("batched", "naive")  # alternate who goes first
        took = {}
        for how in order:
            t = time.perf_counter()
            got = naive(model, reqs) if how == "naive" else batched(model, tok, reqs, cache)
            took[how] = time.perf_counter() - t
            took[how + "_res"] = got
        dn, db = took["naive"], took["batched"]
        t_naive += dn
        t_batched += db
        if bf16 is not None:  # opt-in: the batched scorer on a bfloat16 copy (not the CPU default)
            t = time.perf_counter()
            got = batched(bf16, tok, reqs)
            t_bf16 += time.perf_counter() - t
            for ra, rb in zip(took["naive_res"], got):
                worst_bf16 = max(worst_bf16, max(abs(sa / na - sb / nb) for (sa, na), (sb, nb) in zip(ra, rb)))
        for ra, rb in zip(took["naive_res"], took["batched_res"]):
            for (sa, na), (sb, nb) in zip(ra, rb):
                assert na == nb
                worst = max(worst, abs(sa / na - sb / nb))
        print(f"  chunk {c + 1}/{len(chunks)}: naive {dn:.1f} s, batched {db:.1f} s ({dn / db:.2f}x); {load_now()}", flush=True)
    # a re-run through the score cache (what a re-selection, or score.ifd after score.perplexity, costs)
    all_reqs = requests_of([plans[i] for i in rows])
    t = time.perf_counter()
    batched(model, tok, all_reqs, cache)
    t_cached = time.perf_counter() - t
    n = len(rows)
    res = {
        "rows": n, "sequences": len(all_reqs), "tokens": tokens, "max_length": L, "data": args.data,
        "naive_s": round(t_naive, 2), "batched_s": round(t_batched, 2), "cached_s": round(t_cached, 3),
        "naive_rows_s": round(n / t_naive, 3), "batched_rows_s": round(n / t_batched, 3),
        "naive_tok_s": round(tokens / t_naive, 1), "batched_tok_s": round(tokens / t_batched, 1),
        "speedup": round(t_naive / t_batched, 2), "model": "tiny random Llama" if args.tiny else "SmolLM2-135M-Instruct", "max_abs_loss_diff": worst, "threads": __import__("torch").get_num_threads(),
    }
    print("\n| method | seconds | rows/s | tokens/s |\n|---|---:|---:|---:|")
    print(f"| naive loop (one sequence at a time, full logits) | {t_naive:.1f} | {n / t_naive:.2f} | {tokens / t_naive:,.0f} |")
    print(f"| batched scorer (lm_forward.span_losses) | {t_batched:.1f} | {n / t_batched:.2f} | {tokens / t_batched:,.0f} |")
    print(f"| batched, re-run from the score cache | {t_cached:.3f} | {n / max(t_cached, 1e-9):,.0f} | — |")
    if bf16 is not None:
        print(f"| batched, bfloat16 weights (opt-in `dtype: bfloat16`) | {t_bf16:.1f} | {n / t_bf16:.2f} | {tokens / t_bf16:,.0f} |")
        print(f"\nbfloat16: {t_naive / t_bf16:.2f}x the naive float32 loop; largest |difference| of a mean loss {worst_bf16:.3f} nats")
        res.update(bf16_s=round(t_bf16, 2), bf16_tok_s=round(tokens / t_bf16, 1), bf16_speedup=round(t_naive / t_bf16, 2),
                   bf16_max_abs_loss_diff=worst_bf16)
    print(f"\nspeed-up {t_naive / t_batched:.2f}x; largest |difference| of a mean loss: {worst:.2e} nats")
    return res


def lima(args) -> dict:
    import torch

    from curate.steps.score.ifd import IFD
    from curate.steps.score.lm_batches import stats
    from curate.steps.score.lm_loss import quietly
    from curate.steps.score.perplexity import Perplexity
    from tests.helpers import build

    ds = load_rows(args.data_dir / "lima_train.json", args.rows)
    params = {"model": {"max_length": args.max_length}, "cache_dir": str(OUT / "scores")}
    print(f"{len(ds)} LIMA rows; {load_now()}", flush=True)
    t = time.perf_counter()
    ppl_step = build(Perplexity, **params)
    ppl = quietly(lambda: ppl_step.score(ds))
    t_ppl = time.perf_counter() - t
    computed = stats["computed"]
    t = time.perf_counter()
    ifd_step = build(IFD, **params)
    ifd = ifd_step.score(ds)
    t_ifd = time.perf_counter() - t
    notes = ppl_step.ctx.notes
    tokens = sum(ppl["scored_tokens"])
    values = [x for x in ifd["ifd"] if not math.isnan(x)]
    res = {
        "rows": len(ds), "max_length": args.max_length, "threads": torch.get_num_threads(),
        "perplexity_s": round(t_ppl, 1), "ifd_s": round(t_ifd, 2), "sequences_computed": computed,
        "model": notes["model"], "truncated_rows": notes["truncated_rows"], "scored_response_tokens": tokens,
        "ifd_mean": statistics.mean(values), "ifd_median": statistics.median(values),
        "ifd_over_1": sum(1 for x in values if x > 1), "unscored": len(ds) - len(values),
        "ppl_median": statistics.median([x for x in ppl["perplexity"] if not math.isnan(x)]),
        "ppl_alone_median": statistics.median([x for x in ppl["perplexity_alone"] if not math.isnan(x)]),
    }
    print(f"score.perplexity {t_ppl:.1f} s ({len(ds) / t_ppl:.2f} rows/s, {computed} sequences computed); "
          f"score.ifd after it {t_ifd:.2f} s (cache)")
    print(f"truncated rows (max_length {args.max_length}): {notes['truncated_rows']}; scored response tokens {tokens:,}")
    print(f"IFD mean {res['ifd_mean']:.3f}, median {res['ifd_median']:.3f}, > 1: {res['ifd_over_1']}; "
          f"perplexity median {res['ppl_median']:.2f} (alone {res['ppl_alone_median']:.2f})")
    order = sorted((i for i, x in enumerate(ifd["ifd"]) if not math.isnan(x)), key=lambda i: ifd["ifd"][i])
    table = []
    for title, picked in (("highest", order[::-1][:10]), ("lowest", order[:10])):
        print(f"\n10 {title} IFD\n\n| IFD | ppl | ppl alone | tokens | prompt | response |\n|---:|---:|---:|---:|---|---|")
        for i in picked:
            m = ds[i]["messages"]
            prompt = " ".join(x["content"] for x in m[:-1] if x["role"] == "user")
            row = (ifd["ifd"][i], ppl["perplexity"][i], ppl["perplexity_alone"][i], ppl["scored_tokens"][i],
                   _cut(prompt, 70), _cut(m[-1]["content"], 70))
            table.append([title] + list(row))
            print("| {:.3f} | {:.2f} | {:.2f} | {} | {} | {} |".format(*row))
    res["table"] = table
    return res


def _cut(text: str, n: int) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["speed", "lima"])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--data", default="alpaca_gpt4_en_demo_999.json")
    ap.add_argument("--data-dir", type=Path, default=DATA)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--bf16", action="store_true", help="speed: also time the batched scorer on bfloat16 weights")
    ap.add_argument("--tiny", action="store_true", help="speed: the tests' tiny random Llama instead of SmolLM2")
    args = ap.parse_args()
    args.rows = args.rows or (32 if args.part == "speed" else 300)
    import torch

    torch.set_num_threads(args.threads)
    res = speed(args) if args.part == "speed" else lima(args)
    res["load_after"] = load_now()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"model_scores_{args.part}{'_tiny' if args.tiny else ''}.json").write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
