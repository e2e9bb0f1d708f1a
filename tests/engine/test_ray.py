"""The Ray executor on a real local Ray instance (2 CPUs): the same bytes as the local executor for the
quickstart, the no-embedding lima_style pipeline and a recipe with an embedding step (a model actor pool), a
worker killed mid-step (Ray runs its task again), errors that stay clear, and the CLI's --executor / --address.
The two-node cluster is in tests/engine/test_ray_cluster.py.

Skipped without Ray (pip install 'curate[ray]'), except under CI=true, where a missing install step fails.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.pipeline import run_recipe
from curate.recipe import load_recipe
from tests.conftest import lima_style_overrides
from tests.faults.fault_helpers import same_run
from tests.model_fixtures import needs
from tests.engine.test_engine import _diff

needs("ray", "ray.data")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    """One Ray instance for the module. Its workers carry a disarmed fault: removing `marker` makes the next
    worker to finish a step kill itself (curate.faults, CURATE_FAULT_ONCE)."""
    import ray

    marker = tmp_path_factory.mktemp("fault") / "killed"
    marker.touch()
    env = {"CURATE_FAULT": "step", "CURATE_FAULT_ONCE": str(marker)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        yield marker
    finally:
        ray.shutdown()


def twice(recipe_path: Path, overrides: list[str], out: Path, part_rows: int, **ray_settings) -> dict:
    """Run the recipe with the local executor, then with Ray into the same folder (the recipe, and so its
    hash, must not differ); returns the Ray run's manifest. Asserts the two run folders are the same bytes,
    but for the manifest's `timings` and `executor`. (The part size is the same for both: a model embeds a
    part in padded batches, so its last float bits may depend on which rows share a part.)"""
    base = [*overrides, f"outputs.dir={out}", "cache.enabled=false", f"executor.part_rows={part_rows}"]
    run_recipe(load_recipe(recipe_path, base + ["executor.workers=2"]))
    local = out.parent / f"{out.name}-local"
    shutil.copytree(out, local)
    sets = ["executor.kind=ray"] + [f"executor.{k}={v}" for k, v in ray_settings.items()]
    result = run_recipe(load_recipe(recipe_path, base + sets))
    assert same_run(local, out) or _diff(local, out)
    assert result.manifest["executor"]["kind"] == "ray"
    return result.manifest


def test_quickstart_gives_the_same_bytes_on_ray(ray_session, tmp_path):
    manifest = twice(ROOT / "recipes" / "quickstart.yaml", [], tmp_path / "out", part_rows=64)
    assert manifest["executor"]["cpus"] == 2 and manifest["executor"]["nodes"] == 1
    assert manifest["totals"]["rows_out"] == 150
    assert {"rejects.jsonl", "changes.jsonl", "baseline_random.jsonl"} <= set(manifest["outputs"]["files"])
    timings = manifest["timings"]["steps"]  # CPU seconds: of the workers' part tasks, of the driver's decisions
    assert timings["score.language"]["parts_cpu_s"] > 0 and "global_cpu_s" not in timings["score.language"]
    assert timings["dedup.minhash"]["parts_cpu_s"] > 0 and timings["dedup.minhash"]["global_cpu_s"] > 0


def lima_without_models(data: Path) -> list[str]:
    """recipes/lima_style.yaml on the local copies, without its model steps (embed, dedup.semantic): the
    selection walks the ranked lengths instead of select.diverse's embeddings."""
    return lima_style_overrides(data) + ["outputs.formats=[jsonl, parquet, arrow]"]


def test_lima_style_without_embeddings_gives_the_same_bytes_on_ray(ray_session, shared_data, tmp_path):
    recipe = load_recipe(ROOT / "recipes" / "lima_style.yaml", lima_without_models(shared_data))
    steps = [s for s in recipe.steps if not {"embed", "dedup.semantic"} & s.keys()]
    steps[-1] = {"select.stratified": {"by": "source", "within": "top", "score": "response_words_pct", "rows": 1000}}
    import yaml

    raw = recipe.model_dump(mode="json", exclude_none=True)
    raw["steps"] = steps
    path = tmp_path / "lima_no_models.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    manifest = twice(path, [], tmp_path / "out", part_rows=2048)
    labels = {s["label"]: s for s in manifest["steps"]}
    assert manifest["totals"]["rows_in"] > 7000 and manifest["totals"]["rows_out"] == 1000
    assert labels["dedup.exact"]["dropped"] > 0 and labels["filter"]["dropped"] > 0  # real duplicates and junk
    assert "dedup.minhash" in labels and "decontaminate" in labels and "data/" in manifest["outputs"]["files"]


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory) -> Path:
    return build_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"))


def build_tiny_embedder(root: Path) -> Path:
    """A sentence-transformers model folder: a random 2-layer BERT (hidden 32) over a word-level vocabulary
    of the quickstart's texts, mean pooling. Built here; nothing is downloaded."""
    import json

    import torch
    from sentence_transformers import SentenceTransformer, models
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers import models as tok_models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = set()
    for name in ("quickstart_general.jsonl", "quickstart_domain.jsonl"):
        for line in (ROOT / "recipes" / "data" / name).read_text().splitlines():
            words.update(json.dumps(json.loads(line)).lower().replace("\\n", " ").split())
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {w: i for i, w in enumerate(specials + sorted(words)[:3000])}
    tok = Tokenizer(tok_models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    bert = root / "bert"
    BertModel(config).save_pretrained(bert)
    fast.save_pretrained(bert)
    body = models.Transformer(str(bert), max_seq_length=128)
    model = SentenceTransformer(modules=[body, models.Pooling(32, "mean"), models.Normalize()], device="cpu")
    model.save(str(root / "st"))
    return root / "st"


EMBED_RECIPE = """
name: embedded
seed: 5
sources:
  general: {{path: {data}/quickstart_general.jsonl, license: cc-by-4.0}}
  science: {{path: {data}/quickstart_domain.jsonl, license: cc-by-4.0}}
steps:
  - clean: {{}}
  - embed: {{model: {model}, key: prompt, cache_dir: null, batch_size: 16}}
  - score.heuristics: {{}}
  - dedup.semantic: {{eps: 0.02, keep: longest, clusters: 3, kmeans_sample: 100}}
  - select.random: {{rows: 100}}
outputs: {{formats: [jsonl, parquet]}}
"""


def test_an_embedding_step_runs_on_a_model_actor_pool_with_the_same_bytes(ray_session, tiny_embedder, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = tmp_path / "embedded.yaml"
    recipe.write_text(textwrap.dedent(EMBED_RECIPE.format(data=ROOT / "recipes" / "data", model=tiny_embedder)))
    manifest = twice(recipe, [], tmp_path / "out", part_rows=64, model_concurrency=2)
    labels = {s["label"]: s for s in manifest["steps"]}
    assert labels["embed"]["notes"]["dim"] == 32 and labels["dedup.semantic"]["rows_in"] > 200
    # semantic dedup ran as a shuffle (k-means on a sample of 100 rows on the driver, the rest on the workers)
    assert manifest["executor"]["global_steps"]["dedup.semantic"]["shuffles"] == 1
    assert labels["dedup.semantic"]["notes"]["kmeans_rows"] == 100 and labels["dedup.semantic"]["dropped"] > 0
    import pyarrow.parquet as pq

    data = pq.read_table(tmp_path / "out" / "data.parquet")
    assert data.num_rows == 100 and len(data.column("embedding")[0]) == 32  # the vectors are in the output


def test_the_model_actors_default_to_one_gpu_each_when_the_cluster_has_gpus(monkeypatch, ray_session):
    from curate.engine import ray_executor
    from curate.recipe import ExecutorSpec

    executor = ray_executor.RayExecutor(ExecutorSpec(kind="ray"))
    assert executor.model_resources(tasks=10) == (1, 0.0, 1)  # this machine: no GPU, one CPU actor
    monkeypatch.setattr(executor, "_cluster_gpus", lambda: 4.0)
    assert executor.model_resources(tasks=10) == (1, 1.0, 4)
    assert executor.model_resources(tasks=3) == (1, 1.0, 3)  # never more actors than tasks
    executor.spec = ExecutorSpec(kind="ray", model_num_gpus=0.5, model_concurrency=2)
    assert executor.model_resources(tasks=10) == (1, 0.5, 2)
    executor.spec = ExecutorSpec(kind="ray", model_num_gpus=8)
    with pytest.raises(CurateError, match="asks for 8 GPUs and the cluster has 4"):
        executor.model_resources(tasks=10)


def test_each_step_can_set_its_own_resources(monkeypatch, ray_session, tmp_path):
    from curate.engine import ray_executor
    from curate.recipe import ExecutorSpec

    spec = ExecutorSpec.model_validate({"kind": "ray", "num_cpus": 2, "model_num_gpus": 1, "steps": {
        "embed": {"num_gpus": 0.5, "concurrency": 6, "num_cpus": 4},
        "score.perplexity": {"num_gpus": 1, "concurrency": 3},
        "score.language": {"num_cpus": 3, "concurrency": 5}}})
    executor = ray_executor.RayExecutor(spec)
    monkeypatch.setattr(executor, "_cluster_gpus", lambda: 8.0)
    assert executor.model_resources(10, ("embed",)) == (4, 0.5, 6)
    assert executor.model_resources(10, ("score.ifd",)) == (2, 1, 8)  # no entry: the executor's values
    # one pass runs both model steps: the most GPUs and CPUs, the fewest actors
    assert executor.model_resources(10, ("embed", "score.perplexity")) == (4, 1, 3)
    assert executor.task_resources(("clean", "score.language")) == (3, None, 5)
    assert executor.task_resources(("clean",)) == (2, None, None)
    # the labels are the recipe's
    with pytest.raises(CurateError, match=r"executor.steps.score.langage: no step 'score.langage' in this recipe "
                                          r"\(did you mean 'score.language'\?\)"):
        load_recipe(ROOT / "recipes" / "quickstart.yaml", ["executor.steps={score.langage: {num_cpus: 2}}"])
    # and a run with one on Ray gives the same bytes
    twice(ROOT / "recipes" / "quickstart.yaml", [], tmp_path / "out", part_rows=64,
          steps="{score.language: {num_cpus: 1, concurrency: 1}}")


def test_a_worker_killed_mid_step_is_run_again_with_the_same_bytes(ray_session, tmp_path):
    ray_session.unlink()  # arm: the next worker to finish a step dies (SIGKILL), once
    twice(ROOT / "recipes" / "quickstart.yaml", [], tmp_path / "out", part_rows=64)
    assert ray_session.exists()  # a worker did die, and the run still gave the local bytes


def test_a_step_error_on_a_worker_is_raised_as_itself(ray_session, tmp_path):
    # a filter on a column that is not numeric fails inside the row-local pass, on a Ray worker
    (tmp_path / "r.yaml").write_text(textwrap.dedent(f"""
        name: bad
        sources:
          general: {{path: {ROOT / 'recipes' / 'data' / 'quickstart_general.jsonl'}, license: cc-by-4.0}}
        steps:
          - score.language: {{}}
          - filter: {{rules: ["lang >= 3"]}}
        outputs: {{dir: {tmp_path / 'out'}}}
        cache: {{enabled: false}}
        executor: {{kind: ray}}
        """))
    with pytest.raises(CurateError) as failed:
        run_recipe(load_recipe(tmp_path / "r.yaml"))
    local = pytest.raises(CurateError, run_recipe, load_recipe(tmp_path / "r.yaml", ["executor.kind=local"]))
    assert str(failed.value) == str(local.value) and "lang" in str(failed.value)
    assert type(failed.value.__cause__).__name__ == "RemoteTraceback"  # raised on a worker, sent back as itself
    assert not (tmp_path / "out").exists()


def test_the_cli_runs_on_ray_and_checks_its_options(ray_session, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from curate.cli import app

    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "recipes" / "data", tmp_path / "data")
    shutil.copy(ROOT / "recipes" / "quickstart.yaml", tmp_path / "q.yaml")
    runner = CliRunner()
    local = runner.invoke(app, ["run", "q.yaml", "--no-cache"])
    assert local.exit_code == 0, local.output
    shutil.move(tmp_path / "runs" / "quickstart", tmp_path / "local")
    on_ray = runner.invoke(app, ["run", "q.yaml", "--no-cache", "--executor", "ray"])
    assert on_ray.exit_code == 0, on_ray.output
    assert same_run(tmp_path / "local", tmp_path / "runs" / "quickstart")
    for args, message in ((["--address", "auto"], "--address names a Ray cluster: add --executor ray"),
                          (["--executor", "spark"], "--executor takes local or ray, not 'spark'")):
        bad = runner.invoke(app, ["run", "q.yaml", *args])
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output


def test_without_ray_the_message_says_what_to_install(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from curate.cli import app

    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "recipes" / "data", tmp_path / "data")
    shutil.copy(ROOT / "recipes" / "quickstart.yaml", tmp_path / "q.yaml")
    result = CliRunner().invoke(app, ["run", "q.yaml", "--executor", "ray"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "pip install 'curate[ray]'" in result.output
    assert not (tmp_path / "runs" / "quickstart").exists()


def test_the_recipe_hash_does_not_depend_on_the_executor():
    a = load_recipe(ROOT / "recipes" / "quickstart.yaml")
    b = load_recipe(ROOT / "recipes" / "quickstart.yaml", ["executor.kind=ray", "executor.address=auto"])
    assert a.fingerprint() == b.fingerprint()

