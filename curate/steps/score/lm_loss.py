"""The base of the model scorers (not a step): `score.perplexity`, `score.ifd`, `score.judge` and
`score.reward` take `LMParams`, load their model once per process, and compute token losses, next-token
probabilities or classifier scores in length-sorted, dynamically padded batches, cached on disk by
(model fingerprint, exact token ids).

Where each part lives: the chat template, tokenisation, truncation policy and scored spans in
`lm_plan`; the score cache and the batching in `lm_batches`; the forward passes in `lm_forward`; here
the parameters, the model cache, the per-turn response losses and `LMScorer`, which the four steps
derive from.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pyarrow as pa
from pydantic import Discriminator, Field, Tag, field_validator

from curate.model_files import weights_stat_token
from curate.models import DEFAULT_MODEL, ModelField, as_spec, model_source
from curate.steps.base import ModelScorer, StepParams, as_table
from curate.steps.score.lm_batches import ScoreCache
from curate.steps.score.lm_forward import span_losses
from curate.steps.score.lm_plan import (
    TRUNCATION_POLICY,
    RowPlan,
    context_length,
    pad_token,
    plan_rows,
    templater_for,
)
from curate.templates.spec import TemplateSpec, builtin_formats

# -- parameters shared by the model-based steps ----------------------------------------------------


# `template`: "model", a built-in format name, or the fields of a recipe's `template` section.
TemplateField = Annotated[
    Annotated[str, Tag("name")] | Annotated[TemplateSpec, Tag("spec")],
    Discriminator(lambda v: "name" if isinstance(v, str) else "spec"),
]


class LMParams(StepParams):
    """Parameters every model-based scorer takes."""

    model: ModelField = DEFAULT_MODEL
    template: TemplateField = "model"
    batch_tokens: int | None = Field(None, ge=16)
    batch_size: int = Field(16, ge=1)
    cache_dir: str | None = ".curate/scores"
    prefix: str = ""

    @field_validator("template")
    @classmethod
    def _template(cls, v):
        if isinstance(v, str) and v != "model" and v not in builtin_formats():
            raise ValueError(f"template must be 'model', a built-in format ({', '.join(builtin_formats())}) "
                             f"or template fields, not {v!r}")
        return v


# -- models, loaded once per process ---------------------------------------------------------------

_LOADED: dict[tuple, tuple] = {}


def shared_model(params, ctx, task: str = "causal"):
    """(model, tokenizer) for a step, loaded once per process per (spec, folder, task)."""
    from curate.models import load_causal_lm, load_sequence_classifier

    spec = as_spec(params.model)
    loaded_as = spec.model_copy(update={"max_length": None})  # the length cap does not change the model
    key = (loaded_as.model_dump_json(), str(Path(ctx.recipe_dir).resolve()), task)
    if key not in _LOADED:
        if len(_LOADED) >= 2:  # keep memory bounded: at most two models resident
            _LOADED.pop(next(iter(_LOADED)))
        load = load_causal_lm if task == "causal" else load_sequence_classifier
        _LOADED[key] = quietly(lambda: load(spec, base_dir=ctx.recipe_dir, where=f"{ctx.where}.model"))
    return _LOADED[key]


def quietly(fn):
    """Run `fn` without transformers' "Loading weights" progress bars and info logs."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        return fn()
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


# -- response losses -------------------------------------------------------------------------------


@dataclass
class TurnLoss:
    turn: int
    n: int  # tokens scored
    cond: float  # summed NLL in context
    alone: float  # summed NLL alone


def response_losses(model, plans: list[RowPlan], *, cache: ScoreCache, batch_tokens: int | None,
                    batch_size: int, pad_id: int, desc: str) -> list[list[TurnLoss]]:
    """Per row, per scored assistant turn: token count and summed NLL in context and alone."""
    requests: list[tuple[list[int], list[tuple[int, int]]]] = []
    for p in plans:
        if p.why is None:
            requests.append((p.ids, [t.cond for t in p.turns]))
            requests += [(t.alone, [t.alone_span]) for t in p.turns]
    sums = span_losses(model, requests, cache=cache, batch_tokens=batch_tokens, batch_size=batch_size,
                       pad_id=pad_id, desc=desc)
    out, j = [], 0
    for p in plans:
        if p.why is not None:
            out.append([])
            continue
        cond = sums[j]
        j += 1
        turns = []
        for t, (c, n) in zip(p.turns, cond):
            alone, n_alone = sums[j][0]
            j += 1
            assert n == n_alone, "in-context and alone spans must score the same tokens"
            turns.append(TurnLoss(t.turn, n, c, alone))
        out.append(turns)
    return out


# -- the base of the model scorers -----------------------------------------------------------------


@dataclass
class LoadedModel:
    """A step's model with what scoring needs from it."""

    model: Any
    tokenizer: Any
    max_length: int  # tokens one sequence may have
    templater: Any
    pad_id: int


class LMScorer(ModelScorer):
    """A scorer whose numbers come from a transformers model: it takes `LMParams`, adds its `scores`
    columns (each after `prefix`, each with `<column>_why`), and fills them in `fill` with the model
    from `load`, computations from `compute` (batched and cached) and the manifest facts of `note_model`.
    """

    Params = LMParams
    scores: ClassVar[tuple[str, ...]] = ()  # the score columns, before `prefix`

    @classmethod
    def cache_token(cls, params, recipe_dir: str = ".") -> str | None:
        """Changes when a local model's weight files change."""
        return weights_stat_token(as_spec(params.model).name, recipe_dir)

    def names(self) -> list[str]:
        return [self.params.prefix + c for c in self.scores]

    def adds(self) -> list[str]:
        return [c for n in self.names() for c in (n, f"{n}_why")]

    def unscored(self, n: int) -> dict[str, list]:
        """The columns of `n` rows before scoring: every score NaN, every `_why` None."""
        cols: dict[str, list] = {}
        for name in self.names():
            cols[name] = [math.nan] * n
            cols[f"{name}_why"] = [None] * n
        return cols

    @staticmethod
    def set_why(cols: dict, names: list[str], i: int, why: str) -> None:
        """Row `i` gets no score in the columns `names`, and `why`."""
        for name in names:
            cols[name][i] = math.nan
            cols[f"{name}_why"][i] = why

    def score(self, ds: pa.Table) -> dict[str, list]:
        ds = as_table(ds)  # a datasets.Dataset works too
        cols = self.unscored(len(ds))
        if len(ds):
            self.fill(ds, cols)
        return cols

    def fill(self, ds: pa.Table, cols: dict[str, list]) -> None:
        """Set the scores (and reasons) of the rows of `ds` in `cols`."""
        raise NotImplementedError

    def load(self, task: str = "causal") -> LoadedModel:
        """The step's model (a "causal" LM or a sequence "classifier"), its length window and template."""
        params, ctx = self.params, self.ctx
        model, tokenizer = shared_model(params, ctx, task)
        max_length = context_length(model, tokenizer, as_spec(params.model))
        templater = templater_for(params, tokenizer, model, ctx)
        pad_id = model.config.pad_token_id if task == "classifier" else None
        return LoadedModel(model, tokenizer, max_length, templater, pad_token(tokenizer) if pad_id is None else pad_id)

    def compute(self, fn, lm: LoadedModel, *args, verb: str):
        """`fn(model, *args)`, one of the `lm_forward` computations, in this step's batches and score cache."""
        p = self.params
        cache = ScoreCache(p.cache_dir, model_source(lm.model).fingerprint())
        try:
            return fn(lm.model, *args, cache=cache, batch_tokens=p.batch_tokens, batch_size=p.batch_size,
                      pad_id=lm.pad_id, desc=f"{self.ctx.label}: {verb}")
        finally:
            cache.close()

    def note_model(self, lm: LoadedModel, truncated: int, reasons: Counter | None = None) -> None:
        """Deterministic facts for the manifest: the model, the length policy, truncations, unscored reasons."""
        ctx = self.ctx
        ctx.notes["model"] = model_source(lm.model).describe()
        ctx.notes["max_length"] = lm.max_length
        ctx.notes["truncation"] = TRUNCATION_POLICY
        ctx.count("truncated_rows", truncated)  # counts add up over the batches the engine passes
        for why, n in sorted((reasons or {}).items()):
            ctx.count(why, n, group="unscored_reasons")

    def scored_turns(self, ds: pa.Table, cols: dict) -> list[tuple[int, RowPlan, list[TurnLoss]]]:
        """(row index, plan, turn losses) of each row whose response can be scored; every other row gets
        NaN and its reason in all score columns. Notes the model, truncations and unscored reasons."""
        lm = self.load("causal")
        plans = plan_rows(ds.column("messages").to_pylist(), lm.templater, lm.tokenizer, lm.max_length, self.ctx.where)
        losses = self.compute(response_losses, lm, plans, verb="scoring")
        self.note_model(lm, sum(1 for p in plans if p.cut), Counter(p.why for p in plans if p.why))
        out = []
        for i, (plan, turns) in enumerate(zip(plans, losses)):
            if plan.why is not None:
                self.set_why(cols, self.names(), i, plan.why)
            else:
                out.append((i, plan, turns))
        return out
