"""Recipe validation: errors name the field and the value; overrides; path resolution."""

import os
import textwrap

import pytest

from curate.errors import CurateError
from curate.recipe import apply_override, load_recipe


def recipe_file(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


BASE = """
name: t
sources:
  general:
    path: data/g.jsonl
    license: cc-by-4.0
"""


def test_minimal_recipe_defaults_and_relative_paths(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    p = recipe_file(tmp_path / "sub", BASE)
    monkeypatch.chdir(tmp_path)
    r = load_recipe(p)
    assert r.sources["general"].path == str(tmp_path / "sub" / "data" / "g.jsonl")  # relative to the recipe
    assert r.resolved()["sources"]["general"]["path"] == "data/g.jsonl"  # as written, from any working folder
    assert r.seed == 0 and r.outputs.formats == ["jsonl"] and str(r.output_dir()) == "runs/t"
    assert r.template.format == "chatml"


def test_unknown_keys_get_did_you_mean(tmp_path):
    p = recipe_file(tmp_path, BASE + "seeed: 3\n")
    with pytest.raises(CurateError, match=r"seeed: unknown key \(did you mean 'seed'\?\)"):
        load_recipe(p)
    p = recipe_file(tmp_path, BASE.replace("license:", "licence:"))
    with pytest.raises(CurateError, match=r"sources.general.licence: unknown key \(did you mean 'license'\?\)"):
        load_recipe(p)


def test_unknown_step_and_format_names(tmp_path):
    p = recipe_file(tmp_path, BASE + "steps:\n  - dedup.minhsh: {}\n")
    with pytest.raises(CurateError, match=r"steps\[0\].dedup.minhsh: unknown step 'dedup.minhsh' \(did you mean 'dedup.minhash'\?\)"):
        load_recipe(p)
    p = recipe_file(tmp_path, BASE + "    format: alpacca\n")
    with pytest.raises(CurateError, match=r"sources.general.format: unknown format 'alpacca' \(did you mean 'alpaca'\?\)"):
        load_recipe(p)


def test_bad_step_parameters_name_the_path_and_value(tmp_path):
    p = recipe_file(tmp_path, BASE + "steps:\n  - clean: {}\n  - dedup.minhash: {threshold: high}\n")
    with pytest.raises(CurateError, match=r"steps\[1\].dedup.minhash.threshold: .*'high'"):
        load_recipe(p)
    p = recipe_file(tmp_path, BASE + "steps:\n  - select.random: {rows: 10, tokns: 5}\n")
    with pytest.raises(CurateError, match=r"steps\[0\].select.random.tokns: unknown key \(did you mean 'tokens'\?\)"):
        load_recipe(p)


def test_wrong_types_and_missing_fields(tmp_path):
    p = recipe_file(tmp_path, "name: t\nseed: many\nsources: {}\n")
    with pytest.raises(CurateError) as e:
        load_recipe(p)
    assert "seed: " in str(e.value) and "'many'" in str(e.value)
    assert "sources: a recipe needs at least one source" in str(e.value)
    p = recipe_file(tmp_path, "sources:\n  a: {path: x.jsonl}\n")
    with pytest.raises(CurateError, match="name: required field is missing"):
        load_recipe(p)
    p = recipe_file(tmp_path, "name: t\nsources:\n  a: {license: mit}\n")
    with pytest.raises(CurateError, match="sources.a: .*needs `path`"):
        load_recipe(p)
    p = recipe_file(tmp_path, BASE + "outputs: {formats: [jsonl, parket]}\n")
    with pytest.raises(CurateError, match=r"outputs.formats: unknown output format 'parket' \(did you mean 'parquet'\?\)"):
        load_recipe(p)


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = recipe_file(tmp_path, "name: t\nsources:\n  a: [unclosed\n")
    with pytest.raises(CurateError, match=r"r\.yaml:\d+: not valid YAML"):
        load_recipe(p)
    with pytest.raises(CurateError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_overrides_replace_values_and_reach_into_lists(tmp_path):
    p = recipe_file(tmp_path, BASE + "  lima:\n    hub: GAIR/lima\nsteps:\n  - select.random: {rows: 10}\n")
    r = load_recipe(p, ["sources.lima.path=../local/lima.json", "steps.0.select.random.rows=3", "seed=7"])
    # a --set path is relative to the current folder, like any command-line path
    assert r.sources["lima"].path == os.path.abspath("../local/lima.json") and r.sources["lima"].hub == "GAIR/lima"
    assert r.steps[0]["select.random"]["rows"] == 3 and r.seed == 7
    with pytest.raises(CurateError, match="--set takes KEY=VALUE"):
        load_recipe(p, ["seed"])
    with pytest.raises(CurateError, match=r"'5' is not an index of a list of 1 items"):
        load_recipe(p, ["steps.5.x=1"])


def test_apply_override_parses_yaml_values():
    raw = {"a": {"b": 1}}
    apply_override(raw, "a.c=[1, 2]")
    apply_override(raw, "a.d=true")
    assert raw == {"a": {"b": 1, "c": [1, 2], "d": True}}


def test_repeated_steps_get_distinct_labels(tmp_path):
    p = recipe_file(tmp_path, BASE + "steps:\n  - dedup.exact: {key: prompt}\n  - dedup.exact: {key: response}\n  - clean\n")
    r = load_recipe(p)
    assert [label for label, _, _ in r.step_entries()] == ["dedup.exact", "dedup.exact#2", "clean"]


def test_url_paths_are_left_as_they_are(tmp_path):
    p = recipe_file(tmp_path, "name: t\nsources:\n  a: {path: 'https://example.org/x.jsonl'}\n")
    assert load_recipe(p).sources["a"].path == "https://example.org/x.jsonl"
