"""TRL's `SFTTrainer` set up for one training run: curate's subclass (its schedules, the tokens it trains on, no
telemetry, the epoch plan's sampler), the `SFTConfig` from the recipe's `train:` section, the LoRA adapter,
the attention kernel, and the pre-tokenized rows TRL takes (`input_ids` + `assistant_masks`).

curate.train.trainer runs it and writes what it produced.
"""

from __future__ import annotations

import warnings

from curate.encoding import batch_tokens
from curate.errors import CurateError
from curate.specs.train import TrainSpec
from curate.train.loss_log import LossLog, callback


def set_attention(model, attention: str, on_cuda: bool) -> str:
    name = attention if attention != "auto" else ("sdpa" if on_cuda else None)
    if name is not None and getattr(model.config, "_attn_implementation", None) != name:
        try:
            model.set_attn_implementation(name)
        except Exception as e:  # noqa: BLE001 - transformers raises several kinds for an unavailable kernel
            raise CurateError(f"cannot use attention {name!r} with this model: {e}", "train.attention") from None
    return getattr(model.config, "_attn_implementation", None) or "default"


def lora_config(spec: TrainSpec):
    from peft import LoraConfig

    return LoraConfig(r=spec.lora.r, lora_alpha=spec.lora.alpha, lora_dropout=spec.lora.dropout,
                      target_modules=spec.lora.target_modules, task_type="CAUSAL_LM", bias="none")


def build_trainer(model, tokenizer, spec, tmp, train_set, val_set, packing, fused, steps_per_epoch, total_steps,
             eval_every, bf16, fp16, device, progress, record_order, plan=None):
    from datasets import Dataset
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTConfig, SFTTrainer

    from curate.train.schedules import make_scheduler

    sink = LossLog(progress)

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
                model=model, args=args, train_dataset=Dataset.from_list(masked(train_set)),
                eval_dataset=Dataset.from_list(masked(val_set)) if val_set else None, processing_class=tokenizer,
                peft_config=lora_config(spec), callbacks=[callback(sink)])
        except ValueError as e:
            if "target" in str(e).lower() or "lm_head" in str(e):
                raise CurateError(f"LoRA cannot be applied: {e}", "train.lora.target_modules") from None
            raise
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    if record_order:
        trainer.data_collator = _Recording(trainer.data_collator, sink.seen)
    return trainer, sink


def masked(encoded: list[dict]) -> list[dict]:
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
