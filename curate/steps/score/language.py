"""`score.language`: the language of one text of each row, with py3langid."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import pyarrow as pa
from pydantic import Field, field_validator

from curate.errors import did_you_mean
from curate.rows import TEXT_KEYS, text_of
from curate.steps.base import Scorer, StepParams, as_table, values
from curate.steps.registry import register
from curate.steps.score.langid_batch import classify_many


@lru_cache(maxsize=1)
def _model():
    # Loading the model takes most of a second: once per process. norm_probs gives a probability.
    # The full label list is kept apart: set_languages() narrows `labels` on the shared identifier.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return identifier, tuple(identifier.labels)


def _identifier():
    return _model()[0]


def all_languages() -> tuple[str, ...]:
    return _model()[1]


@register
class Language(Scorer):
    """Identify the language of each row's text with py3langid.

    Columns: `lang` (ISO 639 code such as "en"; "" when the text is empty) and `lang_confidence`
    (py3langid's normalised probability, 0..1; NaN when the text is empty). Both get a `_why` column
    saying why a row has no language.

    Params:
    - `key` ("response"): which text to look at: prompt, response, conversation or first_user.
    - `languages` (null: all of py3langid's ~140): restrict the choice to these codes, e.g. [en, de].
    - `max_chars` (2000): classify only the first this many characters, which is plenty and keeps
      long rows fast; null for the whole text.
    """

    name = "score.language"

    class Params(StepParams):
        key: Literal[tuple(TEXT_KEYS)] = "response"
        languages: list[str] | None = Field(None, min_length=1)
        max_chars: int | None = Field(2000, ge=1)

        @field_validator("languages")
        @classmethod
        def _known_languages(cls, langs):
            if langs is None:
                return langs
            known = all_languages()
            for code in langs:
                if code not in known:
                    raise ValueError(f"py3langid does not know the language {code!r}{did_you_mean(code, known)}")
            return langs

    def adds(self) -> list[str]:
        return ["lang", "lang_why", "lang_confidence", "lang_confidence_why"]

    def score(self, batch: pa.Table) -> dict[str, list]:
        batch = as_table(batch)  # a datasets.Dataset works too
        p = self.params
        identifier = _identifier()
        identifier.set_languages(p.languages)  # None resets a restriction left by another step
        texts = [text_of(m, p.key) for m in values(batch, "messages")]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        found = classify_many(identifier, [texts[i][: p.max_chars] if p.max_chars else texts[i] for i in todo])
        langs, confidences, whys = [""] * len(texts), [math.nan] * len(texts), [f"empty {p.key}"] * len(texts)
        for i, (lang, confidence) in zip(todo, found):
            langs[i], confidences[i], whys[i] = lang, float(confidence), None
        return {"lang": langs, "lang_why": whys, "lang_confidence": confidences, "lang_confidence_why": list(whys)}
