"""Mixing: the realised composition equals the requested one (exactly in rows, within one row in
tokens) for every kind of share and every shortfall policy; and `curate ablate` builds every point."""

import json
import textwrap

import numpy as np
import pytest
from pydantic import ValidationError

from curate.errors import CurateError
from curate.mix import apply_mix, largest_remainder
from curate.specs.mix import MixSpec
from tests.helpers import pairs_dataset


def comp(name, n, tokens=None):
    pairs = [(f"{name} question {i}", f"{name} answer {i}") for i in range(n)]
    extra = {"n_tokens": tokens} if tokens is not None else None
    return pairs_dataset(pairs, source=name, extra_columns=extra)


def mix(spec: dict, comps: dict, seed=0):
    return apply_mix(MixSpec.model_validate(spec), comps, seed)


def counts(mixed):
    out = {}
    for c in mixed["component"]:
        out[c] = out.get(c, 0) + 1
    return out


def test_fractions_of_the_final_mix_are_exact_in_rows():
    comps = {"general": comp("g", 100), "domain": comp("d", 50)}
    mixed, drops, info = mix({"components": {"general": {"source": "g", "fraction": 0.3},
                                              "domain": {"source": "d", "fraction": 0.7}},
                              "size": {"rows": 60}}, comps)
    assert counts(mixed) == {"general": 18, "domain": 42}
    assert info["components"]["domain"]["requested"] == {"fraction": 0.7, "rows": 42}
    assert len(drops) == (100 - 18) + (50 - 42) and all(d["step"] == "mix" for d in drops)
    assert len(set(mixed["id"])) == 60  # no row twice when nothing is short


def test_fractions_in_tokens_are_met_within_one_row():
    rng = np.random.default_rng(1)
    ta, tb = rng.integers(5, 60, 200).tolist(), rng.integers(5, 60, 200).tolist()
    comps = {"a": comp("a", 200, ta), "b": comp("b", 200, tb)}
    mixed, _, info = mix({"components": {"a": {"source": "a", "fraction": 0.25}, "b": {"source": "b", "fraction": 0.75}},
                          "size": {"tokens": 4000}}, comps)
    for name, quota, costs in (("a", 1000, ta), ("b", 3000, tb)):
        got = info["components"][name]["realised"]["tokens"]
        assert quota - max(costs) < got <= quota, (name, got)
        assert got == sum(t for c, t in zip(mixed["component"], mixed["n_tokens"]) if c == name)


def test_counts_and_shares_of_a_component():
    comps = {"a": comp("a", 100), "b": comp("b", 50)}
    mixed, _, info = mix({"components": {"a": {"source": "a", "count": 10}, "b": {"source": "b", "of_component": 0.2}}}, comps)
    assert counts(mixed) == {"a": 10, "b": 10}
    assert info["realised"]["rows"] == 20


def test_short_component_error_names_it():
    comps = {"a": comp("a", 100), "b": comp("b", 50)}
    spec = {"components": {"a": {"source": "a", "fraction": 0.3}, "b": {"source": "b", "fraction": 0.7}}, "size": {"rows": 100}}
    with pytest.raises(CurateError, match=r"mix.components.b: needs 70 rows but has 50 \(short: error\)"):
        mix(spec, comps)
    with pytest.raises(CurateError, match=r"mix.components.a: needs 120 rows but has 100"):
        mix({"components": {"a": {"source": "a", "count": 120}}}, comps)


def test_short_component_upsampled_exactly_using_every_row():
    comps = {"a": comp("a", 100), "b": comp("b", 50)}
    mixed, drops, info = mix({"components": {"a": {"source": "a", "fraction": 0.3}, "b": {"source": "b", "fraction": 0.7}},
                              "size": {"rows": 100}, "short": "upsample"}, comps)
    assert counts(mixed) == {"a": 30, "b": 70}
    b_ids = [i for c, i in zip(mixed["component"], mixed["id"]) if c == "b"]
    assert len(set(b_ids)) == 50  # one whole pass, then 20 drawn again
    assert info["components"]["b"]["realised"]["repeats"] == 20 and info["repeats"] == 20
    assert not any(d["row"]["source"] == "b" for d in drops)


def test_short_component_shrinks_the_whole_mix_keeping_the_ratio():
    comps = {"a": comp("a", 100), "b": comp("b", 50)}
    mixed, _, _ = mix({"components": {"a": {"source": "a", "fraction": 0.3}, "b": {"source": "b", "fraction": 0.7}},
                       "size": {"rows": 100}, "short": "shrink"}, comps)
    c = counts(mixed)
    assert c["b"] == 50 and c["a"] == 21  # 71 rows: the largest mix at 30:70 that fits b's 50 rows
    assert abs(c["a"] / (c["a"] + c["b"]) - 0.3) < 1 / 71


def test_temperature_sampling_over_component_sizes():
    comps = {"a": comp("a", 300), "b": comp("b", 100)}
    proportional, _, _ = mix({"components": {"a": {"source": "a"}, "b": {"source": "b"}}, "size": {"rows": 80}, "temperature": 1}, comps)
    assert counts(proportional) == {"a": 60, "b": 20}
    flat, _, _ = mix({"components": {"a": {"source": "a"}, "b": {"source": "b"}}, "size": {"rows": 80}, "temperature": 1000}, comps)
    assert counts(flat) == {"a": 40, "b": 40}


def test_same_seed_same_mix_other_seed_other_mix():
    comps = {"a": comp("a", 100), "b": comp("b", 50)}
    spec = {"components": {"a": {"source": "a", "fraction": 0.5}, "b": {"source": "b", "fraction": 0.5}}, "size": {"rows": 40}}
    assert mix(spec, comps, 1)[0]["id"] == mix(spec, comps, 1)[0]["id"]
    assert mix(spec, comps, 1)[0]["id"] != mix(spec, comps, 2)[0]["id"]


@pytest.mark.parametrize("spec, message", [
    ({"components": {"a": {"source": "a", "fraction": 0.5}, "b": {"source": "b", "fraction": 0.4}}, "size": {"rows": 10}},
     "fractions must sum to 1, they sum to 0.9"),
    ({"components": {"a": {"source": "a", "fraction": 1.0}, "b": {"source": "b", "count": 4}}, "size": {"rows": 10}},
     "every component needs one"),
    ({"components": {"a": {"source": "a", "fraction": 1.0}}}, "need `size`"),
    ({"components": {"a": {"source": "a", "count": 3}}, "size": {"rows": 10}}, "remove `size`"),
    ({"components": {"a": {"source": "a", "count": 3, "fraction": 0.1}}}, "not ['fraction', 'count']"),
    ({"components": {"a": {"source": "a", "run": "x", "count": 3}}}, "exactly one of source, run or recipe"),
    ({"components": {"a": {"source": "a"}}}, "need one of fraction, count or of_component"),
])
def test_inconsistent_shares_are_rejected(spec, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        MixSpec.model_validate(spec)


def test_largest_remainder_sums_exactly():
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(largest_remainder(997, [0.31, 0.29, 0.4])) == 997


# -- through a recipe ---------------------------------------------------------------------------------


RECIPE = """
name: m
seed: 5
sources:
  general: {path: general.jsonl}
  science: {path: science.jsonl}
  extra: {path: extra.jsonl}
steps:
  - dedup.exact: {key: conversation}
mix:
  components:
    general: {source: general, fraction: 0.4}
    science: {source: science, fraction: 0.6}
  size: {rows: 50}
  short: upsample
outputs: {dir: out}
cache: {dir: cache}
ablate:
  ratios: ["0:100", "30:70", "50:50"]
  sizes: [20, 40]
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    def write(name, n, prefix):
        rows = [{"instruction": f"{prefix} question number {i}?", "output": f"{prefix} answer {i}."} for i in range(n)]
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    write("general.jsonl", 40, "general")
    write("science.jsonl", 25, "science")
    write("extra.jsonl", 5, "extra")
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_recipe_mix_accounts_for_every_row(workdir):
    from curate.io import read_jsonl
    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe

    result = run_recipe(load_recipe("r.yaml"))
    m = result.manifest
    assert m["mix"]["components"]["general"]["realised"]["rows"] == 20
    assert m["mix"]["components"]["science"]["realised"]["rows"] == 30  # 25 + 5 repeated
    assert m["totals"] == {"rows_in": 70, "rows_out": 50, "dropped": 25, "repeats": 5}
    rejects = read_jsonl(workdir / "out" / "rejects.jsonl")
    assert sum(r["reason"] == "source extra is not a mix component" for r in rejects) == 5
    assert sum(r["reason"].startswith("not drawn by the mix (component general") for r in rejects) == 20
    data = read_jsonl(workdir / "out" / "data.jsonl")
    assert {r["component"] for r in data} == {"general", "science"} and len(data) == 50


def test_a_run_folder_as_a_component(workdir):
    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe

    run_recipe(load_recipe("r.yaml"))  # writes out/
    result = run_recipe(load_recipe("r.yaml", [
        "name=m2", "outputs.dir=out2", "mix.components.general.run=out", "mix.components.general.source=null",
        "mix.components.general.fraction=0.5", "mix.components.science.fraction=0.5", "mix.size.rows=40"]))
    m = result.manifest
    assert m["mix"]["components"]["general"]["available"]["rows"] == 50  # the earlier mix, repeats included
    assert m["totals"]["rows_in"] == 70 + 50 and m["mix"]["rows_from_outside"] == 50


def test_unknown_source_and_empty_component(workdir):
    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe

    with pytest.raises(CurateError, match=r"mix.components.science.source: no source 'sciense' in this recipe \(did you mean 'science'\?\)"):
        run_recipe(load_recipe("r.yaml", ["mix.components.science.source=sciense"]))
    with pytest.raises(CurateError, match=r"mix.components.science: the component has no rows"):
        run_recipe(load_recipe("r.yaml", ["steps=[{filter: {rules: ['source != science']}}]"]))


def test_ablate_builds_every_point(workdir):
    from curate.ablate import run_ablation
    from curate.io import read_jsonl

    out = run_ablation("r.yaml")
    index = json.loads((out / "index.json").read_text())
    assert [p["point"] for p in index["points"]] == [
        "ratio0-100_size20", "ratio0-100_size40", "ratio30-70_size20", "ratio30-70_size40", "ratio50-50_size20", "ratio50-50_size40"]
    for p in index["points"]:
        share = {"ratio0-100": 0.0, "ratio30-70": 0.3, "ratio50-50": 0.5}[p["point"].split("_")[0]]
        size = int(p["point"].split("size")[1])
        assert p["rows"] == size
        assert p["mix"]["general"]["rows"] == round(share * size)
        assert len(read_jsonl(out / p["dir"] / "data.jsonl")) == size
        assert (out / p["dir"] / "manifest.json").exists()
    assert "ratio30-70_size40" in (out / "index.md").read_text()


def test_ablate_rejects_bad_grids(workdir):
    from curate.ablate import run_ablation

    with pytest.raises(CurateError, match="has 3 numbers for 2 components"):
        run_ablation("r.yaml", ["ablate.ratios=['1:2:3']"])
    with pytest.raises(CurateError, match=r"ablate.ratios: a ratio looks like '10:90'"):
        run_ablation("r.yaml", ["ablate.ratios=['half']"])
