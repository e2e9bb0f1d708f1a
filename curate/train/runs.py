"""One training run and its evaluation, as `curate compare` and `curate ablate --train` record it; progress lines."""

from __future__ import annotations

import json
from pathlib import Path

from curate.specs.train import TrainSpec


def train_and_eval(rows, spec: TrainSpec, tmp_dir: Path, final_dir: Path, suite, base, val_rows, base_dir,
                   progress, **labels) -> dict:
    """Train one run, evaluate the tuned model, write evals.json into its folder; the run's record. Its
    per-item eval results are under `_items` (not written to results.json: they are in the run's evals.json)."""
    from curate.train.trainer import train

    res = train(rows, spec, tmp_dir, val_rows=val_rows, base_dir=base_dir, keep_model=True,
                progress=train_progress(progress, labels))
    say = sayer(progress)
    say(f"[{labels.get('cond') or labels.get('point')} seed {labels['seed']}] evaluating")
    tuned = suite.run(res.model, res.tokenizer, progress=say)
    scores = suite.scores(tuned["metrics"], base["metrics"])
    evals = {"tuned": tuned, "base_metrics": base["metrics"], **scores}
    (tmp_dir / "evals.json").write_text(json.dumps(evals, indent=2, default=str), encoding="utf-8")
    del res.model
    s, r = res.summary, res.summary["results"]
    return {**labels, "dir": str(final_dir),
            "rows": s["data"]["train_rows"] + s["data"]["val_rows"] if not isinstance(rows, list) else len(rows),
            "train_rows": s["data"]["train"]["kept"], "tokens": s["data"]["train"]["tokens"],
            "tokens_trained": r["tokens"], "steps": s["steps"],
            "train_loss_first": r["train_loss_first"], "train_loss_last": r["train_loss_last"],
            "eval_loss_last": r["eval_loss_last"], "tokens_per_second": r["tokens_per_second"],
            "staircase_score": res.staircase["score"], "staircase_flagged": res.staircase["flagged"],
            "metrics": tuned["metrics"], "changes": scores["changes"], "domain_gain": scores["domain_gain"],
            "general_retention": scores["general_retention"], "forgetting": scores["forgetting"],
            "_log": res.log, "_items": tuned.get("items", {})}


def sayer(progress):
    def say(msg):
        if progress:
            progress(msg)
    return say


def train_progress(progress, labels):
    if not progress:
        return None
    tag = f"{labels.get('cond') or labels.get('point')} seed {labels.get('seed')}"

    def show(row):
        if row["kind"] == "eval":
            progress(f"[{tag}] step {row['step']}: validation loss {row['loss']:.4f}")
        elif row["kind"] == "epoch_end":
            progress(f"[{tag}] epoch {row['epoch']:g} done at step {row['step']}")
        elif row["kind"] == "train" and (row["step"] == 1 or row["step"] % 10 == 0):
            progress(f"[{tag}] step {row['step']}: loss {row['loss']:.4f}")
    return show
