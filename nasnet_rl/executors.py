"""Executors run child evaluations: in-process (default) or as Ray tasks across a cluster.

Both expose `submit(genotype_dict, seed) -> handle` and `wait(handles) -> [(handle, result)]`
(at least one finished result), so the search loop keeps several children in flight and
feeds results back as they arrive, in any order."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import gin

from nasnet_rl.child import evaluate


class LocalExecutor:
  """Evaluates children one at a time in this process (work happens in `wait`)."""

  def __init__(self):
    self._queue: Dict[int, Tuple[Dict[str, Any], int]] = {}
    self._next = 0

  @property
  def capacity(self) -> int:
    return 1

  def preflight(self, genotype: Dict[str, Any], seed: int) -> None:
    """Data, model build and one training step, checked once before the first child."""
    evaluate.preflight(genotype, seed)

  def submit(self, genotype: Dict[str, Any], seed: int) -> int:
    handle, self._next = self._next, self._next + 1
    self._queue[handle] = (genotype, seed)
    return handle

  def wait(self, handles: Sequence[int]) -> List[Tuple[int, Dict[str, Any]]]:
    handle = handles[0]
    genotype, seed = self._queue.pop(handle)
    return [(handle, evaluate.evaluate_child(genotype, seed))]

  def shutdown(self):
    self._queue.clear()


@gin.configurable
class RayExecutor:
  """One Ray task per child with its own resources (`num_gpus` per child on GPU machines,
  `num_cpus` threads otherwise). `address=None` starts a local Ray instance with
  `num_workers * num_cpus` CPUs; pass "auto" or "ray://host:port" to join a cluster."""

  def __init__(self, num_workers: int = 2, num_cpus: int = 1, num_gpus: float = 0,
               address: Optional[str] = None, max_retries: int = 0):
    try:
      import ray  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ValueError("the Ray executor needs Ray: pip install -e '.[ray]'") from None
    self._ray = ray
    if not ray.is_initialized():
      kwargs = {"address": address} if address else {
          "num_cpus": num_workers * num_cpus, "num_gpus": 0 if not num_gpus else None,
          "include_dashboard": False}
      ray.init(ignore_reinit_error=True, log_to_driver=False,
               runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}}, **kwargs)
    self._num_workers = num_workers
    self._threads = num_cpus
    self._task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus,
                            max_retries=max_retries)(evaluate.evaluate_child)

  @property
  def capacity(self) -> int:
    return self._num_workers

  def preflight(self, genotype: Dict[str, Any], seed: int) -> None:
    """Checked in the driver (same data and gin config as the workers) before any task."""
    evaluate.preflight(genotype, seed)

  def submit(self, genotype: Dict[str, Any], seed: int):
    return self._task.remote(genotype, seed, gin_config=gin.config_str(),
                             threads=self._threads)

  def wait(self, handles: Sequence[Any]) -> List[Tuple[Any, Dict[str, Any]]]:
    done, _ = self._ray.wait(list(handles), num_returns=1)
    out = []
    for handle in done:
      try:
        out.append((handle, self._ray.get(handle)))
      except Exception as e:  # pylint: disable=broad-except  # worker died (OOM kill, crash)
        out.append((handle, {"status": "failed", "reward": None,
                             "error": f"ray task failed: {type(e).__name__}: {e}"[:2000]}))
    return out

  def shutdown(self):
    self._ray.shutdown()


class TableExecutor:
  """Answers each child from a tabular benchmark instead of training it (a query).

  The result's reward is the table's reward column, `report` its report column (the test
  accuracy the search is judged by, never seen by the strategy)."""

  def __init__(self, benchmark=None):
    from nasnet_rl.benchmarks import table  # pylint: disable=g-import-not-at-top
    self.benchmark = benchmark or table.TabularBenchmark()
    self._queue: Dict[int, Dict[str, Any]] = {}
    self._next = 0

  @property
  def capacity(self) -> int:
    return 1

  def preflight(self, cell: Dict[str, Any], seed: int) -> None:
    """The table was validated when it loaded; a cell outside it fails here."""
    del seed
    self.benchmark.query(cell["arch"])

  def submit(self, cell: Dict[str, Any], seed: int) -> int:
    del seed  # a table answers the same for every seed
    handle, self._next = self._next, self._next + 1
    self._queue[handle] = cell
    return handle

  def wait(self, handles: Sequence[int]) -> List[Tuple[int, Dict[str, Any]]]:
    cell = self._queue.pop(handles[0])
    try:
      answer = self.benchmark.query(cell["arch"])
    except (KeyError, ValueError) as e:
      return [(handles[0], {"status": "failed", "reward": None, "error": f"{e}"})]
    return [(handles[0], {"status": "ok", "error": None, "reward": answer["reward"],
                          "report": answer["report"], "params": answer.get("params"),
                          "mult_adds": answer.get("mult_adds"), "train_seconds": 0.0})]

  def shutdown(self):
    self._queue.clear()


@gin.configurable
def make_executor(kind: str = "local"):
  """"local", "ray" (RayExecutor's own parameters come from gin) or "table" (a tabular
  benchmark answers; TabularBenchmark's parameters come from gin)."""
  if kind == "local":
    return LocalExecutor()
  if kind == "ray":
    return RayExecutor()
  if kind == "table":
    return TableExecutor()
  raise ValueError(f"unknown executor {kind!r}; expected 'local', 'ray' or 'table'")
