"""`dedup.minhash`: drop near-duplicate rows (MinHash + LSH), clustered across all sources.

The pipeline per run: texts -> shingle hashes (numpy, whole chunks at once) -> rensa R-MinHash
signatures (one batch call per chunk) -> LSH banding (numpy) -> candidate pairs verified by the
estimated Jaccard -> connected components -> one kept row per component by the keep policy.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curate.ledger import Drop
from curate.progress import progress
from curate.rows import text_of
from curate.steps.base import as_table, values
from curate.steps.dedup.keep import KeepFilter, KeepPolicy, conversation_lengths
from curate.steps.dedup.lsh import (band_rows, bucket_pairs, component_clusters, estimated_pairs, lsh_pairs, lsh_params,
                                    signature_copies, star_clusters_with_copies)
from curate.steps.dedup.shingles import exact_jaccard, signatures
from curate.steps.grouping import Grouping
from curate.steps.registry import register

TextKey = Literal["prompt", "response", "conversation", "first_user"]
LSH_WEIGHTS = (0.1, 0.9)  # (false positive, false negative) weights for the default banding


class MinHashParams(KeepPolicy):
    key: TextKey = "conversation"
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(5, ge=1, le=64)
    num_perm: int = Field(128, ge=8, le=1024)
    threshold: float = Field(0.8, gt=0.0, le=1.0)
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    seed: int | None = None
    verify: Literal["exact", "estimate"] = "exact"
    cluster: Literal["star", "components"] = "star"

    @model_validator(mode="after")
    def _banding(self):
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither (then they are derived from threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} is more than num_perm = {self.num_perm}")
        return self


@register
class MinHashDedup(KeepFilter):
    """Near-duplicate removal by MinHash signatures (rensa R-MinHash) and LSH banding.

    Params:
    - `key` (default "conversation"): the text compared: prompt | response | conversation | first_user.
    - `shingle` (default "word") and `ngram` (default 5): the set each text becomes: word n-grams
      (words = whitespace-separated tokens) or character n-grams. Texts are NFC-normalised, lower-cased
      and whitespace-collapsed first. A text shorter than `ngram` units is one shingle (the whole text);
      an empty text gets no signature and is never a duplicate (empties are a filter's job).
    - `num_perm` (default 128): signature length; the Jaccard estimate's error is about
      sqrt(J(1-J)/num_perm), i.e. +-0.035 at J=0.8 with 128.
    - `threshold` (default 0.8): rows whose Jaccard similarity is >= threshold are linked.
    - `verify` ("exact"): LSH proposes pairs whose estimated similarity is near the threshold, and the exact
      Jaccard of their shingle sets decides; "estimate" links on the signature estimate alone (faster, and
      off by about +-0.035 at 0.8 with 128 permutations).
    - `cluster` ("star"): rows are walked best first (the keep policy's order); a row not yet placed is kept
      and every unplaced row linked to it is dropped as its duplicate, so every dropped row is within the
      threshold of the row it names. "components" drops all but one row of each connected component
      (A~B and B~C drop C even when A and C are unlike: on templated data a chain can swallow thousands).
    - `bands` / `rows` (default: derived): LSH banding. When not given, datasketch's rule (the
      bands x rows <= num_perm minimising the weighted false-positive and false-negative areas
      around a threshold) with the weights 0.1 / 0.9 instead of 0.5 / 0.5: LSH only proposes
      candidates and each is verified, so a false positive costs one comparison while a false negative
      loses a duplicate. With `verify: exact` the banding is for the candidate threshold (the threshold
      less three standard errors of the estimate: 0.69 for 0.8 / 128), 21 x 6, which proposes 99.8% of
      the pairs right at 0.8; with `verify: estimate` it is for the threshold, 14 x 9 (87% at 0.8, ~99%
      at 0.88, where datasketch's 9 x 13 finds ~85%).
    - `seed` (default: the step's seed from the recipe): the MinHash permutation seed.
    - `keep` (default "first") / `score_column`: which row of a cluster stays (see dedup.exact).

    Each dropped row gets `Drop(reason="near duplicate (minhash jaccard>=0.8)", duplicate_of=<kept row id>,
    detail=...)` with detail `jaccard` (its similarity to the kept row with star clusters, to its best link
    with components), `kept_index`, `cluster` (0-based, in the order clusters were formed) and
    `cluster_size`. Notes: the pairs proposed and verified, the clusters, the largest ones, and an `alarm`
    when the step dropped more than `alarm_share` of a source's rows (see dedup.exact).

    Deterministic: the same rows, params and seed give the same drops.
    """

    name = "dedup.minhash"
    Params = MinHashParams

    def keys(self, batch: pa.Table) -> dict[str, np.ndarray]:
        """Per row its signature (num_perm uint32), whether it had any text, and its conversation length."""
        p: MinHashParams = self.params
        messages = values(batch, "messages")
        n = len(messages)
        seed = self.ctx.seed if p.seed is None else p.seed
        with progress(n, f"{self.ctx.label}: hashing", min_rows=20_000) as advance:
            sig, has_text = signatures(
                (text_of(m, p.key) for m in messages), n, p.ngram, p.shingle, p.num_perm, seed, advance
            )
        return {"sig": sig, "has_text": has_text, "length": conversation_lengths(messages)}

    def decide(self, table: pa.Table, keys: dict | None = None) -> list[Drop | None]:
        table = as_table(table)  # a datasets.Dataset works too
        p: MinHashParams = self.params
        keys = self.own_keys(table, keys)
        sig, reps, heads, copies, texts, bands, rows = self._prepare(table, keys)
        if p.verify == "exact":  # candidates a little below the threshold, then the shingle sets decide
            a, b, _ = lsh_pairs(sig, reps, bands, rows, self._low())
            jaccard = exact_jaccard(texts, a, b, p.ngram, p.shingle, map_tasks=self.ctx.map or map)
            ok = jaccard >= p.threshold - 1e-12
            notes = {"candidate_pairs": len(a), "verified_pairs": int(ok.sum())}
            a, b, sim = a[ok], b[ok], jaccard[ok]
        else:
            a, b, sim = lsh_pairs(sig, reps, bands, rows, p.threshold)
            notes = {"linked_pairs": len(a)}
        return self._clusters(table, keys, a, b, sim, heads, copies, notes, bands, rows)

    def grouping(self, table: pa.Table, keys: dict | None = None) -> Grouping:
        """The candidate pairs and their verification as two shuffles (for a cluster): each row's band keys
        grouped by (band, key) -> each bucket's pairs (`bucket_pairs`, as `candidate_pairs` makes them);
        pairs grouped by pair -> each once, estimated, verified (`verify_pairs`) -> only the linked pairs
        come back, to the same clustering as `decide`. Identical signatures are grouped first, as in
        `decide` (on the driver: one sort of a key per row)."""
        table = as_table(table)
        p: MinHashParams = self.params
        keys = self.own_keys(table, keys)
        sig, reps, heads, copies, texts, bands, rows = self._prepare(table, keys)
        n = table.num_rows
        verify = partial(verify_pairs, n=n, sig=sig, low=self._low(), threshold=p.threshold,
                         texts=texts if p.verify == "exact" else None, ngram=p.ngram, shingle=p.shingle)

        def finish(edges: pa.Table) -> list[Drop | None]:
            a, b, sim = (edges.column(c).to_numpy() for c in ("a", "b", "sim"))
            tally = a < 0  # each partition's count of candidate pairs, as a row (a = -1, b = count)
            candidates = int(b[tally].sum())
            order = np.lexsort((b[~tally], a[~tally]))  # as decide's pairs come: by (a, b)
            a, b, sim = a[~tally][order], b[~tally][order], sim[~tally][order]
            notes = ({"candidate_pairs": candidates, "verified_pairs": len(a)} if p.verify == "exact"
                     else {"linked_pairs": len(a)})
            return self._clusters(table, keys, a, b, sim, heads, copies, notes, bands, rows)

        return Grouping(pa.table({"_pos": reps}), (partial(bucket_pairs, n=n), verify), finish,
                        expand=partial(band_rows, sig=sig, bands=bands, rows=rows), fanout=bands)

    def _low(self) -> float:
        """The candidate threshold of `verify: exact`: the threshold less three standard errors."""
        p: MinHashParams = self.params
        margin = 3 * math.sqrt(p.threshold * (1 - p.threshold) / p.num_perm) + 1 / p.num_perm
        return max(p.threshold - margin, 0.0)

    def _prepare(self, table: pa.Table, keys: dict):
        """The signatures, the rows that go through LSH (`reps`: one of each group of identical signatures),
        the groups' (heads, copies), the texts, and the banding."""
        p: MinHashParams = self.params
        n = table.num_rows
        sig, has_text = keys["sig"].reshape(n, p.num_perm), keys["has_text"].astype(bool)
        reps, heads, copies = signature_copies(sig, has_text)
        texts = partial(_texts_of, fetch=self.ctx.fetch or partial(_take, table), key=p.key)
        if p.verify == "exact":
            same = exact_jaccard(texts, heads, copies, p.ngram, p.shingle, map_tasks=self.ctx.map or map) >= 1.0 - 1e-12
            # a copy whose shingle set is not its head's after all goes through LSH as a row of its own
            reps, heads, copies = np.sort(np.concatenate([reps, copies[~same]])), heads[same], copies[same]
            # banded for the lower threshold: a pair right at the threshold is a candidate 99.8% of the time
            # (0.8, 128 permutations: 21 x 6 bands instead of 14 x 9, which finds it 87% of the time)
            bands, rows = (p.bands, p.rows) if p.bands is not None else lsh_params(self._low(), p.num_perm, *LSH_WEIGHTS)
        else:
            bands, rows = (p.bands, p.rows) if p.bands is not None else lsh_params(p.threshold, p.num_perm, *LSH_WEIGHTS)
        return sig, reps, heads, copies, texts, bands, rows

    def _clusters(self, table: pa.Table, keys: dict, a, b, sim, heads, copies, notes: dict, bands: int,
                  rows: int) -> list[Drop | None]:
        """The linked pairs (a, b, similarity) and the signature copies as clusters, one kept row each."""
        p: MinHashParams = self.params
        n = table.num_rows
        notes["copies"] = len(copies)
        priority = self.priority(table, keys)
        if p.cluster == "star":
            decided = star_clusters_with_copies(a, b, sim, priority, heads, copies)
        else:
            one = np.ones(len(copies))
            decided = component_clusters(n, np.concatenate([heads, a]), np.concatenate([copies, b]),
                                         np.concatenate([one, sim]), priority)
        ids = self.ids_of(table, [kept for kept, _ in decided])
        out: list[Drop | None] = [None] * n
        reason = f"near duplicate (minhash jaccard>={p.threshold:g})"
        for cluster, (kept, dropped) in enumerate(decided):
            for i, j in dropped:
                detail = {"jaccard": round(float(j), 4), "kept_index": kept, "cluster": cluster,
                          "cluster_size": len(dropped) + 1}
                out[i] = Drop(reason, ids[kept], detail)
        self.note_clusters(decided)
        self.ctx.notes.update({"lsh_bands": bands, "lsh_rows": rows, "verify": p.verify, "cluster": p.cluster, **notes})
        self.check_alarm(table, out)
        return out


def _take(table: pa.Table, indices: np.ndarray, columns: list[str]) -> pa.Table:
    return table.take(pa.array(indices, pa.int64())).select(columns)


def _texts_of(indices: np.ndarray, fetch, key: str) -> list[str]:
    """The compared text of those rows (`fetch`: the engine's access to the run's rows, or the table's)."""
    rows = fetch(indices, ["messages"])
    return [text_of(m, key) for m in rows.column("messages").to_pylist()]


def verify_pairs(pairs: pa.Table, n: int, sig: np.ndarray, low: float, threshold: float, texts, ngram: int,
                 shingle: str) -> pa.Table:
    """A shuffle stage: pairs (whole groups of equal pairs) -> each once, estimated (>= low, or >= threshold
    without `texts`), then verified by the exact Jaccard of their shingle sets (with `texts`). The linked
    pairs (a, b, sim), and one row (a = -1, b = the candidates counted) for the notes."""
    a, b = (pairs.column(c).to_numpy().astype(np.int64) for c in ("a", "b"))
    code = np.unique(a * n + b)
    a, b = code // n, code % n
    if texts is not None:
        a, b, _ = estimated_pairs(sig, a, b, low)
        candidates = len(a)
        jaccard = exact_jaccard(texts, a, b, ngram, shingle) if len(a) else np.zeros(0)
        ok = jaccard >= threshold - 1e-12
        a, b, sim = a[ok], b[ok], jaccard[ok]
    else:
        a, b, sim = estimated_pairs(sig, a, b, threshold)
        candidates = len(a)
    return pa.table({"a": np.append(a, -1), "b": np.append(b, candidates), "sim": np.append(sim, 0.0)})
