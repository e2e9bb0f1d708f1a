"""`score.judge`: an instruct model rates each row 1-5 on a rubric (LLM-as-a-judge)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from curate.errors import CurateError
from curate.models import as_spec
from curate.progress import rate_progress
from curate.rows import conversation_text, prompt_text, response_text
from curate.steps.base import values
from curate.steps.registry import register
from curate.steps.score.judge_endpoint import RATINGS, ask_endpoint, safe_for_key
from curate.steps.score.lm_batches import ScoreCache, stats
from curate.steps.score.lm_forward import next_token_logprobs
from curate.steps.score.lm_loss import LMParams, LMScorer
from curate.steps.score.lm_plan import encode, generation_prompt, plain

DEFAULT_RUBRIC = """\
Rate the quality of the AI assistant's answer to the user's request below on a scale of 1 to 5.
1: wrong, harmful, off-topic or empty.
2: poor: major errors or omissions.
3: acceptable, with clear flaws.
4: good: helpful and correct, with minor issues.
5: excellent: correct, complete, clear and well written.

[Request]
{{ prompt }}

[Answer]
{{ response }}

Reply with a single digit from 1 to 5."""

RUBRIC_FIELDS = {"prompt", "response", "conversation"}


def _rubric_env():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(keep_trailing_newline=True)


def _check_rubric(text: str) -> str:
    import jinja2
    from jinja2 import meta

    try:
        used = meta.find_undeclared_variables(_rubric_env().parse(text))
    except jinja2.TemplateSyntaxError as e:
        raise ValueError(f"the rubric does not parse (line {e.lineno}): {e.message}") from None
    unknown = used - RUBRIC_FIELDS
    if unknown:
        raise ValueError(f"the rubric uses {sorted(unknown)}; it can use {{{{ prompt }}}}, {{{{ response }}}}, "
                         "{{ conversation }}")
    if "response" not in used and "conversation" not in used:
        raise ValueError("the rubric must show the judge the answer: use {{ response }} or {{ conversation }}")
    return text


@register
class Judge(LMScorer):
    """An instruct model rates each row from 1 to 5 on a rubric the recipe can change.

    The rubric (a Jinja template over `prompt`, `response` and `conversation`) becomes the user
    message of a chat with the judge; after the assistant header (plus `answer_prefix`) the judge's
    next-token distribution is read, and the score is the probability-weighted expectation over the
    rating tokens "1".."5" (each digit with and without a leading space), renormalised over them:
    `judge` = sum_k k p(k) / sum_k p(k). No free text is generated or parsed.
    Columns: `judge` (1..5) and `judge_mass` (sum_k p(k): how much of the judge's probability went to
    a rating at all), each with `_why`. A row gets NaN and a reason, never a default score, when it
    has no assistant turn, an empty response, a mass below `min_mass`, or (endpoint) an error or a
    reply without a rating; the manifest notes count the reasons. A row whose judge prompt is longer
    than `max_length` has its response (then its prompt) shortened, marked "[...]", and is counted
    (`truncated_rows`).

    With `endpoint`, an OpenAI-compatible server is asked instead (POST `<endpoint>/chat/completions`,
    temperature 0, `logprobs` with 20 `top_logprobs`): the expectation is taken over the top
    log-probabilities of the first rating token when the server returns them; otherwise the first
    digit 1-5 of the reply is the score and `judge_mass` is NaN. A failed request gives its row NaN
    and the error; if every request fails and none was answered before (cache), the step stops with
    an error instead.

    Params:
    - `model` ("HuggingFaceTB/SmolLM2-135M-Instruct"), `template` ("model"), `batch_tokens`,
      `batch_size` (16), `cache_dir` (".curate/scores"), `prefix` (""): as in `score.perplexity`.
    - `rubric` (a 1-5 quality rubric) or `rubric_file` (a file, relative to the recipe): the Jinja
      template of the judge's instruction; it must use `{{ response }}` or `{{ conversation }}`.
    - `system` (null): a system message for the judge.
    - `answer_prefix` ("Rating: "): text put after the assistant header (a local model only), so the
      next token is the rating; on 8 Alpaca-GPT4 rows SmolLM2-135M put 1-67% of its probability on
      the digits without it and 95-99% with it.
    - `min_mass` (0.5): below this probability on the ratings the row is not scored.
    - `endpoint` (null): base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1;
      `endpoint_model` (null: the `model` name) is the model it is asked for; `api_key_env`
      ("OPENAI_API_KEY"): the environment variable holding the key, sent when set, and only to
      `endpoint` (its name must end in API_KEY or _TOKEN; redirects are never followed; over plain
      http only to a loopback address); `timeout` (60 s) and `concurrency` (4 requests at a time).
      A log-probability that is not a number <= 0 leaves the row unscored, with the reason.
    Local results are cached by (model fingerprint, prompt tokens); endpoint replies by (URL,
    model, messages): a re-run asks nothing twice.
    """

    name = "score.judge"
    scores = ("judge", "judge_mass")

    class Params(LMParams):
        rubric: str = DEFAULT_RUBRIC
        rubric_file: str | None = None
        system: str | None = None
        answer_prefix: str = "Rating: "
        min_mass: float = Field(0.5, ge=0.0, le=1.0)
        endpoint: str | None = None
        endpoint_model: str | None = None
        api_key_env: str | None = "OPENAI_API_KEY"
        timeout: float = Field(60.0, gt=0)
        concurrency: int = Field(4, ge=1, le=64)

        @field_validator("rubric")
        @classmethod
        def _rubric(cls, v: str) -> str:
            return _check_rubric(v)

        @field_validator("api_key_env")
        @classmethod
        def _key_name(cls, v: str | None) -> str | None:
            # The key is sent to the recipe's endpoint: a recipe must not be able to name any secret at all
            # (AWS credentials, a database URL) and have it sent away.
            if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(API_KEY|_TOKEN)", v):
                raise ValueError(f"api_key_env must name a variable ending in API_KEY or _TOKEN, not {v!r}")
            return v

        @field_validator("endpoint")
        @classmethod
        def _endpoint(cls, v: str | None) -> str | None:
            if v is not None and not re.match(r"^https?://", v):
                raise ValueError(f"endpoint must be an http(s) URL, not {v!r}")
            return v

        @model_validator(mode="after")
        def _one_rubric(self):
            if self.rubric_file is not None and "rubric" in self.model_fields_set:
                raise ValueError("give `rubric` or `rubric_file`, not both")
            return self

    @classmethod
    def cache_token(cls, params, recipe_dir: str = ".") -> str | None:
        parts = [super().cache_token(params, recipe_dir) if params.endpoint is None else None]
        if params.rubric_file is not None:
            path = _rubric_path(params.rubric_file, recipe_dir)
            if path.is_file():
                parts.append(hashlib.sha256(path.read_bytes()).hexdigest())
        return None if parts == [None] else json.dumps(parts)

    # -- scoring -----------------------------------------------------------------------------------

    def fill(self, ds: pa.Table, cols: dict[str, list]) -> None:
        names = self.names()
        rubric = self._rubric()
        rows = [plain(m) for m in values(ds, "messages")]
        reasons: Counter = Counter()
        todo = []
        for i, messages in enumerate(rows):
            why = _unscorable(messages)
            if why:
                self.set_why(cols, names, i, why)
                reasons[why] += 1
            else:
                todo.append(i)
        if self.params.endpoint is not None:
            self._score_endpoint(rows, todo, rubric, cols, names, reasons)
        else:
            self._score_local(rows, todo, rubric, cols, names, reasons)
        if reasons:
            for why, n in sorted(reasons.items()):
                self.ctx.count(why, n, group="unscored_reasons")

    def _rubric(self):
        p = self.params
        text = p.rubric
        if p.rubric_file is not None:
            path = _rubric_path(p.rubric_file, self.ctx.recipe_dir)
            if not path.is_file():
                raise CurateError(f"no rubric file {str(path)!r}", f"{self.ctx.where}.rubric_file")
            try:
                text = _check_rubric(path.read_text(encoding="utf-8"))
            except ValueError as e:
                raise CurateError(f"{path}: {e}", f"{self.ctx.where}.rubric_file") from None
        return _rubric_env().from_string(text)

    def _messages(self, rubric, messages: list[dict], prompt: str | None = None, response: str | None = None):
        body = rubric.render(
            prompt=prompt_text(messages) if prompt is None else prompt,
            response=response_text(messages) if response is None else response,
            conversation=conversation_text(messages),
        )
        out = [{"role": "system", "content": self.params.system}] if self.params.system else []
        return out + [{"role": "user", "content": body}]

    # -- a local model ---------------------------------------------------------------------------

    def _score_local(self, rows, todo, rubric, cols, names, reasons) -> None:
        ctx = self.ctx
        lm = self.load("causal")
        tokenizer = lm.tokenizer
        ratings = rating_tokens(tokenizer, f"{ctx.where}.model")
        seqs, kept, truncated = [], [], 0
        for i in todo:
            ids, cut = self._prompt_ids(rows[i], rubric, lm.templater, tokenizer, lm.max_length)
            if ids is None:
                self.set_why(cols, names, i, "judge prompt longer than max_length even with the row cut")
                reasons["judge prompt too long"] += 1
                continue
            truncated += cut
            seqs.append(ids)
            kept.append(i)
        logps = self.compute(next_token_logprobs, lm, seqs, [tid for tid, _ in ratings], verb="judging")
        for i, lp in zip(kept, logps):
            probs = Counter()
            for (_, k), x in zip(ratings, lp):
                probs[k] += math.exp(x)
            self._set(cols, names, i, probs, reasons)
        self.note_model(lm, truncated)
        ctx.notes["rating_tokens"] = {str(k): [tokenizer.convert_ids_to_tokens(t) for t, kk in ratings if kk == k] for k in RATINGS}

    def _prompt_ids(self, messages, rubric, templater, tokenizer, max_length):
        """Token ids of the judge prompt and whether the row had to be shortened (None: cannot fit)."""
        where = f"{self.ctx.where}.template"
        prompt, response = prompt_text(messages), response_text(messages)
        for attempt in range(4):
            text = generation_prompt(templater, self._messages(rubric, messages, prompt, response), where)
            ids = encode(tokenizer, text + self.params.answer_prefix)
            excess = len(ids) - max_length
            if excess <= 0:
                return ids, attempt > 0
            # Shorten the response first, then the prompt, by the excess and a margin for re-tokenisation.
            for which in ("response", "prompt"):
                part = response if which == "response" else prompt
                toks = encode(tokenizer, part)
                if len(toks) > 8:
                    keep = max(len(toks) - excess - 8 - 4 * attempt, 0)
                    short = tokenizer.decode(toks[:keep]) + " [...]"
                    if which == "response":
                        response = short
                    else:
                        prompt = short
                    break
            else:
                return None, False
        return None, False

    def _set(self, cols, names, i, probs: Counter, reasons: Counter) -> None:
        mass = sum(probs.values())
        cols[names[1]][i] = mass
        if mass <= 0 or mass < self.params.min_mass:
            why = f"only {mass:.1%} of the judge's probability is on the ratings 1-5 (min_mass {self.params.min_mass})"
            cols[names[0]][i], cols[f"{names[0]}_why"][i] = math.nan, why
            reasons["too little probability on the ratings"] += 1
        else:
            cols[names[0]][i] = sum(k * p for k, p in probs.items()) / mass

    # -- an OpenAI-compatible endpoint -------------------------------------------------------------

    def _score_endpoint(self, rows, todo, rubric, cols, names, reasons) -> None:
        p = self.params
        url = p.endpoint.rstrip("/")
        url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        model_name = p.endpoint_model or as_spec(p.model).name
        key = os.environ.get(p.api_key_env) if p.api_key_env else None
        if key and not safe_for_key(url):
            raise CurateError(f"{p.api_key_env} would be sent in clear text over http to {url}; use https (plain http "
                              "only to a loopback address)", f"{self.ctx.where}.endpoint")
        cache = ScoreCache(p.cache_dir, f"endpoint {url} {model_name}")
        requests = {i: self._messages(rubric, rows[i]) for i in todo}
        keys = {i: cache.key("judge", [], requests[i]) for i in todo}
        try:
            found = cache.get_many(list(set(keys.values())))
            ask = [i for i in todo if keys[i] not in found]
            stats["cache_hits"] += len(todo) - len(ask)
            stats["computed"] += len(ask)

            def one(i):
                return i, ask_endpoint(url, model_name, requests[i], key, p.timeout)

            replies: dict[int, dict] = {}
            failures = 0
            with rate_progress(len(ask), 0, f"{self.ctx.label}: asking {url}") as advance, \
                    ThreadPoolExecutor(max_workers=p.concurrency) as pool:
                for i, reply in pool.map(one, ask):
                    replies[i] = reply
                    if "transport" in reply:
                        failures += 1
                    else:
                        cache.put_many({keys[i]: reply})
                    advance(1, 0)
            if ask and failures == len(ask) and not found:  # nothing ever came back: a setup problem
                first = replies[ask[0]]["transport"]
                raise CurateError(f"the judge endpoint {url} failed for every row; the first error: {first}",
                                  f"{self.ctx.where}.endpoint")
        finally:
            cache.close()
        for i in todo:
            reply = found.get(keys[i]) or replies[i]
            if "transport" in reply:
                self.set_why(cols, names, i, f"endpoint error: {reply['transport']}")
                reasons["endpoint error"] += 1
                continue
            if "invalid" in reply:
                self.set_why(cols, names, i, reply["invalid"])
                reasons["invalid log-probabilities"] += 1
                continue
            probs, text = reply.get("probs"), reply.get("text", "")
            if probs:
                self._set(cols, names, i, Counter({int(k): v for k, v in probs.items()}), reasons)
                continue
            m = re.search(r"(?<!\d)([1-5])(?!\d)", text or "")
            if m:
                cols[names[0]][i] = float(m.group(1))
                cols[names[1]][i] = math.nan
                cols[f"{names[1]}_why"][i] = "the endpoint gave no log-probabilities; the rating was read from the reply"
            else:
                shown = (text or "").strip()[:60]
                self.set_why(cols, names, i, f"no rating 1-5 in the judge's reply: {shown!r}")
                reasons["no rating in the reply"] += 1
        self.ctx.notes["judge"] = {"endpoint": url, "model": model_name,
                                   "api_key_sent": p.api_key_env if key else None}


def _rubric_path(name: str, recipe_dir: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(recipe_dir) / path


def _unscorable(messages: list[dict]) -> str | None:
    if not any(m.get("role") == "assistant" for m in messages):
        return "no assistant turn"
    if not response_text(messages).strip():
        return "empty response"
    return None


def rating_tokens(tokenizer, where: str) -> list[tuple[int, int]]:
    """(token id, rating) for each single-token spelling of "1".."5" (with and without a leading space)."""
    out: dict[int, int] = {}
    for k in RATINGS:
        found = False
        for text in (str(k), f" {k}"):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) == 1 and ids[0] not in out:
                out[ids[0]] = k
                found = True
            elif len(ids) == 1:
                found = found or out[ids[0]] == k
        if not found:
            raise CurateError(f"the judge's tokenizer has no single token for the rating {k}; expected scores need "
                              "one (use an `endpoint`, or another model)", where)
    return sorted(out.items())
