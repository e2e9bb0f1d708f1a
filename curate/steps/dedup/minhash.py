"""`dedup.minhash`: drop near-duplicate rows (MinHash + LSH), clustered across all sources.

The pipeline per run: texts -> shingle hashes (numpy, whole chunks at once) -> rensa R-MinHash
signatures (one batch call per chunk) -> LSH banding (numpy) -> candidate pairs verified by the
estimated Jaccard -> connected components -> one kept row per component by the keep policy.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from curate.progress import progress
from curate.registry import register
from curate.rows import text_of
from curate.steps.base import Drop, as_table, values
from curate.steps.dedup.keep import KeepFilter, KeepPolicy, conversation_lengths

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
        n = table.num_rows
        sig, has_text = keys["sig"].reshape(n, p.num_perm), keys["has_text"].astype(bool)
        reps, heads, copies = signature_copies(sig, has_text)
        if p.verify == "exact":  # candidates a little below the threshold, then the shingle sets decide
            texts = self._texts(table)
            same = exact_jaccard(texts, heads, copies, p.ngram, p.shingle) >= 1.0 - 1e-12
            # a copy whose shingle set is not its head's after all goes through LSH as a row of its own
            reps, heads, copies = np.sort(np.concatenate([reps, copies[~same]])), heads[same], copies[same]
            margin = 3 * math.sqrt(p.threshold * (1 - p.threshold) / p.num_perm) + 1 / p.num_perm
            low = max(p.threshold - margin, 0.0)
            # banded for the lower threshold: a pair right at the threshold is a candidate 99.8% of the time
            # (0.8, 128 permutations: 21 x 6 bands instead of 14 x 9, which finds it 87% of the time)
            bands, rows = (p.bands, p.rows) if p.bands is not None else lsh_params(low, p.num_perm, *LSH_WEIGHTS)
            a, b, _ = lsh_pairs(sig, reps, bands, rows, low)
            jaccard = exact_jaccard(texts, a, b, p.ngram, p.shingle)
            ok = jaccard >= p.threshold - 1e-12
            notes = {"candidate_pairs": len(a), "verified_pairs": int(ok.sum())}
            a, b, sim = a[ok], b[ok], jaccard[ok]
        else:
            bands, rows = (p.bands, p.rows) if p.bands is not None else lsh_params(p.threshold, p.num_perm, *LSH_WEIGHTS)
            a, b, sim = lsh_pairs(sig, reps, bands, rows, p.threshold)
            notes = {"linked_pairs": len(a)}
        notes["copies"] = len(copies)
        priority = self.priority(table, keys)
        if p.cluster == "star":
            decided = star_clusters_with_copies(a, b, sim, priority, heads, copies)
        else:
            one = np.ones(len(copies))
            decided = component_clusters(n, np.concatenate([heads, a]), np.concatenate([copies, b]),
                                         np.concatenate([one, sim]), priority)
        ids = values(table, "id")
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

    def _texts(self, table: pa.Table):
        """texts(indices): the compared text of those rows (fetched from the run's store by the engine)."""
        key = self.params.key

        def texts(indices: np.ndarray) -> list[str]:
            rows = self.fetch(table, indices, ["messages"])
            return [text_of(m, key) for m in rows.column("messages").to_pylist()]

        return texts


def exact_jaccard(texts, a: np.ndarray, b: np.ndarray, ngram: int, shingle: str, chunk: int = 20_000,
                  block: int = 1 << 21) -> np.ndarray:
    """The Jaccard similarity of the shingle sets of each pair (a[k], b[k]); `texts(indices)` gives the texts.
    Shingle sets (32-bit shingle hashes) are built chunk by chunk for the rows in pairs only; the
    intersections are counted for many pairs at once: both sets of each pair tagged with the pair's number,
    sorted, and the equal neighbours counted (about `block` hashes at a time)."""
    members = np.unique(np.concatenate([a, b]))
    sets, sizes = [], []
    for lo in range(0, len(members), chunk):
        # hashed in batches of ~1M characters, as signatures are: shingling holds ~40 bytes per character
        for batch in _batches(iter(texts(members[lo:lo + chunk]))):
            flat, offsets = shingle_hashes(batch, ngram, shingle)
            row = np.repeat(np.arange(len(batch), dtype=np.uint64), np.diff(offsets).astype(np.int64))
            keys = np.sort((row << np.uint64(32)) | (flat & np.uint64(0xFFFFFFFF)))  # by row, then hash
            keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys  # no repeats
            sets.append((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32))
            sizes.append(np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=len(batch)))
    flat_sets = np.concatenate(sets) if sets else np.zeros(0, np.uint32)
    size = np.concatenate(sizes) if sizes else np.zeros(0, np.int64)
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    ia, ib = np.searchsorted(members, a), np.searchsorted(members, b)
    out = np.empty(len(a))
    both = size[ia] + size[ib]
    cut = np.searchsorted(np.cumsum(both), np.arange(0, both.sum() + block, block), side="right")
    for lo, hi in zip(cut[:-1], cut[1:]):
        hi = max(hi, lo + 1) if lo < len(a) else hi
        if lo >= hi:
            continue
        pair = np.arange(hi - lo, dtype=np.uint64)
        tagged = np.concatenate([(np.repeat(pair, size[ia[lo:hi]]) << np.uint64(32)) | _ranges(flat_sets, start[ia[lo:hi]], size[ia[lo:hi]]),
                                 (np.repeat(pair, size[ib[lo:hi]]) << np.uint64(32)) | _ranges(flat_sets, start[ib[lo:hi]], size[ib[lo:hi]])])
        tagged.sort()
        equal = tagged[1:] == tagged[:-1]  # a hash in both sets of one pair
        inter = np.bincount((tagged[1:][equal] >> np.uint64(32)).astype(np.int64), minlength=hi - lo)
        union = both[lo:hi] - inter
        out[lo:hi] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return out


def _ranges(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """values[starts[0]:starts[0]+lengths[0]], values[starts[1]:...], ... concatenated, as uint64."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.uint64)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return values[np.arange(total) + shift].astype(np.uint64)


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


# -- shingle hashing ---------------------------------------------------------------------------------
#
# Shingles are hashed without building one Python string per shingle: a chunk of texts becomes one
# byte array, and any span of it (a word, a run of characters, a run of word hashes) gets a
# polynomial hash from prefix sums, mixed by splitmix64. Equal spans hash equally, wherever they
# sit. This is what lets the step outrun a plain per-document loop over the same library.

_BATCH_CHARS = 1 << 20  # per batch: amortises numpy's per-call cost, keeps temporaries near 100 MB
_SEP = 0xFF  # never a byte of UTF-8 text, so it marks where one document ends
_P = np.uint64(0x100000001B3)  # odd, so it is invertible mod 2**64
_P_INV = np.uint64(pow(0x100000001B3, -1, 2**64))

_powers_cache: tuple[np.ndarray, np.ndarray] | None = None


def _powers(length: int) -> tuple[np.ndarray, np.ndarray]:
    """P**i and P**-i mod 2**64 for i < length (cached: they do not depend on the data)."""
    global _powers_cache
    if _powers_cache is None or len(_powers_cache[0]) < length:
        size = max(length, 2 * _BATCH_CHARS)
        with np.errstate(over="ignore"):
            pw = np.full(size, _P, dtype=np.uint64)
            pw[0] = 1
            inv = np.full(size, _P_INV, dtype=np.uint64)
            inv[0] = 1
            fresh = (np.cumprod(pw, dtype=np.uint64), np.cumprod(inv, dtype=np.uint64))
        if size > 8 * _BATCH_CHARS:  # one huge document: do not keep its tables
            return fresh
        _powers_cache = fresh
    return _powers_cache


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _span_hashes(values: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """A hash of each span values[start:stop] that depends only on the span's contents."""
    pw, inv = _powers(len(values) + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(len(values) + 1, dtype=np.uint64)
        # +1 so that a zero value still changes the hash
        np.cumsum((values.astype(np.uint64) + np.uint64(1)) * pw[: len(values)], out=prefix[1:])
        h = (prefix[stop] - prefix[start]) * inv[start]  # as if the span started at position 0
        return _splitmix64(h ^ (stop - start).astype(np.uint64))


def _whitespace(raw: np.ndarray) -> np.ndarray:
    """Bytes of the characters str.split() treats as whitespace: ASCII 9-13, 28-32, and U+0085,
    U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000."""
    with np.errstate(over="ignore"):  # uint8 wrap-around turns each range test into one compare
        mask = (raw == 32) | ((raw - np.uint8(9)) <= 4) | ((raw - np.uint8(28)) <= 3)
    lead = np.flatnonzero((raw >= 0xC2) & (raw <= 0xE3))
    lead = lead[lead + 1 < len(raw)]
    if not len(lead):
        return mask
    b0, b1 = raw[lead], raw[lead + 1]
    two = lead[(b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0))]
    three = lead[lead + 2 < len(raw)]
    b0, b1, b2 = raw[three], raw[three + 1], raw[three + 2]
    hit = (
        ((b0 == 0xE1) & (b1 == 0x9A) & (b2 == 0x80))
        | ((b0 == 0xE2) & (b1 == 0x80) & ((b2 <= 0x8A) | (b2 == 0xA8) | (b2 == 0xA9) | (b2 == 0xAF)))
        | ((b0 == 0xE2) & (b1 == 0x81) & (b2 == 0x9F))
        | ((b0 == 0xE3) & (b1 == 0x80) & (b2 == 0x80))
    )  # continuation bytes are >= 0x80, so b2 <= 0x8A means U+2000..U+200A
    three = three[hit]
    for k in (0, 1):
        mask[two + k] = True
    for k in (0, 1, 2):
        mask[three + k] = True
    return mask


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[start, stop) of each run of True."""
    edges = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _collapse(raw: np.ndarray) -> np.ndarray:
    """`raw` with every whitespace run inside a document turned into one space, and runs at a
    document's start or end removed (what normalise() does to each text)."""
    ws = _whitespace(raw)
    tok = ~ws & (raw != _SEP)
    start, stop = _runs(ws)
    inner = (start > 0) & (stop < len(raw))
    start, stop = start[inner], stop[inner]
    start = start[tok[start - 1] & tok[stop]]  # between two tokens: not at an edge of a document
    keep = ~ws
    keep[start] = True
    raw[start] = 32
    return raw[keep]


def shingle_hashes(texts: list[str], ngram: int, shingle: str = "word") -> tuple[np.ndarray, np.ndarray]:
    """Hashes of each text's shingles, flat, with row offsets (len(texts) + 1) into them.

    Word shingles are `ngram` consecutive whitespace-separated tokens; char shingles `ngram`
    consecutive characters (code points) of the whitespace-collapsed text, spaces included. Texts
    are NFC-normalised and lower-cased first. Equal shingles hash equally within and across texts;
    a text with fewer than `ngram` units yields one shingle (all of it), an empty text none.
    """
    n_docs = len(texts)
    encoded = [unicodedata.normalize("NFC", t).lower().encode("utf-8", "surrogatepass") for t in texts]
    raw = np.frombuffer(bytearray([_SEP]).join(encoded), dtype=np.uint8)  # bytearray: writable
    if shingle == "word":
        data = raw
        ustart, uend = _runs(~_whitespace(raw) & (raw != _SEP))
    else:
        data = _collapse(raw)
        lead = (data & 0xC0) != 0x80  # first bytes of code points (and separators)
        bounds = np.append(np.flatnonzero(lead), len(data))
        ustart = np.flatnonzero(lead & (data != _SEP))
        uend = bounds[np.searchsorted(bounds, ustart, side="right")]
    udoc = np.searchsorted(np.flatnonzero(data == _SEP), ustart)  # separators before a unit = its document

    # every window of `ngram` units inside one document ...
    last = np.arange(ngram - 1, len(ustart))
    first = last - (ngram - 1)
    inside = udoc[first] == udoc[last]
    first, last = first[inside], last[inside]
    # ... and, for a document with fewer units than that, the whole document
    counts = np.bincount(udoc, minlength=n_docs)
    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short):
        lo = np.searchsorted(udoc, short, side="left")
        first = np.concatenate([first, lo])
        last = np.concatenate([last, lo + counts[short] - 1])
        order = np.argsort(first, kind="stable")  # back into document order
        first, last = first[order], last[order]

    if shingle == "word":
        # hash each word, then each run of word hashes: a shingle's hash ignores the spacing
        words = _span_hashes(data, ustart, uend)
        h = _span_hashes(words, first, last + 1)
    else:
        h = _span_hashes(data, ustart[first], uend[last])
    offsets = np.zeros(n_docs + 1, dtype=np.uint64)
    np.cumsum(np.bincount(udoc[first], minlength=n_docs), out=offsets[1:])
    return h, offsets


def signatures(
    texts: Iterator[str], n: int, ngram: int, shingle: str, num_perm: int, seed: int, advance=None
) -> tuple[np.ndarray, np.ndarray]:
    """R-MinHash signatures (n x num_perm uint32) and a mask of the rows that had any text."""
    # imported here: the registry imports every step module, and most runs need no rensa
    from rensa import RMinHash

    sig = np.empty((n, num_perm), dtype=np.uint32)
    has_text = np.zeros(n, dtype=bool)
    seed = int(seed) % 2**64
    start = 0
    for batch in _batches(texts):
        flat, offsets = shingle_hashes(batch, ngram, shingle)
        stop = start + len(batch)
        has_text[start:stop] = np.diff(offsets) > 0
        matrix = RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, num_perm, seed)
        sig[start:stop] = np.array(matrix.to_rows(), dtype=np.uint32).reshape(len(batch), num_perm)
        start = stop
        if advance:
            advance(len(batch))
    assert start == n, "text count does not match the row count"
    return sig, has_text


def _batches(texts: Iterator[str]) -> Iterator[list[str]]:
    batch, size = [], 0
    for t in texts:
        batch.append(t)
        size += len(t)
        if size >= _BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# -- LSH banding, verification, clustering ----------------------------------------------------------


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
        h = _splitmix64(h ^ block[:, k].astype(np.uint64))
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


def candidate_pairs(sig: np.ndarray, members: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a < b) of the given rows that share at least one LSH band.

    A bucket of k rows yields all its pairs when k <= 33; a larger one yields each row paired with
    the bucket's first row and its 32 neighbours, which connects the same component without k*k pairs.
    """
    found = [np.empty((2, 0), dtype=np.int64)]
    for band in range(bands):  # one band's columns of the members at a time, not a copy of their signatures
        keys = _row_keys(sig[members, band * rows : (band + 1) * rows], band)
        rs, new, head = _buckets(keys, members)
        found.append(np.stack([head[~new], rs[~new]]))
        same_bucket = np.ones(len(rs), dtype=bool)
        for d in range(1, _WINDOW + 1):
            # rows d apart in the sorted order share a bucket iff no bucket starts after the first
            # of them, up to and including the second
            same_bucket = same_bucket[:-1] & ~new[d:]
            if not same_bucket.any():
                break
            found.append(np.stack([rs[:-d][same_bucket], rs[d:][same_bucket]]))
    pairs = np.concatenate(found, axis=1).astype(np.int64)
    a, b = np.minimum(pairs[0], pairs[1]), np.maximum(pairs[0], pairs[1])
    code = np.unique(a * len(sig) + b)
    return code // len(sig), code % len(sig)


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
    num_perm = sig.shape[1]
    equal = np.empty(len(a), dtype=np.int64)
    step = max(1, (1 << 24) // num_perm)  # bound the temporary boolean matrix
    for lo in range(0, len(a), step):
        equal[lo : lo + step] = (sig[a[lo : lo + step]] == sig[b[lo : lo + step]]).sum(axis=1)
    # compare slot counts, so that 0.8 * 128 = 102.4 cannot miss by float rounding
    ok = equal >= threshold * num_perm - 1e-9
    return a[ok], b[ok], equal[ok] / num_perm


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the edge list: each row's root is the smallest row in its component.

    Vectorised union-find: hook every edge's larger root under its smaller one, then jump pointers
    until every row points at a root; repeat until no edge joins two roots.
    """
    parent = np.arange(n)
    while len(a):
        ra, rb = parent[a], parent[b]
        lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
        join = lo != hi
        if not join.any():
            break
        np.minimum.at(parent, hi[join], lo[join])
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
    return parent
