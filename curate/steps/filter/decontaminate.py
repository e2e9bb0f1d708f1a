"""`decontaminate`: drop rows that share a long word n-gram (or, optionally, an embedding) with an eval set."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curate.embeddings import DEFAULT_MODEL, Embedder
from curate.errors import CurateError
from curate.ledger import Drop
from curate.rows import text_of
from curate.steps.base import Filter, StepParams, as_table, values
from curate.steps.filter.overlap import CHECKS, OverlapIndex, words
from curate.steps.registry import register
from curate.textsets import Texts, TextSet, load_texts
from curate.vectors import BLOCK, embedding_matrix

@register
class Decontaminate(Filter):
    """Drop rows that contain an item of an eval set (its words, whatever its length), and optionally rows
    whose embedding is too close to an eval text.

    Params:
    - `eval_sets` (required): a list of text sets; each is a source spec (`path` files or a `hub` id,
      with `format`, `options`, `config`, `split`, `csv_columns`, `limit`, ... as under `sources:`)
      plus `key` (which text of each eval row: `auto`, the default, takes the question of a
      multiple-choice or QA set and the prompt otherwise), `field` (for prompt-only files such as
      ../shared/data/eval_prompts: the field that holds the text) and `name` (default: the file's stem
      or the hub id). Relative paths are tried against the recipe's folder first.
    - `check` ([prompt, response]): which texts of each row are compared (prompt, response,
      conversation, first_user).
    - `ngram` (13), `min_ngram` (8) and `min_words` (4): how an eval item of L words is looked for (texts
      are NFKC-normalised and lower-cased; words are runs of letters and digits, so punctuation and spacing
      hide nothing). L >= ngram: any `ngram` consecutive words of it. min_ngram <= L < 2 x ngram: also the
      whole item with at most one word different (a changed word or number; past 2 x ngram words a single
      change always leaves a shared n-gram). min_words <= L < min_ngram: the whole item exactly, where it
      makes up at least half of the row's text. L < min_words: not checked (counted as uncheckable).
    - `answer_aware` (false): a match counts only when the item's answer (a multiple-choice item's correct
      option, a QA item's final answer) also appears in the row; cuts false positives on generic questions,
      misses copies of a question without its answer.
    - `embedding_threshold` (null: off): also drop rows whose vector (the `embedding_column` of an
      earlier `embed` step) has cosine similarity >= this with an eval text, embedded with `model`
      (`batch_size`, `device`, `cache_dir` as in `embed`). 0.9 catches close paraphrases with MiniLM.
    - `embedding_column` ("embedding"), `model` ("sentence-transformers/all-MiniLM-L6-v2"),
      `batch_size` (64), `device` (null), `cache_dir` (".curate/embeddings").

    Each dropped row gets a `Drop` with the reason "contaminated: 13-gram shared with <eval set>", "contaminated:
    whole <eval set> item" or "contaminated: <eval set> item with one word changed", and detail
    `eval_set`, `eval_row` (file:line, "file record N" or "hub[split] row N"), `eval_id` (the eval record's
    own id field when it has one), `field` (which text of the row matched), `ngram` (the row's matching
    words), `check` (ngram, near, whole) and `differs` (words that differ); or, for the embedding check,
    reason "contaminated: embedding similarity >= 0.9 with <eval set>" and detail `eval_set`, `eval_row`,
    `eval_id`, `similarity`. The word check wins when both match. Notes, per eval set: `items`, how many are
    checked each way (`by_check`: ngram, near, whole, uncheckable) and the rows matched; `dropped_by_check`
    counts rows by the field that matched.
    """

    name = "filter.decontaminate"
    aliases = ("decontaminate",)

    class Params(StepParams):
        eval_sets: list[TextSet] = Field(min_length=1)
        check: list[Literal["prompt", "response", "conversation", "first_user"]] = Field(
            default_factory=lambda: ["prompt", "response"], min_length=1)
        ngram: int = Field(13, ge=1, le=64)
        min_ngram: int = Field(8, ge=1, le=64)
        min_words: int = Field(4, ge=1, le=64)
        answer_aware: bool = False
        embedding_threshold: float | None = Field(None, gt=0.0, le=1.0)
        embedding_column: str = "embedding"
        model: str = DEFAULT_MODEL
        batch_size: int = Field(64, ge=1, le=4096)
        device: str | None = None
        cache_dir: str | None = ".curate/embeddings"

        @model_validator(mode="after")
        def _lengths_in_order(self):
            if self.min_ngram > self.ngram:
                raise ValueError(f"min_ngram ({self.min_ngram}) is larger than ngram ({self.ngram})")
            if self.min_words > self.min_ngram:
                raise ValueError(f"min_words ({self.min_words}) is larger than min_ngram ({self.min_ngram})")
            return self

    @classmethod
    def cache_token(cls, params, recipe_dir: str = ".") -> list:
        """The eval sets' contents (sha256 of local files), for the pipeline's step cache key: a changed
        eval file must not be served a cached result."""
        from curate.textsets import fingerprint

        return [fingerprint(spec, recipe_dir) for spec in params.eval_sets]

    def parallel(self) -> bool:
        return self.params.embedding_threshold is None  # the embedding check loads a model: in-process

    def reads(self) -> dict[str, str]:
        p = self.params
        return {"embedding_column": p.embedding_column} if p.embedding_threshold is not None else {}

    def _eval_index(self):
        """The eval sets and their index, built once per process (not once per batch)."""
        if getattr(self, "_index", None) is None:
            p = self.params
            sets = [load_texts(spec, f"{self.ctx.where}.eval_sets[{j}]", self.ctx.recipe_dir)
                    for j, spec in enumerate(p.eval_sets)]
            index = OverlapIndex(p.ngram, p.min_ngram, p.min_words)
            checks = []
            for s, texts in enumerate(sets):
                counts = dict.fromkeys(CHECKS, 0)
                for r, text in enumerate(texts.texts):
                    counts[index.add(words(text), (s, r))] += 1
                checks.append(counts)
            index.prune()
            answers = [[words(a) if a else None for a in t.answers] for t in sets]
            self._index = sets, index, checks, answers
        return self._index

    def decide(self, batch: pa.Table) -> list[Drop | None]:
        batch = as_table(batch)  # a datasets.Dataset works too
        p = self.params
        sets, index, checks, answers = self._eval_index()
        messages = values(batch, "messages")
        out: list[Drop | None] = [None] * batch.num_rows
        by_check = {f"ngram_{field}": 0 for field in p.check}
        matched = dict.fromkeys((t.name for t in sets), 0)
        everything = [words(text_of(m, "conversation")) for m in messages] if p.answer_aware else None
        for field in p.check:
            texts = [words(text_of(m, field)) for m in messages]
            for i, hit in enumerate(index.find(texts)):
                if hit is None or out[i] is not None:
                    continue
                s, r = hit.item
                if everything is not None and not _contains(everything[i], answers[s][r]):
                    continue  # the question without its answer: not counted in answer-aware mode
                name = sets[s].name
                out[i] = Drop(_reason(hit, name), None,
                              {**_eval_ref(sets[s], r), "field": field, "ngram": " ".join(hit.words),
                               "check": hit.check, "differs": hit.differs})
                by_check[f"ngram_{field}"] += 1
                matched[name] += 1

        if p.embedding_threshold is not None:
            by_check["embedding"] = self._embedding_check(batch, sets, out)
        self.ctx.notes.update({
            "eval_sets": {t.name: len(t.texts) for t in sets},
            "by_check": {t.name: c for t, c in zip(sets, checks)},
            "too_short": sum(c["uncheckable"] for c in checks),
            "ngrams_indexed": index.size,
        })
        for check, n in by_check.items():
            self.ctx.count(check, n, group="dropped_by_check")
        for name, n in matched.items():
            self.ctx.count(name, n, group="rows_matched")
        return out

    def _embedding_check(self, batch: pa.Table, sets: list[Texts], out: list[Drop | None]) -> int:
        p = self.params
        X, ok = embedding_matrix(batch, p.embedding_column, f"{self.ctx.where}.embedding_column")
        all_texts = [t for s in sets for t in s.texts]
        owner = [(s, r) for s, texts in enumerate(sets) for r in range(len(texts.texts))]
        E = Embedder(p.model, p.batch_size, p.cache_dir, p.device, recipe_dir=self.ctx.recipe_dir,
                     where=f"{self.ctx.where}.model").encode(all_texts)
        good = np.flatnonzero(np.isfinite(E).all(axis=1))
        if not len(good) or not ok.any():
            return 0
        if E.shape[1] != X.shape[1]:
            raise CurateError(f"the eval texts' vectors have {E.shape[1]} dimensions and {p.embedding_column!r} has "
                              f"{X.shape[1]}: use the embed step's model", f"{self.ctx.where}.model")
        E = E[good]
        dropped = 0
        rows = np.flatnonzero(ok)
        for s in range(0, len(rows), BLOCK):
            block = rows[s:s + BLOCK]
            sims = X[block] @ E.T
            arg = sims.argmax(axis=1)
            best = sims[np.arange(len(block)), arg]
            for i, j, sim in zip(block, arg, best):
                if sim >= p.embedding_threshold and out[i] is None:
                    es, er = owner[good[j]]
                    out[i] = Drop(f"contaminated: embedding similarity >= {p.embedding_threshold:g} with {sets[es].name}",
                                  None, {**_eval_ref(sets[es], er), "similarity": round(float(sim), 4)})
                    dropped += 1
        return dropped


def _eval_ref(texts: Texts, r: int) -> dict:
    return {"eval_set": texts.name, "eval_row": texts.locations[r], "eval_id": texts.ids[r]}


def _reason(hit, name: str) -> str:
    if hit.check == "ngram":
        return f"contaminated: {len(hit.words)}-gram shared with {name}"
    return f"contaminated: {name} item with one word changed" if hit.differs else f"contaminated: whole {name} item"


def _contains(row: list[str], answer: list[str] | None) -> bool:
    """Do the answer's words appear, in order and together, in the row's words? (No answer: yes.)"""
    if not answer:
        return True
    n = len(answer)
    first = answer[0]
    return any(row[i:i + n] == answer for i in range(len(row) - n + 1) if row[i] == first)
