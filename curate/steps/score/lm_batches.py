"""The score cache and the batching of the model scorers (not a step): results stored by (model
fingerprint, what is computed, exact token ids), computed in length-sorted, dynamically padded batches.

**Batching.** Sequences are sorted longest first and packed into batches of at most `batch_size`
sequences and `batch_tokens` padded tokens (right padding, so positions stay 0..n-1 and, under
the causal mask, no real token sees a pad: no attention mask is needed); a sequence
shorter than 3/4 of its batch's longest starts a new batch, so padding stays under 25%.

**Cache.** Results are stored in `<cache_dir>/scores.sqlite` under sha256(model fingerprint, what is
computed, token ids, scored spans), batch by batch, so an interrupted run keeps its progress and a
re-run, a re-selection or another step asking for the same numbers (`score.perplexity` and
`score.ifd` share theirs) runs no forward pass. `cache_dir: null` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from curate.progress import rate_progress

# What the forward passes did in this process (for tests and benchmarks; not in manifests, which must
# not depend on what happened to be cached).
stats: Counter = Counter()


# -- the cache -------------------------------------------------------------------------------------


class ScoreCache:
    """A key -> JSON value store in `<directory>/scores.sqlite`; a no-op when directory is None."""

    def __init__(self, directory: str | Path | None, fingerprint: str):
        self.fingerprint = fingerprint
        self.db = None
        if directory is not None:
            path = Path(directory)
            path.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path / "scores.sqlite"), timeout=120)
            self.db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.db.commit()

    def key(self, kind: str, ids: Sequence[int], extra) -> str:
        import numpy as np

        h = hashlib.sha256(json.dumps([self.fingerprint, kind, extra], separators=(",", ":")).encode())
        h.update(b"\0" + np.asarray(ids, dtype=np.int64).tobytes())
        return h.hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, object]:
        if self.db is None or not keys:
            return {}
        found = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            for k, v in self.db.execute(f"SELECT key, value FROM scores WHERE key IN ({marks})", part):
                found[k] = json.loads(v)
        return found

    def put_many(self, items: dict[str, object]) -> None:
        if self.db is None or not items:
            return
        self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?)",
                            [(k, json.dumps(v)) for k, v in items.items()])
        self.db.commit()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


# -- batched, cached computation -------------------------------------------------------------------


def default_batch_tokens(model) -> int:
    """32768 on a GPU; 2048 on a CPU, where larger batches only add cache misses (measured on SmolLM2:
    batches of 16 x 512 ran slower than one sequence at a time)."""
    return 32768 if next(model.parameters()).device.type == "cuda" else 2048


def make_batches(indices: list[int], lengths: list[int], *, batch_tokens: int, batch_size: int) -> list[list[int]]:
    """Longest first; a batch holds at most `batch_size` sequences and `batch_tokens` padded tokens, and
    a sequence shorter than 3/4 of the batch's longest starts a new one (at most 25% padding)."""
    order = sorted(indices, key=lambda i: (-lengths[i], i))
    batches, cur = [], []
    for i in order:  # the batch's first sequence is its longest and sets its padded length
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * lengths[cur[0]] > batch_tokens
                    or 4 * lengths[i] < 3 * lengths[cur[0]]):
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def run_cached(keys: list[str], lengths: list[int], compute: Callable[[list[int]], list], cache: ScoreCache,
               *, batch_tokens: int, batch_size: int, desc: str) -> list:
    """Values for every key: from the cache, else from `compute(indices)` over length-sorted batches.

    Identical keys are computed once. Each batch's results are stored before the next batch starts.
    """
    results: list = [None] * len(keys)
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    hits = cache.get_many(list(first))
    todo = [i for k, i in first.items() if k not in hits]
    stats["cache_hits"] += len(first) - len(todo)
    stats["computed"] += len(todo)
    batches = make_batches(todo, lengths, batch_tokens=batch_tokens, batch_size=batch_size)
    computed: dict[str, object] = {}
    with rate_progress(len(todo), sum(lengths[i] for i in todo), desc) as advance:
        for batch in batches:
            values = compute(batch)
            new = {keys[i]: v for i, v in zip(batch, values)}
            cache.put_many(new)
            computed.update(new)
            advance(len(batch), sum(lengths[i] for i in batch))
    for i, k in enumerate(keys):
        results[i] = hits[k] if k in hits else computed[k]
    return results
