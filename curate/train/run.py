"""`curate train TARGET` and `curate eval TARGET`: the orchestration behind the commands.

`curate train RECIPE` trains on the recipe's run folder (running the recipe first when the folder is
missing or was written by a different recipe) with the recipe's `train:` section, then runs its `evals:`
suite on the tuned model and the base model. `curate train RUN_FOLDER` does the same with the sections
recorded in the folder's manifest (if any) and `--set train.*` / `--set evals.*` overrides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from curate.errors import CurateError
from curate.specs.evals import EvalSpec
from curate.specs.train import TrainSpec
from curate.train.context import split_sections

DATASETS = ("data", "baseline_random")


def _sections_from_folder(run_dir: Path, overrides: list[str] | None) -> tuple[TrainSpec, EvalSpec, dict]:
    from curate.recipe import apply_override

    manifest_path = run_dir / "manifest.json"
    if not manifest_path.is_file():
        raise CurateError("not a curate run folder (no manifest.json); give a run folder or a recipe", str(run_dir))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    recorded = manifest.get("recipe") or {}
    raw = {k: recorded[k] for k in ("train", "evals") if recorded.get(k) is not None}
    for item in overrides or []:
        key = item.split("=", 1)[0].strip()
        if not key.startswith(("train.", "evals.", "train=", "evals=")):
            raise CurateError(f"with a run folder only train.* and evals.* can be set, not {key!r}; "
                              "give the recipe to change the data", "--set")
        apply_override(raw, item)
    _, tspec, espec, _ = split_sections(raw, where=f"{run_dir} (--set)")
    return tspec, espec, manifest


def train_target(target, overrides: list[str] | None = None, *, model: str | None = None, dataset: str = "data",
                 out: str | Path | None = None, evaluate: bool = True, rerun: bool = False,
                 progress: Callable | None = None) -> Path:
    """Train on a recipe's run folder or a run folder; evaluate; return the training folder."""
    from curate.train.context import RecipeContext
    from curate.train.runs import sayer, train_progress
    from curate.train.data import read_rows
    from curate.train.trainer import train

    say = sayer(progress)
    if dataset not in DATASETS:
        raise CurateError(f"--data is one of {list(DATASETS)}, not {dataset!r}", "--data")
    target = Path(target)
    if target.is_dir():
        tspec, espec, manifest = _sections_from_folder(target, overrides)
        run_dir, base_dir = target, "."
        cache_dir = Path((manifest.get("recipe") or {}).get("cache", {}).get("dir", ".curate/cache")) / "evals"
    else:
        ctx = RecipeContext(target, overrides)
        ctx.ensure_run(rerun, say)
        tspec, espec, run_dir, base_dir, cache_dir = ctx.train_spec, ctx.eval_spec, ctx.run_dir, ctx.recipe_dir, ctx.cache_dir
    if model:
        tspec = tspec.model_copy(update={"model": tspec.model.model_copy(update={"name": model})})
    out = Path(out) if out else run_dir / ("train" if dataset == "data" else f"train-{dataset}")
    rows = read_rows(run_dir, dataset)
    from curate.train.heldout import heldout_rows

    heldout = heldout_rows([(str(run_dir), run_dir)], espec) if evaluate else {}  # a mix's held-out rows
    say(f"training {tspec.model.name} on {len(rows)} rows of {run_dir}/{dataset} into {out}")
    res = train(rows, tspec, out, base_dir=base_dir, keep_model=evaluate,
                progress=train_progress(progress, {"cond": dataset, "seed": tspec.seed}))
    if evaluate:
        from curate.evals.suite import LossSet, Suite

        loss_sets = {"validation": LossSet(res.val_rows, None)} if res.val_rows else {}
        suite = Suite(espec, loss_sets, heldout=heldout)
        say("evaluating the tuned model")
        tuned = suite.run(res.model, res.tokenizer, progress=say)
        del res.model
        base = None
        if espec.base:
            say("evaluating the base model")
            base = suite.run_base(tspec.model, cache_dir=cache_dir, base_dir=base_dir, progress=say)
        write_evals(out, suite, tuned, base)
    return out


def write_evals(out: Path, suite, tuned: dict, base: dict | None) -> dict:
    """`evals.json` and `evals.md` in a training folder."""
    from curate.evals.suite import markdown_table
    from curate.io import write_json_atomic, write_text_atomic

    info = suite.metric_info()
    doc = {"metrics": info, "tuned": tuned, "base": base}
    if base is not None:
        doc.update(suite.scores(tuned["metrics"], base["metrics"]))
    write_json_atomic(out / "evals.json", doc)
    cols = {"base": base["metrics"]} if base else {}
    cols["tuned"] = tuned["metrics"]
    lines = ["# Evaluations", "", *markdown_table(cols, info), ""]
    if base is not None:
        lines += [f"Domain gain {doc['domain_gain']}, general retention {doc['general_retention']} "
                  "(changes against the base model; positive is better).", ""]
    write_text_atomic(out / "evals.md", lines)
    return doc


def load_for_eval(target: str, base_dir: str | Path = "."):
    """(model, tokenizer, base ModelSpec or None, what) for a training folder (its merged model, else its base
    model with the adapter merged in) or a model name / folder / .gguf file."""
    from curate.models import ModelSpec, load_causal_lm

    folder = Path(target)
    if folder.is_dir() and (folder / "train.json").is_file():
        summary = json.loads((folder / "train.json").read_text(encoding="utf-8"))
        base_spec = ModelSpec(**summary["spec"]["model"])
        if (folder / "merged").is_dir():
            model, tok = load_causal_lm(base_spec.model_copy(update={"name": str(folder / "merged")}), where="eval")
            return model, tok, base_spec, f"{folder}/merged"
        if not (folder / "adapter").is_dir():
            raise CurateError("the training folder has neither adapter/ nor merged/ (save_adapter was off)", str(folder))
        import warnings

        from peft import PeftModel

        model, tok = load_causal_lm(base_spec, base_dir=base_dir, where="eval")
        with warnings.catch_warnings():  # peft reads a property transformers deprecated: not the user's to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = PeftModel.from_pretrained(model, str(folder / "adapter")).merge_and_unload()
        model.eval()
        return model, tok, base_spec, f"{base_spec.name} + {folder}/adapter"
    model, tok = load_causal_lm(target, base_dir=base_dir, where="eval")
    return model, tok, None, target


def eval_target(target: str, *, recipe: str | Path | None = None, overrides: list[str] | None = None,
                progress: Callable | None = None) -> dict:
    """Run the evaluation suite on a model (and on the base model of a training folder)."""
    from curate.evals.suite import Suite
    from curate.train.context import RecipeContext
    from curate.train.runs import sayer

    say = sayer(progress)
    if recipe:
        ctx = RecipeContext(recipe, overrides)
        espec, cache_dir, base_dir = ctx.eval_spec, ctx.cache_dir, ctx.recipe_dir
    else:
        from curate.recipe import apply_override

        raw: dict = {}
        for item in overrides or []:
            if not item.split("=", 1)[0].strip().startswith("evals."):
                raise CurateError(f"without --recipe only evals.* can be set, not {item!r}", "--set")
            apply_override(raw, item)
        _, _, espec, _ = split_sections(raw, where="--set")
        cache_dir, base_dir = Path(".curate/cache/evals"), "."
    if not espec.tasks:
        raise CurateError("no evaluations configured: give a recipe with an `evals:` section (--recipe) or "
                          "--set evals.tasks.arc_easy.source.path=...", "evals.tasks")
    model, tok, base_spec, what = load_for_eval(target, base_dir)
    suite = Suite(espec)
    say(f"evaluating {what}")
    result = suite.run(model, tok, progress=say)
    result["model_loaded"] = what
    del model
    if base_spec is not None and espec.base:
        say("evaluating the base model")
        base = suite.run_base(base_spec, cache_dir=cache_dir, base_dir=base_dir, progress=say)
        result["base"] = base
        result.update(suite.scores(result["metrics"], base["metrics"]))
    result["info"] = suite.metric_info()
    return result
