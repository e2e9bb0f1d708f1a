"""The engine: the same bytes for any number of workers and any part size, global steps that get only the
columns they read, a cache of what each step adds, checks before any row is read, and the Python API."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from curate import Pipeline, steps
from curate.errors import CurateError
from curate.io import read_jsonl
from curate.pipeline import run_recipe
from curate.recipe import load_recipe
from tests.faults.fault_helpers import same_run

ROOT = Path(__file__).resolve().parents[2]

# the no-embedding lima_style pipeline, on 400 rows of each real source
REAL = """
name: real
seed: 1
sources:
  alpaca_gpt4: {{path: {data}/alpaca_gpt4_en_demo_999.json, limit: 400, license: cc-by-nc-4.0}}
  cherry: {{path: {data}/cherry_alpaca_5_percent.json, limit: 400, license: cc-by-nc-4.0}}
  code: {{path: {data}/code_alpaca_2k.json, limit: 400, license: cc-by-nc-4.0}}
  lima: {{path: {data}/lima_train.json, limit: 400, license: cc-by-nc-sa-4.0}}
steps:
  - clean: {{strip_links: true, drop_article_refs: true}}
  - dedup.exact: {{key: prompt, keep: longest}}
  - dedup.exact: {{key: response}}
  - score.heuristics: {{}}
  - score.language: {{key: conversation, languages: [en, de, fr, es]}}
  - filter: {{rules: ["response_words >= 3", "rep_ngram_ratio <= 0.5", "lang == en"]}}
  - filter.pattern: {{patterns: ["\\\\bas an ai language model\\\\b"]}}
  - dedup.minhash: {{key: conversation, threshold: 0.8, keep: longest}}
  - score.rank: {{column: response_words, by: source}}
  - select.stratified: {{by: source, within: top, score: response_words_pct, rows: 300}}
template: {{format: chatml}}
outputs: {{dir: out, formats: [jsonl, parquet, arrow]}}
cache: {{dir: cache}}
"""


@pytest.fixture
def real(tmp_path, monkeypatch, shared_data):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent(REAL.format(data=shared_data)))
    return tmp_path


def run(path="r.yaml", overrides=(), **kw):
    return run_recipe(load_recipe(path, list(overrides)), **kw)


def test_any_number_of_workers_and_any_part_size_gives_the_same_bytes(real):
    run(overrides=["executor.workers=1"], use_cache=False)
    shutil.copytree(real / "out", real / "one")
    result = run(overrides=["executor.workers=2", "executor.part_rows=97"], use_cache=False)
    assert result.manifest["executor"] == {"kind": "local", "workers": 2}
    assert same_run(real / "one", real / "out") or _diff(real / "one", real / "out")
    assert result.manifest["totals"]["rows_out"] == 300
    assert {s["label"]: s["dropped"] > 0 for s in result.manifest["steps"]}["dedup.exact"]  # real duplicates found


def _diff(a: Path, b: Path):
    for p in sorted(a.rglob("*")):
        q = b / p.relative_to(a)
        if p.is_file() and p.read_bytes() != q.read_bytes():
            raise AssertionError(f"{p.relative_to(a)} differs")
    raise AssertionError("the folders differ")


def test_global_steps_get_only_the_columns_they_read(real, monkeypatch):
    from curate.steps.dedup.exact import ExactDedup
    from curate.steps.select.stratified import Stratified

    seen = {}
    real_decide, real_select = ExactDedup.decide, Stratified.select

    def decide(self, table, keys=None):
        seen.setdefault("dedup", (table.column_names, sorted(keys)))
        return real_decide(self, table, keys)

    def select(self, table):
        seen["select"] = table.column_names
        return real_select(self, table)

    monkeypatch.setattr(ExactDedup, "decide", decide)
    monkeypatch.setattr(Stratified, "select", select)
    run(overrides=["executor.workers=1"], use_cache=False)
    # no text: a 16-byte digest and a length per row, and the source (for the alarm when a source collapses)
    assert seen["dedup"] == (["id", "source"], ["digest", "length"])
    assert seen["select"] == ["id", "source", "response_words_pct"]


def test_a_cache_entry_holds_what_its_step_adds_and_a_late_change_reuses_the_rest(real):
    first = run(overrides=["executor.workers=1"])
    entries = {p.name: p for p in (real / "cache").iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert len(entries) == 11  # the loaded rows + one per step
    sizes = {name: sum(f.stat().st_size for f in p.iterdir()) for name, p in entries.items()}
    load = max(sizes, key=sizes.get)
    assert (entries[load] / "load.json").exists()  # the loaded rows are the one big entry ...
    from curate.engine.store import read_part

    for name, folder in entries.items():
        if (folder / "layer.json").exists():
            columns = read_part(folder / "part-00000.arrow").column_names
            assert "id" not in columns and "source" not in columns  # ... a layer holds only what its step set
        elif (folder / "drops.arrow").exists():
            assert read_part(folder / "drops.arrow").column_names == ["_row", "reason", "duplicate_of", "detail"]
    again = run(overrides=["executor.workers=1", "steps.9.select.stratified.rows=200"])
    assert [s.cached for s in again.steps] == [True] * 9 + [False]
    assert again.manifest["totals"]["rows_out"] == 200 and first.manifest["totals"]["rows_out"] == 300


def test_a_column_nothing_adds_is_an_error_before_any_row_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(textwrap.dedent("""
        name: typo
        sources:
          s: {path: missing-file-never-read.jsonl}
        steps:
          - score.heuristics: {}
          - filter: {rules: ["response_wrds >= 3"]}
          - select.top_k: {by: judge, rows: 10}
    """))
    with pytest.raises(CurateError) as e:
        run()
    assert "steps[1].filter.rules[0].column: no step before this one adds the column 'response_wrds' (did you mean " \
           "'response_words'?)" in str(e.value)
    assert "steps[2].select.top_k.by: no step before this one adds the column 'judge'" in str(e.value)
    assert "missing-file" not in str(e.value)  # it stopped before looking at the sources


def _quickstart_in_python(out: str) -> Pipeline:
    return Pipeline(
        name="quickstart",
        description=("A small general + science instruction set: cleaned, scored, filtered, exact- and "
                     "near-deduplicated, and a 150-row selection stratified by source, with a matched random baseline.\n"),
        seed=0,
        sources={"general": {"path": "data/quickstart_general.jsonl", "license": "cc-by-4.0"},
                 "science": {"path": "data/quickstart_domain.jsonl", "license": "cc-by-4.0"}},
        steps=[
            # the recipe writes the older names `clean` and `filter` (aliases of clean.text and filter.threshold, which
            # steps.Clean and steps.Filter write): StepConfig takes a name as the recipe spells it
            steps.StepConfig("clean", {"strip_links": True, "drop_article_refs": True}),
            steps.Heuristics(),
            steps.Language(key="conversation", languages=["en", "de", "fr", "es"]),
            steps.StepConfig("filter", {"rules": ["response_words >= 3", "rep_ngram_ratio <= 0.5", "nonalnum_ratio <= 0.4",
                                                  "refusal < 1", "lang == en"]}),
            steps.ExactDedup(key="conversation"),
            steps.MinHashDedup(key="conversation", threshold=0.7),
            steps.ExactDedup(key="prompt", keep="longest"),
            steps.Stratified(by="source", within="top", score="response_words", rows=150),
        ],
        template={"format": "chatml"},
        outputs={"dir": out, "formats": ["jsonl", "parquet"]},
        base_dir=ROOT / "recipes",
    )


def test_the_quickstart_built_in_python_gives_the_same_bytes_as_the_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "runs" / "quickstart")
    cli = run(ROOT / "recipes" / "quickstart.yaml", [f"outputs.dir={out}"], use_cache=False)
    shutil.copytree(out, tmp_path / "from-yaml")
    pipe = _quickstart_in_python(out)
    assert pipe.to_recipe() == cli.manifest["recipe"]  # a recipe is the pipeline's serialised form
    result = pipe.run(use_cache=False)
    assert same_run(tmp_path / "from-yaml", Path(out))
    assert len(result.dataset) == 150 and result.dataset.column_names[:4] == ["id", "source", "messages", "meta"]
    rejects = list(result.rejects())
    assert len(rejects) == 150 and {r["step"] for r in rejects} >= {"filter", "select.stratified"}
    assert Pipeline.from_recipe(ROOT / "recipes" / "quickstart.yaml", [f"outputs.dir={out}"]).to_recipe() == \
        pipe.to_recipe()


def test_a_pipeline_runs_on_rows_in_memory(tmp_path, monkeypatch):
    from datasets import Dataset

    monkeypatch.chdir(tmp_path)
    rows = [{"instruction": f"Question {i} about topic {i % 7}?", "output": f"Answer {i}: it is so because {i}."}
            for i in range(40)] + [{"instruction": "Question 3 about topic 3?", "output": "Answer 3: it is so because 3."}]
    pipe = Pipeline([steps.Heuristics(), steps.ExactDedup(key="conversation"), steps.RandomSelect(rows=10)],
                    outputs={"dir": "out"})
    result = pipe.run(Dataset.from_list(rows))
    assert result.manifest["totals"] == {"rows_in": 41, "rows_out": 10, "dropped": 31}
    assert result.manifest["sources"]["data"]["inputs"][0]["memory"] is True
    assert len(result.dataset) == 10 and "response_words" in result.dataset.column_names
    again = pipe.run(pa.Table.from_pylist(rows))  # the same rows as a table: the same content hash, cached
    assert all(s.cached for s in again.steps)
    with pytest.raises(CurateError, match="no sources"):
        Pipeline([steps.Heuristics()]).run()
    with pytest.raises(CurateError, match=r"filter\.threshold\.rules\[0\]"):
        steps.Filter(rules=["response_words >>= 3"])


def test_a_step_that_holds_a_model_runs_in_the_main_process(tmp_path, monkeypatch):
    """Row-local steps run in worker processes; one that says parallel() is False (a model) does not."""
    import os

    from curate.steps.score.heuristics import Heuristics

    pids = set()
    real_score = Heuristics.score

    def score(self, batch):
        pids.add(os.getpid())
        return real_score(self, batch)

    monkeypatch.setattr(Heuristics, "score", score)
    monkeypatch.setattr(Heuristics, "parallel", lambda self: False)
    monkeypatch.chdir(tmp_path)
    rows = [{"instruction": f"q{i}", "output": f"a {i} b"} for i in range(100)]
    Pipeline([steps.Heuristics()], outputs={"dir": "out"}, executor={"workers": 2, "part_rows": 10}).run(
        rows, use_cache=False)
    assert pids == {os.getpid()}
    assert len(read_jsonl(tmp_path / "out" / "data.jsonl")) == 100
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["executor"]["workers"] == 2


def test_a_chain_of_steps_turns_a_column_into_python_once_and_never_changes_it(shared_data):
    """Inside shared_values() (the engine's chain over one part) a column read by several steps is converted
    once; after a filter the kept values carry over; a column with other data (or the same data elsewhere)
    is converted afresh; and no built-in row-local step that reads `messages` changes the shared values."""
    import numpy as np

    from curate.specs.source import Source
    from curate.sources.load import load_source
    from curate.steps.base import StepContext, filtered_values, shared_values, values
    from curate.steps.registry import get_step

    rows = []
    for name in ("lima_train.json", "code_alpaca_2k.json"):
        rows += load_source("x", Source(path=str(shared_data / name))).rows[:300]
    table = pa.Table.from_pylist([{"messages": r["messages"], "source": "x"} for r in rows])
    fresh = table.column("messages").to_pylist()
    assert values(table, "messages") is not values(table, "messages")  # outside: a new list each time
    with shared_values():
        first = values(table, "messages")
        assert values(table.drop_columns(["source"]), "messages") is first == fresh
        copy = pa.Table.from_pylist([{"messages": r["messages"]} for r in rows])  # equal values, other buffers
        assert values(copy, "messages") is not first
        keep = np.arange(len(rows)) % 3 != 0
        kept = table.filter(pa.array(keep))
        filtered_values(table, kept, keep)
        assert values(kept, "messages") == [m for m, k in zip(fresh, keep) if k] == kept.column("messages").to_pylist()
        assert values(table.slice(1), "messages") == fresh[1:]  # a slice is other data: converted, not confused
        specs = [("score.heuristics", {}), ("score.language", {}), ("filter.pattern", {"patterns": ["sorry"]}),
                 ("dedup.exact", {}), ("dedup.minhash", {}), ("clean", {})]
        for name, params in specs:
            cls = get_step(name)
            step = cls(cls.Params(**params), StepContext(label=name, where=name, seed=0))
            step.keys(table) if cls.scope == "global" else step.apply(table)
            assert values(table, "messages") is first and first == fresh, name
    assert values(table, "messages") is not first  # the lists go with the block


def test_a_transform_finds_its_changed_rows_in_arrow_as_python_would():
    """steps.base.same_rows compares conversations in Arrow (no conversion into Python): the same answer as
    comparing the rows' Python values, on random conversations with missing rows, turns and fields, other
    lengths and sliced arrays, and for any other type through Python."""
    import random

    import numpy as np

    from curate.engine.store import MESSAGES_TYPE
    from curate.steps.base import same_rows

    rng = random.Random(0)
    words = ["", "a", "b", "é", "user", "assistant", None]

    def turn():
        return None if rng.random() < 0.05 else {"role": rng.choice(words), "content": rng.choice(words)}

    def row():
        return None if rng.random() < 0.05 else [turn() for _ in range(rng.randrange(0, 4))]

    def vary(r):
        if r is None or rng.random() < 0.5:
            return r if rng.random() < 0.9 else row()
        r = [None if t is None else dict(t) for t in r]
        if r and rng.random() < 0.5:
            k = rng.randrange(len(r))
            r[k] = turn() if rng.random() < 0.3 else (r[k] and {**r[k], "content": rng.choice(words)})
        elif rng.random() < 0.5:
            r.append(turn())
        return r

    for _ in range(200):
        old = [row() for _ in range(rng.randrange(0, 30))]
        new = [vary(r) for r in old]
        a, b = pa.array([None] + old, MESSAGES_TYPE), pa.array(new + [None, None], MESSAGES_TYPE)
        a, b = a.slice(1), b.slice(0, len(new))  # offsets that do not start at 0
        assert same_rows(a, b).tolist() == [x == y for x, y in zip(old, new)]
    ints = pa.array([1, None, 3]), pa.array([1, None, 4])
    assert same_rows(*ints).tolist() == [True, True, False]
    assert same_rows(pa.array([], MESSAGES_TYPE), pa.array([], MESSAGES_TYPE)).dtype == np.bool_
