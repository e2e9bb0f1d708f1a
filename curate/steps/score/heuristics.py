"""`score.heuristics`: cheap per-row text statistics (length, repetition, symbols, refusals)."""

from __future__ import annotations

import math
import re
from collections import Counter
from operator import countOf

import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.progress import track
from curate.rows import prompt_text, response_text
from curate.steps.base import Regex, Scorer, StepParams, as_table, values
from curate.steps.hints import Gate, fast_search
from curate.steps.registry import register

_APOS = "['’]"
DEFAULT_REFUSALS = [
    rf"\bI{_APOS}m sorry,? but I (?:cannot|can{_APOS}t|am unable|won{_APOS}t)",
    rf"\bI (?:cannot|can{_APOS}t|am unable to|won{_APOS}t|will not) "
    r"(?:assist|help|provide|comply|fulfill|create|generate)",
    rf"\bI{_APOS}m (?:not able|unable) to (?:assist|help|provide|comply|fulfill)",
    rf"\bI apologi[sz]e,? but I (?:cannot|can{_APOS}t|am unable)",
    r"\bas an AI language model\b",
    r"\bI must (?:decline|refuse)\b",
]
DEFAULT_BOILERPLATE = [
    r"\bas an? (?:AI|artificial intelligence|large language model|language model)\b",
    rf"\bI don{_APOS}t have (?:personal )?(?:opinions|feelings|beliefs|emotions|experiences)\b",
    r"\b(?:my|the) (?:knowledge|training data) cut-?off\b",
    r"\bas of my last (?:knowledge )?update\b",
    r"\bI hope (?:this|that) helps\b",
    rf"\b(?:feel free|don{_APOS}t hesitate) to (?:ask|reach out)\b",
    r"\blet me know if you (?:have|need) any (?:other|more|further) (?:questions|help)\b",
]
COLUMNS = [
    "prompt_chars", "prompt_words", "response_chars", "response_words", "turns",
    "response_prompt_ratio", "response_prompt_ratio_why", "rep_ngram_ratio", "rep_ngram_ratio_why",
    "nonalnum_ratio", "nonalnum_ratio_why", "refusal", "boilerplate",
]  # fmt: skip
_WORD = re.compile(r"\w+")
_SYMBOL = re.compile(r"[^\w\s]|_")  # neither alphanumeric nor whitespace


@register
class Heuristics(Scorer):
    """Per-row text statistics; every row gets a value, NaN (with a reason) where one is undefined.

    The prompt is everything before the last assistant turn, the response is that turn.
    Columns: `prompt_chars`, `prompt_words`, `response_chars`, `response_words` (words are
    whitespace-separated), `turns` (messages in the row), `response_prompt_ratio`
    (response_words / max(prompt_words, 1)), `rep_ngram_ratio` (share of the response's word
    n-grams that occur more than once, as Data-Juicer's word_repetition; 0 below n words),
    `nonalnum_ratio` (characters that are neither alphanumeric nor whitespace / response chars),
    `refusal` and `boilerplate` (1.0 when the response matches a pattern, else 0.0).
    The three ratios are NaN for an empty (or blank) response, with the reason in `<column>_why`.

    Params:
    - `ngram` (3): n for `rep_ngram_ratio`; words are lower-cased `\\w+` runs.
    - `refusal_patterns` (common refusals: "I'm sorry, but I cannot", "I cannot assist", ...):
      regexes, matched case-insensitively anywhere in the response.
    - `boilerplate_patterns` ("As an AI ...", "I hope this helps", "feel free to ask", ...): likewise.
    """

    name = "score.heuristics"

    class Params(StepParams):
        ngram: int = Field(3, ge=1)
        refusal_patterns: list[Regex] = DEFAULT_REFUSALS
        boilerplate_patterns: list[Regex] = DEFAULT_BOILERPLATE

    def __init__(self, params, ctx):
        super().__init__(params, ctx)
        self._refusal = _any_of(params.refusal_patterns)
        self._boilerplate = _any_of(params.boilerplate_patterns)

    def score(self, batch: pa.Table) -> dict[str, list]:
        batch = as_table(batch)  # a datasets.Dataset works too
        cols: dict[str, list] = {name: [] for name in COLUMNS}
        for messages in track(values(batch, "messages"), batch.num_rows, f"{self.ctx.label}: scoring"):
            prompt, response = prompt_text(messages), response_text(messages)
            p_words, r_words = len(prompt.split()), len(response.split())
            cols["prompt_chars"].append(len(prompt))
            cols["prompt_words"].append(p_words)
            cols["response_chars"].append(len(response))
            cols["response_words"].append(r_words)
            cols["turns"].append(len(messages))

            why = None if response.strip() else _empty_reason(messages)
            ratios = (
                (r_words / max(p_words, 1), self._repetition(response), _nonalnum(response))
                if why is None
                else (math.nan,) * 3
            )
            for name, value in zip(("response_prompt_ratio", "rep_ngram_ratio", "nonalnum_ratio"), ratios):
                cols[name].append(value)
                cols[f"{name}_why"].append(why)

            folded = response.casefold()  # once, for both tests' hint words
            cols["refusal"].append(1.0 if self._refusal(response, folded) else 0.0)
            cols["boilerplate"].append(1.0 if self._boilerplate(response, folded) else 0.0)
        return cols

    def adds(self) -> list[str]:
        return COLUMNS

    def _repetition(self, text: str) -> float:
        n = self.params.ngram
        words = _words(text)
        grams = Counter(zip(*(words[i:] for i in range(n))))  # the word n-grams, in order
        total = max(len(words) - n + 1, 0)
        if not total:
            return 0.0  # too short to repeat anything
        return (total - countOf(grams.values(), 1)) / total  # the n-grams that occur more than once


def _empty_reason(messages: list[dict]) -> str:
    return "empty response" if any(m["role"] == "assistant" for m in messages) else "no assistant turn"


# ASCII text takes a faster road to the same counts as the regexes (checked in
# tests/steps/score/test_score_heuristics.py): one bytes.translate pass, where `\w` is [A-Za-z0-9_] and `\s`
# the characters str.isspace() accepts. 5x faster than str.translate's dict lookups.
_ASCII_WORD_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")
_ASCII_WORDS = bytes(c + 32 if 65 <= c <= 90 else c if chr(c) in _ASCII_WORD_CHARS else 32 for c in range(256))
_ASCII_NOT_SYMBOL = bytes(c for c in range(128) if chr(c).isalnum() or chr(c).isspace())
# mostly-ASCII text (a curly quote, an accent): the same table on its UTF-8, every byte >= 0x80 kept as a word
# byte, so the pieces are split at ASCII non-word characters only; just the pieces with a non-ASCII character
# go through the regex
_ASCII, _HIGH = bytes(range(128)), bytes(range(128, 256))
_UTF8_WORDS = _ASCII_WORDS[:128] + _HIGH


def _words(text: str) -> list[bytes]:
    r"""The `\w+` runs of the lower-cased text (as UTF-8), to be counted.

    The same runs as `_WORD.findall(text.lower())`: an ASCII non-word character is one after lower() too,
    so no run crosses a piece's edge, and lower() maps each character alone, except a capital sigma (its
    form depends on the letters around it): a text with one takes the regex on the whole text."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORDS).split()
    spaced = text.encode("utf-8", "surrogatepass").translate(_UTF8_WORDS)  # pieces between single spaces
    high = np.flatnonzero(np.frombuffer(spaced, dtype=np.uint8) >= 0x80)
    if "\u03a3" in text or len(high) * 20 > len(spaced):  # a capital sigma, or not mostly ASCII: the regex
        return [w.encode("utf-8", "surrogatepass") for w in _WORD.findall(text.lower())]
    words, done = [], 0
    for at in high[np.diff(high, prepend=-2) != 1].tolist():  # where each run of non-ASCII bytes starts
        if at < done:
            continue  # in the piece just taken
        start, end = spaced.rfind(b" ", 0, at) + 1, spaced.find(b" ", at)
        end = len(spaced) if end < 0 else end
        words += spaced[done:start].split()
        piece = spaced[start:end].decode("utf-8", "surrogatepass").lower()
        words += [w.encode("utf-8", "surrogatepass") for w in _WORD.findall(piece)]
        done = end
    return words + spaced[done:].split()


def _nonalnum(text: str) -> float:
    if text.isascii():
        return len(text.encode("ascii").translate(None, _ASCII_NOT_SYMBOL)) / len(text)
    # ASCII symbols by translate, the rest by the regex on the non-ASCII characters alone (deleting the
    # ASCII bytes from UTF-8 leaves whole characters)
    encoded = text.encode("utf-8", "surrogatepass")
    ascii_symbols = len(encoded.translate(None, _ASCII_NOT_SYMBOL + _HIGH))
    others = encoded.translate(None, _ASCII).decode("utf-8", "surrogatepass")
    return (ascii_symbols + len(_SYMBOL.findall(others))) / len(text)


def _any_of(patterns: list[str], gated: bool = True):
    """A case-insensitive test for "any pattern matches". Only the patterns whose needed words the text
    holds (curate.steps.hints.Gate) run their regex: most texts run none."""
    searches = [fast_search(re.compile(p, re.IGNORECASE)) for p in patterns]
    gate = Gate(patterns, re.IGNORECASE, enabled=gated)

    def matches(text: str, folded: str | None = None) -> bool:
        """`folded`: text.casefold(), when the caller has it already."""
        return any(searches[k](text) for k in gate.candidates(text, folded))

    return matches
