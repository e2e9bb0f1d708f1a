"""Shared machinery of the model-based scorers (not a step): token losses of responses, next-token
probabilities and classifier scores, computed in length-sorted, dynamically padded batches and cached
on disk by (model fingerprint, exact token ids).

**What is scored.** Each row is rendered with a chat template (the model's own by default), split at
the assistant turns, and tokenised piece by piece (without adding special tokens; the template writes
them), so an assistant turn's tokens are the same whether it is scored in context or alone:
- *in context*: the conversation up to the end of the turn; the loss is the mean negative
  log-likelihood (nats per token) of the turn's content tokens, each predicted from everything before
  it. Every assistant turn is scored from one forward pass over the conversation. The end-of-turn
  marker is not scored (the tokens must match those scored alone).
- *alone*: the model's start token (bos, else eos; as Cherry LLM's `tokenizer.encode(output)`), then the
  same content tokens. A tokenizer with neither leaves the first content token without context, so
  it is left out of both losses.

**Truncation policy** (`max_length` = the model spec's `max_length`, else the model's context):
a sequence that fits is not touched. Otherwise the context (everything before the last assistant
turn's content) is cut from the left and keeps its last `min(len(context), max(max_length // 2,
max_length - len(response)))` tokens; the response keeps its first tokens that fit in the rest. So the
prompt is cut first and the response only when, with at least half the window of prompt, it still
does not fit. Earlier assistant turns cut off by the window are scored on their part inside it. Only
the kept tokens are scored, in context and alone alike. Each step counts its truncated rows in the
manifest notes (`truncated_rows`) and records `max_length` and this policy.

**Batching.** Sequences are sorted longest first and packed into batches of at most `batch_size`
sequences and `batch_tokens` padded tokens (right padding, so positions stay 0..n-1 and, under
the causal mask, no real token sees a pad: no attention mask is needed); a sequence
shorter than 3/4 of its batch's longest starts a new batch, so padding stays under 25%. Only the hidden
states at scored positions go through the output layer, so the vocabulary projection is not paid for
prompt tokens. (That split is checked against the model's own `logits` once per model; a model whose
head does something else, such as logit soft-capping, falls back to the full forward.)

**Cache.** Results are stored in `<cache_dir>/scores.sqlite` under sha256(model fingerprint, what is
computed, token ids, scored spans), batch by batch, so an interrupted run keeps its progress and a
re-run, a re-selection or another step asking for the same numbers (`score.perplexity` and
`score.ifd` share theirs) runs no forward pass. `cache_dir: null` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Discriminator, Field, Tag, field_validator

from curate.errors import CurateError
from curate.models import (
    DEFAULT_MODEL,
    ModelField,
    ModelSpec,
    as_spec,
    model_source,
    weights_stat_token,
)
from curate.steps.base import StepParams
from curate.templates.spec import TemplateSpec, builtin_formats

TRUNCATION_POLICY = (
    "context cut from the left to max(max_length//2, max_length-len(response)) tokens; "
    "response cut from the right to what is left"
)

# What the forward passes did in this process (for tests and benchmarks; not in manifests, which must
# not depend on what happened to be cached).
stats: Counter = Counter()


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


def spec_of(params) -> ModelSpec:
    return as_spec(params.model)


def cache_token_of(params, recipe_dir: str = ".") -> str | None:
    """For a step's `cache_token`: changes when a local model's weight files change."""
    return weights_stat_token(spec_of(params), recipe_dir)


# -- models and templates, loaded once per process -------------------------------------------------

_LOADED: dict[tuple, tuple] = {}


def shared_model(params, ctx, task: str = "causal"):
    """(model, tokenizer) for a step, loaded once per process per (spec, folder, task)."""
    from curate.models import load_causal_lm, load_sequence_classifier

    spec = spec_of(params)
    loaded_as = spec.model_copy(update={"max_length": None})  # the length cap does not change the model
    key = (loaded_as.model_dump_json(), str(Path(ctx.recipe_dir).resolve()), task)
    if key not in _LOADED:
        if len(_LOADED) >= 2:  # keep memory bounded: at most two models resident
            _LOADED.pop(next(iter(_LOADED)))
        load = load_causal_lm if task == "causal" else load_sequence_classifier
        _LOADED[key] = _quiet(lambda: load(spec, base_dir=ctx.recipe_dir, where=f"{ctx.where}.model"))
    return _LOADED[key]


def _quiet(fn):
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


def templater_for(params, tokenizer, model, ctx):
    """The Templater of a step: the model tokenizer's chat_template, or a built-in / given template."""
    from curate.templates.render import Templater

    where = f"{ctx.where}.template"
    t = params.template
    if isinstance(t, str) and t == "model":
        chat = getattr(tokenizer, "chat_template", None)
        if isinstance(chat, dict):
            chat = chat.get("default")
        if not chat:
            raise CurateError(
                f"model {spec_of(params).name!r} has no chat template; set `template` to a built-in format "
                f"({', '.join(builtin_formats())})",
                where,
            )
        spec = TemplateSpec(jinja=chat, bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "",
                            add_bos=tokenizer.bos_token is not None, add_eos=tokenizer.eos_token is not None)
        templater = Templater(spec, base_dir=ctx.recipe_dir, where=where)
        templater.variables = {**{k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)},
                               **templater.variables}  # as apply_chat_template: every special token is bound
        templater.name = f"chat template of {spec_of(params).name}"
        return templater
    return Templater(t, base_dir=ctx.recipe_dir, where=where)


def generation_prompt(templater, messages: list[dict], where: str) -> str:
    """The rendered conversation followed by the template's assistant header (add_generation_prompt)."""
    import jinja2

    try:
        return templater.prompt(messages)
    except jinja2.TemplateError as e:
        raise CurateError(f"template {templater.name!r} failed: {e}", where) from None


def context_length(model, tokenizer, spec: ModelSpec) -> int:
    """Tokens one sequence may have: the spec's max_length, capped by what the model supports."""
    cfg = model.config
    limits = [getattr(cfg, k, None) for k in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")]
    limits = [int(x) for x in limits if isinstance(x, int) and x > 0]
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < 1_000_000:
        limits.append(tml)
    model_max = min(limits) if limits else 2048
    return min(spec.max_length, model_max) if spec.max_length else model_max


def start_token(tokenizer) -> int | None:
    """The token a text scored alone starts with: bos, else eos, else None."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return None


def pad_token(tokenizer) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0  # pragma: no cover


def encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


# -- truncation ------------------------------------------------------------------------------------


def truncate(context: list[int], response: list[int], max_length: int) -> tuple[int, int]:
    """How many tokens of (context, response) to keep: the context's last ones, the response's first.

    The policy of this module (see its docstring): untouched when it fits; otherwise the context keeps
    min(len(context), max(max_length // 2, max_length - len(response))) and the response the rest.
    """
    if len(context) + len(response) <= max_length:
        return len(context), len(response)
    keep_ctx = min(len(context), max(max_length // 2, max_length - len(response)))
    return keep_ctx, min(len(response), max_length - keep_ctx)


# -- rows -> what to score -------------------------------------------------------------------------


@dataclass
class TurnPlan:
    turn: int  # 1-based index among the assistant turns
    cond: tuple[int, int]  # scored token positions [a, b) in the conversation sequence
    alone: list[int]  # the sequence that scores the same tokens alone
    alone_span: tuple[int, int]


@dataclass
class RowPlan:
    ids: list[int] = field(default_factory=list)  # the conversation, up to the end of the last turn's content
    turns: list[TurnPlan] = field(default_factory=list)
    why: str | None = None  # why the row cannot be scored
    cut: int = 0  # tokens removed by truncation
    last_turn: int = 0  # the 1-based index of the last assistant turn


def plan_rows(messages_list, templater, tokenizer, max_length: int, where: str) -> list[RowPlan]:
    """Token sequences and scored spans for every row (see the module docstring)."""
    start = start_token(tokenizer)
    plans = []
    for i, messages in enumerate(messages_list):
        plans.append(_plan_row(_plain(messages), templater, tokenizer, max_length, start, str(i)))
    return plans


def _plain(messages) -> list[dict]:
    return [{k: v for k, v in dict(m).items() if v is not None} for m in messages]


def _plan_row(messages, templater, tokenizer, max_length, start, row) -> RowPlan:
    assistant = [k for k, m in enumerate(messages) if m.get("role") == "assistant"]
    if not assistant:
        return RowPlan(why="no assistant turn")
    if not (messages[assistant[-1]].get("content") or "").strip():
        return RowPlan(why="empty response", last_turn=len(assistant))
    text, spans = templater.render(messages, row=row)
    ids: list[int] = []
    content_spans: list[tuple[int, int]] = []  # token positions of each turn's content in `ids`
    cursor = 0
    for k, (a, _b) in zip(assistant, spans):
        content = messages[k].get("content") or ""
        if not text.startswith(content, a):
            content = content.strip()  # the template trimmed the reply (Templater found it the same way)
        ids += encode(tokenizer, text[cursor:a])
        piece = encode(tokenizer, content)
        content_spans.append((len(ids), len(ids) + len(piece)))
        ids += piece
        cursor = a + len(content)
    # Truncation: context = everything before the last turn's content, response = that content.
    last_a, last_b = content_spans[-1]
    keep_ctx, keep_resp = truncate(ids[:last_a], ids[last_a:last_b], max_length)
    offset = last_a - keep_ctx
    kept = ids[offset : last_a + keep_resp]
    plan = RowPlan(ids=kept, cut=len(ids) - len(kept), last_turn=len(assistant))
    prefix = [start] if start is not None else []
    for turn, (a, b) in enumerate(content_spans, 1):
        a, b = max(a - offset, 0), min(b - offset, len(kept))
        if b <= a:
            continue  # cut off entirely, or an empty turn
        tokens = kept[a:b][: max_length - len(prefix)]
        b = a + len(tokens)
        alone = prefix + tokens
        skip = 0 if prefix else 1  # with no start token the first content token has no context alone
        a_cond = max(a + skip, 1)  # position 0 has nothing before it
        skip = a_cond - a
        if b - a_cond <= 0:
            continue
        plan.turns.append(TurnPlan(turn, (a_cond, b), alone, (len(prefix) + skip, len(alone))))
    if not any(t.turn == len(assistant) for t in plan.turns):
        plan.why = "response has no token left to score"
    return plan


@dataclass
class TurnLoss:
    turn: int
    n: int  # tokens scored
    cond: float  # summed NLL in context
    alone: float  # summed NLL alone


def response_losses(plans: list[RowPlan], model, *, cache: ScoreCache, batch_tokens: int | None,
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


# -- the cache -------------------------------------------------------------------------------------


class ScoreCache:
    """A key -> JSON value store in `<directory>/scores.sqlite`; a no-op when directory is None."""

    def __init__(self, directory: str | Path | None, fingerprint: str):
        self.fingerprint = fingerprint
        self.db = None
        if directory is not None:
            path = Path(directory)
            path.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path / "scores.sqlite"), timeout=120)
            self.db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.db.commit()

    def key(self, kind: str, ids: Sequence[int], extra) -> str:
        import numpy as np

        h = hashlib.sha256(json.dumps([self.fingerprint, kind, extra], separators=(",", ":")).encode())
        h.update(b"\0" + np.asarray(ids, dtype=np.int64).tobytes())
        return h.hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, object]:
        if self.db is None or not keys:
            return {}
        found = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for k, v in self.db.execute(f"SELECT key, value FROM scores WHERE key IN ({marks})", part):
                found[k] = json.loads(v)
        return found

    def put_many(self, items: dict[str, object]) -> None:
        if self.db is None or not items:
            return
        self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?)",
                            [(k, json.dumps(v)) for k, v in items.items()])
        self.db.commit()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def open_cache(params, model) -> ScoreCache:
    return ScoreCache(params.cache_dir, model_source(model).fingerprint())


# -- batched, cached computation -------------------------------------------------------------------


def default_batch_tokens(model) -> int:
    """32768 on a GPU; 2048 on a CPU, where larger batches only add cache misses (measured on SmolLM2:
    batches of 16 x 512 ran slower than one sequence at a time)."""
    return 32768 if next(model.parameters()).device.type == "cuda" else 2048


def make_batches(indices: list[int], lengths: list[int], *, batch_tokens: int, batch_size: int) -> list[list[int]]:
    """Longest first; a batch holds at most `batch_size` sequences and `batch_tokens` padded tokens, and
    a sequence shorter than 3/4 of the batch's longest starts a new one (at most 25% padding)."""
    order = sorted(indices, key=lambda i: (-lengths[i], i))
    batches, cur = [], []
    for i in order:  # the batch's first sequence is its longest and sets its padded length
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * lengths[cur[0]] > batch_tokens
                    or 4 * lengths[i] < 3 * lengths[cur[0]]):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def run_cached(keys: list[str], lengths: list[int], compute: Callable[[list[int]], list], cache: ScoreCache,
               *, batch_tokens: int, batch_size: int, desc: str) -> list:
    """Values for every key: from the cache, else from `compute(indices)` over length-sorted batches.

    Identical keys are computed once. Each batch's results are stored before the next batch starts.
    """
    results: list = [None] * len(keys)
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    hits = cache.get_many(list(first))
    todo = [i for k, i in first.items() if k not in hits]
    stats["cache_hits"] += len(first) - len(todo)
    stats["computed"] += len(todo)
    batches = make_batches(todo, lengths, batch_tokens=batch_tokens, batch_size=batch_size)
    computed: dict[str, object] = {}
    with rate_progress(len(todo), sum(lengths[i] for i in todo), desc) as advance:
        for batch in batches:
            values = compute(batch)
            new = {keys[i]: v for i, v in zip(batch, values)}
            cache.put_many(new)
            computed.update(new)
            advance(len(batch), sum(lengths[i] for i in batch))
    for i, k in enumerate(keys):
        results[i] = hits[k] if k in hits else computed[k]
    return results


def span_losses(model, requests: list[tuple[list[int], list[tuple[int, int]]]], *, cache: ScoreCache,
                batch_tokens: int | None, batch_size: int, pad_id: int, desc: str = "scoring") -> list[list[tuple[float, int]]]:
    """For each (ids, spans): per span, (summed NLL of the tokens at positions [a, b), count)."""
    keys = [cache.key("nll", ids, [list(s) for s in spans]) for ids, spans in requests]
    lengths = [len(ids) for ids, _ in requests]

    def compute(batch: list[int]):
        return _nll_batch(model, [requests[i] for i in batch], pad_id)

    bt = batch_tokens or default_batch_tokens(model)
    return [[tuple(x) for x in v] for v in run_cached(keys, lengths, compute, cache, batch_tokens=bt,
                                                      batch_size=batch_size, desc=desc)]


def next_token_logprobs(model, sequences: list[list[int]], candidates: list[int], *, cache: ScoreCache,
                        batch_tokens: int | None, batch_size: int, pad_id: int, desc: str = "judging") -> list[list[float]]:
    """For each sequence, the log-probabilities of the `candidates` as the next token."""
    keys = [cache.key("next", ids, candidates) for ids in sequences]

    def compute(batch: list[int]):
        return _next_batch(model, [sequences[i] for i in batch], candidates, pad_id)

    bt = batch_tokens or default_batch_tokens(model)
    return run_cached(keys, [len(s) for s in sequences], compute, cache, batch_tokens=bt,
                      batch_size=batch_size, desc=desc)


def classifier_logits(model, sequences: list[list[int]], *, cache: ScoreCache, batch_tokens: int | None,
                      batch_size: int, pad_id: int, desc: str = "rewarding") -> list[list[float]]:
    """For each sequence, the classifier's logits (all labels)."""
    keys = [cache.key("cls", ids, None) for ids in sequences]

    def compute(batch: list[int]):
        return _cls_batch(model, [sequences[i] for i in batch], pad_id)

    bt = batch_tokens or default_batch_tokens(model)
    return run_cached(keys, [len(s) for s in sequences], compute, cache, batch_tokens=bt,
                      batch_size=batch_size, desc=desc)


# -- the forward passes ----------------------------------------------------------------------------


def _pad(model, seqs: list[list[int]], pad_id: int):
    import torch

    device = next(model.parameters()).device
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    return ids.to(device), mask.to(device)


def forward_hidden(model, ids, mask):
    """Last hidden states of the decoder (final norm applied), [batch, length, hidden]. One place
    every causal-LM forward goes through (tests count calls here).

    No attention mask is passed: padding is on the right, so under the causal mask no real token
    attends to a pad, and without an explicit mask SDPA keeps its fused causal kernel (with one, CPU
    attention falls back to the O(n^2)-memory math path, which made batches slower than single rows).
    Outputs at pad positions are garbage and never read. `mask` is kept for models that need one.
    """
    stats["forward_batches"] += 1
    return model.base_model(input_ids=ids, use_cache=False).last_hidden_state


def forward_logits(model, ids, mask):
    stats["forward_batches"] += 1
    return model(input_ids=ids, use_cache=False).logits


def head_split_ok(model) -> bool:
    """Whether `output_embeddings(base_model(x))` reproduces `model(x).logits` (checked once per model)."""
    import torch

    ok = getattr(model, "_curate_head_split_ok", None)
    if ok is not None:
        return ok
    head = model.get_output_embeddings()
    base = getattr(model, "base_model", None)
    ok = False
    if head is not None and base is not None and base is not model:
        vocab = int(model.config.get_text_config().vocab_size)
        device = next(model.parameters()).device
        x = (torch.arange(16, device=device) * 7919 % vocab).unsqueeze(0)
        with torch.inference_mode():
            try:
                split = head(base(input_ids=x, use_cache=False).last_hidden_state).float()
                full = model(input_ids=x, use_cache=False).logits.float()
                ok = split.shape == full.shape and torch.allclose(split, full, rtol=1e-3, atol=1e-3 * float(full.abs().max()) + 1e-5)
            except Exception:  # noqa: BLE001 - any surprise means: use the model's own forward
                ok = False
    model._curate_head_split_ok = ok
    return ok


def _nll_batch(model, requests, pad_id: int) -> list[list[list]]:
    import torch
    import torch.nn.functional as F

    seqs = [ids for ids, _ in requests]
    ids, mask = _pad(model, seqs, pad_id)
    rows, pos, seg = [], [], []
    n_spans = 0
    for r, (_, spans) in enumerate(requests):
        for a, b in spans:
            rows += [r] * (b - a)
            pos += list(range(a, b))
            seg += [n_spans] * (b - a)
            n_spans += 1
    device = ids.device
    rows_t = torch.tensor(rows, dtype=torch.long, device=device)
    pos_t = torch.tensor(pos, dtype=torch.long, device=device)
    seg_t = torch.tensor(seg, dtype=torch.long, device=device)
    labels = ids[rows_t, pos_t]
    nll = torch.empty(len(pos), dtype=torch.float32, device=device)
    chunk = 1024
    with torch.inference_mode():
        if head_split_ok(model):
            hidden = forward_hidden(model, ids, mask)
            h = hidden[rows_t, pos_t - 1]
            head = model.get_output_embeddings()
            for s in range(0, len(pos), chunk):
                logits = head(h[s : s + chunk]).float()
                nll[s : s + chunk] = F.cross_entropy(logits, labels[s : s + chunk], reduction="none")
        else:
            logits = forward_logits(model, ids, mask)
            for s in range(0, len(pos), chunk):
                sel = logits[rows_t[s : s + chunk], pos_t[s : s + chunk] - 1].float()
                nll[s : s + chunk] = F.cross_entropy(sel, labels[s : s + chunk], reduction="none")
        sums = torch.zeros(n_spans, dtype=torch.float64, device=device).index_add_(0, seg_t, nll.double())
    counts = torch.bincount(seg_t, minlength=n_spans).tolist() if len(seg) else [0] * n_spans
    sums = sums.tolist()
    out, s = [], 0
    for _, spans in requests:
        out.append([[sums[s + j], counts[s + j]] for j in range(len(spans))])
        s += len(spans)
    return out


def _next_batch(model, seqs, candidates: list[int], pad_id: int) -> list[list[float]]:
    import torch

    ids, mask = _pad(model, seqs, pad_id)
    last = torch.tensor([len(s) - 1 for s in seqs], device=ids.device)
    rows = torch.arange(len(seqs), device=ids.device)
    cand = torch.tensor(candidates, device=ids.device)
    with torch.inference_mode():
        if head_split_ok(model):
            hidden = forward_hidden(model, ids, mask)
            logits = model.get_output_embeddings()(hidden[rows, last]).float()
        else:
            logits = forward_logits(model, ids, mask)[rows, last].float()
        logp = torch.log_softmax(logits, dim=-1)[:, cand]
    return logp.double().tolist()


def _cls_batch(model, seqs, pad_id: int) -> list[list[float]]:
    import torch

    ids, mask = _pad(model, seqs, pad_id)
    with torch.inference_mode():
        stats["forward_batches"] += 1
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    return logits.double().tolist()


# -- progress with rates ---------------------------------------------------------------------------


@contextmanager
def rate_progress(total: int, total_tokens: int, description: str):
    """Yields `advance(sequences, tokens)`; a rich bar with sequences/s and tokens/s on a terminal."""
    if total == 0 or not sys.stderr.isatty():
        yield lambda k, t: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("      {task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    started = time.perf_counter()
    done = {"seq": 0, "tok": 0}
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{description} ({total_tokens:,} tokens)", total=total, rate="")

        def advance(k: int, t: int) -> None:
            done["seq"] += k
            done["tok"] += t
            dt = max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=k, rate=f"{done['seq'] / dt:.1f} seq/s {done['tok'] / dt:,.0f} tok/s")

        yield advance


# -- reporting -------------------------------------------------------------------------------------


def nan_columns(names: list[str], n: int) -> dict[str, list]:
    cols: dict[str, list] = {}
    for name in names:
        cols[name] = [math.nan] * n
        cols[f"{name}_why"] = [None] * n
    return cols


def set_why(cols: dict, names: list[str], i: int, why: str) -> None:
    for name in names:
        cols[name][i] = math.nan
        cols[f"{name}_why"][i] = why


def note_model(ctx, model, max_length: int | None = None, truncated: int | None = None, reasons: Counter | None = None):
    """Deterministic facts for the manifest: the model, the length policy, truncations, unscored reasons."""
    ctx.notes["model"] = model_source(model).describe()
    if max_length is not None:
        ctx.notes["max_length"] = max_length
        ctx.notes["truncation"] = TRUNCATION_POLICY
    if truncated is not None:
        ctx.count("truncated_rows", truncated)  # counts add up over the batches the engine passes
    for why, n in sorted((reasons or {}).items()):
        ctx.count(why, n, group="unscored_reasons")


# -- the response-loss steps' common work ----------------------------------------------------------


def score_responses(step, ds):
    """Load the step's model, plan every row and compute its turn losses (through the cache).

    Returns (plans, losses); notes the model, max_length, truncated rows and unscored reasons.
    """
    params, ctx = step.params, step.ctx
    model, tokenizer = shared_model(params, ctx, "causal")
    max_length = context_length(model, tokenizer, spec_of(params))
    templater = templater_for(params, tokenizer, model, ctx)
    plans = plan_rows(ds.column("messages").to_pylist(), templater, tokenizer, max_length, ctx.where)
    cache = open_cache(params, model)
    try:
        losses = response_losses(plans, model, cache=cache, batch_tokens=params.batch_tokens,
                                 batch_size=params.batch_size, pad_id=pad_token(tokenizer), desc=f"{ctx.label}: scoring")
    finally:
        cache.close()
    reasons = Counter(p.why for p in plans if p.why)
    note_model(ctx, model, max_length, sum(1 for p in plans if p.cut), reasons)
    return plans, losses
