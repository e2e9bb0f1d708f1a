"""The data card: Hub metadata that huggingface_hub parses, licenses, a funnel that sums exactly to the
manifest, statistics and plots, person-only sections marked, bad run folders refused, the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.conftest import lima_style_overrides
import typer
from huggingface_hub import DatasetCard, DatasetCardData, metadata_load
from typer.testing import CliRunner

from curate.card.licenses import HUB_LICENSES, decide, missing_license_warnings, normalise
from curate.specs.card import CardSpec
from curate.card.markdown import NEEDED
from curate.card.metadata import check_metadata, size_category
from curate.card.writer import CardWarning, build_card, write_card
from curate.errors import CurateError
from curate.pipeline import run_recipe
from curate.recipe import load_recipe, validate_recipe
from tests.test_pipeline import RECIPE, make_data

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture
def small_run(tmp_path, monkeypatch):
    """The pipeline tests' small recipe (two sources, a skipped malformed line, all three formats)."""
    make_data(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE))
    monkeypatch.chdir(tmp_path)
    run_recipe(load_recipe("r.yaml"))
    return tmp_path / "out"


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    run_recipe(load_recipe(ROOT / "recipes" / "quickstart.yaml", [f"outputs.dir={out}/run", "cache.enabled=false"]))
    return out / "run"


@pytest.fixture(scope="module")
def quickstart_card(quickstart_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("qs-card")
    return write_card(quickstart_run, out_dir=out / "card")


@pytest.fixture(scope="module")
def lima_run(tmp_path_factory):
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the real data is missing at {SHARED_DATA}")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    out = tmp_path_factory.mktemp("lima")
    overrides = lima_style_overrides(SHARED_DATA) + [f"outputs.dir={out}/run", "cache.enabled=false"]
    run_recipe(load_recipe(ROOT / "recipes" / "lima_style.yaml", overrides))
    return out / "run"


def funnel_table(text: str) -> list[dict]:
    """The funnel rows between the card's markers, numbers parsed."""
    block = text.split("<!-- funnel:begin -->", 1)[1].split("<!-- funnel:end -->", 1)[0]
    rows = []
    for line in block.strip().splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows.append({"step": cells[0].strip("`*"), "rows_in": int(cells[2].replace(",", "")),
                     "rows_out": int(cells[3].replace(",", "")), "dropped": int(cells[4].replace(",", "")),
                     "why": cells[5]})
    return rows


def assert_funnel_matches_manifest(text: str, manifest: dict) -> None:
    rows = funnel_table(text)
    *stages, total = rows
    assert total["step"] == "total"
    t = manifest["totals"]
    mix = manifest.get("mix")
    assert (total["rows_in"], total["rows_out"], total["dropped"]) == (t["rows_in"], t["rows_out"], t["dropped"])
    assert [s["step"] for s in stages] == ["load"] + [s["label"] for s in manifest["steps"]] + (["mix"] if mix else [])
    assert stages[0]["rows_in"] == manifest["load"]["rows_read"] and stages[0]["dropped"] == manifest["load"]["rows_skipped"]
    added = mix["rows_from_outside"] if mix else 0
    for prev, cur in zip(stages, stages[1:]):
        assert cur["rows_in"] == prev["rows_out"] + (added if cur["step"] == "mix" else 0)
    for s, m in zip(stages[1:], manifest["steps"]):
        assert (s["rows_in"], s["rows_out"], s["dropped"]) == (m["rows_in"], m["rows_out"], m["dropped"])
    for s in stages:
        # every reason with its count, summing to the stage's dropped rows
        counts = [int(n.replace(",", "")) for n in re.findall(r"\(([\d,]+)\)(?:;|$)", s["why"])]
        assert sum(counts) == s["dropped"], s
    if mix:
        assert (stages[-1]["rows_in"], stages[-1]["rows_out"], stages[-1]["dropped"]) == (
            mix["rows_in"], mix["realised"]["rows"], mix["dropped"])
    assert sum(s["dropped"] for s in stages) == t["dropped"]
    assert stages[-1]["rows_out"] == t["rows_out"]
    assert t["rows_in"] == manifest["load"]["rows_read"] + added == t["rows_out"] - t.get("repeats", 0) + t["dropped"]


def parse_card(path: Path) -> DatasetCard:
    card = DatasetCard.load(path)  # huggingface_hub's own parser; raises on bad YAML
    assert isinstance(card.data, DatasetCardData)
    again = DatasetCard(str(card))
    assert again.data.to_dict() == card.data.to_dict()
    assert metadata_load(path) == card.data.to_dict()
    assert check_metadata(card.data.to_dict()) == []
    return card


# -- the card parses and adds up -------------------------------------------------------------------------


def test_quickstart_card_parses_with_huggingface_hub(quickstart_card, quickstart_run):
    card = parse_card(quickstart_card)
    data = card.data.to_dict()
    assert data["license"] == "cc-by-4.0"
    assert data["language"] == ["en"]
    assert data["size_categories"] == ["n<1K"]
    assert data["task_categories"] == ["text-generation"]
    assert data["pretty_name"] == "quickstart" and "curate" in data["tags"]
    assert "source_datasets" not in data  # local files only: no hub ids to name
    assert data["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data.parquet"}]},
        {"config_name": "random_baseline", "data_files": [{"split": "train", "path": "baseline_random.parquet"}]},
    ]


def test_quickstart_funnel_sums_exactly_to_the_manifest(quickstart_card, quickstart_run):
    manifest = json.loads((quickstart_run / "manifest.json").read_text())
    assert_funnel_matches_manifest(quickstart_card.read_text(), manifest)


def test_the_card_has_every_datasheet_section_and_statistics(quickstart_card):
    text = quickstart_card.read_text()
    for heading in ("## Motivation", "## Composition", "## Collection process", "## Preprocessing, cleaning and selection",
                    "## Uses", "## Distribution", "## Maintenance", "## Statistics", "### Rows and tokens per source",
                    "### Lengths", "### Score distributions", "### Language mix", "### Duplicates", "### Contamination",
                    "## Mix composition", "## Results", "## The recipe"):
        assert heading in text, heading
    assert "Tokens were not counted" in text  # no score.tokens step: words instead
    assert "No decontamination step ran" in text
    assert "Examples from `dedup.minhash`" in text and "jaccard" in text
    assert "Not run: the manifest has no `mix` block" in text
    assert "Not run: the run folder has no `compare/results.json`" in text
    assert "```yaml\nname: quickstart" in text


def test_sections_only_a_person_can_write_are_marked_never_invented(quickstart_run, tmp_path):
    text = write_card(quickstart_run, out_dir=tmp_path / "a").read_text()
    for field in ("motivation", "intended_uses", "out_of_scope_uses", "sensitive_content", "maintainers", "contact", "citation"):
        assert f"set `card.{field}` in the recipe" in text, field
    spec = CardSpec(motivation="To test curate's cards.", contact="someone@example.org", citation="@misc{x, title={X}}")
    text = write_card(quickstart_run, spec, out_dir=tmp_path / "b").read_text()
    assert "To test curate's cards." in text and "someone@example.org" in text and "@misc{x, title={X}}" in text
    assert "set `card.motivation`" not in text and "set `card.contact`" not in text
    assert NEEDED in text  # the rest stays marked


def test_plots_are_written_beside_the_card_and_are_deterministic(quickstart_run, tmp_path):
    a = write_card(quickstart_run, out_dir=tmp_path / "a").parent
    b = write_card(quickstart_run, out_dir=tmp_path / "b").parent
    pngs = sorted(p.name for p in a.glob("*.png"))
    assert pngs == ["funnel.png", "lengths.png", "scores.png"]
    text = (a / "README.md").read_text()
    for name in pngs:
        data = (a / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) < 200_000
        assert data == (b / name).read_bytes(), name
        assert f"]({name})" in text
    assert (a / "README.md").read_bytes() == (b / "README.md").read_bytes()


def test_the_card_names_no_machine_paths(small_run, tmp_path):
    text = write_card(small_run, out_dir=tmp_path / "card").read_text()
    assert str(tmp_path) not in text and os.sep + "tmp" + os.sep not in text
    assert "general.jsonl" in text and "domain.jsonl" in text  # inputs by base name


def test_small_run_card_counts_the_skipped_line_and_all_formats(small_run, tmp_path):
    path = write_card(small_run, out_dir=tmp_path / "card")
    card = parse_card(path)
    manifest = json.loads((small_run / "manifest.json").read_text())
    text = path.read_text()
    assert_funnel_matches_manifest(text, manifest)
    assert funnel_table(text)[0]["dropped"] == 1  # the malformed line, at load
    assert card.data.license == "cc-by-4.0"  # cc-by-4.0 is ranked above mit
    assert card.data.configs[0]["data_files"][0]["path"] == "data.parquet"


def test_lima_style_card_passes_the_hub_parser_and_adds_up(lima_run, tmp_path):
    path = write_card(lima_run, out_dir=tmp_path / "card")
    card = parse_card(path)
    data = card.data.to_dict()
    manifest = json.loads((lima_run / "manifest.json").read_text())
    text = path.read_text()
    assert data["license"] == "cc-by-nc-sa-4.0"  # the most restrictive of the five
    assert data["size_categories"] == ["1K<n<10K"]
    assert data["source_datasets"] == ["vicgalle/alpaca-gpt4", "GAIR/lima"]
    assert "> **Non-commercial.**" in text
    for name in ("alpaca_gpt4", "cherry_alpaca", "code_alpaca", "lima"):
        assert f"| `{name}` | `cc-by-nc" in text and f"`{name}` (cc-by-nc" in text
    assert "| `self_instruct_seeds` | `apache-2.0` | no |" in text
    assert_funnel_matches_manifest(text, manifest)
    assert str(SHARED_DATA) not in text and "../shared" not in text


# -- licenses ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("licenses, expected, combined", [
    ({"a": "mit"}, "mit", False),
    ({"a": "apache-2.0", "b": "cc-by-4.0"}, "cc-by-4.0", False),
    ({"a": "cc0-1.0", "b": "MIT"}, "mit", False),
    ({"a": "cc-by-4.0", "b": "cc-by-nc-4.0", "c": "cc-by-nc-sa-4.0"}, "cc-by-nc-sa-4.0", False),
    ({"a": "cc-by-sa-4.0", "b": "cc-by-nc-4.0"}, "cc-by-nc-sa-4.0", True),
    ({"a": "gpl-3.0", "b": "cc-by-nc-nd-4.0"}, "other", True),
    ({"a": "cc by nc 4.0"}, "cc-by-nc-4.0", False),
])
def test_the_most_restrictive_license_wins(licenses, expected, combined):
    d = decide(licenses)
    assert d.license == expected and d.combined == combined
    assert d.license in HUB_LICENSES


def test_non_commercial_sources_are_flagged():
    d = decide({"a": "apache-2.0", "b": "cc-by-nc-4.0", "c": "cc-by-nc-sa-3.0"})
    assert d.non_commercial == ["b", "c"] and d.is_non_commercial and not d.warnings


def test_missing_or_unrankable_licenses():
    d = decide({"a": "mit", "b": None, "c": ""})
    assert d.license == "unknown" and d.unknown == ["b", "c"] and len(d.warnings) == 2
    d = decide({"a": "mit", "b": "llama3"})
    assert d.license == "other" and d.unranked == ["b"] and "cannot rank" in d.warnings[0]
    d = decide({"a": "cc-by-nd-4.0"})
    assert d.license == "cc-by-nd-4.0" and "no derivatives" in d.warnings[0]
    assert normalise(None) == "unknown" and normalise(" Apache_2.0 ") == "apache-2.0"


def test_a_source_without_a_license_makes_the_card_unknown_and_warns(tmp_path, monkeypatch):
    make_data(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE).replace("license: mit", "on_error: fail"))
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe("r.yaml")
    assert missing_license_warnings(recipe.sources) == [
        "source 'domain' has no license: its data card will say 'unknown' (set sources.domain.license)"]
    run_recipe(recipe)
    with pytest.warns(CardWarning, match="source 'domain' has no license"):
        path = write_card("out", out_dir=tmp_path / "card")
    card = parse_card(path)
    assert card.data.license == "unknown"
    text = path.read_text()
    assert "> **License unknown.**" in text and "| `domain` | `unknown` | no |" in text


def test_the_run_warns_when_the_recipe_writes_a_card(tmp_path, monkeypatch):
    make_data(tmp_path)
    recipe = textwrap.dedent(RECIPE).replace("license: mit", "on_error: fail")
    recipe += "card: {write: true, dir: cards/t, report: true, pretty_name: Tiny set, tags: [test]}\n"
    (tmp_path / "r.yaml").write_text(recipe)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(CardWarning, match="no license"):
        run_recipe(load_recipe("r.yaml"))
    card = parse_card(tmp_path / "cards" / "t" / "README.md")
    assert card.data.pretty_name == "Tiny set" and card.data.tags == ["curate", "test"]
    assert (tmp_path / "out" / "report.html").is_file()  # card.report: true
    # `curate card` reads the same card section from the manifest
    with pytest.warns(CardWarning):
        path = write_card("out", out_dir=tmp_path / "again")
    assert DatasetCard.load(path).data.pretty_name == "Tiny set"


# -- bad run folders ---------------------------------------------------------------------------------------


def test_a_folder_without_a_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(CurateError, match="manifest.json is missing"):
        write_card(tmp_path, out_dir=tmp_path / "card")
    assert not (tmp_path / "card" / "README.md").exists()


def test_a_manifest_from_a_newer_curate_is_a_clear_error(small_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    m = json.loads((run / "manifest.json").read_text())
    m["format_version"] = 99
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CurateError, match="newer curate"):
        write_card(run, out_dir=tmp_path / "card")


def test_a_manifest_that_does_not_add_up_is_refused(small_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    m = json.loads((run / "manifest.json").read_text())
    m["steps"][1]["rows_out"] -= 1
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CurateError, match="does not add up"):
        write_card(run, out_dir=tmp_path / "card")


# -- mix, results, contamination ------------------------------------------------------------------------------


MIX_RECIPE = """
name: m
seed: 1
sources:
  domain: {path: domain.jsonl, license: cc-by-sa-4.0}
steps:
  - dedup.exact: {}
mix:
  components:
    general: {run: out, count: 6}
    domain: {source: domain, count: 20}
  short: upsample
outputs: {dir: mixed, formats: [jsonl]}
cache: {enabled: false}
"""


def test_a_mix_card_has_its_composition_licenses_and_a_funnel_that_adds_up(small_run, tmp_path):
    # general: the small run (cc-by-4.0 and mit); domain: 12 rows asked for 20, so 8 repeats
    (tmp_path / "m.yaml").write_text(textwrap.dedent(MIX_RECIPE))
    run_recipe(load_recipe("m.yaml"))
    path = write_card("mixed", out_dir=tmp_path / "card")
    card = parse_card(path)
    manifest = json.loads((tmp_path / "mixed" / "manifest.json").read_text())
    text = path.read_text()
    assert manifest["totals"]["repeats"] == 8
    assert_funnel_matches_manifest(text, manifest)
    assert "rows in = rows out − repeats + dropped" in text and "+20 rows from other runs enter here" in text
    mix = text.split("## Mix composition", 1)[1].split("## Results", 1)[0]
    assert "| `general` | run `out` | 6 rows | 6 | 20 | 6 | 6 | 0 | 23.1% |" in mix
    assert "| `domain` | source `domain` | 20 rows | 20 | 12 | 20 | 12 | 8 | 76.9% |" in mix
    assert "8 rows are repeats" in mix
    # the rows from the other run bring its licenses: cc-by-sa-4.0 (domain) + cc-by-4.0 / mit (general)
    assert card.data.license == "cc-by-sa-4.0"
    assert "| `general/general` | `cc-by-4.0` | no |" in text or "| `general/domain` | `mit` | no |" in text


def test_compare_and_ablation_results_are_rendered_when_present(small_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    (run / "compare").mkdir()
    (run / "compare" / "results.json").write_text(json.dumps({
        "metric": "win rate vs baseline", "model": "tiny-llm",
        "results": [{"name": "curated", "score": 0.61}, {"name": "random_baseline", "score": 0.55}]}))
    # what `curate ablate` writes, found beside the run folder as <name>-ablate/index.json
    (tmp_path / "t-ablate").mkdir()
    (tmp_path / "t-ablate" / "index.json").write_text(json.dumps({"recipe": "t", "points": [
        {"point": "ratio0-100", "changes": {"mix.components.a.fraction": 0.0}, "dir": "ratio0-100", "rows": 20,
         "mix": {"a": {"rows": 0}, "b": {"rows": 20}}, "recipe_hash": "x"},
        {"point": "ratio50-50", "changes": {"mix.components.a.fraction": 0.5}, "dir": "ratio50-50", "rows": 20,
         "mix": {"a": {"rows": 10}, "b": {"rows": 10}}, "recipe_hash": "y"}]}))
    text = write_card(run, out_dir=tmp_path / "card").read_text()
    results = text.split("## Results", 1)[1].split("## The recipe", 1)[0]
    assert "From `compare/results.json`:" in results
    assert "- **metric:** win rate vs baseline" in results and "| curated | 0.61 |" in results
    assert "| random_baseline | 0.55 |" in results
    assert "| `ratio0-100` | 20 | 0 | 20 | mix.components.a.fraction=0.0 |" in results
    assert "| `ratio50-50` | 20 | 10 | 10 | mix.components.a.fraction=0.5 |" in results
    assert "Not run" not in results
    assert "Not run: the manifest has no `mix` block" in text


def test_compare_metrics_and_plots_from_curate_compare(small_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    (run / "compare").mkdir()
    (run / "compare" / "results.json").write_text(json.dumps({
        "conditions": ["subset", "random", "full"], "seeds": [0, 1, 2],
        "metrics": {"arc_easy.accuracy": {"role": "domain", "higher_is_better": True, "base": 0.41,
                                          "by_condition": {"subset": {"mean": 0.52, "ci": [0.5, 0.54]},
                                                           "random": {"mean": 0.47, "ci": [0.45, 0.49]},
                                                           "full": {"mean": None}}}}}))
    (run / "compare" / "compare.png").write_bytes(b"\x89PNG not a real one")
    card = write_card(run, out_dir=tmp_path / "card")
    text = card.read_text()
    assert "| metric | role | better | base model | `subset` | `random` | `full` |" in text
    assert "| `arc_easy.accuracy` | domain | higher | 0.4100 | 0.5200 [0.5000, 0.5400] | 0.4700 [0.4500, 0.4900] | – |" in text
    assert "- **seeds:** 0, 1, 2" in text
    assert "![compare](compare-compare.png)" in text and (card.parent / "compare-compare.png").is_file()


def test_decontamination_drops_are_counted_with_examples(tmp_path, monkeypatch):
    make_data(tmp_path)
    # an "eval set" whose two texts (shorter than min_ngram 13 words, so matched whole and exactly: the rows are
    # templated, and near-copies with one number changed would count too) appear in two rows
    (tmp_path / "eval.jsonl").write_text(json.dumps({"question": "Topic 7 is about thing 7; it matters because of reason 49."}) + "\n"
                                         + json.dumps({"question": "What is the boiling point number 3?"}) + "\n")
    recipe = textwrap.dedent(RECIPE).replace("  - dedup.exact: {key: conversation}\n", (
        "  - dedup.exact: {key: conversation}\n"
        "  - decontaminate: {eval_sets: [{path: eval.jsonl, field: question, name: tiny_eval}], min_ngram: 13}\n"
    )).replace("rows: 20", "rows: 15")
    (tmp_path / "r.yaml").write_text(recipe)
    monkeypatch.chdir(tmp_path)
    run_recipe(load_recipe("r.yaml"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    step = next(s for s in manifest["steps"] if s["name"] == "decontaminate")
    assert step["dropped"] == 2
    text = write_card("out", out_dir=tmp_path / "card").read_text()
    assert_funnel_matches_manifest(text, manifest)
    section = text.split("### Contamination", 1)[1].split("## ", 1)[0]
    assert "`decontaminate` checked every row against `tiny_eval` (2 texts) and dropped **2** rows: 2 overlapping `tiny_eval`" in section
    assert "| source | prompt | eval row | evidence |" in section and "shared words: “" in section


# -- spec and CLI ---------------------------------------------------------------------------------------------


def test_card_spec_validation():
    assert CardSpec().language is None and CardSpec().task_categories == ["text-generation"]
    with pytest.raises(ValueError, match="ISO 639"):
        CardSpec(language=["English"])
    with pytest.raises(ValueError, match="owner/name"):
        CardSpec(repo_id="no-slash")
    raw = {"name": "x", "sources": {"a": {"path": "a.jsonl"}}, "card": {"write": True, "pretty_nme": "X"}}
    with pytest.raises(CurateError, match="card.pretty_nme: unknown key .*pretty_name"):
        validate_recipe(raw)


def test_a_missing_card_extra_is_a_clear_error(quickstart_run, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(CurateError, match=r"need matplotlib: pip install 'curate\[card\]'"):
        write_card(quickstart_run, out_dir=tmp_path / "card")


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 9999, 10_000, 2_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "1M<n<10M"]


def test_build_card_refuses_metadata_the_hub_would_reject(quickstart_run):
    from curate.card.stats import load_run

    run = load_run(quickstart_run)
    run.manifest["sources"]["general"]["license"] = "cc-by-4.0"
    text, _ = build_card(run, CardSpec())
    assert check_metadata(DatasetCard(text).data.to_dict()) == []
    assert check_metadata({"license": "my-license", "size_categories": ["lots"], "configs": [{"config_name": "x"}]}) == [
        "license 'my-license' is not a Hub license id", "size_categories 'lots' is not one of " + str(
            ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "1B<n<10B",
             "10B<n<100B", "100B<n<1T", "n>1T")), "config {'config_name': 'x'} needs config_name and data_files"]


def cli_app() -> typer.Typer:
    from curate.card.cli import register

    app = typer.Typer()
    register(app)
    return app


def test_card_command(quickstart_run, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli_app(), ["card", str(quickstart_run), "--out", str(tmp_path / "c"), "--repo", "me/qs"])
    assert res.exit_code == 0, res.output
    assert "README.md" in res.output and "funnel.png" in res.output
    assert 'load_dataset("me/qs", split="train")' in (tmp_path / "c" / "README.md").read_text()
    res = runner.invoke(cli_app(), ["card", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "manifest.json is missing" in res.output and "Traceback" not in res.output


def test_card_command_prints_warnings(tmp_path, monkeypatch):
    make_data(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE).replace("license: mit", "on_error: fail"))
    monkeypatch.chdir(tmp_path)
    run_recipe(load_recipe("r.yaml"))
    res = CliRunner().invoke(cli_app(), ["card", "out"])
    assert res.exit_code == 0, res.output
    assert "warning: source 'domain' has no license" in res.output and res.output.count("has no license") == 1


def test_the_warning_is_printed_once_when_the_run_and_the_card_both_give_it(tmp_path, monkeypatch):
    import io
    import warnings

    from rich.console import Console

    from curate.card.cli import card_warnings_to

    make_data(tmp_path)
    recipe = textwrap.dedent(RECIPE).replace("license: mit", "on_error: fail") + "card: {write: true}\n"
    (tmp_path / "r.yaml").write_text(recipe)
    monkeypatch.chdir(tmp_path)
    buf = io.StringIO()
    with card_warnings_to(Console(file=buf, width=200)):  # what `curate run` can do
        r = load_recipe("r.yaml")
        for message in missing_license_warnings(r.sources):
            warnings.warn(message, CardWarning)
        run_recipe(r)
    assert buf.getvalue() == ("warning: source 'domain' has no license: its data card will say 'unknown' "
                              "(set sources.domain.license)\n")
    assert (tmp_path / "data_cards" / "t" / "README.md").is_file()  # the default folder


# -- the committed cards ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["quickstart", "lima_style"])
def test_committed_cards_parse_and_add_up(name):
    path = ROOT / "data_cards" / name / "README.md"
    assert path.is_file(), f"run `curate card runs/{name}` and commit data_cards/{name}"
    card = parse_card(path)
    text = path.read_text()
    assert card.data.pretty_name == name
    rows = funnel_table(text)
    *stages, total = rows
    assert total["rows_in"] == total["rows_out"] + total["dropped"] == stages[0]["rows_in"]
    assert sum(s["dropped"] for s in stages) == total["dropped"] and stages[-1]["rows_out"] == total["rows_out"]
    for prev, cur in zip(stages, stages[1:]):
        assert cur["rows_in"] == prev["rows_out"]
    for png in re.findall(r"\]\(([\w.-]+\.png)\)", text):
        assert (path.parent / png).is_file() and (path.parent / png).stat().st_size < 200_000
    assert not re.search(r"(/home/|/tmp/|/work/|/Users/|[A-Z]:\\\\)", text)
    if name == "lima_style":
        assert card.data.license == "cc-by-nc-sa-4.0" and "> **Non-commercial.**" in text
