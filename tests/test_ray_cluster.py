"""The Ray executor on a simulated two-node cluster (ray.cluster_utils.Cluster: two raylets on this machine,
one CPU each, sharing its filesystem): curate connects by address, ships its own code to the nodes, runs
part tasks on both, and writes the same bytes as the local executor.

Skipped without Ray (pip install 'curate[ray]'), except under CI=true.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model_fixtures import needs
from tests.test_ray import twice

needs("ray", "ray.data")

ROOT = Path(__file__).resolve().parents[1]


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
    assert not ray.is_initialized()  # the run connected itself, and let go at the end
