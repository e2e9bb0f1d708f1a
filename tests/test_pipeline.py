"""End to end: the ledger identity, nothing lost, byte-identical reruns, the step cache, and no
partial output on bad input."""

import filecmp
import json
import shutil
import textwrap

import pytest

from curate.errors import CurateError
from curate.io import read_jsonl
from curate.ledger import Ledger
from curate.pipeline import run_recipe
from curate.recipe import load_recipe


def make_data(tmp_path):
    general = [{"instruction": f"Explain topic number {i} in a few words.", "input": "",
                "output": f"Topic {i} is about thing {i}; it matters because of reason {i * 7}."} for i in range(30)]
    general[5] = dict(general[4])  # an exact duplicate
    general[9]["output"] = ""  # an empty response
    general[12]["output"] = "!!!"  # junk
    (tmp_path / "general.jsonl").write_text("".join(json.dumps(r) + "\n" for r in general) + "{broken\n")
    domain = [{"messages": [{"role": "user", "content": f"What is the boiling point number {i}?"},
                            {"role": "assistant", "content": f"Water boils at {90 + i} degrees at altitude level {i}."}]}
              for i in range(12)]
    (tmp_path / "domain.jsonl").write_text("".join(json.dumps(r) + "\n" for r in domain))


RECIPE = """
name: t
seed: 3
sources:
  general: {path: general.jsonl, license: cc-by-4.0, on_error: skip}
  domain: {path: domain.jsonl, license: mit}
steps:
  - clean: {}
  - dedup.exact: {key: conversation}
  - score.heuristics: {}
  - filter: {rules: ["response_words >= 2"]}
  - select.random: {rows: 20}
outputs: {dir: out, formats: [jsonl, parquet, arrow]}
cache: {dir: cache}
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    make_data(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(RECIPE))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(path="r.yaml", overrides=None, **kw):
    return run_recipe(load_recipe(path, overrides), **kw)


def test_every_row_is_in_the_output_or_the_rejects(workdir):
    result = run()
    data = read_jsonl(workdir / "out" / "data.jsonl")
    rejects = read_jsonl(workdir / "out" / "rejects.jsonl")
    totals = result.manifest["totals"]
    assert totals == {"rows_in": 43, "rows_out": 20, "dropped": 23}  # 30 + 1 broken line + 12
    assert len(data) == 20 and len(rejects) == 23
    by_step = {}
    for r in rejects:
        by_step[r["step"]] = by_step.get(r["step"], 0) + 1
    assert by_step == {"load": 1, "dedup.exact": 1, "filter": 2, "select.random": 19}
    load_reject = next(r for r in rejects if r["step"] == "load")
    assert load_reject["where"].endswith("general.jsonl:31") and load_reject["row"]["raw"] == "{broken"
    dup = next(r for r in rejects if r["step"] == "dedup.exact")
    assert dup["duplicate_of"] == dup["row"]["id"]  # same conversation, same id
    # every parsed input row is accounted for, by id and source row
    seen = {json.dumps(r["meta"]["source_row"]) for r in data} | {
        json.dumps(json.loads(r["row"]["meta"])["source_row"] if isinstance(r["row"].get("meta"), str) else r["row"]["meta"]["source_row"])
        for r in rejects if r["step"] != "load"}
    assert len(seen) == 42


def test_outputs_carry_text_spans_scores_and_a_manifest(workdir):
    result = run()
    row = read_jsonl(workdir / "out" / "data.jsonl")[0]
    assert {"id", "source", "messages", "meta", "response_words", "text", "assistant_spans"} <= set(row)
    start, end = row["assistant_spans"][-1]
    assert row["text"][start:end].startswith(row["messages"][-1]["content"])
    m = json.loads((workdir / "out" / "manifest.json").read_text())
    assert m["recipe_hash"] and m["seed"] == 3 and m["libraries"]["datasets"]
    assert m["sources"]["general"]["inputs"][0]["sha256"] and m["sources"]["general"]["rows_skipped"] == 1
    assert [s["label"] for s in m["steps"]] == ["clean", "dedup.exact", "score.heuristics", "filter", "select.random"]
    assert m["steps"][3]["dropped_by_reason"] == {"response_words=# < min #": 2}
    assert m["random_baseline"]["rows"] == 20 and m["random_baseline"]["pool_rows"] == 39
    assert (workdir / "out" / "baseline_random.jsonl").exists()
    assert result.manifest["totals"]["rows_out"] == 20


def _snapshot(d, to):
    shutil.copytree(d, to)


def _same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    mismatch = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)[1]
    return cmp.left_only == cmp.right_only == [] and all(_same_tree(a / s, b / s) for s in cmp.common_dirs) and (
        mismatch == [] or mismatch == ["manifest.json"])


def test_reruns_are_byte_identical_with_and_without_cache(workdir):
    run()
    _snapshot(workdir / "out", workdir / "first")
    run(use_cache=False)
    _snapshot(workdir / "out", workdir / "second")
    run()  # every step from the cache
    for other in ("second", "out"):
        assert _same_tree(workdir / "first", workdir / other)
        a = json.loads((workdir / "first" / "manifest.json").read_text())
        b = json.loads((workdir / other / "manifest.json").read_text())
        a.pop("timings"), b.pop("timings")
        assert a == b  # only timings differ between identical runs
    for name in ("data.jsonl", "data.parquet", "rejects.jsonl", "baseline_random.jsonl"):
        assert (workdir / "first" / name).read_bytes() == (workdir / "out" / name).read_bytes()


def test_a_different_seed_changes_the_random_selection(workdir):
    run()
    first = (workdir / "out" / "data.jsonl").read_bytes()
    run(overrides=["seed=4"])
    assert (workdir / "out" / "data.jsonl").read_bytes() != first


def test_changing_a_late_step_reuses_the_earlier_ones(workdir):
    run()
    result = run(overrides=["steps.4.select.random.rows=10"])
    cached = {s.label: s.cached for s in result.steps}
    assert cached == {"clean": True, "dedup.exact": True, "score.heuristics": True, "filter": True, "select.random": False}
    assert result.manifest["totals"]["rows_out"] == 10
    result = run(overrides=["steps.3.filter.rules=['response_words >= 1']"])
    cached = {s.label: s.cached for s in result.steps}
    assert cached == {"clean": True, "dedup.exact": True, "score.heuristics": True, "filter": False, "select.random": False}


def test_changed_input_file_invalidates_the_cache(workdir):
    run()
    with open(workdir / "domain.jsonl", "a") as f:
        f.write(json.dumps({"messages": [{"role": "user", "content": "new?"}, {"role": "assistant", "content": "yes it is new"}]}) + "\n")
    result = run()
    assert not any(s.cached for s in result.steps)
    assert result.manifest["totals"]["rows_in"] == 44


def test_budget_too_large_fails_with_no_partial_output(workdir):
    with pytest.raises(CurateError, match=r"steps\[4\].select.random.rows: budget of 500 rows is larger than the 39 rows"):
        run(overrides=["steps.4.select.random.rows=500"])
    assert not (workdir / "out").exists()


def test_a_failed_rerun_leaves_the_previous_output_untouched(workdir):
    run()
    before = (workdir / "out" / "data.jsonl").read_bytes()
    with pytest.raises(CurateError):
        run(overrides=["steps.4.select.random.rows=500"])
    assert (workdir / "out" / "data.jsonl").read_bytes() == before


def test_a_rerun_keeps_later_results_only_while_the_data_is_unchanged(workdir):
    run()
    (workdir / "out" / "compare").mkdir()
    (workdir / "out" / "compare" / "results.json").write_text("{}")
    (workdir / "out" / "report.html").write_text("<html>")
    result = run(use_cache=False)  # same recipe and inputs: byte-identical data in every format
    assert result.carried == {"kept": ["compare", "report.html"], "removed": []}
    assert (workdir / "out" / "compare" / "results.json").read_text() == "{}"
    assert (workdir / "out" / "report.html").exists()
    # keys that change no row (here train:) keep them too, even in the Arrow folder, whose state.json differs
    (workdir / "out" / ".compare.x1.tmp").mkdir()  # another command's staging folder is never carried
    result = run(overrides=["train.epochs=2", "description=other words"])
    assert result.carried == {"kept": ["compare", "report.html"], "removed": []}
    assert not (workdir / "out" / ".compare.x1.tmp").exists()
    # a format the recipe no longer asks for is not carried over as if it were a result
    result = run(overrides=["outputs.formats=[jsonl]", "outputs.random_baseline=false"])
    assert sorted(p.name for p in (workdir / "out").iterdir()) == [".curate-run", "changes.jsonl", "compare", "data.jsonl", "manifest.json",
                                                                     "rejects.jsonl", "report.html"]
    result = run(overrides=["seed=4"])  # another random selection: training results would be stale
    assert result.carried == {"kept": [], "removed": ["compare", "report.html"]}
    assert not (workdir / "out" / "compare").exists() and not (workdir / "out" / "report.html").exists()
    assert not [p.name for p in workdir.iterdir() if p.name.startswith(".out.")]  # no staging folder left behind


def test_refuses_to_replace_a_folder_that_is_not_a_run(workdir):
    (workdir / "out").mkdir()
    (workdir / "out" / "precious.txt").write_text("keep me")
    with pytest.raises(CurateError, match="is not a curate run folder"):
        run()
    assert (workdir / "out" / "precious.txt").read_text() == "keep me"


def test_identity_check_catches_lost_rows():
    Ledger.check_identity(10, 7, 3)
    with pytest.raises(CurateError, match="ledger identity violated: 10 rows in != 7 out \\+ 2 dropped"):
        Ledger.check_identity(10, 7, 2)


def test_no_template_section_writes_no_text(workdir):
    text = (workdir / "r.yaml").read_text() + "template: null\n"
    (workdir / "r2.yaml").write_text(text)
    run("r2.yaml")
    row = read_jsonl(workdir / "out" / "data.jsonl")[0]
    assert "text" not in row


def test_editing_a_file_a_step_reads_invalidates_its_cache(workdir):
    library = workdir / "lib.yaml"
    library.write_text(textwrap.dedent("""
        task: custom
        description: re-ask
        fields: [prompt, response]
        phrasings:
          - id: one
            user: "Please: {{ prompt }}"
            assistant: "{{ response }}"
    """))
    text = (workdir / "r.yaml").read_text().replace("  - select.random", "  - task: {library: lib.yaml}\n  - select.random")
    (workdir / "r3.yaml").write_text(text)
    run("r3.yaml")
    assert all(r.cached for r in run("r3.yaml").steps)
    library.write_text(library.read_text().replace("Please:", "Kindly:"))
    result = run("r3.yaml")
    assert [r.cached for r in result.steps] == [True, True, True, True, False, False]  # task re-run, and after it
    assert read_jsonl(workdir / "out" / "data.jsonl")[0]["messages"][0]["content"].startswith("Kindly:")
