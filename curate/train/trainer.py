"""`train(data, spec, out_dir)`: LoRA SFT of a causal LM on curated rows, through TRL's `SFTTrainer`.

curate tokenizes each row's rendered `text` and turns its `assistant_spans` into a token-level assistant mask
(curate.encoding: the one thing TRL cannot know, since the recipe's template rendered the text); TRL does
the rest: labels from the mask (`assistant_masks`: the loss is on assistant tokens only), the LoRA adapter
(`peft_config`), batching (its `DataCollatorForLanguageModeling`: padded batches, or padding-free with
`packing`: the rows of a micro-batch in one sequence whose position ids restart at every row, so no pad token
is computed and attention never crosses rows), the loss (its fused LM head: per-token log-probabilities
without materialising the logits) and the loop (transformers' Trainer underneath). curate's subclass swaps in
the learning-rate schedule (curate.train.schedules), counts the tokens it trains on, sends no telemetry, and
the order of rows is fixed across epochs when `reshuffle` is off (the rows are put in one seeded order and read
sequentially every epoch). A micro-batch is `batch_size` rows with or without packing, so the number of
optimizer steps depends on the rows, never on their lengths.

What a training folder holds (written to a temporary folder and swapped in whole):

| file | what |
|---|---|
| `train.json` | the spec, the base model, data counts and row ids, steps, losses, tokens/s, the staircase report |
| `loss.csv` | `kind,step,epoch,loss,learning_rate,grad_norm,tokens_seen`: kind `train` (every optimizer step), `eval` (validation loss every `eval_every` steps and at the end), `epoch_end` (the last step of each epoch) |
| `loss.png` | training loss per step, validation loss, epoch boundaries, learning rate |
| `epochs.json` | the ids of the rows each epoch read, when they differ from epoch to epoch (a mix with `resample: per_epoch`, or `stages`: curate.train.epochs) |
| `adapter/` | the LoRA adapter (peft) and tokenizer, when `save_adapter` |
| `merged/` | the base model with the adapter folded in, when `save_merged` |

This module runs one training and writes its folder. Beside it: the rows (curate.train.data), their tokens
(curate.encoding), TRL's trainer set up for the run (curate.train.sft), the loss log (curate.train.loss_log),
the schedules, epochs and plots.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from curate.atomic import staged_folder
from curate.encoding import EncodeStats, encode_rows
from curate.errors import CurateError
from curate.io import check_replaceable
from curate.specs.train import TrainSpec
from curate.train.data import check_rows, read_rows, split_rows
from curate.train.loss_log import write_log
from curate.train.sft import build_trainer, set_attention
from curate.train.staircase import detect_staircase

LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate")


@dataclass
class TrainResult:
    out_dir: Path
    summary: dict  # what train.json holds
    log: list[dict]  # the rows of loss.csv
    adapter_dir: Path | None = None
    merged_dir: Path | None = None
    model: Any = None  # the trained model with the adapter merged in (keep_model=True)
    tokenizer: Any = None
    order: list[list[int]] = field(default_factory=list)  # row indices per training batch (record_order=True)
    val_rows: list[dict] = field(default_factory=list)  # the validation rows used

    @property
    def staircase(self) -> dict:
        return self.summary["staircase"]


def train(data, spec: TrainSpec, out_dir: str | os.PathLike, *, val_rows: list[dict] | None = None,
          base_dir: str | os.PathLike = ".", keep_model: bool = False, record_order: bool = False,
          progress: Callable[[dict], None] | None = None, model=None, tokenizer=None) -> TrainResult:
    """Fine-tune `spec.model` with LoRA on `data` (a run folder, a jsonl/parquet file, or a list of rows with
    `text` and `assistant_spans`) and write the training folder `out_dir`.

    `val_rows` (rows like the training rows) replace the validation split. `progress` is called with each
    log row. `model`/`tokenizer` may be passed in (already loaded by curate.models) to skip loading.
    """
    import torch

    started = time.perf_counter()
    if spec.threads:
        torch.set_num_threads(spec.threads)
    check_replaceable(Path(out_dir), "train.json", "a training folder")
    rows = read_rows(data) if not isinstance(data, list) else check_rows(data, "train")
    if not rows:
        raise CurateError("no rows to train on", str(data) if not isinstance(data, list) else "train")
    source = str(data) if not isinstance(data, list) else f"{len(rows)} rows"

    # validation rows: given, from val_path, or a seeded share of the data
    if val_rows is not None:
        train_rows, val = list(rows), list(val_rows)
    elif spec.val_path:
        train_rows, val = list(rows), read_rows(spec.val_path)
        if spec.val_max_rows:
            val = val[: spec.val_max_rows]
    else:
        train_rows, val = split_rows(rows, spec.val_fraction, spec.val_max_rows, spec.seed)

    if model is None:
        from curate.models import load_causal_lm

        model, tokenizer = load_causal_lm(spec.model, base_dir=base_dir, where="train.model")
    base_info = _describe(model)
    device = str(next(model.parameters()).device)
    on_cuda = device.startswith("cuda")

    stats, val_stats = EncodeStats(), EncodeStats()
    train_set = encode_rows(tokenizer, train_rows, spec.max_length, stats)
    val_set = [{k: v for k, v in r.items() if k != "idx"} for r in encode_rows(tokenizer, val, spec.max_length, val_stats)]
    if not train_set:
        raise CurateError(f"no training row has an assistant token within max_length={spec.max_length}", "train.max_length")
    if not spec.reshuffle:  # one seeded order, read sequentially every epoch
        random.Random(spec.seed).shuffle(train_set)
    from curate.train.epochs import epoch_rows, plan_epochs

    plan = plan_epochs(train_rows, train_set, spec)  # fresh rows per epoch, or stages: None for neither

    packing = on_cuda if spec.packing == "auto" else bool(spec.packing)
    fused = on_cuda if spec.fused_loss == "auto" else bool(spec.fused_loss)
    bf16 = (on_cuda and torch.cuda.is_bf16_supported()) if spec.bf16 == "auto" else bool(spec.bf16)
    fp16 = on_cuda and not bf16 and next(model.parameters()).dtype == torch.float16
    attention = set_attention(model, spec.attention, on_cuda)

    batches_per_epoch = math.ceil((len(plan.epochs[0]) if plan else len(train_set)) / spec.batch_size)
    steps_per_epoch = max(batches_per_epoch // spec.grad_accum + int(batches_per_epoch % spec.grad_accum > 0), 1)
    total_steps = spec.max_steps or max(1, math.ceil(spec.epochs * steps_per_epoch))
    eval_every = (spec.eval_every or max(1, total_steps // 10)) if val_set else None

    out_dir = Path(out_dir)
    with staged_folder(out_dir) as tmp:
        trainer, logger = build_trainer(model, tokenizer, spec, tmp, train_set, val_set, packing, fused, steps_per_epoch,
                                   total_steps, eval_every, bf16, fp16, device, progress, record_order, plan)
        trainer.train()
        if val_set and (not logger.log or logger.last_eval_step != trainer.state.global_step):
            trainer.evaluate()
        log = logger.rows()
        shutil.rmtree(tmp / "checkpoints", ignore_errors=True)

        model = trainer.model
        model.config.use_cache = True
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.use_cache = True
        model.eval()
        adapter_dir = merged_dir = None
        if spec.save_adapter:
            model.save_pretrained(tmp / "adapter")
            tokenizer.save_pretrained(tmp / "adapter")
            adapter_dir = out_dir / "adapter"
        if spec.save_merged or keep_model:
            model = model.merge_and_unload()
            if spec.save_merged:
                model.save_pretrained(tmp / "merged")
                tokenizer.save_pretrained(tmp / "merged")
                merged_dir = out_dir / "merged"

        boundaries = [r["step"] for r in log if r["kind"] == "epoch_end"]
        train_log = [r for r in log if r["kind"] == "train"]
        staircase = detect_staircase([r["step"] for r in train_log], [r["loss"] for r in train_log], boundaries,
                                     threshold=spec.staircase_threshold, z_min=spec.staircase_z)
        summary = _summary(spec, source, base_info, device, packing, bf16, attention, stats, val_stats,
                           [r.get("id") for r in train_rows], [r.get("id") for r in val], steps_per_epoch, trainer,
                           logger, log, staircase, started)
        summary["fused_loss"] = fused
        if plan:  # which rows each epoch read
            summary["epochs_plan"] = plan.info
            (tmp / "epochs.json").write_text(json.dumps(epoch_rows(plan, train_set, train_rows), indent=1), encoding="utf-8")
        write_log(tmp / "loss.csv", log)
        from curate.train.plots import loss_plot

        loss_plot(log, tmp / "loss.png", title=f"{Path(source).name if not isinstance(data, list) else 'training'}: "
                  f"{spec.schedule}, reshuffle {'on' if spec.reshuffle else 'off'}", staircase=staircase)
        summary["files"] = sorted(p.name + ("/" if p.is_dir() else "") for p in tmp.iterdir())
        (tmp / "train.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return TrainResult(out_dir, summary, log, adapter_dir, merged_dir,
                       model if keep_model else None, tokenizer if keep_model else None,
                       list(logger.seen) if record_order else [], list(val))


# -- pieces ----------------------------------------------------------------------------------------------


def _describe(model) -> dict:
    try:
        from curate.models import model_source

        return model_source(model).describe()
    except ValueError:
        return {"model": getattr(model.config, "_name_or_path", type(model).__name__)}


def _summary(spec, source, base_info, device, packing, bf16, attention, stats, val_stats, train_ids, val_ids,
             steps_per_epoch, trainer, logger, log, staircase, started) -> dict:
    n_train, n_val = len(train_ids), len(val_ids)
    train_log = [r for r in log if r["kind"] == "train"]
    evals = [r for r in log if r["kind"] == "eval"]
    k = max(1, len(train_log) // 10)
    losses = [r["loss"] for r in train_log]
    secs = logger.step_seconds
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {
        "spec": spec.model_dump(mode="json"),
        "base_model": base_info,
        "data": {"source": source, "train_rows": n_train, "val_rows": n_val, "train": stats.as_dict(),
                 "validation": val_stats.as_dict(), "train_ids": train_ids, "val_ids": val_ids},
        "device": device,
        "precision": "bf16" if bf16 else ("fp16" if trainer.args.fp16 else "fp32"),
        "packing": packing,
        "attention": attention,
        "trainable_parameters": trainable,
        "steps": trainer.state.global_step,
        "steps_per_epoch": steps_per_epoch,
        "epochs": round(trainer.state.epoch or 0, 4),
        "results": {
            "train_loss_first": _mean(losses[:k]),
            "train_loss_last": _mean(losses[-k:]),
            "eval_loss_first": evals[0]["loss"] if evals else None,
            "eval_loss_last": evals[-1]["loss"] if evals else None,
            "tokens": logger.tokens,
            "label_tokens": logger.label_tokens,
            "train_seconds": round(secs, 3),
            "tokens_per_second": round(logger.tokens / secs, 2) if secs > 0 else None,
            "wall_seconds": round(time.perf_counter() - started, 3),
        },
        "staircase": staircase,
        "libraries": versions,
    }


def _mean(xs):
    return round(sum(xs) / len(xs), 6) if xs else None
