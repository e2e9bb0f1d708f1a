"""dedup.semantic as a Grouping (what lets it run as a shuffle on Ray): k-means on a seeded sample still finds
planted duplicates, the assignment does not depend on how the rows are cut into batches (even for rows tied
between two centroids), and the per-cluster stage gives the same pairs whatever order its rows come in. That
the stages cut into 1, 3 and 8 partitions decide as the step does is in tests/engine/test_ray_global.py."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from curate.steps.dedup.semantic import SemanticDedup, cluster_pairs, probe_rows
from curate.vectors import vector_column
from tests.helpers import build
from tests.steps.test_semantic_steps import blobs, dropped, unit, vec_dataset


def planted(n_blobs: int = 8, per_blob: int = 150, copies: int = 60, seed: int = 4):
    """Blobs of unit vectors (cos ~0.95 within a blob) and `copies` near-copies of random rows (cos > 0.999),
    appended: (X, the copies' originals)."""
    X, _ = blobs([per_blob] * n_blobs, dim=24, spread=0.05, seed=seed)
    rng = np.random.default_rng(seed)
    originals = rng.choice(len(X), copies, replace=False)
    near = unit(X[originals] + 0.005 * rng.normal(size=(copies, X.shape[1])))
    return np.concatenate([X, near]), originals


def test_kmeans_on_a_sample_still_finds_the_planted_duplicates():
    X, originals = planted()
    ds = vec_dataset(X)
    step = build(SemanticDedup, eps=0.005, clusters=8, kmeans_sample=80)
    out = step.decide(ds)
    n = len(X) - len(originals)
    assert dropped(out) == list(range(n, len(X)))  # every copy, and nothing else
    assert [out[i].detail["kept_index"] for i in range(n, len(X))] == originals.tolist()
    assert step.ctx.notes["kmeans_rows"] == 80 and step.ctx.notes["clusters"] == 8
    # the whole pool fitted (the sample at or above the pool) finds the same; the sample is seeded
    whole = build(SemanticDedup, eps=0.005, clusters=8)
    assert dropped(whole.decide(ds)) == dropped(out) and whole.ctx.notes["kmeans_rows"] == len(X)
    assert build(SemanticDedup, eps=0.005, clusters=8, kmeans_sample=80).decide(ds) == out
    # more clusters than sampled rows: k is capped at the sample
    few = build(SemanticDedup, eps=0.005, clusters=50, kmeans_sample=20)
    assert dropped(few.decide(ds)) == dropped(out) and few.ctx.notes["clusters"] == 20
    with pytest.raises(ValidationError):
        SemanticDedup.Params(kmeans_sample=0)


def tied_rows(n: int = 300, dim: int = 16, seed: int = 0):
    """Rows symmetric under reversing their coordinates, and two centroids that are each other reversed: each
    row is exactly as near to both, so which one a matrix product ranks first hangs on its rounding (which
    depends on the product's shape: about a fifth of these rows flip between a 300-row and a 1-row product)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    X = unit((X + X[:, ::-1]) / 2)
    c = rng.normal(size=dim).astype(np.float32)
    return X, np.stack([c, c[::-1], rng.normal(size=dim).astype(np.float32)])


def test_the_assignment_is_the_same_however_the_rows_are_cut_into_batches():
    X, centroids = tied_rows()
    pos = np.arange(0, 3 * len(X), 3)  # positions with gaps (rows without a vector between them)
    rows = pa.table({"_pos": pos, "vector": vector_column(X)})
    n = int(pos[-1]) + 1
    whole = probe_rows(rows, centroids, 2, n)
    for size in (1, 7, 100):
        cut = pa.concat_tables([probe_rows(rows.slice(lo, size), centroids, 2, n)
                                for lo in range(0, rows.num_rows, size)])
        assert cut.sort_by([("_hash", "ascending"), ("_pos", "ascending")]).equals(whole), size
    # what the blocks guard against: these rows' nearest centroid hangs on the product's shape
    from threadpoolctl import threadpool_limits

    C = unit(centroids)
    with threadpool_limits(1):
        one_by_one = np.array([np.argmax(X[i : i + 1] @ C.T) for i in range(len(X))])
        assert (one_by_one != np.argmax(X @ C.T, axis=1)).any()
    assert whole.num_rows == 2 * len(X) and probe_rows(rows.slice(0, 0), centroids, 2, n).num_rows == 0


def test_the_stage_finds_the_same_pairs_whatever_order_its_rows_come_in():
    X, _ = planted(n_blobs=4, per_blob=60, copies=30)
    rows = pa.table({"_pos": np.arange(len(X)), "vector": vector_column(X)})
    centroids = unit(X[[0, 60, 120, 180]])
    groups = probe_rows(rows, centroids, 2, len(X))
    sorted_out = cluster_pairs(groups, 0.95)
    assert (sorted_out.column("a").to_numpy() >= 0).sum() > 100  # pairs within the blobs and the copies
    shuffled = groups.take(np.random.default_rng(1).permutation(groups.num_rows))
    keys = [(c, "ascending") for c in ("_hash", "a", "b")]
    assert cluster_pairs(shuffled, 0.95).sort_by(keys).equals(sorted_out.sort_by(keys))
    # one tally row per cluster: its own rows, which add up to the pool
    tally = sorted_out.filter(pa.compute.less(sorted_out.column("a"), 0))
    assert tally.num_rows == 4 and tally.column("b").to_numpy().sum() == len(X)
