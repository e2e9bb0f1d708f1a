"""The arms of `curate compare`: which rows each condition trains on, for each seed.

All arms draw from the compare pool less the shared held-out rows (`rest`), seeded by the seed and the arm's
name, so the same recipe and inputs give the same rows:

| arm | rows | what it controls for |
|---|---|---|
| `subset` | the selection (a seeded sample of `compare.rows` of it, when set) | - |
| `random` | a uniform random draw of as many pool rows as the subset arm has (or the run folder's `baseline_random` with `redraw_random: false`) | the number of rows |
| `random_tokens` | uniform random pool rows, in a seeded order, until their tokens reach the subset arm's tokens (the last row is kept when that brings the total closer): within one row of the subset's tokens | the length confound: a selection of long answers carries more tokens than a random draw of as many rows |
| `random_balanced` | for each source, as many random rows of that source as the subset arm has | the source mix (Ivison et al. 2025's balanced baseline) |
| `full` | every pool row (or a seeded sample of `compare.full_rows`), `train.epochs` as set | - |
| `full_steps` | every pool row, trained for the subset run's number of optimizer steps (of the same seed) | compute: the same steps over more, unrepeated rows |

Tokens are counted with the trained model's tokenizer exactly as training encodes a row (curate.encoding:
the rendered `text`, cut at `train.max_length`; a row with no answer token left counts 0): the tokens the
optimizer sees, which is what a compute- or length-matched baseline must match (a recipe's `n_tokens` column,
when there is one, may come from another tokenizer and does not see the truncation).
"""

from __future__ import annotations

import random
from collections import Counter

from curate.errors import CurateError

ARMS = ("subset", "random", "random_tokens", "random_balanced", "full", "full_steps")
RANDOM_ARMS = ("random", "random_tokens", "random_balanced")


class TokenCounter:
    """Token counts of rows, as training would encode them (the model's tokenizer, cut at `max_length`)."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._memo: dict[str, int] = {}

    @classmethod
    def for_spec(cls, train_spec, base_dir=".") -> "TokenCounter":
        from curate.models import load_tokenizer

        return cls(load_tokenizer(train_spec.model, base_dir=base_dir, where="train.model"), train_spec.max_length)

    def __call__(self, rows: list[dict]) -> list[int]:
        from curate.encoding import encode

        todo = [r for r in rows if r["text"] not in self._memo]
        todo = list({r["text"]: r for r in todo}.values())
        for k in range(0, len(todo), 512):
            chunk = todo[k:k + 512]
            encoded = encode(self.tokenizer, [r["text"] for r in chunk], [r["assistant_spans"] for r in chunk],
                             self.max_length)
            for r, e in zip(chunk, encoded):
                self._memo[r["text"]] = len(e["input_ids"]) if e is not None else 0
        return [self._memo[r["text"]] for r in rows]

    def total(self, rows: list[dict]) -> int:
        return sum(self(rows))


def subset_rows(seed: int, subset: list[dict], cspec) -> tuple[list[dict], str]:
    if cspec.rows and cspec.rows < len(subset):
        return sample(subset, cspec.rows, random.Random(f"{seed}:subset")), \
            f"a seeded sample of {cspec.rows} rows of the selection"
    return list(subset), "the selection"


def arm_rows(cond: str, seed: int, chosen: list[dict], rest: list[dict], baseline, cspec,
             count: TokenCounter | None) -> tuple[list[dict], str]:
    """(rows, a description) of arm `cond` for `seed`; `chosen` = the subset arm's rows for this seed."""
    rng = random.Random(f"{seed}:{cond}")
    if cond == "subset":
        return list(chosen), "the selection"
    if cond == "random":
        if baseline is not None:
            if cspec.rows and cspec.rows < len(baseline):
                return sample(baseline, cspec.rows, rng), f"{cspec.rows} rows of the run folder's baseline_random"
            return list(baseline), "the run folder's baseline_random"
        if len(chosen) > len(rest):
            raise CurateError(f"the random arm needs {len(chosen)} pool rows, the pool has {len(rest)} outside the "
                              "held-out rows", "compare.conditions")
        return sample(rest, len(chosen), rng), f"{len(chosen)} uniformly random pool rows (seed {seed})"
    if cond == "random_tokens":
        return token_matched(chosen, rest, rng, count, seed)
    if cond == "random_balanced":
        return source_balanced(chosen, rest, rng, seed)
    if cond in ("full", "full_steps"):
        if cond == "full" and cspec.full_rows and cspec.full_rows < len(rest):
            return sample(rest, cspec.full_rows, rng), f"a seeded sample of {cspec.full_rows} pool rows"
        what = "the whole pool less the held-out rows"
        return list(rest), what + (", for the subset run's number of optimizer steps" if cond == "full_steps" else "")
    raise CurateError(f"unknown condition {cond!r}", "compare.conditions")


def token_matched(chosen: list[dict], rest: list[dict], rng: random.Random, count: TokenCounter, seed: int):
    """Uniform random pool rows until their tokens reach the subset's: a prefix of a seeded permutation (so
    every row is equally likely whatever its length), whose total is within one row of the budget."""
    budget = count.total(chosen)
    tokens = count(rest)
    if sum(tokens) < budget:
        raise CurateError(f"random_tokens needs {budget} tokens (the subset arm's), the pool outside the held-out "
                          f"rows has {sum(tokens)}: drop the arm or lower compare.holdout_rows", "compare.conditions")
    order = list(range(len(rest)))
    rng.shuffle(order)
    picked, total = [], 0
    for i in order:
        if total >= budget:
            break
        picked.append(i)
        total += tokens[i]
    if len(picked) > 1 and total - budget > budget - (total - tokens[picked[-1]]):
        total -= tokens[picked.pop()]  # the last row overshoots more than leaving it out undershoots
    return [rest[i] for i in sorted(picked)], f"uniformly random pool rows up to the subset's {budget} tokens ({total}; seed {seed})"


def source_balanced(chosen: list[dict], rest: list[dict], rng: random.Random, seed: int):
    """For each source, as many uniformly random pool rows of that source as the subset has."""
    want = Counter(r.get("source") for r in chosen)
    by_source: dict = {}
    for i, r in enumerate(rest):
        by_source.setdefault(r.get("source"), []).append(i)
    picked = []
    for source in sorted(want, key=str):
        have = by_source.get(source, [])
        if len(have) < want[source]:
            raise CurateError(f"random_balanced needs {want[source]} rows of source {source!r} (the subset arm's), the "
                              f"pool has {len(have)} outside the held-out rows", "compare.conditions")
        picked += rng.sample(have, want[source])
    counts = ", ".join(f"{s} {n}" for s, n in sorted(want.items(), key=lambda x: str(x[0])))
    return [rest[i] for i in sorted(picked)], f"random pool rows with the subset's per-source counts ({counts}; seed {seed})"


def holdout(pool: list[dict], subset: list[dict], baseline, cspec, seed: int):
    """(held-out rows, the pool less them): drawn from rows no condition trains on."""
    if cspec.holdout_rows == 0:
        return [], list(pool)
    taken = {r.get("id") for r in subset} | {r.get("id") for r in (baseline or [])}
    eligible = [i for i, r in enumerate(pool) if r.get("id") not in taken]
    if not eligible:
        raise CurateError("no pool row is outside the selection to hold out; set compare.holdout_rows: 0",
                          "compare.holdout_rows")
    k = min(cspec.holdout_rows, len(eligible))
    picked = set(random.Random(f"{seed}:holdout").sample(eligible, k))
    return [pool[i] for i in sorted(picked)], [r for i, r in enumerate(pool) if i not in picked]


def sample(rows, k, rng):
    return [rows[i] for i in sorted(rng.sample(range(len(rows)), k))]
