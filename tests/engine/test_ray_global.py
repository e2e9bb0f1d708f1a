"""Global steps as shuffles on Ray (curate/engine/ray_global.py): exact dedup (each keep policy) and MinHash
(star and components, exact and estimated verification) on a pool with planted duplicates give the same bytes
as the local executor, and really ran as shuffles; semantic dedup on planted near-copy vectors decides on Ray
as in one process; the stages cut into any number of partitions give the same decisions as the step deciding
in one process. (A recipe with semantic dedup on Ray, byte for byte: tests/engine/test_ray.py, its embedding
test.)

The Ray run is skipped without Ray (pip install 'curate[ray]'), except under CI=true.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curate.steps.base import StepContext
from curate.steps.registry import get_step

WORDS = [f"w{i}" for i in range(3000)]
STEPS = """
  - score.heuristics: {}
  - dedup.exact: {key: conversation}
  - dedup.exact: {key: prompt, keep: longest}
  - dedup.exact: {key: response, keep: highest, score_column: prompt_words}
  - dedup.minhash: {key: first_user, ngram: 3, threshold: 0.7, verify: estimate, cluster: components}
  - dedup.minhash: {key: response, threshold: 0.8}
"""


def planted_pool(n_base: int = 240, seed: int = 3) -> list[dict]:
    """Rows of random words, with planted duplicates for each step of STEPS: conversation copies in other
    case and spacing, the same prompt with answers of other lengths, the same answer to prompts of other
    lengths, prompts a word or two apart (and chains of them), and answers 1-6 words apart (around J = 0.8)."""
    rng = np.random.default_rng(seed)

    def words(k: int) -> list[str]:
        return [str(w) for w in rng.choice(WORDS, k)]

    def edit(text: str, k: int) -> str:
        t = text.split()
        for at in rng.choice(len(t), k, replace=False):
            t[at] = str(rng.choice(WORDS))
        return " ".join(t)

    rows = []

    def add(prompt: str, response: str) -> None:
        rows.append({"source": f"s{len(rows) % 2}", "messages": [{"role": "user", "content": prompt},
                                                                  {"role": "assistant", "content": response}]})

    base = [(" ".join(words(30)), " ".join(words(int(rng.integers(120, 180))))) for _ in range(n_base)]
    for p, r in base:
        add(p, r)
    for p, r in base[:40]:  # exact copies, other case and spacing
        add(p.upper(), "  " + r.replace(" ", "   "))
    for p, _ in base[40:80]:  # the same prompt, another answer
        add(p, " ".join(words(int(rng.integers(20, 200)))))
    for _, r in base[80:120]:  # the same answer, another prompt
        add(" ".join(words(int(rng.integers(5, 40)))), r)
    for p, _ in base[120:160]:  # a prompt a word or two apart, and its neighbour one more word apart (a chain)
        near = edit(p, int(rng.integers(1, 3)))
        add(near, " ".join(words(150)))
        add(edit(near, 1), " ".join(words(150)))
    for _, r in base[160:220]:  # an answer 1-6 words apart: some above 0.8, some just below
        add(" ".join(words(30)), edit(r, int(rng.integers(1, 7))))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def _write_recipe(tmp: Path) -> Path:
    with open(tmp / "pool.jsonl", "w") as f:
        for row in planted_pool():
            f.write(json.dumps(row) + "\n")
    recipe = tmp / "planted.yaml"
    recipe.write_text(textwrap.dedent(f"""
        name: planted
        seed: 7
        sources:
          pool: {{path: {tmp / 'pool.jsonl'}, license: cc-by-4.0}}
        steps:
        """) + STEPS.strip("\n") + "\noutputs: {formats: [jsonl, parquet]}\n")
    return recipe


def by_partitions(grouping, parts: int) -> list:
    """grouping.decide() as a cluster runs it: `expand` over `parts` slices of the rows (the cluster's blocks),
    each stage over `parts` hash partitions, results concatenated (last first)."""
    rows = grouping.rows
    size = max(-(-rows.num_rows // parts), 1)
    table = rows
    if grouping.expand is not None:
        table = pa.concat_tables([grouping.expand(rows.slice(lo, size)) for lo in range(0, rows.num_rows, size)][::-1]
                                 or [grouping.expand(rows)])
    for stage in grouping.stages:
        where = table.column("_hash").to_numpy() % np.uint64(parts)
        table = pa.concat_tables([stage(table.filter(pa.array(where == k))) for k in range(parts)][::-1])
    return grouping.finish(table)


def test_the_stages_in_any_number_of_partitions_decide_as_the_step_does(tmp_path):
    import yaml

    from curate.recipe import load_recipe

    recipe = load_recipe(_write_recipe(tmp_path))
    table = pa.Table.from_pylist([{"id": f"r{i}", **row} for i, row in enumerate(planted_pool())])
    table = get_step("score.heuristics")(get_step("score.heuristics").Params(), StepContext("h", "h", 0)).on_table(table)[0]
    linked = {}
    for i, entry in enumerate(yaml.safe_load(STEPS)[1:]):
        (name, raw), = entry.items()
        cls = get_step(name)

        def make():
            return cls(cls.Params.model_validate(raw), StepContext(name, f"steps[{i}]", recipe.seed + i))

        local = make()
        expected = local.decide(table)
        assert sum(d is not None for d in expected) > 0, f"{name} {raw}: nothing planted was found"
        for parts in (1, 3, 8):
            step = make()
            got = by_partitions(step.grouping(table), parts)
            assert [(d.reason, d.duplicate_of, d.detail) if d else None for d in got] == \
                   [(d.reason, d.duplicate_of, d.detail) if d else None for d in expected], (name, raw, parts)
            assert step.ctx.notes == local.ctx.notes
        linked[raw["key"]] = local.ctx.notes
    # the near duplicates straddle the threshold: candidates the exact Jaccard turned down, chains linked
    assert linked["response"]["candidate_pairs"] > linked["response"]["verified_pairs"] > 10
    assert linked["first_user"]["linked_pairs"] > 20 and max(linked["first_user"]["largest_clusters"]) >= 3


def planted_vectors(n: int = 400, dim: int = 16, seed: int = 11) -> pa.Table:
    """Rows with random unit vectors (none alike), near-copies of some (cosine 0.93-0.998, around the 0.95
    threshold), copies of copies (chains), a few rows without a vector, a score and lengths for the keep
    policies."""
    rng = np.random.default_rng(seed)

    def unit(X):
        return (X / np.linalg.norm(X, axis=-1, keepdims=True)).astype(np.float32)

    X = list(unit(rng.normal(size=(n, dim))))
    for i in rng.choice(n, n // 3, replace=False):
        for _ in range(int(rng.integers(1, 3))):  # a copy, and sometimes a copy of the copy
            tilt = rng.uniform(0.06, 0.4)  # cosine 1 / sqrt(1 + tilt^2): 0.998 down to 0.93
            u = rng.normal(size=dim)
            u -= (u @ X[i]) * X[i]
            X.append(unit(X[i] + tilt * u / np.linalg.norm(u)))
            i = len(X) - 1
    order = rng.permutation(len(X))
    vectors = [X[i].tolist() if rng.random() > 0.03 else None for i in order]
    return pa.table({"id": [f"v{i}" for i in range(len(X))], "source": [f"s{i % 2}" for i in range(len(X))],
                     "messages": [[{"role": "user", "content": "p" * int(k)}] for k in rng.integers(1, 50, len(X))],
                     "q": rng.random(len(X)), "embedding": pa.array(vectors, pa.list_(pa.float32()))})


SEMANTIC = ({"eps": 0.05, "clusters": 6, "probes": 2, "kmeans_sample": 150},
            {"eps": 0.05, "clusters": 9, "probes": 3, "keep": "highest", "score_column": "q"},
            {"eps": 0.03, "keep": "longest"})


def test_semantic_dedup_in_any_number_of_partitions_decides_as_the_step_does():
    table = planted_vectors()
    for raw in SEMANTIC:
        cls = get_step("dedup.semantic")

        def make():
            return cls(cls.Params.model_validate(raw), StepContext("dedup.semantic", "steps[0]", 3))

        local = make()
        expected = local.decide(table)
        assert sum(d is not None for d in expected) > 50, raw
        for parts in (1, 3, 8):
            step = make()
            got = by_partitions(step.grouping(table), parts)
            assert [(d.reason, d.duplicate_of, d.detail) if d else None for d in got] == \
                   [(d.reason, d.duplicate_of, d.detail) if d else None for d in expected], (raw, parts)
            assert step.ctx.notes == local.ctx.notes
    assert local.ctx.notes["rows_without_vector"] > 0


def test_the_dedup_steps_run_as_shuffles_on_ray_with_the_same_bytes(tmp_path, monkeypatch):
    from tests.model_fixtures import needs

    needs("ray", "ray.data")
    import ray

    from curate.engine import ray_global

    monkeypatch.setattr(ray_global, "SHARED_BYTES", 1)  # the small signatures go by reference too

    from curate.pipeline import run_recipe
    from curate.recipe import load_recipe
    from tests.faults.fault_helpers import same_run
    from tests.engine.test_ray import twice

    if ray.is_initialized():  # a session of another module would do, but its fault marker must not fire here
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        recipe = _write_recipe(tmp_path)
        manifest = twice(recipe, [], tmp_path / "out", part_rows=128)
        # executor.global_steps: driver decides in one process, with the same bytes and no shuffle
        shutil.copytree(tmp_path / "out", tmp_path / "shuffled")
        on_driver = run_recipe(load_recipe(recipe, [f"outputs.dir={tmp_path / 'out'}", "cache.enabled=false",
                                                    "executor.part_rows=128", "executor.kind=ray",
                                                    "executor.global_steps=driver"]))
        assert same_run(tmp_path / "shuffled", tmp_path / "out")
        assert on_driver.manifest["executor"]["global_steps"] == {"on": "driver"}
        # a stage that cannot see a file says why, as a part task does
        from curate.engine.ray_executor import RayExecutor
        from curate.engine.store import read_part
        from curate.errors import CurateError
        from curate.recipe import ExecutorSpec
        from curate.steps.grouping import Grouping

        rows = pa.table({"_pos": np.arange(2), "_hash": np.arange(2, dtype=np.uint64)})
        lost = Grouping(rows, (partial(read_part, tmp_path / "gone.arrow"),), list)  # read_part(path, columns)
        with pytest.raises(CurateError, match="gone.arrow.* is not there on the Ray node"):
            RayExecutor(ExecutorSpec(kind="ray")).run_grouping(lost, "lost")
        # semantic dedup: the vectors through the shuffle (a fixed-size list column), the step's decisions
        table, semantic = planted_vectors(), get_step("dedup.semantic")
        step = semantic(semantic.Params.model_validate(SEMANTIC[0]), StepContext("dedup.semantic", "steps[0]", 3))
        executor = RayExecutor(ExecutorSpec(kind="ray"))
        grouping = step.grouping(table)
        got = grouping.finish(executor.run_grouping(grouping, "dedup.semantic"))
        expected = semantic(step.params, StepContext("dedup.semantic", "steps[0]", 3)).decide(table)
        assert got == expected and sum(d is not None for d in got) > 50
        assert executor.describe()["global_steps"]["dedup.semantic"]["shuffles"] == 1
    finally:
        ray.shutdown()
    ran = manifest["executor"]["global_steps"]
    labels = {s["label"]: s for s in manifest["steps"]}
    assert ran["on"] == "cluster"
    for label, shuffles in (("dedup.exact", 1), ("dedup.exact#2", 1), ("dedup.exact#3", 1),
                            ("dedup.minhash", 2), ("dedup.minhash#2", 2)):
        assert ran[label]["shuffles"] == shuffles and ran[label]["rows"] > 0, label
        assert labels[label]["dropped"] > 0, label
    assert ran["dedup.minhash"]["stored_arrays"] == 1  # the signatures: once, for both stages that read them
