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

One job at ~470 lines: setting up and running one TRL training; the rows (curate.train.data), their tokens (curate.encoding),
schedules, epochs and plots live beside it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from curate.atomic import staged_folder
from curate.encoding import EncodeStats, batch_tokens, encode_rows
from curate.errors import CurateError
from curate.io import check_replaceable
from curate.specs.train import TrainSpec
from curate.train.data import check_rows, read_rows, split_rows
from curate.train.staircase import detect_staircase

LOG_FIELDS = ("kind", "step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_seen")
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
    attention = _set_attention(model, spec.attention, on_cuda)

    batches_per_epoch = math.ceil((len(plan.epochs[0]) if plan else len(train_set)) / spec.batch_size)
    steps_per_epoch = max(batches_per_epoch // spec.grad_accum + int(batches_per_epoch % spec.grad_accum > 0), 1)
    total_steps = spec.max_steps or max(1, math.ceil(spec.epochs * steps_per_epoch))
    eval_every = (spec.eval_every or max(1, total_steps // 10)) if val_set else None

    out_dir = Path(out_dir)
    with staged_folder(out_dir) as tmp:
        trainer, logger = _trainer(model, tokenizer, spec, tmp, train_set, val_set, packing, fused, steps_per_epoch,
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
        _write_log(tmp / "loss.csv", log)
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


def _set_attention(model, attention: str, on_cuda: bool) -> str:
    name = attention if attention != "auto" else ("sdpa" if on_cuda else None)
    if name is not None and getattr(model.config, "_attn_implementation", None) != name:
        try:
            model.set_attn_implementation(name)
        except Exception as e:  # noqa: BLE001 - transformers raises several kinds for an unavailable kernel
            raise CurateError(f"cannot use attention {name!r} with this model: {e}", "train.attention") from None
    return getattr(model.config, "_attn_implementation", None) or "default"


def _lora_config(spec: TrainSpec):
    from peft import LoraConfig

    return LoraConfig(r=spec.lora.r, lora_alpha=spec.lora.alpha, lora_dropout=spec.lora.dropout,
                      target_modules=spec.lora.target_modules, task_type="CAUSAL_LM", bias="none")


class _Log:
    """Collects the loss log from the Trainer's callbacks; also times the optimizer steps."""

    def __init__(self, progress):
        self.log: list[dict] = []
        self.progress = progress
        self.tokens = 0
        self.label_tokens = 0
        self.step_seconds = 0.0
        self._t0 = None
        self.last_eval_step = None
        self.seen: list[list[int]] = []  # row indices of each training batch (record_order)

    def rows(self) -> list[dict]:
        return list(self.log)

    def add(self, row: dict) -> None:
        row = {k: row.get(k) for k in LOG_FIELDS}
        self.log.append(row)
        if self.progress:
            self.progress(row)


def _callback_class():
    from transformers import TrainerCallback

    class LossLogCallback(TrainerCallback):
        def __init__(self, sink: _Log):
            self.sink = sink

        def on_step_begin(self, args, state, control, **kw):
            self.sink._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self.sink._t0 is not None:
                self.sink.step_seconds += time.perf_counter() - self.sink._t0
                self.sink._t0 = None

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" in logs:
                self.sink.add({"kind": "train", "step": state.global_step, "epoch": round(state.epoch or 0, 4),
                               "loss": float(logs["loss"]), "learning_rate": logs.get("learning_rate"),
                               "grad_norm": logs.get("grad_norm"), "tokens_seen": self.sink.tokens})
            if "eval_loss" in logs:
                self.sink.last_eval_step = state.global_step
                self.sink.add({"kind": "eval", "step": state.global_step, "epoch": round(state.epoch or 0, 4),
                               "loss": float(logs["eval_loss"]), "tokens_seen": self.sink.tokens})

        def on_epoch_end(self, args, state, control, **kw):
            self.sink.add({"kind": "epoch_end", "step": state.global_step, "epoch": round(state.epoch or 0, 4),
                           "tokens_seen": self.sink.tokens})

    return LossLogCallback


def _trainer(model, tokenizer, spec, tmp, train_set, val_set, packing, fused, steps_per_epoch, total_steps,
             eval_every, bf16, fp16, device, progress, record_order, plan=None):
    from datasets import Dataset
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    from curate.train.schedules import make_scheduler

    sink = _Log(progress)

    class CurateTrainer(SFTTrainer):
        """TRL's SFTTrainer with curate's schedules, a count of the tokens trained on, and no telemetry."""

        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:
                self.lr_scheduler = make_scheduler(
                    spec.schedule, optimizer or self.optimizer, total_steps=num_training_steps,
                    steps_per_epoch=steps_per_epoch, warmup=spec.warmup(), min_ratio=spec.cyclic_min_lr_ratio)
                self._created_lr_scheduler = True
            return self.lr_scheduler

        def training_step(self, model, inputs, num_items_in_batch=None):
            sink.tokens += batch_tokens(inputs)
            sink.label_tokens += int((inputs["labels"] != -100).sum())
            return super().training_step(model, inputs, num_items_in_batch)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if fused:  # TRL's fused LM head
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            # the model's own loss over the full logits (faster on a CPU); the same inputs, the same scaling
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

        def _send_telemetry(self):  # curate runs offline and reports nothing anywhere
            return None

        def _get_train_sampler(self, train_dataset=None):
            if plan is None:
                return super()._get_train_sampler(train_dataset)
            from curate.train.epochs import plan_sampler

            return plan_sampler(plan)  # epoch k reads plan.epochs[k] (curate.train.epochs)

    args = SFTConfig(
        output_dir=str(tmp / "checkpoints"),
        per_device_train_batch_size=spec.batch_size,
        per_device_eval_batch_size=spec.eval_batch_size or spec.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        num_train_epochs=spec.epochs,
        max_steps=total_steps,
        learning_rate=spec.learning_rate,
        weight_decay=spec.weight_decay,
        max_grad_norm=spec.max_grad_norm,
        lr_scheduler_type="constant",  # replaced by CurateTrainer.create_scheduler
        logging_strategy="steps",
        logging_steps=1,
        eval_strategy="steps" if val_set else "no",
        eval_steps=eval_every,
        save_strategy="no",
        report_to="none",
        seed=spec.seed,
        data_seed=spec.seed,
        bf16=bf16,
        fp16=fp16,
        use_cpu=not device.startswith("cuda"),
        activation_checkpointing=spec.gradient_checkpointing,  # transformers' new name; TRL's default is on
        remove_unused_columns=False,  # `idx` reaches the collator (the recorded order)
        disable_tqdm=True,
        dataloader_num_workers=0,
        train_sampling_strategy="random" if spec.reshuffle else "sequential",
        prediction_loss_only=True,
        label_names=["labels"],
        # curate has tokenized, cut at max_length and masked the rows already (input_ids + assistant_masks)
        max_length=None,
        packing=False,
        padding_free=packing,
        shuffle_dataset=False,
        dataset_num_proc=None,
    )
    with _no_progress_bars(), warnings.catch_warnings():  # peft reads a property transformers deprecated
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        try:
            trainer = CurateTrainer(
                model=model, args=args, train_dataset=Dataset.from_list(_masked(train_set)),
                eval_dataset=Dataset.from_list(_masked(val_set)) if val_set else None, processing_class=tokenizer,
                peft_config=_lora_config(spec), callbacks=[_callback_class()(sink)])
        except ValueError as e:
            if "target" in str(e).lower() or "lm_head" in str(e):
                raise CurateError(f"LoRA cannot be applied: {e}", "train.lora.target_modules") from None
            raise
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    if record_order:
        trainer.data_collator = _Recording(trainer.data_collator, sink.seen)
    return trainer, sink


def _masked(encoded: list[dict]) -> list[dict]:
    """TRL's pre-tokenized form: `input_ids` and `assistant_masks` (1 where curate's labels train the token)."""
    out = []
    for e in encoded:
        row = {"input_ids": e["input_ids"], "assistant_masks": [int(x != -100) for x in e["labels"]]}
        if "idx" in e:
            row["idx"] = e["idx"]
        out.append(row)
    return out


class _Recording:
    """Wraps TRL's collator: records the row indices (`idx`) of each training batch."""

    def __init__(self, collator, seen: list):
        self.collator, self.seen = collator, seen

    def __call__(self, features):
        if all("idx" in f for f in features):
            self.seen.append([f["idx"] for f in features])
        return self.collator([{k: v for k, v in f.items() if k != "idx"} for f in features])


class _no_progress_bars:
    """TRL prepares the dataset with `datasets.map`, which draws a progress bar per pass: none here."""

    def __enter__(self):
        from datasets.utils import logging as ds_logging

        self.on = ds_logging.is_progress_bar_enabled()
        ds_logging.disable_progress_bar()

    def __exit__(self, *exc):
        from datasets.utils import logging as ds_logging

        if self.on:
            ds_logging.enable_progress_bar()
        return False


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


def _write_log(path: Path, log: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        w.writeheader()
        for row in log:
            w.writerow({k: ("" if row.get(k) is None else row[k]) for k in LOG_FIELDS})


def read_log(path: str | os.PathLike) -> list[dict]:
    """The rows of a loss.csv (numbers parsed; empty cells None)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            parsed = {"kind": row["kind"]}
            for k in LOG_FIELDS[1:]:
                v = row.get(k, "")
                parsed[k] = None if v == "" else (int(float(v)) if k in ("step", "tokens_seen") else float(v))
            out.append(parsed)
    return out
