"""py3langid's `classify` for many texts at once, with the same model.

py3langid walks its byte automaton one byte per Python step (`visit_counts`) and scores each text with its
own gather-and-multiply, which made `score.language` the slowest step of the lima_style pipeline (39% of a
73k-row run). Here a group of texts of similar length walks the automaton together, one numpy step per byte
position; the features each text visits and their counts are py3langid's, and a group is scored with one
sparse product (log1p(counts) x the model's feature table), then py3langid's length-scaled softmax and
alias folding, for the whole group at once. The labels are py3langid's; a confidence can differ from
py3langid's in the last bits of its float32 (the sums run in another order), never by more than 1e-4
(tests/steps/score/test_score_language_tokens.py compares them on the real pool). bench/bench_language.py measures it.
"""

from __future__ import annotations


import numpy as np
from scipy import sparse

GROUP = 1024  # texts walked together: sorted by length, so padding stays small


def _tables(identifier) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cached = getattr(_tables, "cache", None)
    if cached is None or cached[0] is not identifier:
        cached = (identifier, np.asarray(identifier.tk_nextmove, dtype=np.intp),
                  np.asarray(identifier._rowbase, dtype=np.intp), np.asarray(identifier.tk_output, dtype=np.int32))
        _tables.cache = cached
    return cached[1:]


def classify_many(identifier, texts: list[str]) -> list[tuple[str, float]]:
    """[(language, confidence)] for `texts`, equal to `[identifier.classify(t) for t in texts]`."""
    nextmove, rowbase, output = _tables(identifier)
    n_features = len(identifier.nb_ptc)
    # a (text, feature) pair as one integer, int32 where it fits: its sort is twice as fast as int64's
    key_type = np.int32 if GROUP * n_features < 2**31 else np.int64
    encoded = [identifier._encode(t) for t in texts]
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.intp, count=len(encoded))
    by_length = np.argsort(lengths, kind="stable")
    out: list = [None] * len(texts)
    for start in range(0, len(by_length), GROUP):
        idx = by_length[start:start + GROUP]
        width = int(lengths[idx].max())
        data = np.zeros((len(idx), width), dtype=np.intp)
        for r, i in enumerate(idx.tolist()):
            data[r, : lengths[i]] = np.frombuffer(encoded[i], dtype=np.uint8)
        data = np.ascontiguousarray(data.T)  # one byte position = one contiguous row
        state = np.zeros(len(idx), dtype=np.intp)
        features = np.empty((width, len(idx)), dtype=np.int32)
        for pos in range(width):
            state = nextmove[rowbase[state] + data[pos]]
            features[pos] = output[state]
        # each text's features (none past its end) and their counts: one sort of the group's pairs
        pos, row = np.nonzero((features >= 0) & (np.arange(width)[:, None] < lengths[idx][None, :]))
        keys = row.astype(key_type) * n_features + features[pos, row]
        keys.sort()
        first = np.flatnonzero(np.diff(keys, prepend=-1))  # keys are >= 0: the first one starts a run
        counts = np.diff(np.append(first, len(keys)))
        unique = keys[first]
        found = sparse.csr_matrix((np.log1p(counts.astype(np.float32)), (unique // n_features, unique % n_features)),
                                  shape=(len(idx), n_features))
        for i, result in zip(idx.tolist(), _decide(identifier, found, lengths[idx])):
            out[i] = result
    return out


def _float_table(identifier) -> np.ndarray:
    """The model's feature table as float32 (it is stored as float16), once per table (set_languages makes
    a new one)."""
    cached = getattr(_float_table, "cache", None)
    if cached is None or cached[0] is not identifier.nb_ptc:
        cached = (identifier.nb_ptc, np.asarray(identifier.nb_ptc, dtype=np.float32))
        _float_table.cache = cached
    return cached[1]


def _decide(identifier, found, n_bytes: np.ndarray) -> list[tuple[str, float]]:
    """py3langid's _decide + classify for a group: naive-Bayes scores, softmax scaled by the text length,
    alias folding, the best label."""
    scores = np.asarray(found @ _float_table(identifier), dtype=np.float32) + identifier.nb_pc
    empty = np.diff(found.indptr) == 0  # no features: py3langid's fill instead of the prior
    if empty.any():
        scores[empty] = 0.0 if identifier._norm_probs else np.finfo(np.float32).min
    if identifier._norm_probs:
        scores *= (1.0 / np.sqrt(np.maximum(n_bytes, 1))).astype(np.float32)[:, None]
        np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
    for i, j in identifier._alias_pairs:
        if identifier._norm_probs:
            scores[:, i] += scores[:, j]
            scores[:, j] = 0.0
        else:
            scores[:, i] = np.maximum(scores[:, i], scores[:, j])
            scores[:, j] = np.finfo(np.float32).min
    best = scores.argmax(axis=1)
    confidence = scores[np.arange(len(best)), best].tolist()
    labels = [identifier.nb_classes[b] for b in best.tolist()]
    low = identifier.min_confidence
    return [("und" if low is not None and c < low else label, c) for label, c in zip(labels, confidence)]
