"""A standalone search on a two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`),
as on real machines after `ray start --head` / `ray start --address=...`: it finishes, and
removing the second node while it trains a child loses nothing (the child reruns on a new
actor elsewhere, the history holds every child once)."""

import json
import os
import threading
import time

import pytest

from nasnet_rl import config
from nasnet_rl import search
from nasnet_rl import search_space as ss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow  # a Ray cluster and two actors' TensorFlow start-ups: ~2-4 min here
def test_a_search_survives_losing_a_ray_node(tmp_path, monkeypatch, capfd):
  from ray.cluster_utils import Cluster  # pylint: disable=import-outside-toplevel
  monkeypatch.chdir(ROOT)
  cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
  second = cluster.add_node(num_cpus=1)
  cluster.wait_for_nodes()
  history = tmp_path / "history.jsonl"
  try:
    config.parse(["gin/tiny/search.gin"], [
        "make_executor.kind = 'ray'", f"RayExecutor.address = '{cluster.address}'",
        "RayExecutor.num_workers = 2", "RayExecutor.max_retries = 1",
        "standalone_search.max_children = 5", "train_child.steps_per_epoch = 8"])
    result = {}
    run = threading.Thread(target=lambda: result.update(summary=search.standalone_search(
        str(tmp_path), space=ss.SearchSpace("enas", 1))))
    run.start()
    start = time.time()
    while not (history.exists() and history.read_text().strip()):  # a child done: both busy
      assert run.is_alive() and time.time() - start < 600
      time.sleep(0.2)
    cluster.remove_node(second)  # its actor dies mid-child
    cluster.add_node(num_cpus=1)  # somewhere else for the replacement
    run.join(timeout=900)
    assert not run.is_alive()
  finally:
    cluster.shutdown()
  lines = [json.loads(l) for l in history.read_text().splitlines()]
  assert [l["index"] for l in lines] == list(range(len(lines)))
  trained = [l for l in lines if not l["cached"]]
  assert result["summary"]["trained"] == 5 == len(trained)
  assert all(l["status"] == "ok" for l in trained), [l.get("error") for l in trained]
  # the lost node's actor died during a child, which ran again on a live actor
  assert "a Ray actor died during a child (attempt 1 of 2), retrying it" in capfd.readouterr().err
  print("workers:", [l["worker"] for l in trained])
