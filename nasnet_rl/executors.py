"""Executors run child evaluations: in-process (default) or on Ray actors across a cluster.

Both expose `submit(genotype_dict, seed) -> handle` and `wait(handles) -> [(handle, result)]`
(at least one finished result), so the search loop keeps several children in flight and
feeds results back as they arrive, in any order."""

import collections
import dataclasses
import os
import socket
import sys
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import gin

from nasnet_rl.benchmarks import nb201
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


class _ChildActor:
  """One long-lived Ray actor: a worker process that keeps TensorFlow, its devices and the
  loaded dataset (`evaluate._splits`) while it trains child after child."""

  def __init__(self, threads: Optional[int] = None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    # First thing in the process: GPU memory grows on demand instead of TF reserving all of it
    # at start-up. Physical devices can no longer be changed once TF has initialized them.
    self._gpus = tf.config.list_physical_devices("GPU")
    for gpu in self._gpus:
      tf.config.experimental.set_memory_growth(gpu, True)
    if threads:
      tf.config.threading.set_intra_op_parallelism_threads(threads)
      tf.config.threading.set_inter_op_parallelism_threads(threads)

  def describe(self) -> Dict[str, Any]:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return {"worker": f"{socket.gethostname()}:{os.getpid()}",
            "gpus": [g.name for g in self._gpus],
            "memory_growth": [bool(tf.config.experimental.get_memory_growth(g))
                              for g in self._gpus]}

  def evaluate(self, genotype: Dict[str, Any], seed: int, gin_config: str) -> Dict[str, Any]:
    return evaluate.evaluate_child(genotype, seed, gin_config=gin_config)


@dataclasses.dataclass
class _Job:
  genotype: Dict[str, Any]
  seed: int
  gin_config: str
  attempts: int = 0


def _failure(error: str, **extra) -> Dict[str, Any]:
  return {"status": "failed", "reward": None, "infrastructure": True, "error": error, **extra}


@gin.configurable
class RayExecutor:
  """Children run on `num_workers` long-lived Ray actors, each reserving `num_cpus` CPUs and
  `num_gpus` GPUs (one actor per GPU: `num_gpus=1`, `num_workers=None` makes as many actors as
  the cluster's GPUs, or CPU slots when `num_gpus=0`). An actor keeps its process, so TF's
  import, device set-up and the dataset load are paid once per actor, not once per child; GPU
  memory growth is switched on in each.

  `capacity` children are in flight (default: one per actor); submissions beyond the idle
  actors wait in a queue and go to the next actor that finishes. An actor that dies (killed for
  memory, crashed, node lost) is replaced by a fresh one and its child tried again, up to
  `max_retries` times; after that the child comes back as an infrastructure failure, which the
  search records without counting or feeding it (and stops on when it repeats). A child whose
  code raises in a live actor is not retried (it would raise again).

  `address=None` starts a local Ray instance with `num_workers * num_cpus` CPUs (and is shut
  down with the executor); pass "auto" or "ray://host:port" to join a cluster. `start_timeout`:
  seconds `preflight` waits for every actor to come up."""

  def __init__(self, num_workers: Optional[int] = 2, num_cpus: int = 1, num_gpus: float = 0,
               address: Optional[str] = None, max_retries: int = 1,
               capacity: Optional[int] = None, start_timeout: float = 600.0):
    for name, value, low in (("num_workers", num_workers, 1), ("num_cpus", num_cpus, 1),
                             ("max_retries", max_retries, 0), ("capacity", capacity, 1)):
      if value is None and name in ("num_workers", "capacity"):
        continue
      if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"RayExecutor.{name} must be an integer >= {low}, got {value!r}")
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, (int, float)) or num_gpus < 0:
      raise ValueError(f"RayExecutor.num_gpus must be a number >= 0, got {num_gpus!r}")
    try:
      import ray  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ValueError("the Ray executor needs Ray: pip install -e '.[ray]'") from None
    self._ray = ray
    self._actors: List[Any] = []
    self._idle: Deque[int] = collections.deque()  # actor slots with nothing to do
    self._queue: Deque[int] = collections.deque()  # handles waiting for an idle actor
    self._jobs: Dict[int, _Job] = {}  # handle -> job, until its result is handed out
    self._running: Dict[Any, Tuple[int, int]] = {}  # ObjectRef -> (handle, actor slot)
    self._done: Dict[int, Dict[str, Any]] = {}  # finished, not yet returned by `wait`
    self._next = 0
    self._owns_ray = not ray.is_initialized()
    if self._owns_ray:
      kwargs = {"address": address} if address else {
          "num_cpus": num_workers * num_cpus if num_workers else None,
          "num_gpus": 0 if not num_gpus else None, "include_dashboard": False}
      ray.init(ignore_reinit_error=True, log_to_driver=False,
               runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}}, **kwargs)
    try:
      num_workers = self._check_resources(num_workers, num_cpus, num_gpus, local=not address)
    except ValueError:
      self.shutdown()
      raise
    self._threads = num_cpus
    self._max_retries = max_retries
    self._capacity = capacity or num_workers
    self._start_timeout = start_timeout
    self._actor_class = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus,
                                   max_restarts=0)(_ChildActor)
    self._actors = [self._actor_class.remote(self._threads) for _ in range(num_workers)]
    self._idle.extend(range(num_workers))

  def _check_resources(self, num_workers, num_cpus, num_gpus, local):
    """The number of actors; a clear error when they could never be placed on this machine."""
    have = self._ray.cluster_resources()
    if num_workers is None:
      kind, each = ("GPU", num_gpus) if num_gpus else ("CPU", num_cpus)
      num_workers = int(have.get(kind, 0) // each)
      if num_workers < 1:
        raise ValueError(f"RayExecutor.num_workers=None makes one actor per {each} {kind}, but "
                         f"the Ray cluster has {have.get(kind, 0)} {kind}s")
    if local and num_gpus and num_workers * num_gpus > have.get("GPU", 0):
      raise ValueError(f"RayExecutor: {num_workers} actors with num_gpus={num_gpus} need "
                       f"{num_workers * num_gpus} GPUs; this machine has {have.get('GPU', 0)} "
                       "(set num_workers, or num_gpus=0 for CPU actors)")
    return num_workers

  @property
  def capacity(self) -> int:
    return self._capacity

  @property
  def num_actors(self) -> int:
    return len(self._actors)

  def describe(self) -> List[Dict[str, Any]]:
    """Each actor's worker (host:pid), GPUs and whether memory growth is on for them; waits
    for the actors to start."""
    return self._ray.get([a.describe.remote() for a in self._actors],
                         timeout=self._start_timeout)

  def preflight(self, genotype: Dict[str, Any], seed: int) -> None:
    """The driver checks data, build and one step (same data and gin config as the actors);
    then every actor must start within `start_timeout` seconds."""
    evaluate.preflight(genotype, seed)
    try:
      self.describe()
    except Exception as e:  # pylint: disable=broad-except
      raise ValueError(f"the search cannot start: the Ray actors did not start "
                       f"({type(e).__name__}: {str(e).strip().splitlines()[-1][:300]})") from None

  def submit(self, genotype: Dict[str, Any], seed: int) -> int:
    handle, self._next = self._next, self._next + 1
    self._jobs[handle] = _Job(genotype, seed, gin.config_str())
    self._queue.append(handle)
    self._dispatch()
    return handle

  def _dispatch(self):
    while self._queue and self._idle:
      handle, slot = self._queue.popleft(), self._idle.popleft()
      job = self._jobs[handle]
      job.attempts += 1
      ref = self._actors[slot].evaluate.remote(job.genotype, job.seed, job.gin_config)
      self._running[ref] = (handle, slot)

  def wait(self, handles: Sequence[int]) -> List[Tuple[int, Dict[str, Any]]]:
    """Blocks until at least one of `handles` has finished; returns every one that has."""
    unknown = [h for h in handles if h not in self._jobs and h not in self._done]
    if unknown:
      raise ValueError(f"RayExecutor.wait: unknown or already returned handles {unknown}")
    while True:
      ready = [(h, self._done.pop(h)) for h in handles if h in self._done]
      if ready:
        return ready
      self._dispatch()
      if not self._running:  # cannot happen: a pending job is queued or running
        raise RuntimeError(f"RayExecutor.wait: nothing running for handles {list(handles)}")
      done, _ = self._ray.wait(list(self._running), num_returns=1)
      for ref in done:
        self._collect(ref)

  def _collect(self, ref) -> None:
    handle, slot = self._running.pop(ref)
    job = self._jobs[handle]
    try:
      result = self._ray.get(ref)
      self._idle.append(slot)
    except self._ray.exceptions.RayTaskError as e:  # the child's code raised; the actor lives
      self._idle.append(slot)
      cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else e
      result = _failure(f"ray task failed: {evaluate.one_line_error(cause)}")
    except Exception as e:  # pylint: disable=broad-except  # the actor's process is gone
      self._replace(slot)
      detail = str(e).strip()[:2000]
      if job.attempts <= self._max_retries:
        print(f"warning: a Ray actor died during a child (attempt {job.attempts} of "
              f"{self._max_retries + 1}), retrying it on a new actor: {type(e).__name__}",
              file=sys.stderr, flush=True)
        self._queue.appendleft(handle)
        self._dispatch()
        return
      # The same text for every death, so the search's failure streak can recognise a repeat.
      result = _failure(f"ray actor died ({type(e).__name__}) in each of {job.attempts} "
                        f"attempt(s) (RayExecutor.max_retries={self._max_retries}): its "
                        "process exited, e.g. killed for memory or crashed", detail=detail)
    result["attempts"] = job.attempts
    del self._jobs[handle]
    self._done[handle] = result
    self._dispatch()

  def _replace(self, slot: int) -> None:
    """A fresh actor (new process, dataset loaded again) in place of a dead one."""
    try:
      self._ray.kill(self._actors[slot], no_restart=True)
    except Exception:  # pylint: disable=broad-except  # already gone
      pass
    self._actors[slot] = self._actor_class.remote(self._threads)
    self._idle.append(slot)

  def shutdown(self):
    for actor in self._actors:
      try:
        self._ray.kill(actor, no_restart=True)
      except Exception:  # pylint: disable=broad-except
        pass
    self._actors = []
    for pending in (self._idle, self._queue, self._jobs, self._running, self._done):
      pending.clear()
    if self._owns_ray:
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


def check_fits(executor, space) -> None:
  """A tabular space (one with a benchmark table, e.g. NAS-Bench-201) is answered by the 'table'
  executor and only by it; any other pairing is one ValueError before the first child."""
  tabular = isinstance(space, nb201.NB201Space)
  if tabular and not isinstance(executor, TableExecutor):
    raise ValueError(f"a {type(space).__name__} search is answered by a benchmark table, not "
                     f"trained by the {type(executor).__name__}: set "
                     "make_executor.kind = 'table'")
  if not tabular and isinstance(executor, TableExecutor):
    raise ValueError(f"the 'table' executor answers NAS-Bench-201 cells only, not a "
                     f"{type(space).__name__}: set make_executor.kind = 'local' or 'ray'")


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
