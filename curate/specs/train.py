"""The recipe's `train:` and `compare:` sections (`evals:` is curate.specs.evals).

```yaml
train:
  model: HuggingFaceTB/SmolLM2-135M-Instruct   # or {name: ..., dtype: ..., device: ...} (curate.models.ModelSpec)
  lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: all-linear}
  epochs: 1
  learning_rate: 2.0e-4
  batch_size: 8
  grad_accum: 1
  max_length: 1024
  schedule: cosine           # cosine | onecycle | cyclic | constant
  reshuffle: true            # a new order every epoch; false: one seeded order, the same every epoch
  packing: auto              # auto: on with CUDA; true / false
compare:
  seeds: [0, 1, 2]
  conditions: [subset, random, full]
```

Every model forbids unknown keys, so a misspelt key is an error naming it (`train.lora.rank: unknown key
(did you mean 'r'?)`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from curate.models import ModelSpec
from curate.strict import StrictModel

SCHEDULES = ("cosine", "onecycle", "cyclic", "constant")
# the arms of curate compare (curate.train.arms); the default runs the first three of the list
CONDITIONS = ("subset", "random", "random_tokens", "random_balanced", "full", "full_steps")
DEFAULT_CONDITIONS = ("subset", "random", "full")


class LoraSpec(StrictModel):
    """LoRA adapter settings (peft `LoraConfig`). `target_modules`: `all-linear` (every linear layer but
    the output head) or a list of module names (`[q_proj, v_proj]`)."""

    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class TrainSpec(StrictModel):
    """How `curate train` fine-tunes: LoRA SFT with TRL's SFTTrainer, loss on assistant tokens only.

    - `model`: a `curate.models.ModelSpec` or just its name (hub id, folder or .gguf file).
    - `lora`: LoraSpec.
    - `epochs` (1) / `max_steps` (null): how long; `max_steps` wins when set.
    - `learning_rate` (2e-4): the peak learning rate.
    - `batch_size` (8) rows per micro-batch, `grad_accum` (1) micro-batches per optimizer step.
    - `max_length` (1024): tokens per row; longer rows are cut at the end (the prompt and the start of the
      answer are kept), and a row with no answer token left is dropped from training (counted in train.json).
    - `schedule` (cosine): `cosine` (linear warmup, cosine decay to 0), `onecycle` (torch OneCycleLR: up to
      the peak over `warmup_ratio` of the steps, then cosine annealing far below the start), `cyclic` (torch
      CyclicLR, triangular: one cycle per epoch, up over the first half epoch and down over the second,
      between `cyclic_min_lr_ratio` x lr and lr), `constant` (after an optional warmup).
    - `warmup_ratio` (null: 0.03 for cosine, 0.3 for onecycle, 0 for constant): share of the steps.
    - `reshuffle` (true): a new row order every epoch; false keeps one seeded order for every epoch (the
      setting under which repeated epochs show the memorisation staircase).
    - `packing` (auto: on with CUDA): TRL's padding-free batches: the rows of a micro-batch are concatenated into one
      sequence whose position ids restart at every row, so attention never crosses rows and no pad token is
      computed.
    - `fused_loss` (auto: on with CUDA): TRL's fused LM head for the loss (per-token log-probabilities in tiles,
      the full logits never built: less memory); off, the model's own cross-entropy over the full logits (on a
      CPU the fused head measured 0.74-0.78x the speed: bench/README.md). The loss is the same.
    - `bf16` (auto: on with CUDA when supported), `attention` (auto: sdpa), `gradient_checkpointing` (false).
    - `seed` (0): LoRA initialisation, row order, validation split.
    - `val_fraction` (0.05) of the rows (at most `val_max_rows`) held out for the validation loss, or
      `val_path`: a run folder or a jsonl/parquet file with `text` and `assistant_spans`.
    - `eval_every` (null: about 10 evaluations per run): validation loss every N optimizer steps.
    - `save_adapter` (true) / `save_merged` (false): write `adapter/` and `merged/` (the LoRA weights folded
      into a full model).
    - `threads` (null: torch's default): CPU threads for torch.
    - `stages` (null): the mix's components in training order, one stage each (`[general, science]`: every
      epoch over the general rows, then every epoch over the science rows), the same steps as the mixed run
      (curate.train.epochs); null trains on the rows as the mix interleaved them.
    - `staircase_threshold` (0.05) / `staircase_z` (3): a boundary is flagged as a memorisation step when the
      loss falls across it by more than this share of the loss beyond the within-epoch trend, and by more than
      `staircase_z` standard errors (curate.train.staircase).
    """

    model: ModelSpec = Field(default_factory=ModelSpec)
    lora: LoraSpec = Field(default_factory=LoraSpec)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=8)
    schedule: Literal["cosine", "onecycle", "cyclic", "constant"] = "cosine"
    warmup_ratio: float | None = Field(None, ge=0, lt=1)
    cyclic_min_lr_ratio: float = Field(0.1, gt=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)
    reshuffle: bool = True
    packing: bool | Literal["auto"] = "auto"
    fused_loss: bool | Literal["auto"] = "auto"
    bf16: bool | Literal["auto"] = "auto"
    attention: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    gradient_checkpointing: bool = False
    seed: int = 0
    val_fraction: float = Field(0.05, ge=0, lt=1)
    val_path: str | None = None
    val_max_rows: int | None = Field(200, ge=1)
    eval_every: int | None = Field(None, ge=1)
    eval_batch_size: int | None = Field(None, ge=1)
    save_adapter: bool = True
    save_merged: bool = False
    threads: int | None = Field(None, ge=1)
    staircase_threshold: float = Field(0.05, ge=0)
    staircase_z: float = Field(3.0, ge=0)
    stages: list[str] | None = Field(None, min_length=2)

    @field_validator("model", mode="before")
    @classmethod
    def _model_name(cls, v):
        return {"name": v} if isinstance(v, str) else v

    def warmup(self) -> float:
        """The warmup share the schedule uses."""
        if self.warmup_ratio is not None:
            return self.warmup_ratio
        return {"cosine": 0.03, "onecycle": 0.3, "constant": 0.0, "cyclic": 0.0}[self.schedule]


class CompareSpec(StrictModel):
    """`curate compare`: the same training on the curated subset and on matched baselines (curate.train.arms).

    - `seeds` ([0, 1, 2]): one training per condition and seed; means and confidence intervals over seeds, and
      the paired comparisons match the runs of the same seed.
    - `conditions` ([subset, random, full]; must include `subset`, which every other arm is compared with):
      `subset` = the run folder's data (the selection);
      `random` = as many uniformly random pool rows as the subset arm has, drawn afresh for every seed when
      `redraw_random` (true), else the run folder's `baseline_random`;
      `random_tokens` = uniformly random pool rows up to the subset arm's tokens (within one row; counted with
      the trained model's tokenizer as training encodes them);
      `random_balanced` = for each source, as many random pool rows of that source as the subset arm has;
      `full` = the whole pool the last selector chose from (the recipe re-run up to that selector, from the
      cache), less the shared held-out rows, for `train.epochs`;
      `full_steps` = the same pool, trained for the subset run's number of optimizer steps (compute-matched).
    - `rows` (null): train `subset` on a seeded sample of this many rows (the random arms match that sample).
    - `full_rows` (null): train `full` on a seeded sample of this many pool rows instead of all of them.
    - `holdout_rows` (200): rows of the pool that are in no condition's training data (neither selected nor in a
      random draw), shared by every run: their loss is the metric `pool_heldout.loss` and the validation
      curve during training. 0 turns it off (each run then holds out `train.val_fraction` of its own rows).
    - `holdout_role` (domain): the role of `pool_heldout.loss` in domain gain / forgetting.
    - `confidence` (0.95): of the t-distribution intervals and the paired bootstrap intervals.
    - `bootstrap` (2000): resamples of the paired bootstrap (items x seeds; curate.train.stats).
    - `dir` (null: `<run folder>/compare`): where results go.
    - `pool` (null): a run folder or jsonl/parquet file holding the pool, used as it is instead of rebuilding
      it: e.g. the `compare/pool/` of an earlier compare, on a machine that lacks what the earlier steps need
      (their models, the step cache). Its rows must be the ones the selector chose from, rendered like `data`.
    """

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    conditions: list[str] = Field(default_factory=lambda: list(DEFAULT_CONDITIONS), min_length=1)
    redraw_random: bool = True
    rows: int | None = Field(None, ge=1)
    full_rows: int | None = Field(None, ge=1)
    holdout_rows: int = Field(200, ge=0)
    holdout_role: Literal["domain", "general"] = "domain"
    confidence: float = Field(0.95, gt=0, lt=1)
    bootstrap: int = Field(2000, ge=100)
    dir: str | None = None
    pool: str | None = None

    @field_validator("seeds", "conditions")
    @classmethod
    def _unique(cls, values):
        if len(set(values)) != len(values):
            raise ValueError(f"repeats a value: {values}")
        return values

    @field_validator("conditions")
    @classmethod
    def _known(cls, values):
        from curate.errors import did_you_mean

        for v in values:
            if v not in CONDITIONS:
                raise ValueError(f"unknown condition {v!r}{did_you_mean(v, CONDITIONS)}; conditions: {', '.join(CONDITIONS)}")
        if "subset" not in values:
            raise ValueError("must include subset: every other arm is compared with it")
        return values


# -- the sections in a recipe --------------------------------------------------------------------------
