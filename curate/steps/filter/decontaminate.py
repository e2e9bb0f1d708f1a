"""`decontaminate`: drop rows that share a long word n-gram (or, optionally, an embedding) with an eval set."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curate.embeddings import DEFAULT_MODEL, Embedder
from curate.errors import CurateError
from curate.registry import register
from curate.rows import text_of
from curate.steps.base import Drop, Filter, StepParams, as_table, values
from curate.textsets import Texts, TextSet, load_texts
from curate.vectors import BLOCK, embedding_matrix

_WORD = re.compile(r"\w+")
_P = np.uint64(0x100000001B3)


def words(text: str) -> list[str]:
    """The normalised words n-grams are made of: NFKC, lower case, runs of letters/digits/underscore
    (punctuation and whitespace only separate words)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


@register
class Decontaminate(Filter):
    """Drop rows whose prompt or response shares a long word n-gram with an eval set (the test of
    GPT-3's contamination study: 13 words), and optionally rows whose embedding is too close to an
    eval text.

    Params:
    - `eval_sets` (required): a list of text sets; each is a source spec (`path` files or a `hub` id,
      with `format`, `options`, `config`, `split`, `csv_columns`, `limit`, ... as under `sources:`)
      plus `key` (which text of each eval row: prompt by default), `field` (for prompt-only files such
      as ../shared/data/eval_prompts: the field that holds the text) and `name` (default: the file's
      stem or the hub id). Relative paths are tried against the recipe's folder first.
    - `check` ([prompt, response]): which texts of each row are compared (prompt, response,
      conversation, first_user).
    - `ngram` (13): the n-gram length in words. Texts are NFKC-normalised and lower-cased, and words
      are runs of letters and digits, so punctuation and spacing do not hide an overlap.
    - `min_ngram` (8): an eval text shorter than `ngram` words but at least this long is matched whole
      (its full word sequence appearing in a row is an overlap); shorter eval texts are not checked
      by n-grams (counted in the notes as `too_short`). Set it equal to `ngram` to turn this off.
    - `embedding_threshold` (null: off): also drop rows whose vector (the `embedding_column` of an
      earlier `embed` step) has cosine similarity >= this with an eval text, embedded with `model`
      (`batch_size`, `device`, `cache_dir` as in `embed`). 0.9 catches close paraphrases with MiniLM.
    - `embedding_column` ("embedding"), `model` ("sentence-transformers/all-MiniLM-L6-v2"),
      `batch_size` (64), `device` (null), `cache_dir` (".curate/embeddings").

    Each dropped row gets `Drop(reason="contaminated: 13-gram shared with <eval set>", detail=...)` with
    detail `eval_set`, `eval_row` (file:line, "file record N" or "hub[split] row N"), `eval_id` (the
    eval record's own id field when it has one), `field` (which text of the row matched) and `ngram`
    (the shared words); or, for the embedding check, reason "contaminated: embedding similarity >= 0.9
    with <eval set>" and detail `eval_set`, `eval_row`, `eval_id`, `similarity`. The n-gram check wins
    when both match. Notes: eval texts per set, n-grams indexed, too-short eval texts, drops by check.
    """

    name = "decontaminate"

    class Params(StepParams):
        eval_sets: list[TextSet] = Field(min_length=1)
        check: list[Literal["prompt", "response", "conversation", "first_user"]] = Field(
            default_factory=lambda: ["prompt", "response"], min_length=1)
        ngram: int = Field(13, ge=1, le=64)
        min_ngram: int = Field(8, ge=1, le=64)
        embedding_threshold: float | None = Field(None, gt=0.0, le=1.0)
        embedding_column: str = "embedding"
        model: str = DEFAULT_MODEL
        batch_size: int = Field(64, ge=1, le=4096)
        device: str | None = None
        cache_dir: str | None = ".curate/embeddings"

        @model_validator(mode="after")
        def _min_below_n(self):
            if self.min_ngram > self.ngram:
                raise ValueError(f"min_ngram ({self.min_ngram}) is larger than ngram ({self.ngram})")
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
        """The eval sets and their n-gram index, built once per process (not once per batch)."""
        if getattr(self, "_index", None) is None:
            p = self.params
            sets = [load_texts(spec, f"{self.ctx.where}.eval_sets[{j}]", self.ctx.recipe_dir)
                    for j, spec in enumerate(p.eval_sets)]
            index = NgramIndex(p.ngram, p.min_ngram)
            for s, texts in enumerate(sets):
                for r, text in enumerate(texts.texts):
                    index.add(words(text), (s, r))
            self._index = sets, index
        return self._index

    def decide(self, batch: pa.Table) -> list[Drop | None]:
        batch = as_table(batch)  # a datasets.Dataset works too
        p = self.params
        sets, index = self._eval_index()
        messages = values(batch, "messages")
        out: list[Drop | None] = [None] * batch.num_rows
        by_check = {f"ngram_{field}": 0 for field in p.check}
        for field in p.check:
            texts = [words(text_of(m, field)) for m in messages]
            for i, hit in enumerate(index.find(texts)):
                if hit is None or out[i] is not None:
                    continue
                (s, r), gram = hit
                name = sets[s].name
                n = len(gram)
                out[i] = Drop(f"contaminated: {n}-gram shared with {name}", None,
                              {**_eval_ref(sets[s], r), "field": field, "ngram": " ".join(gram)})
                by_check[f"ngram_{field}"] += 1

        if p.embedding_threshold is not None:
            by_check["embedding"] = self._embedding_check(batch, sets, out)
        self.ctx.notes.update({
            "eval_sets": {t.name: len(t.texts) for t in sets},
            "ngrams_indexed": index.size, "too_short": index.too_short,
        })
        for check, n in by_check.items():
            self.ctx.count(check, n, group="dropped_by_check")
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


class NgramIndex:
    """Hashes of every `n`-word window of the eval texts (and, for eval texts of min_n..n-1 words, of
    the whole text), each with the first eval row it came from. Windows are hashed with a polynomial
    over word ids, vectorised over all texts at once; a hit is confirmed on the words themselves."""

    def __init__(self, n: int, min_n: int):
        self.n, self.min_n = n, min_n
        self.vocab: dict[str, int] = {}
        self.tables: dict[int, dict[int, tuple]] = {}  # length -> hash -> (owner, words)
        self.too_short = 0

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.tables.values())

    def _ids(self, ws: list[str], grow: bool) -> np.ndarray:
        if grow:
            return np.fromiter((self.vocab.setdefault(w, len(self.vocab) + 1) for w in ws), dtype=np.uint64, count=len(ws))
        get = self.vocab.get
        return np.fromiter((get(w, 0) for w in ws), dtype=np.uint64, count=len(ws))

    def add(self, ws: list[str], owner) -> None:
        length = min(self.n, len(ws))
        if length < self.min_n:
            self.too_short += 1
            return
        table = self.tables.setdefault(length, {})
        hashes, _ = _window_hashes([self._ids(ws, grow=True)], length)
        for start, h in enumerate(hashes.tolist()):
            if h not in table:
                table[h] = (owner, tuple(ws[start:start + length]))

    def find(self, texts: list[list[str]]) -> list[tuple | None]:
        """For each text (a list of words), (owner, shared words) of its first overlap, or None."""
        hits: list[tuple | None] = [None] * len(texts)
        if not self.tables:
            return hits
        ids = [self._ids(ws, grow=False) for ws in texts]
        for length in sorted(self.tables, reverse=True):  # the full n first
            table = self.tables[length]
            keys = np.fromiter(table.keys(), dtype=np.uint64, count=len(table))
            hashes, text_of_window = _window_hashes(ids, length)
            offsets = np.concatenate([[0], np.cumsum([len(a) for a in ids])])
            for w in np.flatnonzero(np.isin(hashes, keys)).tolist():
                i = int(text_of_window[w])
                if i < 0 or hits[i] is not None:  # a window across two texts, or a text already matched
                    continue
                start = w - int(offsets[i])
                owner, gram = table[int(hashes[w])]
                if tuple(texts[i][start:start + length]) == gram:  # not a hash collision
                    hits[i] = (owner, gram)
        return hits


def _window_hashes(ids_list: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, text index) of every window of n consecutive ids, over all texts at once (n vector
    operations on the concatenation). Windows that run from one text into the next get the text
    index -1 (to be ignored); a window's position is its start in the concatenation."""
    lengths = np.fromiter((len(a) for a in ids_list), dtype=np.int64, count=len(ids_list))
    flat = np.concatenate(ids_list) if len(ids_list) else np.zeros(0, np.uint64)
    m = len(flat) - n + 1
    if m <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    with np.errstate(over="ignore"):
        h = np.zeros(m, dtype=np.uint64)
        for k in range(n):
            h = h * _P + flat[k:k + m] + np.uint64(1)
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    owner = np.repeat(np.arange(len(lengths)), lengths)[:m]
    ends = np.concatenate([[0], np.cumsum(lengths)])[1:]  # a window [g, g+n) fits if g + n <= end of its text
    inside = np.arange(m) + n <= ends[owner]
    owner = np.where(inside, owner, -1)
    return h, owner
