"""Selectors: budgets in rows and tokens, seeded determinism, exact allocations, and budget errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from curate.errors import CurateError
from curate.steps.base import Budget
from curate.steps.select.random import RandomSelect, random_subset
from curate.steps.select.stratified import Stratified, equal_split, largest_remainder
from curate.steps.select.threshold import Threshold
from curate.steps.select.top_k import TopK
from tests.helpers import build, pairs_dataset


def make_ds(n=20, scores=None, tokens=None, sources=None):
    cols = {}
    if scores is not None:
        cols["q"] = scores
    cols["n_tokens"] = tokens if tokens is not None else [10 + i for i in range(n)]
    return pairs_dataset(
        [(f"prompt {i}", f"response {i}") for i in range(n)], source=sources or "test", extra_columns=cols
    )


def tokens_of(ds, idx):
    return sum(ds["n_tokens"][i] for i in idx)


# -- select.random ---------------------------------------------------------------------------------


def test_random_rows_budget_and_order():
    ds = make_ds(50)
    step = build(RandomSelect, seed=3, rows=12)
    chosen = step.select(ds)
    assert len(chosen) == 12 and len(set(chosen)) == 12
    assert chosen == sorted(chosen) and all(0 <= i < 50 for i in chosen)
    assert step.ctx.notes["selected"] == 12


def test_random_token_budget():
    ds = make_ds(50)
    chosen = build(RandomSelect, seed=1, tokens=300).select(ds)
    spent = tokens_of(ds, chosen)
    assert spent <= 300
    # Rows cost 10..59, so a walk that skips rows that do not fit ends within one short row of the budget.
    assert spent > 300 - 10


def test_random_seeded():
    ds = make_ds(100)
    a = build(RandomSelect, seed=7, rows=10).select(ds)
    b = build(RandomSelect, seed=7, rows=10).select(ds)
    c = build(RandomSelect, seed=8, rows=10).select(ds)
    assert a == b
    assert a != c


def test_random_budget_too_large():
    ds = make_ds(5)
    with pytest.raises(CurateError, match="larger than the 5 rows"):
        build(RandomSelect, rows=6).select(ds)
    with pytest.raises(CurateError, match="tokens"):
        build(RandomSelect, tokens=10_000).select(ds)


def test_random_subset_matches_any_budget():
    ds = make_ds(40, scores=[float(i) for i in range(40)])
    step = build(RandomSelect, seed=5, rows=8)
    assert random_subset(ds, step.params, seed=5) == step.select(ds)
    # A top_k's params work as the budget too: same size, random rows.
    top = TopK.Params(by="q", tokens=200)
    base = random_subset(ds, top, seed=0)
    assert tokens_of(ds, base) <= 200
    assert base == random_subset(ds, Budget(tokens=200), seed=0)
    with pytest.raises(CurateError):
        random_subset(ds, Threshold.Params(by="q", min=3), seed=0)


def test_token_budget_needs_column():
    ds = pairs_dataset([("a", "b"), ("c", "d")])
    with pytest.raises(CurateError, match="n_tokens"):
        build(RandomSelect, tokens=5).select(ds)


# -- select.top_k ----------------------------------------------------------------------------------


def test_top_k_picks_the_top():
    scores = [0.3, 0.9, 0.1, 0.7, 0.5, 0.8]
    ds = make_ds(6, scores=scores)
    assert build(TopK, by="q", rows=3).select(ds) == [1, 3, 5]
    assert build(TopK, by="q", rows=2, descending=False).select(ds) == [0, 2]


def test_top_k_never_takes_nan():
    scores = [float("nan"), 0.2, None, 0.4, float("nan"), 0.1]
    ds = make_ds(6, scores=scores)
    step = build(TopK, by="q", rows=3)
    assert step.select(ds) == [1, 3, 5]
    assert step.ctx.notes["unscored"] == 3
    # Only three rows are scored: asking for four is an error, not a NaN row.
    with pytest.raises(CurateError, match="larger than the 3 rows"):
        build(TopK, by="q", rows=4).select(ds)
    assert build(TopK, by="q", rows=3, descending=False).select(ds) == [1, 3, 5]


def test_top_k_ties_by_position_and_seed_free():
    ds = make_ds(6, scores=[1.0, 2.0, 2.0, 2.0, 1.0, 2.0])
    assert build(TopK, by="q", rows=2, seed=0).select(ds) == [1, 2]
    assert build(TopK, by="q", rows=2, seed=99).select(ds) == [1, 2]


def test_top_k_token_budget_skips_rows_that_do_not_fit():
    ds = make_ds(4, scores=[4.0, 3.0, 2.0, 1.0], tokens=[50, 60, 30, 20])
    # 50 fits, 60 does not (110 > 100), 30 fits (80), 20 fits (100).
    assert build(TopK, by="q", tokens=100).select(ds) == [0, 2, 3]


def test_top_k_missing_column_did_you_mean():
    ds = make_ds(4, scores=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(CurateError) as e:
        build(TopK, by="qq", rows=1).select(ds)
    assert "did you mean 'q'" in str(e.value)
    assert e.value.where == "steps[0].select.top_k.by"


def test_top_k_rejects_text_column():
    ds = make_ds(3, scores=[1.0, 2.0, 3.0])
    with pytest.raises(CurateError, match="not numeric"):
        build(TopK, by="source", rows=1).select(ds)


def test_budget_params_need_exactly_one():
    with pytest.raises(ValidationError):
        TopK.Params(by="q")
    with pytest.raises(ValidationError):
        TopK.Params(by="q", rows=1, tokens=1)
    with pytest.raises(ValidationError):
        TopK.Params(by="q", rows=1, extra=1)


# -- select.threshold ------------------------------------------------------------------------------


def test_threshold_bounds_inclusive_and_nan():
    ds = make_ds(6, scores=[0.1, 0.5, float("nan"), 0.9, 0.3, None])
    step = build(Threshold, by="q", min=0.3, max=0.9)
    assert step.select(ds) == [1, 3, 4]
    assert step.ctx.notes["passing"] == 3 and step.ctx.notes["unscored"] == 2
    assert build(Threshold, by="q", max=0.3).select(ds) == [0, 4]


def test_threshold_cap_takes_highest_first():
    ds = make_ds(6, scores=[0.6, 0.5, 0.95, 0.9, 0.3, 0.7])
    step = build(Threshold, by="q", min=0.5, rows=2)
    assert step.select(ds) == [2, 3]
    assert step.ctx.notes["capped"] is True and step.ctx.notes["passing"] == 5
    assert build(Threshold, by="q", min=0.5, rows=2, descending=False).select(ds) == [0, 1]


def test_threshold_token_cap():
    ds = make_ds(5, scores=[5.0, 4.0, 3.0, 2.0, 1.0], tokens=[40, 40, 40, 10, 10])
    assert build(Threshold, by="q", min=2.0, tokens=90).select(ds) == [0, 1, 3]


def test_threshold_cap_is_a_cap_not_a_target():
    ds = make_ds(6, scores=[0.1, 0.2, 0.9, 0.95, 0.3, 0.4])
    step = build(Threshold, by="q", min=0.9, rows=5)
    assert step.select(ds) == [2, 3]  # fewer pass than the cap: fine
    assert step.ctx.notes["capped"] is False
    with pytest.raises(CurateError, match="larger than the 6 rows"):
        build(Threshold, by="q", min=0.9, rows=7).select(ds)


def test_threshold_params():
    Threshold.Params(by="q", min=1)  # no budget is allowed here
    with pytest.raises(ValidationError, match="min, max"):
        Threshold.Params(by="q")
    with pytest.raises(ValidationError, match="larger than max"):
        Threshold.Params(by="q", min=2, max=1)
    with pytest.raises(ValidationError, match="at most one"):
        Threshold.Params(by="q", min=1, rows=1, tokens=1)


def test_threshold_missing_column():
    with pytest.raises(CurateError, match="did you mean 'q'") as e:
        build(Threshold, by="Q", min=1).select(make_ds(3, scores=[1.0, 2.0, 3.0]))
    assert e.value.where.endswith(".by")


# -- select.stratified -----------------------------------------------------------------------------

SOURCES = ["a"] * 6 + ["b"] * 3 + ["c"] * 1


def per_source(ds, idx, column="source"):
    out = {}
    for i in idx:
        out[ds[column][i]] = out.get(ds[column][i], 0) + 1
    return out


def test_largest_remainder_and_equal_split():
    assert largest_remainder(10, [6, 3, 1]) == [6, 3, 1]
    assert largest_remainder(5, [6, 3, 1]) == [3, 2, 0]  # 3, 1.5, 0.5: the tie goes to the larger stratum
    assert largest_remainder(7, [5, 3, 2]) == [4, 2, 1]
    assert sum(largest_remainder(97, [13, 29, 31, 40])) == 97
    assert equal_split(9, [6, 3, 1]) == [5, 3, 1]
    assert equal_split(7, [10, 10, 10]) == [3, 2, 2]
    assert equal_split(9, [2, 2, 100, 100]) == [2, 2, 3, 2]


def test_stratified_proportional_exact():
    ds = make_ds(10, sources=SOURCES)
    step = build(Stratified, rows=5)
    chosen = step.select(ds)
    assert per_source(ds, chosen) == {"a": 3, "b": 2}
    strata = step.ctx.notes["strata"]
    assert strata["a"] == {"available": 6, "target": 3, "selected": 3}
    assert strata["c"]["selected"] == 0


def test_stratified_equal_redistributes_short_strata():
    ds = make_ds(10, sources=SOURCES)
    step = build(Stratified, rows=9, allocation="equal")
    chosen = step.select(ds)
    assert per_source(ds, chosen) == {"a": 5, "b": 3, "c": 1}
    assert {k: v["selected"] for k, v in step.ctx.notes["strata"].items()} == {"a": 5, "b": 3, "c": 1}
    assert per_source(ds, build(Stratified, rows=3, allocation="equal").select(ds)) == {"a": 1, "b": 1, "c": 1}


def test_stratified_top_within_and_nan():
    scores = [0.1, 0.9, 0.5, 0.8, float("nan"), 0.2, 0.3, 0.7, 0.6, 0.4]
    ds = make_ds(10, scores=scores, sources=SOURCES)
    step = build(Stratified, rows=4, within="top", score="q", allocation="equal")
    # Eligible (scored) rows: a has 5, b 3, c 1 → equal: c 1, then a and b share 3 (a 2, b 1).
    assert step.select(ds) == [1, 3, 7, 9]
    with pytest.raises(CurateError, match="larger than the 9 rows"):
        build(Stratified, rows=10, within="top", score="q").select(ds)


def test_stratified_any_column_and_seed():
    ds = make_ds(30, sources=["x", "y", "z"] * 10)
    ds = ds.add_column("lang", ["en"] * 20 + ["de"] * 10)
    step = build(Stratified, by="lang", rows=6, seed=1)
    chosen = step.select(ds)
    assert per_source(ds, chosen, "lang") == {"en": 4, "de": 2}
    assert chosen == build(Stratified, by="lang", rows=6, seed=1).select(ds)
    assert chosen != build(Stratified, by="lang", rows=6, seed=2).select(ds)


def test_stratified_token_budget():
    tokens = [10] * 6 + [20] * 3 + [60]  # a: 60 tokens, b: 60, c: 60
    ds = make_ds(10, tokens=tokens, sources=SOURCES)
    step = build(Stratified, tokens=120, allocation="proportional")
    chosen = step.select(ds)
    strata = step.ctx.notes["strata"]
    assert [strata[s]["target"] for s in "abc"] == [40, 40, 40]
    assert strata["a"]["tokens"] == 40 and strata["b"]["tokens"] == 40 and strata["c"]["tokens"] == 0
    assert tokens_of(ds, chosen) == 80 <= 120


def test_stratified_params_and_errors():
    with pytest.raises(ValidationError, match="needs `score`"):
        Stratified.Params(rows=1, within="top")
    with pytest.raises(ValidationError):
        Stratified.Params(rows=1, allocation="even")
    ds = make_ds(10, sources=SOURCES)
    with pytest.raises(CurateError, match="did you mean 'source'") as e:
        build(Stratified, by="sorce", rows=2).select(ds)
    assert e.value.where.endswith(".by")
    with pytest.raises(CurateError, match="larger than"):
        build(Stratified, rows=11).select(ds)


@pytest.mark.parametrize(
    "cls,params",
    [
        (RandomSelect, {}),
        (TopK, {"by": "q"}),
        (Threshold, {"by": "q", "min": 0.2}),
        (Stratified, {}),
        (Stratified, {"within": "top", "score": "q", "allocation": "equal"}),
    ],
)
def test_every_selector_deterministic(cls, params):
    rng = np.random.default_rng(0)
    ds = make_ds(60, scores=[float(x) for x in rng.random(60)], sources=["a", "b", "c"] * 20)
    for budget in ({"rows": 10}, {"tokens": 400}):
        a = build(cls, seed=4, **params, **budget).select(ds)
        b = build(cls, seed=4, **params, **budget).select(ds)
        assert a == b and a == sorted(a) and len(a) > 0
        limit = budget.get("rows") or budget["tokens"]
        assert (len(a) if "rows" in budget else tokens_of(ds, a)) <= limit
        assert not any(math.isnan(ds["q"][i]) for i in a)
