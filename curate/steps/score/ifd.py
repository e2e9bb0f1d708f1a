"""`score.ifd`: Instruction-Following Difficulty (Cherry LLM): loss(response | prompt) / loss(response)."""

from __future__ import annotations

import math

import pyarrow as pa

from curate.steps.registry import register
from curate.steps.score.lm_loss import LMScorer


@register
class IFD(LMScorer):
    """Instruction-Following Difficulty: how much the prompt helps a causal LM predict the response.

    IFD = loss(response | prompt) / loss(response alone), with the losses of `score.perplexity`
    (mean NLL of the response's content tokens, with the chat template; alone = after only the
    start token), as in Cherry LLM (Li et al. 2024). Near 1 the prompt barely helps; high (but < 1)
    means a hard instruction; above 1 the prompt makes the response *less* likely, which usually means
    prompt and response do not belong together: those rows are flagged.
    Columns (each with `_why`):
    - `ifd`: for all assistant turns together: the summed loss in context over the summed loss alone
      on the same tokens, i.e. the ratio of the token-weighted mean losses. One turn: the plain IFD.
    - `ifd_last_turn`: the last assistant turn only (the "response" of single-turn filters).
    - `ifd_over_1`: 1.0 when `ifd` > 1 (flagged), else 0.0.
    Multi-turn: each assistant turn is scored given the whole conversation before it (system, user
    turns and earlier replies), and alone; turns are combined by tokens, so long turns weigh more.
    No score (NaN and a reason): no assistant turn, an empty last response, no token left after
    truncation, a zero loss alone. Truncation and caching as in `score.perplexity`: both steps ask the
    cache for the same numbers, so running both on one model costs one pass.

    Params: as `score.perplexity`: `model` (the SmolLM2-135M-Instruct default, packaged fallback),
    `template` ("model"), `batch_tokens` (null: 2048 CPU / 32768 CUDA), `batch_size` (16),
    `cache_dir` (".curate/scores"), `prefix` ("").
    """

    name = "score.ifd"
    scores = ("ifd", "ifd_last_turn", "ifd_over_1")

    def fill(self, ds: pa.Table, cols: dict[str, list]) -> None:
        names = self.names()
        flagged = 0
        for i, plan, turns in self.scored_turns(ds, cols):
            last = next(t for t in turns if t.turn == plan.last_turn)
            for name, cond, alone in ((names[0], sum(t.cond for t in turns), sum(t.alone for t in turns)),
                                      (names[1], last.cond, last.alone)):
                value, why = _ratio(cond, alone)
                cols[name][i], cols[f"{name}_why"][i] = value, why
            if math.isnan(cols[names[0]][i]):
                self.set_why(cols, [names[2]], i, cols[f"{names[0]}_why"][i])
            else:
                cols[names[2]][i] = 1.0 if cols[names[0]][i] > 1 else 0.0
                flagged += cols[names[2]][i] == 1.0
        self.ctx.count("ifd_over_1_rows", int(flagged))


def _ratio(cond: float, alone: float) -> tuple[float, str | None]:
    if not (math.isfinite(cond) and math.isfinite(alone)):
        return math.nan, "the model gave a non-finite loss"
    if alone <= 0:
        return math.nan, "the loss of the response alone is 0"
    return cond / alone, None
