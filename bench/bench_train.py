"""Fine-tuning on curated data, reduced for a CPU: SmolLM2-135M-Instruct with LoRA, trained through TRL.

  compare    `curate compare` on recipes/lima_style.yaml (the local copies): the curated selection against the five
             matched baselines (random rows, random tokens, source-balanced, the pool, the pool for the subset's
             steps), 2 seeds, 1 epoch, short rows; every model (and the base model) evaluated by lm-evaluation-harness
             on ARC-Easy and MMLU validation (curate's shipped local tasks) and by the loss on pool rows no run
             trains on; per-arm means and the paired per-item comparisons with the subset.
  ablate     `curate ablate recipes/science_mix.yaml --train`, reduced: three general:science ratios of a 96-row
             mix, 1 epoch each, then ARC-Easy validation (the domain; the mix trains on ARC-Easy train) against
             MMLU validation (general): domain gain, general retention and the Pareto front.
  mixfit     `curate ablate recipes/science_mix.yaml --train`, reduced, with the fitted mixing law: three general:science
             ratios x 2 seeds of a 96-row mix (--mix-rows), 1 epoch each, no validation split; the general metric is
             the loss on 64 (--heldout) of the general rows the mix holds out (no point trains on them), the domain
             metric the loss on as many held-out ARC-Easy rows; ARC-Easy and MMLU accuracy beside them (--mc-fit; 0:
             none). Prints the fitted law, the recommended ratio (retention 0.98) and the next ratios `--suggest`
             would propose.
  resample   fresh general rows each epoch against the same rows every epoch: science_mix at 50:50, a 48-row mix
             (--stair-rows) trained 3 epochs with reshuffle off, the cyclic schedule and a high learning rate (the
             staircase setting), `mix.components.general.resample` once vs per_epoch as an ablate grid axis (same
             rows per epoch, same steps), 2 seeds; the staircase score, the held-out general and science losses
             (--heldout rows each; ARC-Easy and MMLU accuracy on --mc-resample questions, 0: none).
  staircase  one small run with the cyclic schedule (one LR cycle per epoch) and reshuffle off over 3 epochs,
             with a high learning rate: the setting under which a model memorises what it saw once; prints the
             staircase report and writes the loss plot.
  speed      training tokens/s on the same random pool rows and steps: TRL padded and TRL padding-free (this tree)
             and, with `--before DIR` (a checkout of the trainer before TRL, e.g. `git archive 1f6ec5c | tar -x -C
             DIR`), curate's own padded and packing collators; every run in a fresh process, interleaved A B C D
             so that load from other work hits all alike. On a GPU it also prints the share of the bf16 peak
             (6 x params x tokens/s).

`--full` runs the issue's full sizes (a GPU job): compare with the recipe's own settings (all six arms, 3 seeds,
3 epochs, every ARC-Easy and MMLU validation question through lm-eval, 200 held-out pool rows).

Usage:
  python bench/bench_train.py [compare ablate mixfit resample staircase speed] [--full] [--rows 16] [--full-rows 48] [--mc 30]
                              [--threads 1] [--before DIR]
Runs runs/lima_style first (the README's command) when missing. Results: bench/.cache/train/*.json; the figures
are copied to bench/train_*.png. The model is the packaged offline copy when the hub is unreachable.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("CURATE_BENCH_DATA", ROOT.parent / "shared" / "data"))  # the GPU machine has no ../shared
CARRY = ROOT / ".carry" / "data"  # --prepare-gpu: what a run on the lent GPU machine needs (ignored by git)
OUT = ROOT / "bench" / ".cache" / "train"
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"  # --model replaces it (a folder: e.g. a tiny test model)
FIGURES = "train"  # bench/<FIGURES>_*.png; --full writes bench/train_full_*.png and bench/.cache/train-full/
RECIPE = ROOT / "recipes" / "lima_style.yaml"


def lima_overrides() -> list[str]:
    """The README's offline lima_style command (relative paths, as there, so its step cache is shared)."""
    d = "../shared/data"
    sets = [f"sources.alpaca_gpt4.path={d}/alpaca_gpt4_en_demo_999.json",
            f"sources.cherry_alpaca.path={d}/cherry_alpaca_5_percent.json",
            f"sources.code_alpaca.path={d}/code_alpaca_2k.json",
            f"sources.lima.path={d}/lima_train.json",
            f"sources.self_instruct_seeds.path={d}/self_instruct_seed_tasks.jsonl"]
    from curate.recipe import load_raw

    steps = load_raw(RECIPE).get("steps") or []
    for i, entry in enumerate(steps):  # the decontaminate step's eval sets: the local copies of the same files
        params = entry.get("decontaminate") if isinstance(entry, dict) else None
        for j, es in enumerate((params or {}).get("eval_sets") or []):
            name = str(es.get("path", "")).rsplit("/", 1)[-1]
            if name:
                sets.append(f"steps.{i}.decontaminate.eval_sets.{j}.path={d}/eval_prompts/{name}")
    return sets


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def ensure_lima():
    from curate.train.compare import RecipeContext

    ctx = RecipeContext(RECIPE, lima_overrides())
    ctx.ensure_run(progress=log)
    return ctx.run_dir


def eval_paths(*tasks: str) -> list[str]:
    """The local copies for curate's own scorer (the presets name hub datasets)."""
    paths = {"arc_easy": DATA / "arc_easy_validation.json", "mmlu": DATA / "mmlu" / "val" / "*.csv"}
    return [f"evals.tasks.{t}.source.path={paths[t]}" for t in tasks]


def harness_data(*tasks: str) -> list[str]:
    """lima_style's lm_eval tasks read the ../shared/data layout; point them at DATA (the GPU machine's copy)."""
    return [f"evals.tasks.{t}.data_dir={DATA}" for t in tasks]


def part_compare(a) -> dict:
    from curate.train.compare import compare

    if a.full:  # the recipe's own settings: 6 arms, 3 seeds, 3 epochs, every question, 200 held-out rows
        sets = lima_overrides() + [f"train.model={MODEL}", f"compare.dir={OUT / 'compare'}"] + harness_data("arc", "mmlu")
        sets += [f"compare.{k}={v}" for k, v in (("pool", a.pool), ("seeds", a.seeds)) if v]
    else:
        sets = lima_overrides() + [
            f"train.model={MODEL}", "train.epochs=1", "train.max_length=256", "train.batch_size=4",
            "train.learning_rate=5e-4", f"train.threads={a.threads}", "train.val_max_rows=16", "train.eval_every=4",
            "train.save_adapter=false",
            f"compare.dir={OUT / 'compare'}",  # beside the other bench results, not in runs/lima_style
            f"compare.seeds={a.seeds or '[0, 1]'}", f"compare.rows={a.rows}", f"compare.full_rows={a.full_rows}",
            "compare.holdout_rows=32", "evals.batch_size=8", "evals.max_length=256",
            f"evals.tasks.arc.n={a.mc}", f"evals.tasks.mmlu.n={a.mc}", *harness_data("arc", "mmlu"),
        ]
        sets += [f"compare.pool={a.pool}"] if a.pool else []
    t = time.perf_counter()
    out = compare(RECIPE, sets, progress=log)
    seconds = time.perf_counter() - t
    res = json.loads((out / "results.json").read_text())
    for name, target in (("compare.png", "train_compare.png"), ("loss_curves.png", "train_curves.png")):
        shutil.copy(out / name, ROOT / "bench" / target.replace("train", FIGURES, 1))
    print((out / "results.md").read_text())
    return {"dir": str(out), "seconds": round(seconds, 1), "summary": res["summary"], "conditions": res["conditions"],
            "base": res["base"]["metrics"], "paired": res["paired"], "runs": res["runs"],
            "metrics": {m: {c: v["mean"] for c, v in e["by_condition"].items()} for m, e in res["metrics"].items()}}


def part_ablate(a) -> dict:
    """`curate ablate recipes/science_mix.yaml --train`, reduced: three general:science ratios of a small mix,
    1 epoch each; ARC-Easy validation (domain, never trained on) against MMLU validation (general)."""
    from curate.ablate import run_ablation
    from curate.train.grid import train_ablation

    recipe = ROOT / "recipes" / "science_mix.yaml"
    sets = [f"sources.arc_easy.path={DATA / 'arc_easy_train.json'}", f"ablate.dir={OUT / 'ablate'}",
            f"train.model={MODEL}", *eval_paths("arc_easy", "mmlu")]
    if not a.full:  # else the recipe's grid (5 ratios x 2 sizes) and settings (3 epochs, every question)
        sets += [f"mix.size.rows={a.mix_rows}", "ablate.sizes=[]", f"ablate.ratios={json.dumps(a.ratios)}",
                 "train.epochs=1", "train.max_length=256", "train.batch_size=4", "train.learning_rate=5e-4",
                 f"train.threads={a.threads}", "train.save_adapter=false", "evals.batch_size=8", "evals.max_length=256",
                 f"evals.tasks.arc_easy.n={a.grid_mc}", f"evals.tasks.mmlu.n={a.grid_mc}"]
    t = time.perf_counter()
    grid = run_ablation(str(recipe), sets, reporter=lambda i, n, name: log(f"grid point {i + 1}/{n} {name}"))
    out = train_ablation(recipe, sets, ablate_dir=grid, progress=log)
    seconds = time.perf_counter() - t
    shutil.copy(out / "pareto.png", ROOT / "bench" / f"{FIGURES}_pareto.png")
    doc = json.loads((out / "pareto.json").read_text())
    print((out / "results.md").read_text())
    return {"dir": str(out), "seconds": round(seconds, 1), "base": doc["base"]["metrics"], "front": doc["front"],
            "points": [{k: p[k] for k in ("point", "rows", "mix", "metrics", "domain_gain", "general_retention", "pareto")}
                       for p in doc["points"]]}


def heldout_evals(a, mc: int) -> list[str]:
    """science_mix's evals at bench size: the held-out losses on `--heldout` rows each, and ARC-Easy and MMLU accuracy
    on `mc` questions each; mc 0 leaves the multiple-choice tasks out (on a loaded CPU they cost as much as training)."""
    if mc == 0:
        return ["evals.tasks={general_heldout: {kind: loss, role: general, heldout: general, n: %d}, "
                "science_heldout: {kind: loss, role: domain, heldout: science, n: %d}}" % (a.heldout, a.heldout)]
    return [f"evals.tasks.general_heldout.n={a.heldout}", f"evals.tasks.science_heldout.n={a.heldout}",
            f"evals.tasks.arc_easy.n={mc}", f"evals.tasks.mmlu.n={mc}"]


def part_mixfit(a) -> dict:
    """The reduced science_mix grid with the fit: 3 ratios x 2 seeds, loss-based domain and general metrics."""
    from curate.ablate import run_ablation
    from curate.train.grid import train_ablation

    recipe = ROOT / "recipes" / "science_mix.yaml"
    sets = [f"sources.arc_easy.path={DATA / 'arc_easy_train.json'}", f"ablate.dir={OUT / 'mixfit'}",
            f"train.model={MODEL}", *eval_paths("arc_easy", "mmlu"),
            f"mix.size.rows={a.mix_rows}", "ablate.sizes=[]", f"ablate.ratios={json.dumps(a.ratios)}",
            f"compare.seeds={a.seeds or '[0, 1]'}", "train.epochs=1", f"train.max_length={a.max_length}", "train.batch_size=4",
            "train.learning_rate=5e-4", f"train.threads={a.threads}", "train.save_adapter=false",
            "train.val_fraction=0", "evals.batch_size=8", f"evals.max_length={a.max_length}", *heldout_evals(a, a.mc_fit)]
    t = time.perf_counter()
    grid = run_ablation(str(recipe), sets, reporter=lambda i, n, name: log(f"grid point {i + 1}/{n} {name}"))
    out = train_ablation(recipe, sets, ablate_dir=grid, progress=log)
    seconds = time.perf_counter() - t
    for name in ("pareto.png", "fit.png"):
        shutil.copy(out / name, ROOT / "bench" / f"{FIGURES}_mixfit_{name}")
    doc, fit = json.loads((out / "pareto.json").read_text()), json.loads((out / "fit.json").read_text())
    print((out / "results.md").read_text())
    return {"dir": str(out), "seconds": round(seconds, 1), "sets": sets, "base": doc["base"]["metrics"],
            "points": [{k: p[k] for k in ("point", "general_share", "rows", "metrics", "domain_gain", "general_retention")}
                       | {"runs": [{k: r[k] for k in ("seed", "metrics", "domain_gain", "general_retention", "steps")}
                                   for r in p["runs"]]} for p in doc["points"]],
            "fit": {k: fit[k] for k in ("constraints", "retention")} | {"groups": [
                {k: g[k] for k in ("ratios", "seeds", "recommendation", "warnings", "suggest")}
                | {"params": {m: e["params"] for m, e in g["metrics"].items()}} for g in fit["groups"]]}}


def part_resample(a) -> dict:
    """`resample: once` against `per_epoch` for the general component, the rest identical (an ablate grid axis)."""
    from curate.ablate import run_ablation
    from curate.train.grid import train_ablation

    recipe = ROOT / "recipes" / "science_mix.yaml"
    sets = [f"sources.arc_easy.path={DATA / 'arc_easy_train.json'}", f"ablate.dir={OUT / 'resample'}",
            f"train.model={MODEL}", *eval_paths("arc_easy", "mmlu"), f"mix.size.rows={a.stair_rows}",
            "ablate.sizes=[]", 'ablate.ratios=["50:50"]', "mix.epochs=3",
            'ablate.grid={"mix.components.general.resample": [once, per_epoch]}',
            f"compare.seeds={a.seeds or '[0, 1]'}", "train.epochs=3", "train.reshuffle=false", "train.schedule=cyclic",
            f"train.learning_rate={a.stair_lr}", f"train.batch_size={a.stair_batch}", f"train.max_length={a.max_length}",
            "train.val_fraction=0", "train.lora.dropout=0", f"train.threads={a.threads}", "train.save_adapter=false",
            "evals.batch_size=8", f"evals.max_length={a.max_length}", *heldout_evals(a, a.mc_resample)]
    t = time.perf_counter()
    grid = run_ablation(str(recipe), sets, reporter=lambda i, n, name: log(f"grid point {i + 1}/{n} {name}"))
    out = train_ablation(recipe, sets, ablate_dir=grid, progress=log)
    seconds = time.perf_counter() - t
    doc = json.loads((out / "pareto.json").read_text())
    runs = []
    for p in doc["points"]:
        for r in p["runs"]:
            summary = json.loads((out / r["dir"] / "train.json").read_text())
            runs.append({"point": p["point"], "seed": r["seed"], "steps": r["steps"], "staircase": summary["staircase"],
                         "epochs_plan": summary.get("epochs_plan"), "metrics": r["metrics"],
                         "train_loss_last": r["train_loss_last"]})
            shutil.copy(out / r["dir"] / "loss.png", ROOT / "bench" / f"{FIGURES}_resample_{p['point'].split('_')[-1]}_seed{r['seed']}.png")
    print((out / "results.md").read_text())
    return {"dir": str(out), "seconds": round(seconds, 1), "sets": sets, "base": doc["base"]["metrics"],
            "mix": {p["point"]: p["mix"] for p in doc["points"]}, "runs": runs}


def prepare_gpu(run_dir: Path) -> None:
    """Write .carry/data/ for the GPU machine, which has neither ../shared nor the embedding model that the
    lima_style steps need: the run folder's data and manifest (so compare does not re-run the recipe), the
    pool (compare.pool, so compare does not rebuild it) and the eval and ARC-Easy files."""
    from curate.train.compare import RecipeContext

    shutil.rmtree(CARRY, ignore_errors=True)
    run_copy = CARRY / "runs" / "lima_style"
    run_copy.mkdir(parents=True)
    for name in ("data.parquet", "baseline_random.parquet", "manifest.json"):
        shutil.copy(run_dir / name, run_copy / name)
    RecipeContext(RECIPE, lima_overrides()).build_pool(CARRY / "pool", log)
    for name in ("rejects.jsonl", "data.jsonl"):
        (CARRY / "pool" / name).unlink(missing_ok=True)
    shared = CARRY / "shared"
    (shared / "mmlu" / "val").mkdir(parents=True)
    for name in ("arc_easy_validation.json", "arc_easy_train.json"):
        shutil.copy(DATA / name, shared / name)
    for f in (DATA / "mmlu" / "val").glob("*.csv"):
        shutil.copy(f, shared / "mmlu" / "val" / f.name)
    size = sum(f.stat().st_size for f in CARRY.rglob("*") if f.is_file())
    log(f"wrote {CARRY} ({size / 2**20:.1f} MiB): carry it with the model (bench/README.md, 'What remains for a GPU')")


def part_staircase(a, run_dir: Path) -> dict:
    from curate.train.data import read_rows
    from curate.specs.train import TrainSpec
    from curate.train.trainer import train

    rows = read_rows(run_dir)
    picked = random.Random(0).sample(range(len(rows)), a.stair_rows + 8)
    train_rows, val = [rows[i] for i in picked[: a.stair_rows]], [rows[i] for i in picked[a.stair_rows:]]
    spec = TrainSpec(model=MODEL, epochs=3, schedule="cyclic", reshuffle=False, learning_rate=a.stair_lr,
                     batch_size=a.stair_batch, max_length=1024 if a.full else 256, lora={"r": 16, "alpha": 32, "dropout": 0.0},
                     threads=a.threads, eval_every=max(1, a.stair_rows // a.stair_batch // 4), save_adapter=False)
    t = time.perf_counter()
    res = train(train_rows, spec, OUT / "staircase", val_rows=val,
                progress=lambda r: log(f"staircase step {r['step']} {r['kind']} {r['loss']}") if r["kind"] != "epoch_end" else None)
    shutil.copy(OUT / "staircase" / "loss.png", ROOT / "bench" / f"{FIGURES}_staircase.png")
    st = res.staircase
    log(f"staircase score {st['score']} flagged {st['flagged']}: {json.dumps(st['boundaries'])}")
    return {"seconds": round(time.perf_counter() - t, 1), "staircase": st, "results": res.summary["results"],
            "steps": res.summary["steps"], "steps_per_epoch": res.summary["steps_per_epoch"]}


SPEED_RUN = """
import json, sys
tree, spec, rows_path, out = sys.argv[1:5]
sys.path.insert(0, tree)
import torch
spec = json.loads(spec)
torch.set_num_threads(spec.get("threads") or 1)
from curate.specs.train import TrainSpec
from curate.train.trainer import train
rows = [json.loads(line) for line in open(rows_path, encoding="utf-8")]
res = train(rows, TrainSpec.model_validate(spec), out)
print("RESULT " + json.dumps({**res.summary["results"], "libraries": res.summary.get("libraries")}))
"""


def part_speed(a, run_dir: Path) -> dict:
    """Training tokens/s of TRL (padded, padding-free) and, with --before, of curate's own trainer before TRL
    (padded, packing), on the same rows and steps; each run in a fresh process, the settings interleaved."""
    import subprocess

    import torch

    from curate.train.data import read_rows

    rows = read_rows(run_dir, "baseline_random")  # pool rows: lengths vary (the selection favours long answers)
    rows = [rows[i] for i in random.Random(1).sample(range(len(rows)), a.speed_rows)]
    rows_path = OUT / "speed-rows.jsonl"
    rows_path.write_text("".join(json.dumps({k: r[k] for k in ("id", "text", "assistant_spans")}) + "\n" for r in rows))
    on_cuda = torch.cuda.is_available()
    common = dict(model=MODEL, max_steps=a.speed_steps, batch_size=8, max_length=1024 if a.full else 512,
                  val_fraction=0.0, threads=a.threads, save_adapter=False, schedule="constant", bf16="auto")
    settings = {}
    if a.before:
        settings["before TRL: curate's padded collator"] = (a.before, dict(packing=False))
        settings["before TRL: curate's packing collator (bins of <= max_length)"] = (a.before, dict(packing=True))
    settings["TRL: padded batches"] = (str(ROOT), dict(packing=False))
    settings["TRL: padding-free (packing: true)"] = (str(ROOT), dict(packing=True))
    if not on_cuda:  # the CUDA default: TRL's fused LM head for the loss
        settings["TRL: padded batches, fused_loss: true"] = (str(ROOT), dict(packing=False, fused_loss=True))
    results = {k: [] for k in settings}
    for rep in range(a.repeats):
        for k, (name, (tree, extra)) in enumerate(settings.items()):
            folder = OUT / f"speed-{rep}-{k}"
            shutil.rmtree(folder, ignore_errors=True)
            proc = subprocess.run([sys.executable, "-c", SPEED_RUN, tree, json.dumps({**common, **extra}), str(rows_path),
                                   str(folder)], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"speed run {name!r} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(line[7:])
            results[name].append({"tokens_per_second": r["tokens_per_second"], "tokens": r["tokens"],
                                  "train_seconds": r["train_seconds"], "libraries": r.get("libraries")})
            log(f"speed {name} rep {rep}: {r['tokens_per_second']} tokens/s ({r['tokens']} tokens)")
    out = {"rows": len(rows), "mean_row_tokens": None, "settings": {}}
    for name, rs in results.items():
        out["settings"][name] = {"tokens_per_second_median": statistics.median(x["tokens_per_second"] for x in rs),
                                 "runs": rs}
    names = list(out["settings"])
    trl_best = max(out["settings"][n]["tokens_per_second_median"] for n in names if n.startswith("TRL"))
    if a.before:
        before_best = max(out["settings"][n]["tokens_per_second_median"] for n in names if n.startswith("before"))
        out["trl_best_over_before_best"] = round(trl_best / before_best, 3)
    if on_cuda:
        from curate.models import load_causal_lm

        model, _ = load_causal_lm(MODEL)
        params = sum(p.numel() for p in model.parameters())
        peak = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
        name = torch.cuda.get_device_name(0)
        flops = next((v for k, v in peak.items() if k in name), None)
        if flops:
            out["share_of_bf16_peak"] = round(6 * params * trl_best / flops, 5)
        out["device"] = name
    return out


def main():
    global MODEL, OUT, FIGURES
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", nargs="*", default=["compare", "ablate", "staircase", "speed"])
    p.add_argument("--rows", type=int, default=16, help="rows of the subset arm (a seeded sample of the selection)")
    p.add_argument("--full-rows", type=int, default=48, help="rows of the pool slice for the full arm")
    p.add_argument("--mc", type=int, default=30, help="ARC-Easy and MMLU questions each (lm-eval, a seeded sample)")
    p.add_argument("--mix-rows", type=int, default=96, help="rows of each science_mix grid point (ablate)")
    p.add_argument("--ratios", nargs="+", default=["0:100", "30:70", "70:30"], help="general:science ratios (ablate)")
    p.add_argument("--grid-mc", type=int, default=200, help="ARC-Easy and MMLU questions each (ablate)")
    p.add_argument("--mc-fit", type=int, default=100, help="ARC-Easy and MMLU questions each (mixfit; 0: none)")
    p.add_argument("--mc-resample", type=int, default=20, help="ARC-Easy and MMLU questions each (resample; 0: none)")
    p.add_argument("--max-length", type=int, default=256, help="tokens per row, training and loss evals (mixfit, resample)")
    p.add_argument("--heldout", type=int, default=64, help="held-out general and science rows each (mixfit, resample)")
    p.add_argument("--stair-rows", type=int, default=48)
    p.add_argument("--stair-batch", type=int, default=2)
    p.add_argument("--stair-lr", type=float, default=2e-3)
    p.add_argument("--speed-rows", type=int, default=32)
    p.add_argument("--speed-steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--before", help="speed: a checkout of curate before TRL (git archive 1f6ec5c | tar -x -C DIR)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 on a machine shared with other work)")
    p.add_argument("--model", default=MODEL)
    p.add_argument("--pool", help="compare: use this saved pool (a run folder) instead of rebuilding it")
    p.add_argument("--seeds", help="compare: the seeds, as YAML (default [0, 1]; --full: the recipe's [0, 1, 2])")
    p.add_argument("--prepare-gpu", action="store_true",
                   help="write .carry/data/ (run folder, pool, eval files) for a run on the lent GPU machine, then stop")
    p.add_argument("--full", action="store_true",
                   help="the issue's full sizes, a GPU job: compare and ablate with the recipes' own settings (3 "
                        "epochs, every question; compare: all six arms, 3 seeds, lm-eval; the ablation grid 1 seed), "
                        "the staircase over 992 selected rows, speed over 512 rows and 30 steps")
    a = p.parse_args()
    if a.full:
        a.stair_rows, a.stair_batch, a.speed_rows, a.speed_steps = 992, 8, 512, 30
        OUT, FIGURES = OUT.with_name("train-full"), "train_full"
    MODEL = a.model
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no 3 s connection test before the packaged copy
    os.chdir(ROOT)  # the recipe's outputs, caches and the README's relative paths are relative to the checkout
    import torch

    torch.set_num_threads(a.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    run_dir = ensure_lima()
    if a.prepare_gpu:
        return prepare_gpu(run_dir)
    results = {"args": vars(a)}
    started = time.perf_counter()
    for part in a.parts:
        log(f"== {part}")
        results[part] = {"compare": part_compare, "ablate": part_ablate, "mixfit": part_mixfit,
                         "resample": part_resample, "staircase": part_staircase, "speed": part_speed,
                         }[part](*((a,) if part in ("compare", "ablate", "mixfit", "resample") else (a, run_dir)))
        (OUT / f"{part}.json").write_text(json.dumps(results[part], indent=2, default=str))
    results["seconds"] = round(time.perf_counter() - started, 1)
    log(f"done in {results['seconds']} s")
    print(json.dumps({k: v for k, v in results.items() if k != "compare"}, indent=2, default=str))


if __name__ == "__main__":
    main()
