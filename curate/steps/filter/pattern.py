"""`filter.pattern`: drop rows whose text matches a regular expression."""

from __future__ import annotations

import re
from typing import Literal

import pyarrow as pa
from pydantic import Field

from curate.ledger import Drop
from curate.progress import track
from curate.rows import TEXT_KEYS, text_of
from curate.steps.base import Filter, Regex, StepParams, as_table, values
from curate.steps.hints import Gate, fast_search
from curate.steps.registry import register


@register
class Pattern(Filter):
    """Drop rows whose text matches any of the patterns; the reason names the first that matched,
    e.g. "response matches /as an ai language model/".

    Params:
    - `patterns` (required): regexes, searched anywhere in the text (anchor them with ^/$ if needed).
    - `key` ("response"): which text to search: prompt, response, conversation or first_user.
    - `ignore_case` (true): match case-insensitively.
    """

    name = "filter.pattern"

    class Params(StepParams):
        patterns: list[Regex] = Field(min_length=1)
        key: Literal[tuple(TEXT_KEYS)] = "response"
        ignore_case: bool = True

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        flags = re.IGNORECASE if params.ignore_case else 0
        self._compiled = [re.compile(p, flags) for p in params.patterns]
        self._searches = [fast_search(pattern) for pattern in self._compiled]
        self._gate = Gate(params.patterns, flags)  # what a match needs: most texts skip the regexes

    def decide(self, batch: pa.Table) -> list[Drop | None]:
        batch = as_table(batch)  # a datasets.Dataset works too
        key = self.params.key
        decisions: list[Drop | None] = []
        for messages in track(values(batch, "messages"), batch.num_rows, f"{self.ctx.label}: matching"):
            text = text_of(messages, key)
            drop = None
            folded = text.casefold() if self.params.ignore_case else None
            for k in self._gate.candidates(text, folded):
                m = self._searches[k](text)
                if m:
                    drop = Drop(reason=f"{key} matches /{self._compiled[k].pattern}/", detail={"matched": m.group(0)[:200]})
                    break
            decisions.append(drop)
        return decisions
