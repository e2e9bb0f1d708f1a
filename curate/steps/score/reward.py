"""`score.reward`: a reward model's score of each conversation (sequence classification)."""

from __future__ import annotations

import math
from collections import Counter

import pyarrow as pa

from curate.errors import CurateError
from curate.models import ModelField
from curate.steps.base import values
from curate.steps.registry import register
from curate.steps.score.lm_forward import classifier_logits
from curate.steps.score.lm_loss import LMParams, LMScorer
from curate.steps.score.lm_plan import encode, plain, truncate


@register
class Reward(LMScorer):
    """The score a sequence-classification reward model gives each conversation.

    The row is rendered with the reward model's chat template (or `template`) and tokenised in two
    pieces, before the last assistant turn's content and from it on (so the prompt can be cut at
    a token boundary); the score is the model's logit for `label`, read at the last token as
    transformers' `...ForSequenceClassification` does. Column: `reward`, with `reward_why`:
    NaN and a reason for a row without an assistant turn or with an empty response.
    Rows longer than `max_length` are truncated by the policy of `score.perplexity` (the prompt cut from
    the left first, then the response from the right, losing its end-of-turn marker) and counted in
    the manifest notes (`truncated_rows`). Batches are length-sorted and padded on the right with the
    tokenizer's pad token (its eos when it has none); results are cached by (model fingerprint, tokens).

    Params:
    - `model` (required): a hub id, folder, or ModelSpec fields, of a model whose architecture ends in
      ForSequenceClassification (anything else is an error).
    - `label` (null): which output to use; may be omitted only for a single-output model.
      An index, or a label name from the model's config (`id2label`).
    - `template` ("model"), `batch_tokens`, `batch_size` (16), `cache_dir` (".curate/scores"),
      `prefix` (""): as in `score.perplexity`.
    """

    name = "score.reward"

    class Params(LMParams):
        model: ModelField
        label: int | str | None = None

    scores = ("reward",)

    def fill(self, ds: pa.Table, cols: dict[str, list]) -> None:
        column = self.names()[0]
        lm = self.load("classifier")
        label = self._label(lm.model)
        reasons: Counter = Counter()
        seqs, kept, truncated = [], [], 0
        for i, messages in enumerate(values(ds, "messages")):
            ids, why, cut = _sequence(plain(messages), lm.templater, lm.tokenizer, lm.max_length, str(i))
            if why:
                self.set_why(cols, [column], i, why)
                reasons[why] += 1
                continue
            truncated += cut
            seqs.append(ids)
            kept.append(i)
        logits = self.compute(classifier_logits, lm, seqs, verb="rewarding")
        for i, row in zip(kept, logits):
            value = row[label]
            if math.isfinite(value):
                cols[column][i] = value
            else:
                self.set_why(cols, [column], i, "the model gave a non-finite score")
                reasons["non-finite score"] += 1
        self.note_model(lm, truncated, reasons)
        self.ctx.notes["label"] = label

    def _label(self, model) -> int:
        cfg = model.config
        n = int(cfg.num_labels)
        label = self.params.label
        where = f"{self.ctx.where}.label"
        names = {str(v): int(k) for k, v in (cfg.id2label or {}).items()}
        if label is None:
            if n != 1:
                raise CurateError(f"the model has {n} outputs ({', '.join(names) or 'unnamed'}); choose one with `label`", where)
            return 0
        if isinstance(label, str):
            if label not in names:
                raise CurateError(f"the model has no label {label!r}; its labels: {', '.join(names)}", where)
            return names[label]
        if not 0 <= label < n:
            raise CurateError(f"label {label} is out of range: the model has {n} outputs", where)
        return label


def _sequence(messages, templater, tokenizer, max_length: int, row: str):
    """(token ids, why not, truncated?) for one row."""
    assistant = [k for k, m in enumerate(messages) if m.get("role") == "assistant"]
    if not assistant:
        return None, "no assistant turn", False
    content = messages[assistant[-1]].get("content") or ""
    if not content.strip():
        return None, "empty response", False
    text, spans = templater.render(messages, row=row)
    start = spans[-1][0]
    context = encode(tokenizer, text[:start])
    rest = encode(tokenizer, text[start:])
    keep_ctx, keep_rest = truncate(context, rest, max_length)
    ids = context[len(context) - keep_ctx :] + rest[:keep_rest]
    return ids, None, len(ids) < len(context) + len(rest)
