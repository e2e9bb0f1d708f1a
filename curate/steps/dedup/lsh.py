"""LSH banding and clustering for `dedup.minhash` (not a step): which rows' signatures are candidate
pairs, which rows are exact signature copies, and how linked rows form the clusters of which one row
is kept.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from curate.steps.dedup.shingles import splitmix64

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative probability areas.

    The rule datasketch's MinHashLSH uses, with the integrals done on a fixed grid instead of
    scipy's quad.
    """
    lo = np.linspace(0.0, threshold, 513)
    hi = np.linspace(threshold, 1.0, 513)
    best, best_err = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = _trapezoid(1 - (1 - lo**r) ** b, lo)
            fn = _trapezoid((1 - hi**r) ** b, hi)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err - 1e-12:
                best, best_err = (b, r), err
    return best


def _row_keys(block: np.ndarray, salt: int) -> np.ndarray:
    """One uint64 per row of a uint32 block (equal rows, equal keys; collisions only add candidates)."""
    h = np.full(len(block), np.uint64(salt), dtype=np.uint64)
    for k in range(block.shape[1]):  # column by column: no uint64 copy of the whole block
        h = splitmix64(h ^ block[:, k].astype(np.uint64))
    return h


def _buckets(keys: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """members sorted by key (then position), whether each starts a bucket, and each one's bucket head."""
    order = np.argsort(keys, kind="stable")
    ks, rs = keys[order], members[order]
    new = np.ones(len(ks), dtype=bool)
    new[1:] = ks[1:] != ks[:-1]
    head = np.maximum.accumulate(np.where(new, np.arange(len(ks)), 0))
    return rs, new, rs[head]


_WINDOW = 32  # members of a bucket are paired with the bucket's first row and their next 32 neighbours


def _window_pairs(rs: np.ndarray, new: np.ndarray, head: np.ndarray) -> list[np.ndarray]:
    """Pairs (2 x k arrays) of rows sharing a bucket, from the rows sorted by bucket then position (`rs`),
    where each bucket starts (`new`) and each row's bucket head (`head`): every row with its bucket's first
    row, and with its next _WINDOW neighbours in the bucket."""
    found = [np.stack([head[~new], rs[~new]])]
    same_bucket = np.ones(len(rs), dtype=bool)
    for d in range(1, _WINDOW + 1):
        # rows d apart in the sorted order share a bucket iff no bucket starts after the first
        # of them, up to and including the second
        same_bucket = same_bucket[:-1] & ~new[d:]
        if not same_bucket.any():
            break
        found.append(np.stack([rs[:-d][same_bucket], rs[d:][same_bucket]]))
    return found


def _unique_pairs(found: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs as (a < b), each once, sorted."""
    pairs = np.concatenate([np.empty((2, 0), dtype=np.int64), *found], axis=1).astype(np.int64)
    a, b = np.minimum(pairs[0], pairs[1]), np.maximum(pairs[0], pairs[1])
    code = np.unique(a * n + b)
    return code // n, code % n


def candidate_pairs(sig: np.ndarray, members: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) of the given rows that share at least one LSH band.

    A bucket of k rows yields all its pairs when k <= 33; a larger one yields each row paired with
    the bucket's first row and its 32 neighbours, which connects the same component without k*k pairs.
    """
    found = []
    for band in range(bands):  # one band's columns of the members at a time, not a copy of their signatures
        keys = _row_keys(sig[members, band * rows : (band + 1) * rows], band)
        found += _window_pairs(*_buckets(keys, members))
    return _unique_pairs(found, len(sig))


# -- the same pairs as a shuffle: band rows grouped by (band, key) on a cluster (Grouping, curate.engine) --


def band_rows(batch, sig: np.ndarray, bands: int, rows: int):
    """For each row of the batch (`_pos`) and band: the band, the band's key (`_hash`: rows sharing a bucket
    share it) and the row. What a cluster shuffles so that each bucket lands in one partition."""
    import pyarrow as pa

    pos = batch.column("_pos").to_numpy()
    keys = [_row_keys(sig[pos, band * rows : (band + 1) * rows], band) for band in range(bands)]
    return pa.table({"band": np.repeat(np.arange(bands, dtype=np.int32), len(pos)),
                     "_hash": np.concatenate(keys) if keys else np.zeros(0, np.uint64), "_pos": np.tile(pos, bands)})


def bucket_pairs(table, n: int):
    """candidate_pairs' pairs from a table of band rows holding whole buckets (any number of them): the pairs
    of each (band, key) bucket, each once, with a hash of the pair (`_hash`) for the shuffle that merges the
    same pair found in several bands."""
    import pyarrow as pa

    band, key, pos = (table.column(c).to_numpy() for c in ("band", "_hash", "_pos"))
    order = np.lexsort((pos, key, band))  # as _buckets sorts one band's rows: by key, then position
    rs, band, key = pos[order], band[order], key[order]
    new = np.ones(len(rs), dtype=bool)
    new[1:] = (band[1:] != band[:-1]) | (key[1:] != key[:-1])
    head = rs[np.maximum.accumulate(np.where(new, np.arange(len(rs)), 0))]
    a, b = _unique_pairs(_window_pairs(rs, new, head), n)
    return pa.table({"a": a, "b": b, "_hash": splitmix64((a * n + b).astype(np.uint64))})


def equal_slots(sig: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The signature slots each pair has equal (their Jaccard estimate is that / num_perm)."""
    num_perm = sig.shape[1]
    equal = np.empty(len(a), dtype=np.int64)
    step = max(1, (1 << 24) // num_perm)  # bound the temporary boolean matrix
    for lo in range(0, len(a), step):
        equal[lo : lo + step] = (sig[a[lo : lo + step]] == sig[b[lo : lo + step]]).sum(axis=1)
    return equal


def signature_copies(sig: np.ndarray, has_text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reps, heads, copies): rows with identical signatures (mostly verbatim copies) are a group headed by
    its first row; `reps` are the rows that go through LSH (heads and rows without a copy), and each
    copies[k] is a copy of heads[k]."""
    rows = np.flatnonzero(has_text)
    rs, new, head = _buckets(_row_keys(sig, -1 % 2**64)[rows], rows)
    copy = ~new
    same = np.flatnonzero(copy)
    copy[same] = (sig[rs[same]] == sig[head[same]]).all(axis=1)  # the check guards against key collisions
    return np.sort(rs[~copy]), head[copy], rs[copy]


def lsh_pairs(sig: np.ndarray, reps: np.ndarray, bands: int, rows: int, threshold: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of `reps` that share an LSH band and whose estimated Jaccard (share of equal signature slots)
    is >= threshold, with that estimate."""
    a, b = candidate_pairs(sig, reps, bands, rows)
    return estimated_pairs(sig, a, b, threshold)


def estimated_pairs(sig: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs whose estimated Jaccard is >= threshold, with that estimate."""
    num_perm = sig.shape[1]
    equal = equal_slots(sig, a, b)
    # compare slot counts, so that 0.8 * 128 = 102.4 cannot miss by float rounding
    ok = equal >= threshold * num_perm - 1e-9
    return a[ok], b[ok], equal[ok] / num_perm


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the edge list (scipy's): each row's root is the smallest row in its component."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    smallest = np.full(label.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(smallest, label, np.arange(n))
    return smallest[label]


# -- clusters --------------------------------------------------------------------------------------


def star_clusters(a: np.ndarray, b: np.ndarray, sim: np.ndarray, priority: np.ndarray) -> list[tuple[int, list]]:
    """Rows walked best-first (by `priority`, the keep policy's rank): a row not yet placed keeps itself
    and takes every unplaced row it is linked to as its duplicate. So a dropped row is always within the
    threshold of the row it is dropped for: no chains (A~B and B~C never drops C for A)."""
    if not len(a):
        return []
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for i, j, s in zip(a.tolist(), b.tolist(), sim.tolist()):
        neighbours.setdefault(i, []).append((j, s))
        neighbours.setdefault(j, []).append((i, s))
    placed: set[int] = set()
    out = []
    for i in sorted(neighbours, key=lambda r: priority[r]):
        if i in placed:
            continue
        placed.add(i)
        dropped = sorted((j, s) for j, s in neighbours[i] if j not in placed)
        placed.update(j for j, _ in dropped)
        if dropped:
            out.append((i, dropped))
    return out


def star_clusters_with_copies(a: np.ndarray, b: np.ndarray, sim: np.ndarray, priority: np.ndarray,
                              heads: np.ndarray, copies: np.ndarray) -> list[tuple[int, list]]:
    """star_clusters when each copies[k] is a copy of heads[k] and only the heads are in the pairs (a, b).

    A group of copies is walked as one row, its best member (by priority) standing for it: the same drops
    as star_clusters over every pair of rows, copies included, without the k*k pairs of a group of k."""
    groups: dict[int, list[int]] = {}
    for h, c in zip(heads.tolist(), copies.tolist()):
        groups.setdefault(h, [h]).append(c)
    best = {h: min(members, key=lambda r: (priority[r], r)) for h, members in groups.items()}
    others = {best[h]: sorted(m for m in members if m != best[h]) for h, members in groups.items()}
    stand = {h: best[h] for h in groups}
    a = np.fromiter((stand.get(x, x) for x in a.tolist()), dtype=np.int64, count=len(a))
    b = np.fromiter((stand.get(x, x) for x in b.tolist()), dtype=np.int64, count=len(b))
    out, placed = [], set()
    for kept, dropped in star_clusters(a, b, sim, priority):
        grown = [(m, 1.0) for m in others.get(kept, [])]  # a kept row's copies go for it
        for d, s in dropped:  # a dropped row's copies go with it
            grown += [(d, s)] + [(m, s) for m in others.get(d, [])]
        out.append((kept, sorted(grown)))
        placed.update([kept, *(d for d, _ in dropped)])
    out += [(m, [(o, 1.0) for o in group]) for m, group in others.items() if m not in placed]  # copies alone
    return sorted(out, key=lambda c: (priority[c[0]], c[0]))


def component_clusters(n: int, a: np.ndarray, b: np.ndarray, sim: np.ndarray, priority: np.ndarray):
    """Connected components (A~B and B~C put A and C together), one kept row each (the best by `priority`);
    a dropped row's similarity is to its best link."""
    root = components(n, a, b)
    linked = np.unique(np.concatenate([a, b]))
    nearest = np.zeros(n)
    np.maximum.at(nearest, a, sim)
    np.maximum.at(nearest, b, sim)
    order = linked[np.lexsort((linked, root[linked]))]
    groups = np.split(order, np.flatnonzero(np.diff(root[order])) + 1) if len(order) else []
    out = []
    for group in groups:
        kept = int(min(group, key=lambda r: priority[r]))
        out.append((kept, [(int(r), float(nearest[r])) for r in group if r != kept]))
    return out
