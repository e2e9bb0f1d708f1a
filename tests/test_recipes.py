"""The shipped recipes run as the README says and find what was planted (quickstart) or what is
known to be in the real data (lima_style)."""

import json
import shutil
from pathlib import Path

import pytest

from curate.io import read_jsonl
from curate.pipeline import run_recipe
from curate.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
GENERAL = "quickstart_general.jsonl"
DOMAIN = "quickstart_domain.jsonl"


def source_line(row) -> tuple[str, int]:
    meta = row["meta"] if isinstance(row["meta"], dict) else json.loads(row["meta"])
    path, line = meta["source_row"].rsplit(":", 1)
    return Path(path).name, int(line)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml", [f"outputs.dir={out}/run", f"cache.dir={out}/cache"])
    result = run_recipe(recipe)
    rejects = read_jsonl(out / "run" / "rejects.jsonl")
    return result, {source_line(r["row"]): r for r in rejects}, read_jsonl(out / "run" / "data.jsonl")


def test_quickstart_accounts_for_every_row(quickstart):
    result, rejects, data = quickstart
    assert result.manifest["totals"] == {"rows_in": 300, "rows_out": 150, "dropped": 150}
    assert len(rejects) + len(data) == 300


def test_quickstart_drops_empty_and_junk_responses_with_reasons(quickstart):
    _, rejects, _ = quickstart
    for line in (2, 55, 198):  # empty responses (README table)
        assert rejects[(GENERAL, line)]["step"] == "filter"
        assert "response_words=0" in rejects[(GENERAL, line)]["reason"]
    for line in (39, 89):
        assert rejects[(DOMAIN, line)]["step"] == "filter"
    for line, why in ((77, "rep_ngram_ratio"), (102, "rep_ngram_ratio"), (91, "response_words"),
                      (153, "response_words"), (171, "response_words"), (19, "refusal")):
        assert rejects[(GENERAL, line)]["step"] == "filter" and why in rejects[(GENERAL, line)]["reason"], line


def test_quickstart_finds_exact_and_near_duplicates(quickstart):
    _, rejects, _ = quickstart
    exact = [(GENERAL, c) for c in (46, 72, 75, 96, 134, 186, 47, 137, 155)] + [(DOMAIN, c) for c in (34, 71, 95)]
    for key in exact:
        assert rejects[key]["step"] == "dedup.exact", key
    near = [(GENERAL, c) for c in (22, 35, 44, 116, 138, 144, 175, 187)] + [(DOMAIN, c) for c in (26, 61, 67, 76)]
    found = [k for k in near if rejects[k]["step"] == "dedup.minhash"]
    assert len(found) >= 10, found  # MinHash estimates Jaccard (+-0.035 at 128 permutations)
    assert all(rejects[k]["step"] in ("dedup.minhash", "dedup.exact#2") for k in near)  # the rest by prompt
    assert all(rejects[k]["duplicate_of"] for k in near)


def test_quickstart_cleans_what_it_keeps(quickstart):
    _, rejects, data = quickstart
    by_line = {source_line(r): r for r in data}
    every = list(by_line.values()) + [r["row"] for r in rejects.values() if r["step"] != "load"]
    texts = {source_line(r): r["messages"][-1]["content"] for r in every}
    assert not any("cafe\u0301" in t for t in texts.values())  # NFC
    assert "https://" not in texts[(GENERAL, 80)] and "like this" in texts[(GENERAL, 80)]
    assert "this article" not in texts[(GENERAL, 92)].lower()
    assert not texts[(GENERAL, 149)].lower().startswith("as an ai")
    for line in (30, 38, 68, 157):
        assert "  " not in texts[(GENERAL, line)] and "\t" not in texts[(GENERAL, line)]


def test_quickstart_matched_baseline(quickstart):
    result, _, _ = quickstart
    b = result.manifest["random_baseline"]
    assert b["rows"] == 150 and b["selector"] == "select.stratified"


@pytest.fixture(scope="module")
def lima_style(tmp_path_factory):
    from tests.conftest import SHARED_DATA, lima_style_overrides

    if not SHARED_DATA.is_dir():
        import os

        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the real data is missing at {SHARED_DATA}")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    out = tmp_path_factory.mktemp("lima")
    overrides = lima_style_overrides(SHARED_DATA) + [
        f"outputs.dir={out}/run", f"cache.dir={out}/cache",
    ]
    result = run_recipe(load_recipe(ROOT / "recipes" / "lima_style.yaml", overrides))
    yield result, out / "run"
    shutil.rmtree(out, ignore_errors=True)


def test_lima_style_pools_selects_and_accounts(lima_style):
    result, run_dir = lima_style
    m = result.manifest
    assert m["totals"]["rows_in"] == 7331 and m["totals"]["rows_out"] == 1000
    assert m["totals"]["rows_in"] == m["totals"]["rows_out"] + m["totals"]["dropped"]
    assert {s: v["rows_read"] for s, v in m["sources"].items()} == {
        "alpaca_gpt4": 999, "cherry_alpaca": 3111, "code_alpaca": 2017, "lima": 1029, "self_instruct_seeds": 175}
    assert sum(1 for _ in open(run_dir / "rejects.jsonl")) == m["totals"]["dropped"]


def test_lima_style_prompt_dedup_finds_the_known_overlaps(lima_style):
    result, run_dir = lima_style
    step = next(s for s in result.manifest["steps"] if s["label"] == "dedup.exact")
    assert step["params"]["key"] == "prompt"
    # 57 instructions shared by alpaca_gpt4 and cherry alpaca + 14 repeats inside alpaca_gpt4
    assert step["dropped"] == 71
    rejects = [r for r in read_jsonl(run_dir / "rejects.jsonl") if r["step"] == "dedup.exact"]
    pairs = {(r["row"]["source"]) for r in rejects}
    assert pairs <= {"alpaca_gpt4", "cherry_alpaca"}


def test_science_mix_on_the_curated_pool(lima_style, tmp_path):
    from tests.conftest import SHARED_DATA

    _, lima_dir = lima_style
    result = run_recipe(load_recipe(ROOT / "recipes" / "science_mix.yaml", [
        f"sources.arc_easy.path={SHARED_DATA / 'arc_easy_train.json'}", f"mix.components.general.run={lima_dir}",
        f"outputs.dir={tmp_path}/run", f"cache.dir={tmp_path}/cache"]))
    m = result.manifest
    assert {n: c["realised"]["rows"] for n, c in m["mix"]["components"].items()} == {"general": 300, "science": 700}
    assert m["totals"]["rows_in"] == 2251 + 1000 == m["totals"]["rows_out"] + m["totals"]["dropped"]
    data = read_jsonl(tmp_path / "run" / "data.jsonl")
    science = [r for r in data if r["component"] == "science"]
    assert all(r["meta"]["task_template"] for r in science)
    assert len({r["meta"]["task_template"] for r in science}) >= 4  # several phrasings, assigned by the seed
    for r in science:  # letter_text answers: the letter and the option's text, in any phrasing
        answer = r["messages"][-1]["content"]
        assert r["meta"]["answer_letter"] in answer and r["meta"]["answer_text"] in answer, answer


def test_math_mix_ablation_grid(lima_style, tmp_path):
    from curate.ablate import run_ablation
    from tests.conftest import SHARED_DATA

    _, lima_dir = lima_style
    out = run_ablation(str(ROOT / "recipes" / "math_mix.yaml"), [
        f"sources.gsm8k.path={SHARED_DATA / 'gsm8k_train.jsonl'}", f"mix.components.general.run={lima_dir}",
        "ablate.sizes=[200]", f"ablate.dir={tmp_path}/grid", f"cache.dir={tmp_path}/cache"])
    index = json.loads((out / "index.json").read_text())
    assert [(p["mix"]["general"]["rows"], p["mix"]["math"]["rows"]) for p in index["points"]] == [
        (0, 200), (20, 180), (60, 140), (100, 100), (140, 60)]
    first = read_jsonl(out / index["points"][0]["dir"] / "data.jsonl")
    assert all(r["messages"][-1]["content"].strip() for r in first)
