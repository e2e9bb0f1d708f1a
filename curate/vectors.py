"""Vector helpers shared by the embedding steps: reading the embedding column, k-means, nearest
neighbours by cosine similarity (blockwise, so memory stays bounded), and coverage.

Embeddings are L2-normalised float32 rows (the `embed` step writes them so), so the dot product is the
cosine similarity and the cosine distance is 1 - similarity (0 for the same direction, 2 opposite).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from curate.errors import CurateError, did_you_mean

BLOCK = 2048  # rows of a similarity block: 2048 x 2048 float32 is 16 MB


def embedding_matrix(ds, column: str, where: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(X, ok): the column of `ds` (a pyarrow Table or a datasets.Dataset) as an n x dim float32 matrix and
    which rows have a vector.

    Rows without one (the embed step found an empty text) are zero rows in X with ok False.
    """
    import pyarrow as pa

    ds = ds if isinstance(ds, pa.Table) else ds.with_format("arrow")[:]  # respects a Dataset's selection
    if column not in ds.column_names:
        raise CurateError(
            f"no embedding column {column!r}{did_you_mean(column, ds.column_names)}: add an `embed` step "
            f"before this one (e.g. `- embed: {{key: prompt}}`), or name its column with `column:`",
            where,
        )
    col = ds.column(column).combine_chunks()
    n = len(col)
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
        raise CurateError(f"column {column!r} holds {col.type}, not embedding vectors; it must come from an `embed` step",
                          where)
    ok = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if not ok.any():
        return np.zeros((n, 0), dtype=np.float32), ok
    if pa.types.is_fixed_size_list(col.type):
        lengths = np.full(n, col.type.list_size)
    else:
        lengths = np.asarray(col.value_lengths().fill_null(0).to_numpy(zero_copy_only=False))
    dims = np.unique(lengths[ok])
    if len(dims) != 1 or dims[0] == 0:
        raise CurateError(f"column {column!r} holds vectors of different lengths {sorted(dims.tolist())[:5]}", where)
    dim = int(dims[0])
    if ok.all():  # a read-only view of the column's buffer: no second copy of every vector (1.5 KB/row)
        X = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(n, dim)
    else:
        X = np.zeros((n, dim), dtype=np.float32)
        X[ok] = np.asarray(col.filter(pa.array(ok)).flatten().to_numpy(zero_copy_only=False),
                           dtype=np.float32).reshape(-1, dim)
    bad = ok & ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise CurateError(f"column {column!r} has {int(bad.sum())} vectors with NaN or inf values", where)
    return X, ok


def nearest(A: np.ndarray, B: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """For each row of A, the highest cosine similarity to a row of B and that row's index.
    With B empty: -inf and -1."""
    if len(B) == 0:
        return np.full(len(A), -np.inf, dtype=np.float32), np.full(len(A), -1, dtype=np.int64)
    best = np.empty(len(A), dtype=np.float32)
    arg = np.empty(len(A), dtype=np.int64)
    for s in range(0, len(A), block):
        sims = A[s : s + block] @ B.T
        arg[s : s + block] = sims.argmax(axis=1)
        best[s : s + block] = sims[np.arange(len(sims)), arg[s : s + block]]
    return best, arg


def coverage(X: np.ndarray, ok: np.ndarray, chosen) -> dict:
    """How well `chosen` covers the pool: the mean and the max cosine distance from every pool row
    with a vector to its nearest chosen row (lower is better coverage)."""
    chosen = [int(i) for i in chosen if ok[int(i)]]
    return {**distance_stats(X[ok], X[chosen]), "selected_with_vectors": len(chosen)}


def distance_stats(A: np.ndarray, B: np.ndarray) -> dict:
    """Mean and max cosine distance from each row of A to its nearest row of B (None when either is empty)."""
    if not len(A) or not len(B):
        return {"mean_distance": None, "max_distance": None}
    sim, _ = nearest(A, B)
    dist = np.clip(1.0 - sim.astype(np.float64), 0.0, 2.0)
    return {"mean_distance": round(float(dist.mean()), 6), "max_distance": round(float(dist.max()), 6)}


def kmeans(X: np.ndarray, k: int, seed: int, backend: Literal["sklearn", "faiss"] = "sklearn",
           max_iter: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centroids): k-means on the rows of X, seeded (the same seed gives the same clusters).

    scikit-learn's KMeans (k-means++ starts), or `faiss` (faiss.Kmeans, spherical, faster on large
    pools; needs faiss installed). k is capped at the number of rows.
    """
    n = len(X)
    k = max(1, min(int(k), n))
    if k == 1:
        return np.zeros(n, dtype=np.int64), X.mean(axis=0, keepdims=True)
    if backend == "faiss":
        try:
            import faiss
        except ImportError:
            raise CurateError("backend: faiss needs the faiss package (pip install faiss-cpu), or use backend: sklearn") from None
        km = faiss.Kmeans(X.shape[1], k, niter=max_iter, seed=int(seed) % (2**31), spherical=True, verbose=False)
        km.train(np.ascontiguousarray(X, dtype=np.float32))
        _, labels = km.index.search(np.ascontiguousarray(X, dtype=np.float32), 1)
        return labels.ravel().astype(np.int64), km.centroids
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    # One thread: on a shared 2-core machine two OpenMP threads fighting for a busy core ran 6x slower
    # (7.3k x 384, k=86: 2.2 s with one thread, 13.9 s with two). Three k-means++ starts on small
    # inputs, where they cost little and avoid a poor local optimum; one on large ones.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than k: fine here
        km = KMeans(n_clusters=k, n_init=3 if n <= 5000 else 1, max_iter=max_iter, random_state=int(seed) % (2**32))
        labels = km.fit_predict(X)
    return labels.astype(np.int64), km.cluster_centers_.astype(np.float32)


def auto_clusters(n: int, per_cluster: int) -> int:
    return max(1, math.ceil(n / per_cluster))


def vector_column(X: np.ndarray):
    """The rows of an n x dim float32 matrix as an Arrow fixed-size list column (zero-copy when X is
    contiguous): how vectors travel in a table (a shuffle's rows). A matrix of no columns gets one zero column,
    since Arrow's fixed-size lists need a size."""
    import pyarrow as pa

    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.shape[1] == 0:
        X = np.zeros((len(X), 1), dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), X.shape[1])


def vector_rows(column) -> np.ndarray:
    """`vector_column`'s inverse: the n x dim float32 matrix of a fixed-size list column (chunked or not)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, column.type.list_size)
