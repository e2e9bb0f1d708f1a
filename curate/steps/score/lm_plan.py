"""What the model scorers feed their model: the chat template, token ids, the length window and the
spans to score (not a step; `lm_loss` and the scorers use it).

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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curate.errors import CurateError
from curate.models import ModelSpec, as_spec
from curate.templates.spec import TemplateSpec, builtin_formats

TRUNCATION_POLICY = (
    "context cut from the left to max(max_length//2, max_length-len(response)) tokens; "
    "response cut from the right to what is left"
)


# -- the template and the tokenizer ----------------------------------------------------------------


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
                f"model {as_spec(params.model).name!r} has no chat template; set `template` to a built-in format "
                f"({', '.join(builtin_formats())})",
                where,
            )
        spec = TemplateSpec(jinja=chat, bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "",
                            add_bos=tokenizer.bos_token is not None, add_eos=tokenizer.eos_token is not None)
        templater = Templater(spec, base_dir=ctx.recipe_dir, where=where)
        templater.variables = {**{k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)},
                               **templater.variables}  # as apply_chat_template: every special token is bound
        templater.name = f"chat template of {as_spec(params.model).name}"
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


def plain(messages) -> list[dict]:
    """A row's messages as dicts without the fields Arrow filled with None (a template would see them)."""
    return [{k: v for k, v in dict(m).items() if v is not None} for m in messages]


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
        plans.append(_plan_row(plain(messages), templater, tokenizer, max_length, start, str(i)))
    return plans


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
