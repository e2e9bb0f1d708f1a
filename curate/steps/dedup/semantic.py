"""`dedup.semantic`: SemDeDup — drop rows whose embeddings are nearly the same direction as a kept row's.

k-means (fitted on a seeded sample of the rows) splits the pool into clusters, so the pairwise comparison
stays cheap on large pools; each row goes to its nearest clusters and inside each cluster every pair is
compared by cosine similarity, blockwise. Rows are then walked in the order of the keep policy (the row a
policy prefers first), and a row is dropped when it is a duplicate of a row already kept; so every dropped
row names a kept row it really is that similar to, and no two kept rows are (no chains).

The assignment and the comparison are a `Grouping` (one shuffle by cluster): in one process that is
`decide`; on a Ray cluster the workers assign and compare and only the similar pairs come back to the
driver. Both run the same functions on the same shapes, one BLAS thread each, so their floats agree.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from curate.embeddings import DEFAULT_MODEL, Embedder, static_model_path
from curate.ledger import Drop
from curate.rows import text_of
from curate.steps.base import as_table, values
from curate.steps.dedup.keep import KeepFilter, KeepPolicy, _rank_score, conversation_lengths, score_values
from curate.steps.grouping import Grouping
from curate.steps.registry import register
from curate.vectors import BLOCK, auto_clusters, embedding_matrix, kmeans, vector_column, vector_rows

ROWS_PER_CLUSTER = 10_000  # the automatic k: about this many rows per cluster
PARTITION_BYTES = 128 << 20  # a shuffle partition of about this many bytes of vectors (one task's input)


class SemanticParams(KeepPolicy):
    column: str = Field("embedding", min_length=1)
    eps: float = Field(0.1, gt=0.0, lt=1.0)
    clusters: int | None = Field(None, ge=1)
    probes: int = Field(2, ge=1)
    kmeans_sample: int = Field(100_000, ge=1)
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
    - `kmeans_sample` (100,000): k-means is fitted on at most this many rows with a vector (a sample
      drawn with the k-means seed), then every row is assigned to its nearest centroids; a pool at or below
      it fits on every row. Keep it well above `clusters` (tens of sampled rows per cluster): centroids
      fitted on a few rows each split the pool less well, so more duplicate pairs straddle two clusters
      (which `probes` recovers in part).
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
    for it). Notes: clusters, the largest cluster, similar pairs found, duplicates, rows without a vector,
    rows k-means was fitted on (`kmeans_rows`).
    Deterministic: the same rows, params and seed give the same drops, with either executor: on Ray
    (`executor.global_steps: cluster`) the assignment and the per-cluster comparison run on the workers as a
    shuffle by cluster, fast mode's candidates too (its reference model embeds them on the driver).
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
        return self.grouping(table, keys).decide()

    def grouping(self, table: pa.Table, keys: dict | None = None) -> Grouping:
        """k-means fitted here on a seeded sample; then, as one shuffle on a cluster (or in one process): each
        row goes to its `probes` nearest clusters (`probe_rows`), each cluster compares its rows' vectors
        (`cluster_pairs`), and the similar pairs come back to `_finish` (the keep policy's walk)."""
        p: SemanticParams = self.params
        table = as_table(table)
        keys = self.own_keys(table, keys) if self.needs_keys() else {}
        if p.mode == "fast":
            X, ok = keys["static"].astype(np.float32), keys["has_text"].astype(bool)
        else:
            X, ok = embedding_matrix(table, p.column, f"{self.ctx.where}.column")
        rows = np.flatnonzero(ok)
        seed = self.ctx.seed if p.seed is None else p.seed
        sample = rows
        if len(rows) > p.kmeans_sample:  # k-means on a seeded sample: its cost no longer grows with the pool
            sample = np.sort(np.random.default_rng(seed % 2**32).choice(rows, p.kmeans_sample, replace=False))
        k = min(p.clusters or auto_clusters(len(rows), ROWS_PER_CLUSTER), max(len(sample), 1))
        centroids = kmeans(X[sample], k, seed, p.backend)[1] if len(rows) else np.zeros((1, X.shape[1]), np.float32)
        vectors = vector_column(X if len(rows) == len(X) else X[rows])  # no copy when every row has a vector
        threshold = p.candidate_threshold if p.mode == "fast" else 1.0 - p.eps
        finish = partial(self._finish, table, keys, {"clusters": int(k), "kmeans_rows": len(sample),
                                                     "rows_without_vector": int(len(X) - len(rows))})
        probes = min(p.probes, k)
        return Grouping(pa.table({"_pos": pa.array(rows, pa.int64()), "vector": vectors}),
                        (partial(cluster_pairs, threshold=threshold),), finish,
                        expand=partial(probe_rows, centroids=centroids, probes=probes, n=len(X)), fanout=probes,
                        partition_rows=max(1, PARTITION_BYTES // (4 * max(X.shape[1], 1) + 32)))

    def _finish(self, table: pa.Table, keys: dict, notes: dict, found: pa.Table) -> list[Drop | None]:
        """`cluster_pairs`' results (in any order) as decisions: each pair once (from the lowest cluster that
        found it), then rows walked in the keep policy's order; a row with a kept neighbour is that neighbour's
        duplicate."""
        p: SemanticParams = self.params
        n = table.num_rows
        a, b, sim, cluster, home_a, home_b = (found.column(c).to_numpy() for c in
                                              ("a", "b", "sim", "_hash", "home_a", "home_b"))
        tally = a < 0  # one row per cluster: (a = -1, b = its own rows)
        sizes = b[tally]
        order = np.lexsort((cluster[~tally], b[~tally], a[~tally]))
        a, b, sim, home_a, home_b = (x[~tally][order] for x in (a, b, sim, home_a, home_b))
        first = np.ones(len(a), dtype=bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        a, b, sim = a[first], b[first], sim[first]
        home = dict(zip(np.concatenate([a, b]).tolist(), np.concatenate([home_a[first], home_b[first]]).tolist()))
        if p.mode == "fast":
            a, b, sim = self._decided_by_reference(table, a, b)

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
            detail = {"similarity": round(s, 4), "kept_index": kept_i, "cluster": home[i],
                      "group_size": int(group[kept_i]) + 1}
            out[i] = Drop(reason, ids[kept_i], detail)
        self.ctx.notes.update({
            "clusters": notes["clusters"], "largest_cluster": int(sizes.max()) if len(sizes) else 0,
            "similar_pairs": len(a), "duplicates": len(dup_of), "threshold": round(1.0 - p.eps, 6),
            "rows_without_vector": notes["rows_without_vector"], "kmeans_rows": notes["kmeans_rows"],
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


def probe_rows(rows: pa.Table, centroids: np.ndarray, probes: int, n: int) -> pa.Table:
    """The grouping's `expand` (row-local): each row (`_pos`, `vector`) once per cluster it visits, its
    `probes` nearest centroids by cosine similarity (`_hash`: the cluster; `home`: the row's nearest one),
    sorted by (cluster, position).

    The similarities are computed in blocks of BLOCK positions, each row at its own place in its block (absent
    rows zero) and on one thread: a matrix product's floats depend on its shape and threads, so this gives
    every row the same nearest clusters however the rows are cut into batches."""
    from threadpoolctl import threadpool_limits

    pos = rows.column("_pos").to_numpy()
    X = vector_rows(rows.column("vector"))
    C = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    near = np.empty((len(pos), probes), dtype=np.int64)
    cell = pos // BLOCK
    by_cell = np.argsort(cell, kind="stable")
    bounds = np.flatnonzero(np.diff(cell[by_cell])) + 1
    with threadpool_limits(1):
        for at in np.split(by_cell, bounds) if len(pos) else []:
            lo = int(cell[at[0]]) * BLOCK
            block = np.zeros((min(BLOCK, n - lo), X.shape[1]), dtype=np.float32)
            block[pos[at] - lo] = X[at]
            sims = (block @ C.T)[pos[at] - lo]
            near[at] = np.argsort(-sims, axis=1, kind="stable")[:, :probes]
    row = np.repeat(np.arange(len(pos)), probes)
    cluster, home = near.reshape(-1), near[row, 0]
    order = np.lexsort((pos[row], cluster))
    row, cluster, home = row[order], cluster[order], home[order]
    return pa.table({"_pos": pa.array(pos[row], pa.int64()), "_hash": pa.array(cluster.astype(np.uint64)),
                     "home": pa.array(home), "vector": rows.column("vector").take(pa.array(row, pa.int64()))})


def cluster_pairs(groups: pa.Table, threshold: float, block: int = BLOCK) -> pa.Table:
    """The grouping's stage: for each cluster in `groups` (whole clusters, any order), every pair a < b with
    cosine similarity > threshold between its own rows (those whose nearest cluster it is) and between an own
    row and a guest (a row that has it as a further probe). Rows (a, b, sim, `_hash`: the cluster, home_a,
    home_b: the rows' nearest clusters), and per cluster one row (a = -1, b = its own rows) for the notes.

    Each cluster's rows are taken in position order and multiplied on one thread, so its floats are the same
    in one process and on a cluster's worker."""
    from threadpoolctl import threadpool_limits

    h, pos = groups.column("_hash").to_numpy(), groups.column("_pos").to_numpy()
    order = np.lexsort((pos, h))
    if not np.array_equal(order, np.arange(len(order))):  # in one process `probe_rows` sorted them already
        groups = groups.take(pa.array(order))
        h, pos = h[order], pos[order]
    home, X = groups.column("home").to_numpy(), vector_rows(groups.column("vector"))
    out: dict[str, list] = {c: [] for c in ("a", "b", "sim", "_hash", "home_a", "home_b")}
    tally: list[tuple[int, int]] = []  # (cluster, its own rows)
    starts = np.flatnonzero(np.diff(h)) + 1
    with threadpool_limits(1):
        for lo, hi in zip(np.concatenate([[0], starts]), np.concatenate([starts, [len(h)]])) if len(h) else []:
            c = int(h[lo])
            own = lo + np.flatnonzero(home[lo:hi] == c)
            cols = np.concatenate([own, lo + np.flatnonzero(home[lo:hi] != c)])  # own rows first, then guests
            V, W = X[own], X[cols]
            for s in range(0, len(own), block):
                sims = V[s : s + block] @ W.T
                r, col = np.nonzero(sims > threshold)
                # own x own: each pair once (the later row's column); own x guests: every pair
                keep = (col >= len(own)) | (col > s + r)
                r, col = r[keep], col[keep]
                i, j = own[s + r], cols[col]
                swap = pos[j] < pos[i]
                out["a"].append(np.where(swap, pos[j], pos[i]))
                out["b"].append(np.where(swap, pos[i], pos[j]))
                out["sim"].append(sims[r, col].astype(np.float64))
                out["_hash"].append(np.full(len(r), c, dtype=np.uint64))
                out["home_a"].append(np.where(swap, home[j], home[i]))
                out["home_b"].append(np.where(swap, home[i], home[j]))
            tally.append((c, len(own)))
    clusters, sizes = (np.array(x, dtype=np.int64) for x in zip(*tally)) if tally else (np.zeros(0, np.int64),) * 2
    for name, value in (("a", -1), ("b", sizes), ("sim", 0.0), ("_hash", clusters), ("home_a", clusters),
                        ("home_b", clusters)):
        out[name].append(np.broadcast_to(value, len(clusters)))
    types = {"a": np.int64, "b": np.int64, "sim": np.float64, "_hash": np.uint64, "home_a": np.int64,
             "home_b": np.int64}
    return pa.table({name: np.concatenate(parts).astype(types[name]) for name, parts in out.items()})
