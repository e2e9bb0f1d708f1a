"""Shingle sets of texts, as `dedup.minhash` builds them (not a step): hashed shingles, MinHash
signatures, and the exact Jaccard similarity of two rows' shingle sets.

Shingles are hashed without building one Python string per shingle: a chunk of texts becomes one
byte array, and any span of it (a word, a run of characters, a run of word hashes) gets a
polynomial hash from prefix sums, mixed by splitmix64. Equal spans hash equally, wherever they
sit. This is what lets the step outrun a plain per-document loop over the same library.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from functools import partial

import numpy as np


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


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on each value: equal inputs give equal, well-spread 64-bit hashes."""
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
        return splitmix64(h ^ (stop - start).astype(np.uint64))


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


# -- the exact Jaccard similarity of shingle sets -------------------------------------------------


def exact_jaccard(texts, a: np.ndarray, b: np.ndarray, ngram: int, shingle: str, chunk: int = 10_000,
                  block: int = 1 << 21, map_tasks=map) -> np.ndarray:
    """The Jaccard similarity of the shingle sets of each pair (a[k], b[k]); `texts(indices)` gives the texts.
    Shingle sets (32-bit shingle hashes) are built chunk by chunk for the rows in pairs only (`map` may run the
    chunks on the engine's workers: `texts` and the chunks are picklable); the intersections are counted for
    many pairs at once: both sets of each pair tagged with the pair's number, sorted, and the equal neighbours
    counted (about `block` hashes at a time)."""
    members = np.unique(np.concatenate([a, b]))
    chunks = [members[lo:lo + chunk] for lo in range(0, len(members), chunk)]
    sets, sizes = [], []
    for chunk_sets, chunk_sizes in map_tasks(partial(shingle_sets, texts=texts, ngram=ngram, shingle=shingle), chunks):
        sets += chunk_sets
        sizes += chunk_sizes
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


def shingle_sets(rows: np.ndarray, texts, ngram: int, shingle: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The sorted, distinct 32-bit shingle hashes of each of `rows` (concatenated per batch) and their sizes."""
    sets, sizes = [], []
    # hashed in batches of ~1M characters, as signatures are: shingling holds ~40 bytes per character
    for batch in _batches(iter(texts(rows))):
        flat, offsets = shingle_hashes(batch, ngram, shingle)
        row = np.repeat(np.arange(len(batch), dtype=np.uint64), np.diff(offsets).astype(np.int64))
        keys = np.sort((row << np.uint64(32)) | (flat & np.uint64(0xFFFFFFFF)))  # by row, then hash
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys  # no repeats
        sets.append((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        sizes.append(np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=len(batch)))
    return sets, sizes


def _ranges(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """values[starts[0]:starts[0]+lengths[0]], values[starts[1]:...], ... concatenated, as uint64."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.uint64)
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return values[np.arange(total) + shift].astype(np.uint64)
