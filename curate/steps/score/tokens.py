"""`score.tokens`: token counts under a chosen tokenizer (for token budgets and length filters)."""

from __future__ import annotations

import os
from typing import Literal

import pyarrow as pa

from curate.errors import CurateError
from curate.rows import TEXT_KEYS, text_of
from curate.steps.base import Scorer, StepParams, as_table, values
from curate.steps.registry import register

_BATCH = 1000


@register
class Tokens(Scorer):
    """Count tokens with a Hugging Face tokenizer (special tokens are not added).

    Columns: `n_tokens` (tokens in the `key` text; the default token budget column),
    `prompt_tokens` and `response_tokens` (everything before the last assistant turn, and that turn).

    Params:
    - `tokenizer` (required): a hub id or a local directory (relative paths are tried against the
      recipe's folder first), loaded with transformers' AutoTokenizer.
    - `key` ("conversation"): the text counted into `n_tokens`: prompt, response, conversation
      ("role: content" lines) or first_user.
    - `trust_remote_code` (false): passed to AutoTokenizer; only for tokenizers you trust.
    """

    name = "score.tokens"

    class Params(StepParams):
        tokenizer: str
        key: Literal[tuple(TEXT_KEYS)] = "conversation"
        trust_remote_code: bool = False

    def adds(self) -> list[str]:
        return ["n_tokens", "prompt_tokens", "response_tokens"]

    def score(self, batch: pa.Table) -> dict[str, list]:
        batch = as_table(batch)  # a datasets.Dataset works too
        if getattr(self, "_tok", None) is None:  # once per process, not once per batch
            self._tok = self._load()
        tok = self._tok
        key = self.params.key
        texts = {"n_tokens": key, "prompt_tokens": "prompt", "response_tokens": "response"}
        messages = values(batch, "messages")
        out = {}
        for column, which in texts.items():
            if which == key and column != "n_tokens":
                out[column] = list(out["n_tokens"])  # same text, counted once
                continue
            out[column] = _count(tok, [text_of(m, which) for m in messages])
        return out

    def _load(self):
        from transformers import AutoTokenizer

        name = self.params.tokenizer
        local = os.path.join(self.ctx.recipe_dir, name)
        path = local if not os.path.isabs(name) and os.path.exists(local) else name
        try:
            tok = AutoTokenizer.from_pretrained(path, trust_remote_code=self.params.trust_remote_code)
        except Exception as e:  # transformers raises OSError, ValueError, HTTP errors, ...
            raise CurateError(f"cannot load tokenizer {name!r}: {e}", f"{self.ctx.where}.tokenizer") from e
        tok.model_max_length = 1 << 60  # counting only: no "sequence too long" warnings
        return tok


def _count(tok, texts: list[str]) -> list[int]:
    counts = []
    for i in range(0, len(texts), _BATCH):
        ids = tok(texts[i : i + _BATCH], add_special_tokens=False)["input_ids"]
        counts += [len(x) for x in ids]
    return counts
