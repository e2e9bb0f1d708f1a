"""The recipe's `evals:` section: which evaluations a trained model (and its base model) goes through.

```yaml
evals:
  tasks:                          # name -> one evaluation; a preset name needs nothing else
    arc_easy: {n: 50}             # preset: ARC-Easy validation, multiple choice, role domain
    mmlu: {n: 50, role: general}  # preset: MMLU validation (all subjects), multiple choice
    gsm8k: {n: 20}                # preset: GSM8K test, greedy generation, exact match of the final number
    answers:                      # your own: generation scored by ROUGE-L and BLEU against references
      kind: generation
      source: {path: data/heldout.jsonl, format: alpaca}
      n: 30
    heldout:                      # mean loss on the assistant tokens of a general held-out set
      kind: loss
      source: {path: data/general.jsonl}
      role: general
  template: model                 # model (the tokenizer's chat template) | chatml | llama-3 | alpaca | vicuna
  max_new_tokens: 256
```

Presets name the Hub datasets; offline, point them at local copies with `--set`
(`evals.tasks.arc_easy.source.path=../shared/data/arc_easy_validation.json`,
`evals.tasks.mmlu.source.path=../shared/data/mmlu/val/*.csv`). A source is a recipe source
(`hub`/`path`, `format`, `options`, ...; see docs/recipes.md). `n` evaluates a seeded random
sample of that many rows (the same rows for every model), so CPU runs stay small.

Each task has a `role`: `domain` (what the data is meant to teach) or `general` (what the model should
keep). Domain gain is the change against the base model on the domain tasks, forgetting the change on the
general tasks; each task contributes its primary metric (multiple choice: accuracy; gsm8k: exact_match;
generation: rougeL; loss: loss, sign flipped so that positive is better). `domain_metric` /
`general_metric` pick one metric each instead (e.g. `arc_easy.accuracy`).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from curate.errors import did_you_mean
from curate.strict import StrictModel

KINDS = ("multiple_choice", "gsm8k", "generation", "loss", "lm_eval")
PRIMARY = {"multiple_choice": "accuracy", "gsm8k": "exact_match", "generation": "rougeL", "loss": "loss"}
# lm_eval metrics come from the harness's task configs (curate.evals.harness)
LOWER_IS_BETTER = {"loss"}

# Hub datasets for the standard evaluations; offline, override `source.path` (and keep the format).
PRESETS: dict[str, dict[str, Any]] = {
    "arc_easy": {
        "kind": "multiple_choice", "role": "domain",
        "source": {"hub": "allenai/ai2_arc", "config": "ARC-Easy", "split": "validation", "format": "multiple_choice"},
    },
    "mmlu": {
        "kind": "multiple_choice", "role": "general",
        "source": {"hub": "cais/mmlu", "config": "all", "split": "validation", "format": "multiple_choice",
                   "csv_columns": ["question", "A", "B", "C", "D", "answer"]},
    },
    "gsm8k": {
        "kind": "gsm8k", "role": "domain",
        "source": {"hub": "openai/gsm8k", "config": "main", "split": "test", "format": "qa"},
    },
}


class EvalSource(StrictModel):
    """Where an evaluation's rows come from: the fields of a recipe source (`curate.specs.source.Source`)
    but its license, kind and in-memory rows, which an evaluation set has no use for."""

    hub: str | None = None
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    path: str | list[str] | None = None
    file_type: Literal["json", "jsonl", "csv", "parquet"] | None = None
    csv_columns: list[str] | None = None
    format: str = "auto"
    options: dict[str, Any] = Field(default_factory=dict)
    on_error: Literal["fail", "skip"] = "fail"
    limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _has_input(self):
        if not self.hub and not self.path:
            raise ValueError("an eval source needs `path` (local files) or `hub` (a hub dataset id)")
        return self

    def to_source(self):
        """The `curate.specs.source.Source` for `curate.sources.load.load_source`."""
        from curate.specs.source import Source

        return Source(**self.model_dump(exclude_none=False), license=None)


class EvalTask(StrictModel):
    """One evaluation: a kind, its rows, its role and its size.

    - `kind`: multiple_choice (log-likelihood of each option: accuracy, MAP@3), gsm8k (greedy generation,
      exact match of the final number), generation (ROUGE-L and BLEU against the reference answers), loss
      (mean loss on the assistant tokens), lm_eval (lm-evaluation-harness tasks: see curate.evals.harness).
    - `tasks` (lm_eval): lm-eval task, group or tag names, curate's shipped tasks (`curate_arc_easy`,
      `curate_mmlu`, `curate_gsm8k`) or task YAML files.
    - `limit` (lm_eval): the first N documents of each task instead of the seeded sample of `n`.
    - `num_fewshot` (lm_eval; null: the task's own), `chat_template` (lm_eval; true: the prompts go through the
      model's chat template), `data_dir` (lm_eval; null: the shipped tasks read `../shared/data/...`; a folder
      replaces that prefix).
    - `preset`: arc_easy | mmlu | gsm8k fills kind, role and source (yours override them); a task named
      like a preset uses it unless it gives `kind`.
    - `n` (100): a seeded random sample of this many rows; null for all.
    - `scoring` (multiple choice; letter): `letter` scores the option letter after the lettered question
      (one token: fast); `text` scores each option's text, by mean log-probability per token.
    - `max_new_tokens` (gsm8k, generation): default the section's.
    - `heldout` (instead of `source`): the rows a mix component held out (`mix.components.<name>.holdout`), which
      no point of an ablation grid trains on: a held-out general set for `kind: loss` (the general metric of the
      mix recipes), or held-out domain rows (`kind: gsm8k`: exact match on GSM8K rows the grid never saw). Only
      `curate ablate --train` has them.
    """

    kind: Literal["multiple_choice", "gsm8k", "generation", "loss", "lm_eval"]
    preset: str | None = None
    source: EvalSource | None = None
    role: Literal["domain", "general"] = "general"
    n: int | None = Field(100, ge=1)
    scoring: Literal["letter", "text"] = "letter"
    max_new_tokens: int | None = Field(None, ge=1)
    tasks: list[str] | None = Field(None, min_length=1)
    limit: int | None = Field(None, ge=1)
    num_fewshot: int | None = Field(None, ge=0)
    chat_template: bool = True
    data_dir: str | None = None
    heldout: str | None = None

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_list(cls, v):
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _kind_fields(self):
        if self.kind == "lm_eval":
            if not self.tasks:
                raise ValueError("an lm_eval evaluation needs `tasks`: lm-eval task names or task YAML files")
            if self.heldout is not None:
                raise ValueError("heldout: not for kind lm_eval (lm-eval reads its own task files)")
        else:
            if self.source is None and self.heldout is None:
                raise ValueError(f"a {self.kind} evaluation needs a `source` (`path` or `hub`) or `heldout` "
                                 "(a mix component's held-out rows)")
            if self.source is not None and self.heldout is not None:
                raise ValueError("give `source` or `heldout`, not both")
            extra = [k for k in ("tasks", "limit", "num_fewshot", "data_dir") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only for kind lm_eval")
        return self

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data):
        if not isinstance(data, dict):
            return data
        preset = data.get("preset")
        if preset is None:
            return data
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}{did_you_mean(preset, PRESETS)}; presets: {', '.join(PRESETS)}")
        merged = copy.deepcopy(PRESETS[preset])
        for key, value in data.items():
            if key == "source" and isinstance(value, dict):
                src = dict(merged["source"])
                if "path" in value:  # a local copy replaces the hub dataset
                    for k in ("hub", "config", "split", "revision"):
                        src.pop(k, None)
                src.update(value)
                merged["source"] = src
            else:
                merged[key] = value
        return merged

    @property
    def primary(self) -> str | None:
        return PRIMARY.get(self.kind)


class EvalSpec(StrictModel):
    """The evaluation suite run on each trained model and, once per configuration, on its base model.

    - `tasks`: name -> EvalTask (a list of preset names is accepted too).
    - `template` (model): how questions are put to the model: `model` is the tokenizer's chat template
      (ChatML when it has none); or a built-in format of curate (chatml, llama-3, alpaca, vicuna).
    - `max_new_tokens` (256), `batch_size` (8): generation length and batch size.
    - `max_length` (1024): tokens per row for the loss evaluations (longer rows are cut at the end).
    - `seed` (0): the seed of each task's row sample.
    - `base` (true): evaluate the base model too (cached by model fingerprint and configuration).
    - `cache` (true): keep base-model results under the recipe's cache folder (`<cache.dir>/evals`).
    - `domain_metric` / `general_metric`: the metric (e.g. `arc_easy.accuracy`) whose change against the
      base model is the domain gain / general retention; default the mean of the role's primary metrics.
    """

    tasks: dict[str, EvalTask] = Field(default_factory=dict)
    template: str = "model"
    max_new_tokens: int = Field(256, ge=1)
    max_length: int = Field(1024, ge=8)
    batch_size: int = Field(8, ge=1)
    seed: int = 0
    base: bool = True
    cache: bool = True
    domain_metric: str | None = None
    general_metric: str | None = None

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v):
        if v is None:
            return {}
        if isinstance(v, list):  # [arc_easy, mmlu]: presets with their defaults
            v = {name: {} for name in v}
        if isinstance(v, dict):
            out = {}
            for name, task in v.items():
                task = {} if task is None else task
                if isinstance(task, dict) and "kind" not in task and "preset" not in task and name in PRESETS:
                    task = {"preset": name, **task}
                out[name] = task
            return out
        return v

    @field_validator("template")
    @classmethod
    def _template(cls, v):
        from curate.templates.spec import builtin_formats

        choices = ["model", *builtin_formats()]
        if v not in choices:
            raise ValueError(f"unknown template {v!r}{did_you_mean(v, choices)}; choose from {choices}")
        return v

    @model_validator(mode="after")
    def _metrics_named(self):
        for field in ("domain_metric", "general_metric"):
            name = getattr(self, field)
            if name is None:
                continue
            task = name.split(".", 1)[0]
            if task not in self.tasks and task not in ("validation", "pool_heldout"):
                raise ValueError(f"{field} {name!r} names no task; tasks: {sorted(self.tasks)}")
        return self
