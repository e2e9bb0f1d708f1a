"""The Ray executor on a simulated two-node cluster (ray.cluster_utils.Cluster: two raylets on this machine,
one CPU each, sharing its filesystem): curate connects by address, ships its own code to the nodes, runs
part tasks on both, and writes the same bytes as the local executor.

Skipped without Ray (pip install 'curate[ray]'), except under CI=true.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model_fixtures import needs
from tests.engine.test_ray import twice

needs("ray", "ray.data")

ROOT = Path(__file__).resolve().parents[2]


def test_an_address_nothing_answers_at_is_a_message_in_seconds(tmp_path, monkeypatch):
    import shutil
    import socket
    import time

    import ray
    from typer.testing import CliRunner

    from curate.cli import app

    if ray.is_initialized():  # a session of another module would be used as it is, whatever the address
        ray.shutdown()
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "recipes" / "data", tmp_path / "data")
    shutil.copy(ROOT / "recipes" / "quickstart.yaml", tmp_path / "q.yaml")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address, message in ((f"127.0.0.1:{port}", f"nothing answers at 127.0.0.1:{port}"),
                             ("nowhere", "'nowhere' is not a Ray address")):
        t = time.perf_counter()
        result = CliRunner().invoke(app, ["run", "q.yaml", "--executor", "ray", "--address", address])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
        assert time.perf_counter() - t < 30 and not (tmp_path / "runs" / "quickstart").exists()


@pytest.fixture(scope="module")
def two_nodes():
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # a session of another module: this one needs the cluster's
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_quickstart_on_two_nodes_gives_the_same_bytes(two_nodes, tmp_path):
    import ray

    manifest = twice(ROOT / "recipes" / "quickstart.yaml", [], tmp_path / "out", part_rows=32,
                     address=two_nodes.address)
    executor = manifest["executor"]
    assert executor["address"] == two_nodes.address and executor["nodes"] == 2 and executor["cpus"] == 2
    assert executor["nodes_used"] == 2  # part tasks ran on both nodes
    # the dedups ran as shuffles across the two nodes (tests/engine/test_ray_global.py has their cases)
    assert {"dedup.exact", "dedup.minhash", "dedup.exact#2"} <= set(executor["global_steps"])
    assert not ray.is_initialized()  # the run connected itself, and let go at the end


def test_a_task_whose_worker_dies_every_time_stops_the_run_with_a_message(two_nodes, tmp_path):
    import ray

    from curate.engine.ray_executor import RayExecutor
    from curate.errors import CurateError
    from curate.faults import fault_point
    from curate.pipeline import run_recipe
    from curate.recipe import ExecutorSpec, load_recipe

    ray.init(address=two_nodes.address, runtime_env={"env_vars": {"CURATE_FAULT": "step"}})  # every worker dies
    try:
        recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml",
                             [f"outputs.dir={tmp_path / 'out'}", "cache.enabled=false", "executor.kind=ray"])
        with pytest.raises(CurateError, match="a Ray worker failed and Ray gave up retrying its task"):
            run_recipe(recipe)
        assert not (tmp_path / "out").exists()
        # a model pass's actors die the same way: restarted a few times, then the same message
        executor = RayExecutor(ExecutorSpec(kind="ray"))
        with pytest.raises(CurateError, match="a Ray worker failed and Ray gave up retrying its task"):
            list(executor.map(fault_point, ["step", "step"], parallel=False))
    finally:
        ray.shutdown()
