"""py3langid's `classify` for many texts at once, with the same model and the same arithmetic.

py3langid walks its byte automaton one byte per Python step (`visit_counts`), which made `score.language`
the slowest step of the lima_style pipeline (39% of a 73k-row run). Here a group of texts of similar length
walks the automaton together, one numpy step per byte position; the features each text visits, their
counts in first-visit order, the naive-Bayes scores, the length-scaled softmax and the alias folding are then
exactly py3langid's, so the results are identical (tests/test_score_language_tokens.py compares them on the
real pool). bench/bench_language.py measures the speed-up.
"""

from __future__ import annotations

import math

import numpy as np

GROUP = 256  # texts walked together: sorted by length, so padding stays small


def _tables(identifier) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cached = getattr(_tables, "cache", None)
    if cached is None or cached[0] is not identifier:
        cached = (identifier, np.asarray(identifier.tk_nextmove, dtype=np.int64),
                  np.asarray(identifier._rowbase, dtype=np.int64), np.asarray(identifier.tk_output, dtype=np.int64))
        _tables.cache = cached
    return cached[1:]


def classify_many(identifier, texts: list[str]) -> list[tuple[str, float]]:
    """[(language, confidence)] for `texts`, equal to `[identifier.classify(t) for t in texts]`."""
    nextmove, rowbase, output = _tables(identifier)
    encoded = [identifier._encode(t) for t in texts]
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
    by_length = np.argsort(lengths, kind="stable")
    out: list = [None] * len(texts)
    for start in range(0, len(by_length), GROUP):
        idx = by_length[start:start + GROUP]
        width = int(lengths[idx].max()) if len(idx) else 0
        data = np.zeros((len(idx), max(width, 1)), dtype=np.int64)
        for r, i in enumerate(idx):
            data[r, : lengths[i]] = np.frombuffer(encoded[i], dtype=np.uint8)
        state = np.zeros(len(idx), dtype=np.int64)
        features = np.empty((len(idx), max(width, 1)), dtype=np.int64)
        for pos in range(width):
            state = nextmove[rowbase[state] + data[:, pos]]
            features[:, pos] = output[state]
        features[np.arange(features.shape[1])[None, :] >= lengths[idx][:, None]] = -1  # past each text's end
        # each text's features and counts in first-visit order (py3langid's Counter order), for the group at once
        row, pos = np.nonzero(features >= 0)
        n_features = len(identifier.nb_ptc)
        unique, first, counts = np.unique(row * n_features + features[row, pos], return_index=True, return_counts=True)
        owner = unique // n_features
        visit = np.lexsort((first, owner))
        feature, counts, owner = (unique % n_features)[visit], counts[visit].astype(np.float32), owner[visit]
        cut = np.searchsorted(owner, np.arange(len(idx) + 1))
        for r, i in enumerate(idx):
            a, b = cut[r], cut[r + 1]
            out[i] = _classify(identifier, feature[a:b], counts[a:b], int(lengths[i]))
    return out


def _classify(identifier, idx: np.ndarray, counts: np.ndarray, n_bytes: int) -> tuple[str, float]:
    """py3langid's _decide + classify from the features a text visited (first-visit order) and their counts."""
    if len(idx):
        scores = np.log1p(counts) @ identifier.nb_ptc[idx] + identifier.nb_pc
    else:
        fill = 0.0 if identifier._norm_probs else float(np.finfo(np.float32).min)
        scores = np.full(len(identifier.nb_classes), fill, dtype=np.float32)
    if identifier._norm_probs:
        scores *= 1.0 / math.sqrt(n_bytes or 1)
        np.exp(scores - scores.max(), out=scores)
        scores /= scores.sum()
    for i, j in identifier._alias_pairs:
        if identifier._norm_probs:
            scores[i] += scores[j]
            scores[j] = 0.0
        else:
            scores[i] = max(scores[i], scores[j])
            scores[j] = float(np.finfo(np.float32).min)
    best = int(scores.argmax())
    confidence = float(scores[best])
    if identifier.min_confidence is not None and confidence < identifier.min_confidence:
        return "und", confidence
    return identifier.nb_classes[best], confidence
