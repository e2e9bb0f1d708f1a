"""`curate ablate --train` with the fit, end to end on a tiny random Llama: held-out mix rows as the general loss,
the `schedule: [mixed, sequential]` axis, the fitted ratio (fit.json, fit.png, results.md, the data card) and
`--suggest`."""

from __future__ import annotations

import json
import textwrap

from tests.model_fixtures import lm_dir, model_env, needs  # noqa: E402,F401 - fixtures

needs("torch", "peft", "scipy", "matplotlib")

from typer.testing import CliRunner  # noqa: E402

from curate.cli import app  # noqa: E402
from tests.train.test_compare import SECTIONS, _write_sources  # noqa: E402

RECIPE = """
name: mixfit
seed: 2
sources:
  general: {path: general.jsonl, license: cc-by-4.0}
  domain: {path: domain.jsonl, license: cc-by-4.0}
mix:
  components:
    general: {source: general, fraction: 0.5, holdout: 6}
    domain: {source: domain, fraction: 0.5, holdout: 4}
  size: {rows: 8}
ablate:
  dir: runs/grid
  ratios: ["0:100", "50:50", "100:0"]
  schedule: [mixed, sequential]
  retention: 0.9
  bootstrap: 40
compare: {seeds: [0, 1]}
outputs: {dir: runs/mixfit}
"""
HELDOUT = """
    general_heldout: {kind: loss, role: general, heldout: general}
    domain_heldout: {kind: loss, role: domain, heldout: domain}
  general_metric: general_heldout.loss
  domain_metric: domain_heldout.loss
"""


def test_ablate_train_fits_the_ratio_per_schedule_and_suggests_the_next(tmp_path, lm_dir, monkeypatch):
    _write_sources(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE) + SECTIONS.format(lm=lm_dir) + HELDOUT)
    result = CliRunner().invoke(app, ["ablate", "r.yaml", "--suggest", "2"])  # nothing trained yet
    assert result.exit_code == 2 and "no trained grid" in result.output and "Traceback" not in result.output

    result = CliRunner().invoke(app, ["ablate", "r.yaml", "--train", "--suggest", "2"])
    assert result.exit_code == 0, result.output
    grid, out = tmp_path / "runs" / "grid", tmp_path / "runs" / "grid" / "train"
    index = json.loads((grid / "index.json").read_text())
    assert index["general"] == {"component": "general", "components": ["general", "domain"]}
    assert [(p["point"], p["general_share"]) for p in index["points"]][:2] == [
        ("ratio0-100_schedule-mixed", 0.0), ("ratio0-100_schedule-sequential", 0.0)]
    # the held-out rows: the same at every point, in no point's data, evaluated on the base and every run
    held = None
    for p in index["points"]:
        manifest = json.loads((grid / p["dir"] / "manifest.json").read_text())
        ids = manifest["mix"]["components"]["general"]["heldout"]["ids"]
        held = held or ids
        assert ids == held and len(ids) == 6
        data = [json.loads(line)["id"] for line in (grid / p["dir"] / "data.jsonl").read_text().splitlines()]
        assert not set(ids) & set(data)
    doc = json.loads((out / "pareto.json").read_text())
    assert {"general_heldout.loss", "domain_heldout.loss"} <= set(doc["base"]["metrics"])
    assert all(r["metrics"]["general_heldout.loss"] is not None for p in doc["points"] for r in p["runs"])
    evals = json.loads((out / index["points"][0]["dir"] / "seed0" / "evals.json").read_text())
    assert evals["tuned"]["tasks"]["general_heldout"]["rows"] == 6
    # sequential points train general first, then the domain, in the mixed points' steps
    mixed = json.loads((out / "ratio50-50_schedule-mixed" / "seed0" / "train.json").read_text())
    seq = json.loads((out / "ratio50-50_schedule-sequential" / "seed0" / "train.json").read_text())
    assert seq["spec"]["stages"] == ["general", "domain"] and mixed["spec"]["stages"] is None
    assert seq["steps"] == mixed["steps"] and seq["epochs_plan"]["stages"] == ["general", "domain"]
    order = json.loads((out / "ratio50-50_schedule-sequential" / "seed0" / "epochs.json").read_text())
    comps = {json.loads(line)["id"]: json.loads(line)["component"]
             for line in (grid / "ratio50-50_schedule-sequential" / "data.jsonl").read_text().splitlines()}
    seen = [comps[i] for e in order for i in e["ids"]]
    assert seen == sorted(seen, key=lambda c: c != "general")  # every general row before any domain row
    # the fit: one law per schedule, the recommendation and its warnings
    fit = json.loads((out / "fit.json").read_text())
    assert [g["group"] for g in fit["groups"]] == ["schedule-mixed", "schedule-sequential"]
    assert fit["retention"] == 0.9 and fit["constraints"][0]["metric"] == "general_heldout.loss"
    for g in fit["groups"]:
        assert g["ratios"] == [0.0, 0.5, 1.0] and g["seeds"] == 2
        assert {"domain_gain", "general_heldout.loss"} <= set(g["metrics"])
        assert any(w.startswith("coarse: 3 ratios for 3 parameters") for w in g["warnings"])
        assert g["recommendation"] is not None and len(g["suggest"]) == 3
    for name in ("fit.png", "pareto.png", "results.md"):
        assert (out / name).is_file()
    assert "## Fitted mixing law" in (out / "results.md").read_text()
    assert "Next 2 ratio(s) to train (schedule-mixed)" in result.output and "--set 'ablate.ratios=" in result.output

    # --suggest alone refits the trained grid with the recipe's retention as it is now
    again = CliRunner().invoke(app, ["ablate", "r.yaml", "--suggest", "1", "--set", "ablate.retention=0.5"])
    assert again.exit_code == 0, again.output
    assert "Retention target 0.5" in again.output and "Next 1 ratio(s) to train" in again.output

    # the data card of the recipe's run shows the recommendation and the fit plot
    from curate.card.writer import write_card
    from curate.pipeline import run_recipe
    from curate.train.compare import RecipeContext

    run = run_recipe(RecipeContext("r.yaml").recipe).out_dir
    card = write_card(run, out_dir=tmp_path / "card").read_text()
    section = card.split("#### The fitted ratio", 1)[1]
    assert "Retention target 0.9" in section and "coarse: 3 ratios" in section
    assert "![the fitted mixing law per metric](ablate-fit.png)" in section
    assert (tmp_path / "card" / "ablate-fit.png").is_file()


def test_held_out_tasks_need_a_mix(tmp_path, lm_dir, monkeypatch):
    import pytest

    from curate.specs.evals import EvalTask

    _write_sources(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent("""
        name: plain
        sources:
          general: {path: general.jsonl, license: cc-by-4.0}
        steps:
          - score.heuristics: {}
          - select.top_k: {by: response_words, rows: 8}
        outputs: {dir: runs/plain}
        """) + SECTIONS.format(lm=lm_dir) + "    held: {kind: loss, role: general, heldout: general}\n")
    result = CliRunner().invoke(app, ["train", "r.yaml"])
    assert result.exit_code == 2 and "holds out no rows of mix component 'general'" in result.output
    assert "evals.tasks.held.heldout" in result.output
    result = CliRunner().invoke(app, ["compare", "r.yaml"])
    assert result.exit_code == 2 and "not in `curate compare`" in result.output
    with pytest.raises(ValueError, match="not both"):
        EvalTask.model_validate({"kind": "loss", "heldout": "general", "source": {"path": "x.jsonl"}})
    with pytest.raises(ValueError, match="heldout: not for kind lm_eval"):
        EvalTask.model_validate({"kind": "lm_eval", "tasks": ["arc_easy"], "heldout": "general"})


def test_gsm8k_exact_match_on_held_out_math_rows(lm_dir):
    """math_mix's domain: exact match of the final number on GSM8K rows the mix held out."""
    import pytest

    from curate.errors import CurateError
    from curate.specs.evals import EvalSpec
    from curate.evals.suite import Suite
    from curate.models import load_causal_lm

    rows = [{"id": f"m{i}", "source": "gsm8k", "meta": json.dumps({"final_answer": str(i + 2)}),
             "messages": [{"role": "user", "content": f"what is {i} plus two"},
                          {"role": "assistant", "content": f"{i} + 2 = {i + 2}\n#### {i + 2}"}]} for i in range(5)]
    spec = EvalSpec.model_validate({"tasks": {"gsm": {"kind": "gsm8k", "role": "domain", "heldout": "math", "n": 3,
                                                      "max_new_tokens": 6}}, "batch_size": 4})
    model, tok = load_causal_lm(str(lm_dir))
    res = Suite(spec, heldout={"math": rows}).run(model, tok)
    assert res["tasks"]["gsm"]["n"] == 3 and 0 <= res["metrics"]["gsm.exact_match"] <= 1
    assert len(res["items"]["gsm.exact_match"]["values"]) == 3
    for r in rows:
        r["meta"] = "{}"
    with pytest.raises(CurateError) as e:
        Suite(spec, heldout={"math": rows}).run(model, tok)
    assert e.value.where == "evals.tasks.gsm" and "final answer" in str(e.value)
