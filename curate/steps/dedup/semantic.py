"""`dedup.semantic`: SemDeDup — drop rows whose embeddings are nearly the same direction as a kept row's.

k-means splits the pool into clusters (so the pairwise comparison stays cheap on large pools); inside
each cluster every pair is compared by cosine similarity, blockwise. Rows are then walked in the order
of the keep policy (the row a policy prefers first), and a row is dropped when it is a duplicate of a
row already kept; so every dropped row names a kept row it really is that similar to, and no two kept
rows are (no chains).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.embeddings import DEFAULT_MODEL, Embedder, static_model_path
from curate.ledger import Drop
from curate.rows import text_of
from curate.steps.base import as_table, values
from curate.steps.dedup.keep import KeepFilter, KeepPolicy, _rank_score, conversation_lengths, score_values
from curate.steps.registry import register
from curate.vectors import BLOCK, auto_clusters, embedding_matrix, kmeans

ROWS_PER_CLUSTER = 10_000  # the automatic k: about this many rows per cluster


class SemanticParams(KeepPolicy):
    column: str = Field("embedding", min_length=1)
    eps: float = Field(0.1, gt=0.0, lt=1.0)
    clusters: int | None = Field(None, ge=1)
    probes: int = Field(2, ge=1)
    backend: Literal["sklearn", "faiss"] = "sklearn"
    seed: int | None = None
    mode: Literal["full", "fast"] = "full"
    key: Literal["prompt", "response", "conversation", "first_user"] = "prompt"
    model: str = DEFAULT_MODEL
    fast_model: str | None = None
    candidate_threshold: float = Field(0.75, gt=0.0, lt=1.0)
    batch_size: int = Field(64, ge=1, le=4096)
    device: str | None = None
    cache_dir: str | None = ".curate/embeddings"


@register
class SemanticDedup(KeepFilter):
    """Semantic deduplication (SemDeDup) over the embeddings of an earlier `embed` step.

    Rows are clustered with k-means; inside each cluster (each row also visits its next-nearest
    clusters, `probes`), two rows whose cosine similarity exceeds 1 - `eps` are duplicates. Rows are walked in the keep policy's order (for `first`, dataset order)
    and each is dropped if it duplicates a row already kept, else kept; so a group of duplicates keeps
    exactly the row the policy prefers, and rows that are only similar through a chain (A~B, B~C) are
    not merged.

    Params:
    - `column` ("embedding"): the vectors, written by an `embed` step before this one (whose `key`
      decides what is compared: prompt, response, conversation or first_user).
    - `eps` (0.1): duplicates have cosine similarity > 1 - eps (0.9). With all-MiniLM-L6-v2 on
      prompts, the same request reworded scores about 0.9-0.98, while pairs at 0.85-0.9 are often
      different tasks on one topic ("XML to JSON" / "JSON to XML"); see bench/README.md for
      the recall of planted paraphrases at several values.
    - `clusters` (null: one per 10,000 rows, so a pool of up to 10k rows compares every pair): the
      number of k-means clusters. More clusters compare fewer pairs (faster on large pools) and may
      miss a pair split across two clusters.
    - `probes` (2): each row is compared within its nearest `probes` clusters (by cosine similarity
      to the centroids), which recovers most pairs that straddle a cluster boundary; 1 is plain SemDeDup.
    - `backend` ("sklearn"): k-means by scikit-learn, or "faiss" (spherical k-means; needs faiss).
    - `seed` (default: the step's seed): the k-means seed.
    - `keep` (default "first") / `score_column`: which row of a group stays (see dedup.exact).
    - `mode` ("full"): "fast" needs no `embed` step. A static model (model2vec, distilled from `model` once
      and cached in .curate/models, or `fast_model`: a model2vec folder) embeds every row's `key` text
      (prompt by default) about a hundred times faster than MiniLM; pairs it finds above
      `candidate_threshold` (0.75) are candidates only: their rows are embedded with `model` (MiniLM by
      default; `batch_size`, `device`, `cache_dir` as in `embed`) and that model decides, with `eps` as in
      full mode. The static model alone agrees poorly with MiniLM on which pairs are duplicates, so it never
      decides. At 0.75, on the real 7.3k pool with planted paraphrases, fast mode drops 98% of the rows full
      mode drops while MiniLM embeds half the rows (0.8: 95% for a third; 0.7: all of them for two
      thirds; bench/README.md). What it saves is the share of rows with no near neighbour: on a pool where
      most rows have one, MiniLM embeds most rows anyway.

    Rows without a vector (an empty text) are never duplicates. Each dropped row gets
    `Drop(reason="semantic duplicate (cosine>0.9)", duplicate_of=<kept row id>, detail=...)` with
    detail `similarity` (cosine similarity to that kept row, the most similar kept one), `kept_index`,
    `cluster` (the row's nearest k-means cluster) and `group_size` (the kept row and every row dropped
    for it). Notes: clusters, the largest cluster, similar pairs found, duplicates, rows without a vector.
    Deterministic: the same rows, params and seed give the same drops.
    """

    name = "dedup.semantic"
    Params = SemanticParams

    @classmethod
    def cache_token(cls, params, recipe_dir: str = ".") -> str | None:
        """Fast mode: the reference model's files and the static model's (distilled here, in the main
        process, once, before any worker needs it)."""
        if params.mode != "fast":
            return None
        from curate.embeddings import model_fingerprint, resolve_model, static_model_path

        static = static_model_path(params.model, params.fast_model, recipe_dir, "dedup.semantic.fast_model")
        return f"{resolve_model(params.model, recipe_dir).fingerprint}:{model_fingerprint(str(static))}"

    def reads(self) -> dict[str, str]:
        if self.params.mode == "fast":
            return super().reads()
        return {"column": self.params.column, **super().reads()}

    def needs_keys(self) -> bool:
        return self.params.mode == "fast" or self.params.keep == "longest"

    def keys(self, batch: pa.Table) -> dict[str, np.ndarray]:
        messages = values(batch, "messages")
        out = {"length": conversation_lengths(messages)}
        if self.params.mode == "fast":  # static vectors (float16: half the memory, plenty for candidates)
            from curate.embeddings import static_encode

            p = self.params
            path = static_model_path(p.model, p.fast_model, self.ctx.recipe_dir, f"{self.ctx.where}.fast_model")
            texts = [text_of(m, p.key) for m in messages]
            out["static"] = static_encode(path, texts).astype(np.float16)
            out["has_text"] = np.fromiter((bool(t.strip()) for t in texts), dtype=bool, count=len(texts))
        return out

    def decide(self, table: pa.Table, keys: dict | None = None) -> list[Drop | None]:
        p: SemanticParams = self.params
        table = as_table(table)
        keys = self.own_keys(table, keys) if self.needs_keys() else {}
        n = table.num_rows
        if p.mode == "fast":
            X, ok = keys["static"].astype(np.float32), keys["has_text"].astype(bool)
        else:
            X, ok = embedding_matrix(table, p.column, f"{self.ctx.where}.column")
        rows = np.flatnonzero(ok)
        k = min(p.clusters or auto_clusters(len(rows), ROWS_PER_CLUSTER), max(len(rows), 1))
        seed = self.ctx.seed if p.seed is None else p.seed
        assign = np.full((n, min(p.probes, k)), -1, dtype=np.int64)
        if len(rows):
            centroids = kmeans(X[rows], k, seed, p.backend)[1]
            assign[rows] = nearest_clusters(X[rows], centroids, p.probes)
        labels = assign[:, 0]
        if p.mode == "fast":
            a, b, sim = self._decided_by_reference(table, *similar_pairs(X, assign, p.candidate_threshold)[:2])
        else:
            a, b, sim = similar_pairs(X, assign, 1.0 - p.eps)

        # Walk rows in the keep policy's order; a row with a kept neighbour is that neighbour's duplicate.
        order = self._order(table, keys, np.unique(np.concatenate([a, b])))
        neighbours: dict[int, list[tuple[int, float]]] = {}
        for i, j, s in zip(a.tolist(), b.tolist(), sim.tolist()):
            neighbours.setdefault(i, []).append((j, s))
            neighbours.setdefault(j, []).append((i, s))
        kept: set[int] = set()
        dup_of: dict[int, tuple[int, float]] = {}
        for i in order:
            best = max(((s, -j) for j, s in neighbours[i] if j in kept), default=None)
            if best is None:
                kept.add(i)
            else:
                dup_of[i] = (-best[1], best[0])

        ids = self.ids_of(table, [k_ for k_, _ in dup_of.values()])
        group = np.bincount([k_ for k_, _ in dup_of.values()], minlength=n) if dup_of else np.zeros(n, int)
        reason = f"semantic duplicate (cosine>{1.0 - p.eps:g})"
        out: list[Drop | None] = [None] * n
        for i, (kept_i, s) in dup_of.items():
            detail = {"similarity": round(s, 4), "kept_index": kept_i, "cluster": int(labels[i]),
                      "group_size": int(group[kept_i]) + 1}
            out[i] = Drop(reason, ids[kept_i], detail)
        sizes = np.bincount(labels[rows], minlength=k) if len(rows) else np.zeros(0, int)
        self.ctx.notes.update({
            "clusters": int(k), "largest_cluster": int(sizes.max()) if len(sizes) else 0,
            "similar_pairs": len(a), "duplicates": len(dup_of), "threshold": round(1.0 - p.eps, 6),
            "rows_without_vector": int(n - len(rows)),
        })
        self.check_alarm(table, out)
        return out

    def _decided_by_reference(self, table: pa.Table, a: np.ndarray, b: np.ndarray):
        """The candidate pairs (a, b) the reference model finds similar: only their rows are embedded."""
        p = self.params
        members = np.unique(np.concatenate([a, b]))
        texts = [text_of(m, p.key) for m in self.fetch(table, members, ["messages"]).column("messages").to_pylist()]
        embedder = Embedder(p.model, p.batch_size, p.cache_dir, p.device, recipe_dir=self.ctx.recipe_dir,
                            where=f"{self.ctx.where}.model")
        R = np.nan_to_num(embedder.encode(texts))
        at = {int(r): k for k, r in enumerate(members)}
        sim = np.fromiter((float(R[at[i]] @ R[at[j]]) for i, j in zip(a.tolist(), b.tolist())), dtype=np.float64,
                          count=len(a))
        linked = sim > 1.0 - p.eps
        self.ctx.notes.update({"mode": "fast", "candidate_pairs": len(a), "rows_embedded": len(members),
                               "candidate_threshold": p.candidate_threshold})
        return a[linked], b[linked], sim[linked]

    def parallel(self) -> bool:
        return True  # keys (static vectors) are cheap; the reference model runs in the main process

    def _order(self, table: pa.Table, keys: dict, members: np.ndarray) -> list[int]:
        """The rows that have a similar pair, the row the keep policy prefers first."""
        p = self.params
        members = [int(i) for i in members]
        if p.keep == "longest":
            lengths = keys["length"]
            return sorted(members, key=lambda i: (-int(lengths[i]), i))
        if p.keep == "highest":  # the column is read even without pairs, so a typo always fails
            scores = score_values(table, p.score_column, self.ctx.where)
            return sorted(members, key=lambda i: (tuple(-x for x in _rank_score(scores[i])), i))
        return members


def similar_pairs(X: np.ndarray, assign: np.ndarray, threshold: float, block: int = BLOCK):
    """(a, b, similarity) for every pair a < b with similarity > threshold that shares a cluster.

    `assign` is n x probes: each row's nearest clusters, nearest first (-1: no cluster). Each cluster
    compares its own rows (those for which it is the nearest) with each other and with the rows that
    have it as a further probe; a pair found twice is reported once.
    """
    n = len(X)
    if not n or assign.shape[1] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    primary = assign[:, 0]
    a_out, b_out, s_out = [], [], []
    for c in np.unique(primary[primary >= 0]):
        own = np.flatnonzero(primary == c)
        guests = np.flatnonzero((assign[:, 1:] == c).any(axis=1)) if assign.shape[1] > 1 else np.zeros(0, np.int64)
        cols = np.concatenate([own, guests])
        V, W = X[own], X[cols]
        for s in range(0, len(own), block):
            sims = V[s : s + block] @ W.T
            r, col = np.nonzero(sims > threshold)
            # own x own: each pair once (the later row's column); own x guests: every pair
            keep = (col >= len(own)) | (col > s + r)
            r, col = r[keep], col[keep]
            i, j = own[s + r], cols[col]
            a_out.append(np.minimum(i, j))
            b_out.append(np.maximum(i, j))
            s_out.append(sims[r, col].astype(np.float64))
    if not a_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    a, b, sim = np.concatenate(a_out), np.concatenate(b_out), np.concatenate(s_out)
    _, first = np.unique(a * n + b, return_index=True)  # sorted by (a, b): deterministic
    return a[first], b[first], sim[first]


def nearest_clusters(X: np.ndarray, centroids: np.ndarray, probes: int) -> np.ndarray:
    """Each row's `probes` nearest centroids by cosine similarity, nearest first."""
    C = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    probes = min(probes, len(C))
    out = np.empty((len(X), probes), dtype=np.int64)
    for s in range(0, len(X), BLOCK):
        sims = X[s : s + BLOCK] @ C.T
        out[s : s + BLOCK] = np.argsort(-sims, axis=1, kind="stable")[:, :probes]
    return out
