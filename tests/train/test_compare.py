"""`curate compare` (the subset against matched baselines over seeds: t-intervals per arm, paired per-item
differences with bootstrap intervals) and `curate ablate --train` (domain gain against general retention, the
Pareto front), on a tiny random Llama built here."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from tests.model_fixtures import lm_dir, model_env, needs  # noqa: E402,F401 - fixtures

needs("torch", "peft", "scipy", "matplotlib")

from curate.errors import CurateError  # noqa: E402
from curate.train.stats import pareto_front, summarize  # noqa: E402

WORDS = "the cat sat on a mat and the dog ran to the park while birds sang songs about rain sun water".split()


def test_summarize_matches_the_t_interval():
    from scipy import stats

    xs = [0.2, 0.4, 0.3, 0.5]
    s = summarize(xs, 0.95)
    mean, sd = sum(xs) / 4, (sum((x - 0.35) ** 2 for x in xs) / 3) ** 0.5
    half = stats.t.ppf(0.975, 3) * sd / 2
    assert s["n"] == 4 and s["mean"] == pytest.approx(mean) and s["std"] == pytest.approx(sd, abs=1e-6)
    assert s["ci"] == pytest.approx([mean - half, mean + half], abs=1e-6)
    one = summarize([0.3])
    assert one["mean"] == 0.3 and one["ci"] is None and one["std"] is None
    assert summarize([None, 1.0, 3.0])["n"] == 2 and summarize([])["mean"] is None


def test_pareto_front():
    pts = [(0.1, -0.2), (0.3, -0.3), (0.2, -0.1), (0.05, -0.05), (0.2, -0.4), (None, 0.0)]
    assert pareto_front(pts) == [False, True, True, True, False, False]


def _write_sources(tmp_path):
    with open(tmp_path / "general.jsonl", "w") as f:
        for i in range(40):
            f.write(json.dumps({"instruction": f"tell me {i} things about the {WORDS[i % len(WORDS)]}",
                                "output": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(2 + i % 9))}) + "\n")
    with open(tmp_path / "short.jsonl", "w") as f:
        for i in range(30):
            f.write(json.dumps({"instruction": f"name one thing {i}", "output": f"{WORDS[i % len(WORDS)]} {i}"}) + "\n")
    with open(tmp_path / "domain.jsonl", "w") as f:
        for i in range(20):
            f.write(json.dumps({"instruction": f"count to {i % 5 + 1}", "output": " ".join(["one", "two", "three", "four", "five"][: i % 5 + 1])
                                + f" {i}"}) + "\n")
    qs = [{"id": f"q{i}", "question": f"what did the {WORDS[i]} do", "choices": {"text": ["sat", "ran", "sang", "fell"],
           "label": list("ABCD")}, "answerKey": "ABCD"[i % 4]} for i in range(6)]
    (tmp_path / "mc.json").write_text(json.dumps(qs))


SECTIONS = """
train: {{model: {lm}, max_steps: 2, batch_size: 4, learning_rate: 0.003, threads: 1, save_adapter: false,
        lora: {{r: 4, alpha: 8, dropout: 0.0}}, val_max_rows: 4}}
evals:
  batch_size: 4
  tasks:
    mc: {{kind: multiple_choice, role: general, n: 4, source: {{path: mc.json}}}}
"""


def test_compare_two_seeds_writes_means_and_intervals(tmp_path, lm_dir, monkeypatch):
    from curate.train.compare import compare

    _write_sources(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent("""
        name: tiny
        seed: 3
        sources:
          general: {path: general.jsonl, license: cc-by-4.0}
          short: {path: short.jsonl, license: cc-by-4.0}
        steps:
          - score.heuristics: {}
          - select.top_k: {by: response_words, rows: 8}
        outputs: {dir: runs/tiny}
        compare: {seeds: [0, 1], holdout_rows: 5, bootstrap: 500,
                  conditions: [subset, random, random_tokens, random_balanced, full, full_steps]}
        """) + SECTIONS.format(lm=lm_dir))
    out = compare("r.yaml", ["train.max_steps=null"], progress=lambda m: None)  # one epoch each
    assert out.resolve() == tmp_path / "runs" / "tiny" / "compare"
    for name in ("results.json", "results.md", "compare.png", "loss_curves.png", "pool/manifest.json",
                 "subset/seed0/train.json", "random/seed1/evals.json", "full/seed1/loss.png"):
        assert (out / name).exists(), name
    res = json.loads((out / "results.json").read_text())
    arms = ["subset", "random", "random_tokens", "random_balanced", "full", "full_steps"]
    assert res["kind"] == "compare" and res["seeds"] == [0, 1] and list(res["conditions"]) == arms
    assert res["pool"]["rows"] == 70 and res["holdout"] == {"rows": 5, "role": "domain", "metric": "pool_heldout.loss"}
    conds = res["conditions"]
    assert conds["subset"]["rows"] == [8, 8] and conds["random"]["rows"] == [8, 8]
    assert conds["full"]["rows"] == [65, 65] and conds["full_steps"]["rows"] == [65, 65]
    # every arm reports rows, tokens and steps; full_steps trains for the subset's steps, full for its own
    for c in arms:
        assert all(isinstance(x, int) and x > 0 for k in ("rows", "tokens", "steps", "tokens_trained") for x in conds[c][k])
    assert conds["full_steps"]["steps"] == conds["subset"]["steps"] == [2, 2] and conds["full"]["steps"] == [17, 17]
    assert all(t < f for t, f in zip(conds["full_steps"]["tokens_trained"], conds["full"]["tokens_trained"]))
    # the selection (longest answers) carries more tokens than as many random rows; random_tokens matches them
    assert all(r < s for r, s in zip(conds["random"]["tokens"], conds["subset"]["tokens"]))
    longest = max(len(t) for t in (tmp_path / "general.jsonl").read_text().splitlines())
    assert all(abs(t - s) < longest for t, s in zip(conds["random_tokens"]["tokens"], conds["subset"]["tokens"]))
    assert all(n > 8 for n in conds["random_tokens"]["rows"])
    assert set(res["metrics"]) == {"mc.accuracy", "mc.map@3", "pool_heldout.loss"}
    for e in res["metrics"].values():
        assert e["base"] is not None
        for cond in arms:
            s = e["by_condition"][cond]
            assert s["n"] == 2 and s["mean"] is not None and len(s["ci"]) == 2 and s["ci"][0] <= s["mean"] <= s["ci"][1]
            assert s["change_vs_base"]["mean"] is not None
    for cond in arms:
        assert res["summary"][cond]["domain_gain"]["n"] == 2  # pool_heldout.loss is the domain metric
    assert len(res["runs"]) == 12 and {r["dir"] for r in res["runs"]} >= {"subset/seed0", "full/seed1"}
    # paired comparisons: every metric, every arm against the subset, over the same items and both seeds
    assert set(res["paired"]) == set(res["metrics"])
    for m, row in res["paired"].items():
        assert list(row) == arms[1:]
        for arm, p in row.items():
            assert p["seeds"] == 2 and p["items"] == (5 if m == "pool_heldout.loss" else 4)
            assert p["wins"] + p["ties"] + p["losses"] == p["pairs"] == 2 * p["items"]
            assert p["ci"][0] <= p["advantage"] <= p["ci"][1]
            assert (p["verdict"] == "no difference detected") == (p["ci"][0] <= 0 <= p["ci"][1])
    # the paired estimate is the difference of the per-seed metrics, averaged over seeds (loss: arm - subset)
    loss = res["metrics"]["pool_heldout.loss"]["by_condition"]
    assert res["paired"]["pool_heldout.loss"]["random"]["advantage"] == pytest.approx(
        loss["random"]["mean"] - loss["subset"]["mean"], abs=1e-5)
    acc = res["metrics"]["mc.accuracy"]["by_condition"]
    assert res["paired"]["mc.accuracy"]["full"]["advantage"] == pytest.approx(acc["subset"]["mean"] - acc["full"]["mean"], abs=1e-6)
    # the held-out rows are in no run's training data; the random draws differ between seeds
    from curate.train.data import read_rows

    assert (out / "pool" / "data.parquet").exists()
    pool_ids = [r["id"] for r in read_rows(out / "pool")]
    trained = {}
    for r in res["runs"]:
        t = json.loads((out / r["dir"] / "train.json").read_text())
        trained[(r["cond"], r["seed"])] = set(t["data"]["train_ids"])
        assert t["data"]["val_rows"] == 4 and t["steps"] == r["steps"] and t["data"]["train"]["tokens"] == r["tokens"]
    held = set(pool_ids) - trained[("full", 0)]
    assert len(held) == 5 and not any(held & ids for ids in trained.values())
    assert trained[("random", 0)] != trained[("random", 1)]
    selected = {json.loads(line)["id"] for line in (tmp_path / "runs" / "tiny" / "data.jsonl").read_text().splitlines()}
    assert trained[("subset", 0)] == selected
    md = (out / "results.md").read_text()
    # results.md is the data card's rendering (curate.card.sections.compare) under its heading
    assert md.startswith("# Compare: tiny\n") and "| `mc.accuracy` | general | higher |" in md
    assert "| `subset` | 8, 8 | " in md and "Full settings and every run: `results.json`" in md
    p = res["paired"]["pool_heldout.loss"]["random_tokens"]
    assert "Paired against the subset" in md and "| `pool_heldout.loss` | `random_tokens` | 5 × 2 | " in md
    assert f"{p['wins']} / {p['ties']} / {p['losses']}" in md
    evals = json.loads((out / "random" / "seed0" / "evals.json").read_text())
    assert len(evals["tuned"]["items"]["pool_heldout.loss"]["values"]) == 5
    # the data card reads what compare wrote: its metrics, conditions and summary, not the raw runs
    from curate.card.writer import write_card

    card = write_card(tmp_path / "runs" / "tiny", out_dir=tmp_path / "card").read_text()
    section = card.split("### Compared with the random baseline", 1)[1].split("### Ablations", 1)[0]
    acc = res["metrics"]["mc.accuracy"]["by_condition"]["subset"]
    assert f"0.{str(acc['mean']).split('.')[1][:2]}" in section.split("| `mc.accuracy` |", 1)[1].split("\n", 1)[0]
    assert "| `subset` | 8, 8 | " in section and "| the selection |" in section and "| `full` | 65, 65 |" in section
    assert "Paired against the subset" in section  # the same rendering as results.md
    assert "| condition | domain gain | general retention | final train loss | staircase score |" in section
    assert "`pool_heldout.loss`: the loss on 5 pool rows" in section and "train_ids" not in section
    assert "![compare](compare-compare.png)" in section and (tmp_path / "card" / "compare-compare.png").is_file()
    # a re-run of the unchanged recipe keeps compare/ in the run folder
    from curate.pipeline import run_recipe
    from curate.train.compare import RecipeContext

    assert run_recipe(RecipeContext("r.yaml").recipe).carried["kept"] == ["compare"]
    assert (out / "results.json").is_file()
    # a second compare reuses the run folder (its manifest matches the recipe) and the cached base model, and
    # can take the pool as it is from a folder (a machine without what the earlier steps need)
    import shutil

    shutil.copytree(out / "pool", tmp_path / "saved-pool")
    again = compare("r.yaml", ["compare.seeds=[0]", "compare.conditions=[subset, full]", "compare.pool=saved-pool"])
    res2 = json.loads((again / "results.json").read_text())
    assert res2["base"]["cached"] is True and res2["base"]["metrics"] == res["base"]["metrics"]
    assert res2["metrics"]["mc.accuracy"]["by_condition"]["subset"]["ci"] is None
    assert res2["pool"]["built_by"] == "read from saved-pool" and not (again / "pool").exists()
    assert res2["conditions"]["full"]["rows"] == [65] and res2["files"]["pool"] is None
    (tmp_path / "other.jsonl").write_text((tmp_path / "runs" / "tiny" / "data.jsonl").read_text().splitlines()[0] + "\n")
    with pytest.raises(CurateError, match="7 of the 8 selected rows are not in this pool"):
        compare("r.yaml", ["compare.seeds=[0]", "compare.conditions=[subset]", "compare.pool=other.jsonl"])


def test_compare_needs_a_selection(tmp_path, lm_dir, monkeypatch):
    from curate.train.compare import compare

    _write_sources(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text("name: t\nsources:\n  g: {path: general.jsonl}\nsteps:\n  - score.heuristics: {}\n")
    with pytest.raises(CurateError, match="no select step"):
        compare("r.yaml")


MIX_RECIPE = """
name: mixy
sources:
  general: {path: general.jsonl, license: cc-by-4.0}
  domain: {path: domain.jsonl, license: cc-by-4.0}
mix:
  components:
    general: {source: general, fraction: 0.5}
    domain: {source: domain, fraction: 0.5}
  size: {rows: 8}
ablate:
  dir: runs/grid
  ratios: ["0:100", "75:25"]
outputs: {dir: runs/mixy}
"""
DOMAIN_LOSS = """
    held: {kind: loss, role: domain, n: 6, source: {path: domain.jsonl}}
"""


def test_ablate_train_draws_the_pareto_front(tmp_path, lm_dir, monkeypatch):
    from typer.testing import CliRunner

    from curate.cli import app

    _write_sources(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(textwrap.dedent(MIX_RECIPE) + SECTIONS.format(lm=lm_dir) + DOMAIN_LOSS)
    result = CliRunner().invoke(app, ["ablate", "train.yaml", "--train"])
    assert result.exit_code == 0, result.output
    assert "Pareto front:" in result.output and "ratio75-25" in result.output
    grid = tmp_path / "runs" / "grid"
    out = grid / "train"
    assert json.loads((grid / "index.json").read_text())["points"][1]["point"] == "ratio75-25"
    doc = json.loads((out / "pareto.json").read_text())
    assert doc["kind"] == "ablate-train" and doc["seeds"] == [0]
    assert [p["point"] for p in doc["points"]] == ["ratio0-100", "ratio75-25"]
    assert [p["mix"]["general"]["rows"] for p in doc["points"]] == [0, 6]
    for p in doc["points"]:
        assert p["domain_gain"] is not None and p["general_retention"] is not None
        assert math.isclose(p["forgetting"], -p["general_retention"])
        assert set(p["metrics"]) == {"mc.accuracy", "mc.map@3", "held.loss"} and p["runs"][0]["dir"] == f"{p['dir']}/seed0"
        train_json = json.loads((out / p["dir"] / "seed0" / "train.json").read_text())
        assert train_json["data"]["train_rows"] + train_json["data"]["val_rows"] == p["rows"] == 8
    assert doc["front"] == [p["point"] for p in sorted(doc["points"], key=lambda q: q["domain_gain"]) if p["pareto"]]
    assert doc["front"]
    assert (out / "pareto.png").exists() and "Pareto front" in (out / "results.md").read_text()
    # the data card of the recipe's own run lists the grid and, from train/pareto.json, each point's place
    from curate.card.writer import write_card
    from curate.pipeline import run_recipe
    from curate.train.compare import RecipeContext

    run = run_recipe(RecipeContext("train.yaml").recipe).out_dir
    card = write_card(run, out_dir=tmp_path / "card").read_text()
    ablations = card.split("### Ablations", 1)[1]
    assert "| point | rows | domain gain | general retention | on the front |" in ablations
    front = doc["front"][0]
    assert f"| `{front}` | 8 |" in ablations and "The Pareto front: " + f"`{front}`" in ablations
    assert "![domain gain against general retention](ablate-pareto.png)" in ablations
    assert (tmp_path / "card" / "ablate-pareto.png").is_file()
    # rebuilding the same grid keeps the training results; a grid with other data removes them, saying so
    assert CliRunner().invoke(app, ["ablate", "train.yaml"]).exit_code == 0 and (out / "pareto.json").is_file()
    result = CliRunner().invoke(app, ["ablate", "train.yaml", "--set", "seed=5"])
    assert result.exit_code == 0 and "the grid's data changed" in result.output
    assert not out.exists()


def test_ablate_train_checks_the_evals_before_building_the_grid(tmp_path, lm_dir, monkeypatch):
    from typer.testing import CliRunner

    from curate.cli import app

    _write_sources(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.yaml").write_text(textwrap.dedent(MIX_RECIPE) + SECTIONS.format(lm=lm_dir))  # no domain eval
    result = CliRunner().invoke(app, ["ablate", "train.yaml", "--train"])
    assert result.exit_code == 2 and "at least one domain and one general" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()


class _Chars:
    """A stand-in token counter: one token per character of `text`."""

    def __call__(self, rows):
        return [len(r["text"]) for r in rows]

    def total(self, rows):
        return sum(self(rows))


def test_arms_draw_matched_baselines_from_the_pool():
    from curate.train.arms import arm_rows, subset_rows
    from curate.specs.train import CompareSpec

    rest = [{"id": f"p{i}", "source": "ab"[i % 3 == 0], "text": "x" * (5 + (i * 7) % 40), "assistant_spans": []}
            for i in range(60)]
    subset = sorted(rest, key=lambda r: -len(r["text"]))[:6]  # long rows, like a longest-first selection
    spec = CompareSpec(conditions=["subset", "random", "random_tokens", "random_balanced", "full", "full_steps"])
    chosen, _ = subset_rows(0, subset, spec)
    assert chosen == subset
    a, _ = arm_rows("random", 0, chosen, rest, None, spec, None)
    b, _ = arm_rows("random", 1, chosen, rest, None, spec, None)
    assert len(a) == len(b) == 6 and a != b and arm_rows("random", 0, chosen, rest, None, spec, None)[0] == a  # seeded
    count = _Chars()
    budget = count.total(chosen)
    for seed in range(5):  # within one row of the subset's tokens, and more rows than the subset (shorter ones)
        rows, what = arm_rows("random_tokens", seed, chosen, rest, None, spec, count)
        assert abs(count.total(rows) - budget) <= max(count(rows)) and len(rows) > len(chosen) and f"{budget} tokens" in what
    bal, _ = arm_rows("random_balanced", 0, chosen, rest, None, spec, None)
    assert sorted(r["source"] for r in bal) == sorted(r["source"] for r in chosen) and bal != chosen
    small = CompareSpec(rows=3, full_rows=20)
    sub, _ = subset_rows(0, subset, small)
    assert len(sub) == 3 and len(arm_rows("random", 0, sub, rest, None, small, None)[0]) == 3
    assert len(arm_rows("full", 0, sub, rest, None, small, None)[0]) == 20
    assert arm_rows("full_steps", 0, sub, rest, None, small, None)[0] == rest  # the whole pool, fewer steps
    # budgets the pool cannot meet: a clear error naming the field
    with pytest.raises(CurateError, match="compare.conditions: random_tokens needs"):
        arm_rows("random_tokens", 0, chosen, rest[:3], None, spec, count)
    with pytest.raises(CurateError, match="random_balanced needs .* rows of source 'b'"):
        arm_rows("random_balanced", 0, chosen, [r for r in rest if r["source"] == "a"], None, spec, None)


def test_compare_spec_names_bad_conditions():
    from curate.train.context import split_sections

    with pytest.raises(CurateError, match="compare.conditions: .*unknown condition 'random_token'.*did you mean 'random_tokens'"):
        split_sections({"compare": {"conditions": ["subset", "random_token"]}})
    with pytest.raises(CurateError, match="must include subset"):
        split_sections({"compare": {"conditions": ["random", "full"]}})


def test_paired_bootstrap_finds_a_real_difference_and_not_a_null_one():
    import random

    from curate.train.stats import paired

    rng = random.Random(0)
    ids = [str(i) for i in range(200)]

    def run(p):
        return {"ids": ids, "values": [1.0 if rng.random() < p else 0.0 for _ in ids]}

    better = paired([run(0.8), run(0.8)], [run(0.4), run(0.4)], seed="x")
    assert better["verdict"] == "subset better" and better["ci"][0] > 0.2 and better["wins"] > better["losses"]
    same = {"ids": ids, "values": [float(i % 2) for i in range(200)]}
    flip = {"ids": ids, "values": [float((i // 2) % 2) for i in range(200)]}  # same accuracy, other items
    null = paired([same, same], [flip, flip], seed="y")
    assert null["advantage"] == 0 and null["verdict"] == "no difference detected" and null["ci"][0] < 0 < null["ci"][1]
    assert null == paired([same, same], [flip, flip], seed="y")  # seeded: the same interval again
    # a loss: lower is better, weighted by tokens; the estimate is the difference of the token-mean losses
    s = {"ids": ["a", "b"], "values": [1.0, 3.0], "weights": [1, 3]}
    a = {"ids": ["b", "a"], "values": [4.0, 2.0], "weights": [3, 1]}  # matched by id, not position
    out = paired([s], [a], higher_is_better=False, seed="z")
    assert out["advantage"] == pytest.approx((2 * 1 + 4 * 3) / 4 - (1 * 1 + 3 * 3) / 4)
    assert out["wins"] == 2 and out["losses"] == 0 and out["items"] == 2
    assert paired([None], [a]) is None


def test_commands_say_when_the_train_extra_is_missing(tmp_path, monkeypatch):
    import importlib.util

    from typer.testing import CliRunner

    from curate.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    for args in (["train", "r.yaml"], ["compare", "r.yaml"], ["ablate", "r.yaml", "--train"], ["eval", "model"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "missing: peft" in result.output and "curate[train]" in result.output, args
        assert "Traceback" not in result.output

