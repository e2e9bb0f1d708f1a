"""The fitted mixing law (curate.train.mixlaw, curate.train.grid_fit): synthetic grids with known curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.model_fixtures import needs

needs("scipy")

from curate.train import mixlaw  # noqa: E402
from curate.train.grid_fit import fit_grid, suggestions  # noqa: E402

BASE_LOSS = 2.15
GAIN = (0.20, -0.25, 1.5)  # domain gain: falls faster as the general share grows
LOSS = (2.30, -0.6, -3.0)  # general held-out loss: 2.30 at r = 0, falling towards 2.10
# keeping 98% of the base's per-token probability: loss <= 2.15 - ln 0.98 = 2.1702, first reached at r* below
R_STAR = -math.log(1 - (2.30 - (BASE_LOSS - math.log(0.98))) / 0.2) / 3


def synthetic(ratios, seeds=3, noise=(0.01, 0.004), seed=0, gain=GAIN, loss=LOSS):
    """A trained grid's results as `curate ablate --train` writes them, from known curves plus seed noise."""
    rng = np.random.default_rng(seed)
    points = []
    for r in ratios:
        runs = []
        for _ in range(seeds):
            g = float(mixlaw.law(r, *gain) + rng.normal(0, noise[0]))
            lo = float(mixlaw.law(r, *loss) + rng.normal(0, noise[1]))
            runs.append({"metrics": {"held.loss": lo, "arc.accuracy": 0.3 + g}, "domain_gain": g,
                         "general_retention": BASE_LOSS - lo})
        points.append({"point": f"ratio{r:g}", "general_share": r, "runs": runs,
                       "changes": {"mix.components.general.fraction": r, "mix.components.science.fraction": 1 - r}})
    return {"points": points, "confidence": 0.95, "recipe": "synthetic",
            "general": {"component": "general", "components": ["general", "science"]},
            "metrics": {"held.loss": {"role": "general", "primary": True, "higher_is_better": False},
                        "arc.accuracy": {"role": "domain", "primary": True, "higher_is_better": True}},
            "base": {"metrics": {"held.loss": BASE_LOSS, "arc.accuracy": 0.3}}, "settings": {"evals": {}}}


def test_the_law_recovers_known_parameters_and_is_the_data_mixing_laws_form():
    r = np.linspace(0, 1, 6)
    params, sse = mixlaw.fit(r, mixlaw.law(r, *LOSS))
    assert sse < 1e-12 and params == pytest.approx(LOSS, abs=1e-4)
    dml = mixlaw.dml_form(params)  # const + k·exp(t·r)
    assert dml["const"] + dml["k"] * math.exp(dml["t"] * 0.3) == pytest.approx(float(mixlaw.law(0.3, *LOSS)))
    line, _ = mixlaw.fit(r, 1 + 2 * r)  # a straight line: c -> 0, a = 1, b = 2
    assert line[0] == pytest.approx(1, abs=1e-4) and line[1] == pytest.approx(2, abs=1e-3) and abs(line[2]) < 1e-2
    assert mixlaw.fit([0, 0, 1, 1], [1, 2, 3, 4]) is None  # two ratios cannot determine three parameters


def test_a_synthetic_grid_recovers_the_known_optimum_within_its_interval():
    doc = fit_grid(synthetic([0.0, 0.2, 0.4, 0.6, 0.8]), retention=0.98, iterations=200)
    assert doc["constraints"][0]["bound"] == pytest.approx(BASE_LOSS - math.log(0.98), abs=1e-6)
    (g,) = doc["groups"]
    rec = g["recommendation"]
    lo, hi = rec["interval"]
    assert lo <= R_STAR <= hi and hi - lo < 0.25
    assert rec["r"] == pytest.approx(R_STAR, abs=0.05) and rec["ratio"] == f"{round(100 * rec['r'])}:{100 - round(100 * rec['r'])}"
    # the fitted curves are close to the true ones, and their bands are as wide as the seed noise says
    grid = np.linspace(0, 1, 101)
    for m, true in (("domain_gain", GAIN), ("held.loss", LOSS)):
        e = g["metrics"][m]
        inside = grid <= 0.8
        truth = mixlaw.law(grid, *true)
        assert np.max(np.abs(np.asarray(e["curve"]["fit"]) - truth)[inside]) < 3 * e["seed_se"]
        half = (np.asarray(e["curve"]["hi"]) - np.asarray(e["curve"]["lo"]))[[0, 20, 40, 60, 80]] / 2
        assert np.all((0.3 * e["seed_se"] < half) & (half < 3 * e["seed_se"]))
        beyond = (np.asarray(e["curve"]["hi"]) - np.asarray(e["curve"]["lo"]))[100] / 2
        assert beyond > half[-1]  # wider where no ratio was trained
    assert not [w for w in g["warnings"] if "noisy" in w or "coarse" in w]
    # deterministic: the same results give the same fit
    assert fit_grid(synthetic([0.0, 0.2, 0.4, 0.6, 0.8]), retention=0.98, iterations=200) == doc
    # a stricter target needs more general data
    strict = fit_grid(synthetic([0.0, 0.2, 0.4, 0.6, 0.8]), retention=0.99, iterations=50)["groups"][0]["recommendation"]
    assert strict["r"] > rec["r"]


def test_accuracy_targets_are_a_share_of_the_base_score():
    res = synthetic([0.0, 0.3, 0.6, 0.9])
    res["metrics"]["held.loss"]["role"] = "domain"
    res["metrics"]["arc.accuracy"]["role"] = "general"
    doc = fit_grid(res, retention=0.9, iterations=30)
    assert doc["constraints"] == [{"metric": "arc.accuracy", "base": 0.3, "bound": 0.27, "higher_is_better": True,
                                   "rule": "arc.accuracy >= 0.9 x base 0.3 = 0.27"}]


def test_warnings_say_what_is_too_coarse_or_too_noisy():
    two = fit_grid(synthetic([0.0, 0.5]), retention=0.98, iterations=30)["groups"][0]
    assert two["recommendation"] is None and "too coarse to fit: 2 ratio(s)" in two["warnings"][0]
    assert two["suggest"][0] == 1.0 and all(abs(s - r) >= 0.05 for s in two["suggest"] for r in (0.0, 0.5))
    three = fit_grid(synthetic([0.0, 0.4, 0.8], seeds=1), retention=0.98, iterations=30)["groups"][0]
    text = " ".join(three["warnings"])
    assert "coarse: 3 ratios for 3 parameters" in text and "1 seed: no bootstrap" in text
    assert three["recommendation"]["interval"] is None and "lo" not in three["metrics"]["held.loss"]["curve"]
    flat = fit_grid(synthetic([0.0, 0.2, 0.4, 0.6, 0.8], gain=(0.05, 0.0, 0.0), noise=(0.05, 0.004)),
                    retention=0.98, iterations=60)["groups"][0]
    assert any(w.startswith("too noisy for domain_gain") for w in flat["warnings"])
    assert not any("too noisy for held.loss" in w for w in flat["warnings"])


def test_no_ratio_keeps_an_impossible_target():
    g = fit_grid(synthetic([0.0, 0.2, 0.4, 0.6]), retention=1.2, iterations=30)["groups"][0]
    assert g["recommendation"]["r"] is None and g["recommendation"]["closest"] == pytest.approx(0.6)
    assert any("no ratio in [0, 0.6] keeps the retention target" in w for w in g["warnings"])


def test_suggestions_go_where_the_bands_are_widest():
    doc = fit_grid(synthetic([0.2, 0.3, 0.4, 0.5, 0.9]), retention=0.98, iterations=100)
    (g,) = doc["groups"]
    score = dict(zip(g["uncertainty"]["r"], g["uncertainty"]["score"]))
    (first, *_), = [s["r"] for s in suggestions(doc, 3)]
    free = [r for r, v in score.items() if v is not None and min(abs(r - t) for t in g["ratios"]) >= 0.05]
    assert score[first] == max(score[r] for r in free) and first not in g["ratios"]
    # in the wide gap the band is wider than beside the trained ratios
    assert max(score[r] for r in (0.6, 0.7, 0.8)) > max(score[r] for r in (0.25, 0.35, 0.45))
    assert score[0.1] is not None and all(score[r] is None for r in (0.0, 0.05))  # within 0.1 of the grid
    (sugg,) = suggestions(doc, 3)
    assert len(sugg["r"]) == 3 and len({round(r, 2) for r in sugg["r"]}) == 3
    assert all(min(abs(a - b) for b in sugg["r"] if b != a) >= 0.1 - 1e-9 for a in sugg["r"])
    assert sugg["ratios"][0] == f"{round(100 * first)}:{100 - round(100 * first)}"


def test_points_that_differ_beyond_the_ratio_are_fitted_apart():
    a, b = synthetic([0.0, 0.3, 0.6]), synthetic([0.0, 0.3, 0.6], loss=(2.2, -0.3, -2.0), seed=1)
    for p in a["points"]:
        p["changes"]["train.stages"], p["point"] = None, p["point"] + "_schedule-mixed"
    for p in b["points"]:
        p["changes"]["train.stages"], p["point"] = ["general", "science"], p["point"] + "_schedule-sequential"
    a["points"] += b["points"]
    doc = fit_grid(a, retention=0.98, iterations=30)
    assert [g["group"] for g in doc["groups"]] == ["schedule-mixed", "schedule-sequential"]
    assert doc["groups"][0]["metrics"]["held.loss"]["params"] != doc["groups"][1]["metrics"]["held.loss"]["params"]
