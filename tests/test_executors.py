"""RayExecutor's actors: one process trains child after child on one dataset load; a dead actor
is replaced and its child tried again (or comes back as an infrastructure failure)."""
import os
import signal

import gin
import pytest

from nasnet_rl import config
from nasnet_rl import search_space as ss
from nasnet_rl.child import evaluate

pytest.importorskip("ray")
from nasnet_rl import executors  # pylint: disable=g-import-not-at-top,wrong-import-position

SPACE = ss.SearchSpace("enas", 2)


def _genotype(k):
  d = [0] * len(SPACE.num_choices())
  d[2] = k  # op of the first block
  return SPACE.decode(d).to_dict()


def _pid(result):
  return int(result["worker"].rsplit(":", 1)[1])


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def test_an_actor_keeps_its_dataset_and_a_dead_actor_is_replaced():
  """Each child here stops right after its data is loaded (train_child rejects
  steps_per_execution=0 before building a model), so the test takes seconds instead of a
  trace per child; test_search.py::test_ray_executor_two_local_workers trains real children
  on actors."""
  config.parse(["gin/tiny/search.gin"], ["train_child.steps_per_execution = 0"])
  ex = executors.RayExecutor(num_workers=1, num_cpus=1, max_retries=1)
  try:
    assert ex.capacity == ex.num_actors == 1
    [actor] = ex.describe()
    assert actor["gpus"] == [] and actor["memory_growth"] == []  # no GPU on this machine
    assert _pid(actor) != os.getpid()

    def run(k):
      [(_, result)] = ex.wait([ex.submit(_genotype(k), 0)])
      assert "steps_per_execution" in (result.get("error") or ""), result
      return result

    # Two children on one actor (the second waits in the queue): one load, then a cache hit.
    first, second = ex.submit(_genotype(0), 0), ex.submit(_genotype(1), 0)
    [(handle, r1)] = ex.wait([first, second])
    assert handle == first
    [(handle, r2)] = ex.wait([second])
    assert handle == second
    assert r1["worker"] == r2["worker"] == actor["worker"]
    assert (r1["data_cache_hit"], r1["data_loads"]) == (False, 1)
    assert (r2["data_cache_hit"], r2["data_loads"]) == (True, 1)
    assert r1["attempts"] == r2["attempts"] == 1
    # The gin config is parsed again for every child: other data settings load again.
    with gin.unlock_config():
      gin.bind_parameter("load_dataset.num_train", 128)
    r = run(2)
    assert (r["worker"], r["data_cache_hit"], r["data_loads"]) == (actor["worker"], False, 2)

    # The actor's process dies: a new actor (new process, data loaded again) takes the child.
    os.kill(_pid(r1), signal.SIGKILL)
    r3 = run(3)
    assert r3["attempts"] == 2 and _pid(r3) != _pid(r1)
    assert (r3["data_cache_hit"], r3["data_loads"]) == (False, 1)

    # Retries used up: an infrastructure failure, which the search neither counts nor feeds.
    ex._max_retries = 0  # pylint: disable=protected-access
    os.kill(_pid(r3), signal.SIGKILL)
    [(_, r4)] = ex.wait([ex.submit(_genotype(4), 0)])
    assert r4["status"] == "failed" and r4["attempts"] == 1
    assert r4["error"].startswith("ray actor died (ActorDiedError)"), r4["error"]
    assert evaluate.is_infrastructure_failure(r4)
  finally:
    ex.shutdown()


def test_bad_settings_are_one_error_before_ray_starts():
  for kwargs in ({"num_workers": 0}, {"capacity": 0}, {"max_retries": -1}, {"num_gpus": -1}):
    with pytest.raises(ValueError, match="RayExecutor"):
      executors.RayExecutor(**kwargs)
