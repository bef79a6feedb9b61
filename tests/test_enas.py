"""ENAS supernet, trainer and search loop (tiny sizes: the supernet graph is traced once per
process, which is most of these tests' time)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import search_space as ss
from nasnet_rl.enas import dispatch_ablation as dispatch
from nasnet_rl.enas import search as enas_search_lib
from nasnet_rl.enas import trainer as trainer_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPACE = ss.SearchSpace("enas", 1)
SHAPE = (8, 8, 3)


def _trainer(filters=4, **kw):
  tf.keras.utils.set_random_seed(0)
  return trainer_lib.SupernetTrainer(SPACE, 10, SHAPE, global_batch_size=8, num_cells=1,
                                     filters=filters, distribution="default", **kw)


@pytest.fixture(scope="module")
def trainer():
  return _trainer()


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return (tf.constant(rng.normal(size=(8,) + SHAPE), tf.float32),
          tf.constant(rng.integers(0, 10, 8), tf.int64))


def _arc(seed):
  rng = np.random.default_rng(seed)
  return [int(rng.integers(0, n)) for n in SPACE.num_choices()]


def test_one_trace_serves_every_architecture(trainer):
  x, y = _batch()
  for seed in range(4):
    loss, acc, finite = trainer.train_step(x, y, _arc(seed), 0.01)
    assert finite and np.isfinite(loss) and 0 <= acc <= 1
    assert 0 <= trainer.accuracy(x, y, _arc(seed)) <= 1
  assert trainer._train.experimental_get_tracing_count() == 1
  assert trainer._eval.experimental_get_tracing_count() == 1


def _all_ops(graph):
  """Every op of a traced graph and of the functions it calls, recursively."""
  found, seen, todo = [], set(), [graph]
  while todo:
    g = todo.pop()
    found.extend(g.get_operations())
    for name, fn in getattr(g, "_functions", {}).items():
      if name not in seen and hasattr(fn, "graph"):
        seen.add(name)
        todo.append(fn.graph)
  return found


def _case_ops(graph):
  """Every Case op of a traced graph and of the functions it calls, recursively."""
  return [op for op in _all_ops(graph) if op.type in ("Case", "StatelessCase")]


def test_op_slots_stay_functional_case_ops_and_states_are_picked_from_lists(trainer):
  # The op slots' Case ops must not be lowered to Switch/Merge (supernet.switch_case: a first
  # step ~40% faster); a block's input is read from a TensorList (supernet.StateList: no zero
  # gradient for the states it did not read), not by a Case of identities.
  x, y = _batch()
  graph = trainer._train.get_concrete_function(x, y, trainer.arc(_arc(0))).graph
  lowered = lambda op: op.get_attr("_lower_using_switch_merge")
  cases = _case_ops(graph)
  ops_slots = [op for op in cases if len(op.get_attr("branches")) >= len(SPACE.op_names)]
  assert ops_slots and not any(lowered(op) for op in ops_slots)
  assert len(ops_slots) == len(cases)  # no Case for anything but an op slot
  types = [op.type for op in _all_ops(graph)]
  assert "TensorListGetItem" in types and "TensorListGather" in types


def test_training_slots_share_their_branch_functions(trainer):
  # enas/slot_case.py: a training slot's Case branches are traced once per slot layout, so the
  # two slots of a block (same banks, same lists) call the same functions
  x, y = _batch()
  trainer._train.get_concrete_function(x, y, trainer.arc(_arc(0)))
  layouts = trainer.model._shared_ops.slots._cache
  slots = sum(2 * cell.num_blocks for cell in trainer.model.cells)
  assert 0 < len(layouts) <= slots // 2
  for forwards, backwards in layouts.values():
    assert len(forwards) == len(backwards) >= len(SPACE.op_names)


def test_only_the_sampled_ops_get_gradients(trainer):
  """Every op bank's gradient is zero outside the slices of the ops the architecture picked."""
  x, y = _batch(1)
  arc = _arc(7)
  model = trainer.model
  with tf.GradientTape() as tape:
    loss = trainer._loss(model(x, trainer.arc(arc), training=True), y)
  banks = [(cell, b, j, cell.banks[b][j]) for cell in model.cells
           for b in range(SPACE.num_blocks) for j in range(2)]
  grads = tape.gradient(loss, [bank.params for *_, bank in banks])
  n = len(SPACE.op_names)
  picked_somewhere = 0
  for (cell, b, j, bank), g in zip(banks, grads):
    cell_arc = np.reshape(arc, (2, SPACE.num_blocks, 4))[1 if cell.reduction else 0]
    i, o = cell_arc[b, j], cell_arc[b, 2 + j]
    k = o if not cell.reduction else (o if i < 2 else o + n)  # stride-2 ops come first
    g = np.zeros(bank.params.shape) if g is None else tf.convert_to_tensor(g).numpy()
    own = [p for p in bank._pieces[k] if p[0]]
    mask = np.zeros(bank.params.shape, bool)
    for _, offset, shape in own:
      mask[offset:offset + int(np.prod(shape))] = True
    assert not np.any(g[~mask]), f"{cell.name} block {b} slot {j}: unsampled op got gradient"
    if own and SPACE.op_names[o] != "identity":
      picked_somewhere += int(np.any(g[mask]))
  assert picked_somewhere > 0


def test_bad_architecture_is_a_clear_error(trainer):
  x, y = _batch()
  bad = _arc(0)
  bad[2] = 5  # op decision outside the 5 ENAS ops
  with pytest.raises(ValueError, match="decision 2 = 5 is outside 0..4"):
    trainer.train_step(x, y, bad, 0.01)
  with pytest.raises(ValueError, match="has 8"):
    trainer.accuracy(x, y, bad[:-1])


def test_nan_weights_skip_the_step(trainer, tmp_path):
  """A NaN weight on the sampled path skips the step of the one training loop (`train_steps`):
  counted as skipped, and every other variable and the optimizer's momentum are left exactly as
  they were. Deliberate bug it catches: an optimizer that zeroes the non-finite gradient entries
  instead of skipping (`tf.where(is_finite(g), g, 0)` in FlatSGD.apply) keeps every weight
  finite, but moves the others (momentum, L2 decay)."""
  x, y = _batch()
  path = str(tmp_path / "w.npz")
  trainer.save(path, {})
  trainer.read_steps()
  batches = lambda: iter(trainer.distribute(tf.data.Dataset.from_tensors((x, y)).repeat()))
  arc = _arc(3)
  arc[0], arc[2] = 0, 0  # cell 0, block 0, slot 0 reads a sep conv from the NaN bank
  trainer.train_steps(batches(), [arc], [0.01])  # a finite step first: momentum is not zero
  assert trainer.read_steps()["steps"] == 1
  bank = trainer.model.cells[0].banks[0][0]
  bank.params.assign(tf.fill(bank.params.shape, np.nan))
  others = [v for v in trainer.model.trainable_variables if v is not bank.params]
  before = [v.numpy().copy() for v in others]
  velocity = trainer.optimizer.variables[-1]  # (iterations counts skipped steps too)
  momentum = velocity.numpy().copy()
  assert np.any(momentum != 0)
  trainer.train_steps(batches(), [arc], [0.01])
  read = trainer.read_steps()
  assert (read["steps"], read["skipped"]) == (0, 1), read
  for v, b in zip(others, before):
    np.testing.assert_array_equal(v.numpy(), b, err_msg=v.path)  # unchanged, not just finite
  np.testing.assert_array_equal(velocity.numpy(), momentum)
  trainer.restore(path)


def test_checkpoint_of_another_width_is_rejected(trainer, tmp_path):
  path = str(tmp_path / "w.npz")
  trainer.save(path, {})
  other = _trainer(filters=6)
  with pytest.raises(trainer_lib.CheckpointMismatchError, match="was written for supernet"):
    other.restore(path)


def test_cosine_with_restarts_follows_enas_periods():
  lr = lambda epoch: trainer_lib.cosine_with_restarts(epoch * 10, 10, 0.05, 0.0005, 10, 2)
  assert lr(0) == pytest.approx(0.05)
  assert lr(5) == pytest.approx((0.05 + 0.0005) / 2)
  assert lr(10) == pytest.approx(0.05)    # restart after T_0 = 10 epochs
  assert lr(20) == pytest.approx((0.05 + 0.0005) / 2)  # middle of the 20-epoch period
  assert lr(30) == pytest.approx(0.05)


def _run_search(workdir, *extra, timeout=600):
  cmd = [sys.executable, os.path.join(ROOT, "scripts", "search.py"),
         "--gin_file=gin/tiny/enas.gin", f"--workdir={workdir}", *extra]
  return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def test_kill_and_resume_continues_after_the_last_epoch(tmp_path):
  workdir = str(tmp_path / "run")
  params = ["--gin.enas_search.epochs=4", "--gin.search_space.SearchSpace.num_blocks=1"]
  proc = _run_search(workdir, *params)
  log = os.path.join(workdir, "epochs.jsonl")
  deadline = time.time() + 500
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(log) and len(open(log).read().splitlines()) >= 1:
      break
    time.sleep(0.2)
  assert proc.poll() is None, "search finished before it could be killed: " + proc.stdout.read()
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done = len(open(log).read().splitlines())
  assert 1 <= done < 4
  proc = _run_search(workdir, *params)
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out
  assert f"resuming after epoch {done}" in out
  epochs = [json.loads(line)["epoch"] for line in open(log).read().splitlines()]
  assert epochs == [1, 2, 3, 4]  # every epoch exactly once
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["epochs"] == 4
  best = json.load(open(os.path.join(workdir, "best_genotypes.json")))
  assert best[0]["genotype"]["space"] == {"num_blocks": 1, "ops": "enas"}
  assert os.path.exists(os.path.join(workdir, "best_genotype.json"))


def test_warmup_epochs_train_shared_weights_before_the_controller(tmp_path):
  """`warmup_epochs=1`: the first epoch trains the shared weights on uniform paths with no
  controller update (no reward logged), the next one updates the controller."""
  workdir = str(tmp_path / "run")
  proc = _run_search(workdir, "--gin.enas_search.warmup_epochs=1",
                     "--gin.search_space.SearchSpace.num_blocks=1")
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out
  lines = [json.loads(line) for line in open(os.path.join(workdir, "epochs.jsonl"))]
  assert [l["epoch"] for l in lines] == [1, 2]
  assert lines[0]["train_loss"] is not None and lines[0]["controller_reward"] is None
  assert not any(k.startswith("controller_") and k != "controller_reward" for k in lines[0])
  assert lines[1]["controller_reward"] is not None


def test_uniform_paths_are_reproducible_and_cover_the_space():
  space = ss.SearchSpace("enas", 2)
  a = enas_search_lib._uniform_paths(space, 200, seed=0, epoch=3)
  assert a == enas_search_lib._uniform_paths(space, 200, seed=0, epoch=3)
  assert a != enas_search_lib._uniform_paths(space, 200, seed=0, epoch=4)
  arr = np.asarray(a)
  assert all(set(arr[:, i]) == set(range(n)) for i, n in enumerate(space.num_choices()))


MIRRORED = r"""
import numpy as np, tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration()] * 2)
from nasnet_rl import search_space as ss
from nasnet_rl.enas import trainer as trainer_lib
space = ss.SearchSpace("enas", 1)
make = lambda kind: trainer_lib.SupernetTrainer(space, 10, (8, 8, 3), global_batch_size=8,
    num_cells=1, filters=4, distribution=kind, dropout=0.0, drop_path_rate=0.0)
tf.keras.utils.set_random_seed(0)
t = make("mirrored")
one = make("default")
for a, b in zip(one.model.weights, t.model.weights):  # the same start
  a.assign(b.numpy())
rng = np.random.default_rng(0)
# each global batch of 8 is 4 examples twice: each replica's half is then the whole batch's
# content, so per-replica BatchNorm statistics equal one device's and the two must agree
half = [(rng.normal(size=(4, 8, 8, 3)).astype("float32"), rng.integers(0, 10, 4))
        for _ in range(3)]
batches = [(np.concatenate([x, x]), np.concatenate([y, y])) for x, y in half]
dataset = lambda bs: tf.data.Dataset.from_generator(lambda: iter(bs), output_signature=(
    tf.TensorSpec((8, 8, 8, 3), tf.float32), tf.TensorSpec((8,), tf.int64)))
arcs = [[0, 1, 0, 1, 1, 0, 3, 2], [1, 0, 2, 2, 0, 1, 4, 1], [0, 0, 1, 3, 1, 1, 0, 4]]
rates = [0.1, 0.1, 0.1]
start = [v.numpy().copy() for v in one.model.trainable_variables]
for tr in (t, one):  # three shared-weight steps through the one training loop
  tr.train_steps(iter(tr.distribute(dataset(batches))), arcs, rates)
read_t, read_one = t.read_steps(), one.read_steps()
replicas = [v.numpy() for v in t.model.head_kernel.value.values]
same = all(np.array_equal(replicas[0], r) for r in replicas[1:])
diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
           for a, b in zip(t.model.trainable_variables, one.model.trainable_variables))
moved = max(float(np.max(np.abs(np.asarray(a) - s)))
            for a, s in zip(one.model.trainable_variables, start))
x, y = batches[0][0].copy(), batches[0][1]
x[7] = np.nan  # replica 1's half only: both replicas must skip the step
copies = lambda: [[c.numpy() for c in v.value.values] for v in t.model.trainable_variables]
kept = copies()
t.train_steps(iter(t.distribute(dataset([(x, y)]))), arcs[:1], rates[:1])
read_nan = t.read_steps()
skipped = all(np.array_equal(a, b) for v, w in zip(kept, copies()) for a, b in zip(v, w))
images, labels = next(iter(t.distribute(dataset(batches))))
traces = lambda tr: sum(f.experimental_get_tracing_count()
                       for op in tr.model._shared_ops._ops.values() for f in op.functions)
lone = make("default")  # the same calls on one device, on a replica's half of each batch
halves = tf.data.Dataset.from_generator(lambda: iter(half), output_signature=(
    tf.TensorSpec((4, 8, 8, 3), tf.float32), tf.TensorSpec((4,), tf.int64)))
lone.train_steps(iter(lone.distribute(halves)), arcs, rates)
lone.train_step(tf.constant(x[:4]), tf.constant(y[:4]), arcs[0], 0.1)
t.train_step(images, labels, arcs[0], 0.1)
# the devices the shared op functions are called on (a call runs on its caller's device)
graph = t._train.get_concrete_function(images, labels, t.arc(arcs[0])).graph
library = {f.signature.name: f for f in graph.as_graph_def().library.function}
calls = {}
def walk(nodes, device):
  for node in nodes:
    d = node.device or device
    if node.op in ("PartitionedCall", "StatefulPartitionedCall"):
      where = d.split("device:")[-1]
      calls[where] = calls.get(where, 0) + 1
    for key in ("f", "branches"):
      if key in node.attr:
        attr = node.attr[key]
        for name in [attr.func.name] if attr.func.name else [b.name for b in attr.list.func]:
          if name in library:
            walk(library[name].node_def, d)
walk(graph.as_graph_def().node, "")
print("RESULT", t.num_replicas, len(replicas), read_t["loss"], read_one["loss"],
      read_t["steps"], read_one["steps"], same, diff, moved, read_nan["skipped"], skipped,
      traces(t), traces(lone), calls.get("CPU:0", 0), calls.get("CPU:1", 0))
"""


def test_mirrored_strategy_on_two_logical_cpus():
  """Three shared-weight steps through the one training loop (`train_steps`) on 2 devices equal
  three on one device: every trainable weight within 1e-5, where the steps moved them by > 1e-2,
  and the same mean loss. (Each global batch is 4 examples twice, so per-replica BatchNorm batch
  statistics equal the whole batch's; the moving variances differ by Bessel's n/(n-1) of 4 vs 8
  examples, so they are not compared.) Replicas agree; a NaN in one
  replica's half of the next batch skips the step on both; the shared op functions are traced
  once for both replicas and called on each replica's device. Deliberate bug it catches: a
  loss divided by the per-replica batch (`global_batch_size / num_replicas` in
  `SupernetTrainer._loss`) instead of the global one doubles the mirrored updates (weight
  difference ~ the movement, loss doubled)."""
  proc = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")]
  assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
  (_, replicas, copies, loss, loss_one, steps, steps_one, same, diff, moved, nan_skipped,
   skipped, traces, traces_one, calls_0, calls_1) = line[0].split()
  assert (int(replicas), int(copies)) == (2, 2)
  assert (int(steps), int(steps_one)) == (3, 3)
  assert np.isfinite(float(loss)) and abs(float(loss) - float(loss_one)) < 1e-5, (loss, loss_one)
  assert same == "True"
  assert float(moved) > 1e-2 and float(diff) < 1e-5, (moved, diff)
  assert int(nan_skipped) == 1 and skipped == "True"
  # the shared op functions are traced once for both replicas (as often as for one device on a
  # replica's half of each batch; per replica, they would be traced twice)
  assert int(traces) == int(traces_one) > 0
  assert int(calls_0) == int(calls_1) > 0


# ---- epochs.jsonl repair (issue 9) -------------------------------------------------------------
def test_epochs_log_torn_line_is_cut_and_lost_line_written_back(tmp_path, capsys):
  from nasnet_rl.enas import search as enas_search_lib
  path = tmp_path / "epochs.jsonl"
  lines = [{"epoch": e, "train_loss": 1.0 / e} for e in (1, 2, 3)]
  path.write_text("".join(json.dumps(l) + "\n" for l in lines[:2]) + '{"epoch": 3, "tra')
  # the checkpoint holds epoch 3 (its line was torn by a kill)
  enas_search_lib.repair_epochs_log(str(path), 3, lines[2])
  err = capsys.readouterr().err
  assert "torn last epoch line" in err and "written back" in err
  assert [json.loads(l) for l in path.read_text().splitlines()] == lines  # valid JSONL again
  # lines of epochs the checkpoint does not hold are set aside (those epochs run again)
  enas_search_lib.repair_epochs_log(str(path), 2, lines[1])
  assert [json.loads(l)["epoch"] for l in path.read_text().splitlines()] == [1, 2]
  assert json.loads((tmp_path / "epochs.jsonl.after-checkpoint").read_text())["epoch"] == 3
  path.write_text(path.read_text() + "{}\n")
  with pytest.raises(ValueError, match="epochs.jsonl line 3: not an epoch record"):
    enas_search_lib.repair_epochs_log(str(path), 2, lines[1])


# -- cost-aware rewards (MnasNet) ---------------------------------------------------------------

def test_path_cost_counts_exactly_the_weights_the_path_trains():
  """`path_cost`'s params = the size of every weight the sampled path trains: each op-bank
  slice, 1x1-kernel row (one per concatenated state) or other variable that gets a gradient.
  (Whole pieces: on tiny images the rim of a 5x5 kernel never meets a pixel.)"""
  from nasnet_rl.enas import path_cost
  t = _trainer(aux_head=False, dropout=0.0, drop_path_rate=0.0)
  x, y = _batch(2)
  banks = {id(bank.params): bank for cell in t.model.cells for bank in cell.all_banks}
  for seed in (3, 11, 12):
    arc = _arc(seed)
    with tf.GradientTape() as tape:
      loss = t._loss(t.model(x, t.arc(arc), training=True), y)
    variables = t.model.trainable_variables
    touched = 0
    for v, g in zip(variables, tape.gradient(loss, variables)):
      g = np.zeros(v.shape) if g is None else tf.convert_to_tensor(g).numpy()
      if id(v) in banks:
        for piece in (p for ps in banks[id(v)]._pieces for p in ps if p[0]):
          size = int(np.prod(piece[2]))
          touched += size * bool(np.any(g[piece[1]:piece[1] + size]))
      elif "kernel" in v.path and len(v.shape) == 3:  # rows per state slot (+ the head's)
        touched += sum(int(np.prod(v.shape[1:])) for row in g if np.any(row))
      else:
        touched += int(np.prod(v.shape)) * bool(np.any(g))
    cost = path_cost.path_cost(t.model, arc)
    assert cost["params"] == touched, (arc, cost, touched)
    assert cost["mult_adds"] > 0


def test_path_cost_orders_cells_by_their_ops():
  from nasnet_rl.enas import path_cost
  t = _trainer(aux_head=False)
  ops = list(SPACE.op_names)
  def arc_with(op):
    per_cell = [0, 1, ops.index(op), ops.index(op)] * SPACE.num_blocks
    return per_cell * 2
  light = path_cost.path_cost(t.model, arc_with("avg_pool_3x3"))
  heavy = path_cost.path_cost(t.model, arc_with("sep_conv_5x5"))
  assert heavy["params"] > light["params"] and heavy["mult_adds"] > light["mult_adds"]


def test_cost_aware_reward_in_enas(trainer):
  from nasnet_rl import objectives
  from nasnet_rl.enas import path_cost
  from nasnet_rl.enas import search as enas_search_lib
  arc = _arc(5)
  params = path_cost.path_cost(trainer.model, arc)["params"]
  hard = objectives.Objective("hard", cost="params", target=params / 2)
  scored = enas_search_lib.Scorer(trainer, hard)([_batch(3)], arc)
  assert scored["cost"] == params
  assert scored["reward"] == pytest.approx(scored["accuracy"] * 0.5)  # (cost/target)^-1
  plain = enas_search_lib.Scorer(trainer, objectives.Objective())([_batch(3)], arc)
  assert set(plain) == {"reward"} and plain["reward"] == pytest.approx(scored["accuracy"])


def test_batch_statistics_score_is_a_training_mode_forward_that_changes_nothing():
  """accuracy(bn='batch') (ENAS' reward) normalizes by the batch's statistics: it equals the
  accuracy of a training-mode forward without dropout (the supernet has dropout 0.5), is the
  same on every call, and leaves every BN statistic as it was; an unknown mode is a clear
  error."""
  t = _trainer(dropout=0.5, drop_path_rate=0.0, aux_head=False)
  x, y = _batch(4)
  arc = _arc(5)
  before = [v.numpy() for v in t.model.non_trainable_weights]
  score = t.accuracy(x, y, arc, bn="batch")
  assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, t.model.non_trainable_weights))
  assert t.accuracy(x, y, arc, bn="batch") == score
  logits = t.model(x, t.arc(arc), training=True, dropout=False)["logits"]
  assert score == pytest.approx(float(np.mean(np.argmax(logits, -1) == y.numpy())))
  with pytest.raises(ValueError, match="bn must be one of"):
    t.accuracy(x, y, arc, bn="median")


def test_likelihood_score_is_the_geometric_mean_true_label_probability(trainer):
  """Scorer(metric='likelihood') scores exp(-mean cross-entropy) over the batches, computed
  from the same forward as the accuracy (kept beside it); it ranks like the negative loss, and
  a cost-aware objective applies to it; an unknown metric is a clear error."""
  from nasnet_rl import objectives
  from nasnet_rl.enas import path_cost
  from nasnet_rl.enas import search as enas_search_lib
  arc, batches = _arc(6), [_batch(3), _batch(4)]
  scored = enas_search_lib.Scorer(trainer, objectives.Objective(), "moving",
                                  "likelihood")(batches, arc)
  losses, hits = [], []
  for x, y in batches:
    logits = trainer.model(x, trainer.arc(arc), training=False)["logits"]
    p = tf.nn.softmax(tf.cast(logits, tf.float32)).numpy()
    losses.append(-np.mean(np.log(p[np.arange(len(y)), y.numpy()])))
    hits.append(np.mean(np.argmax(p, -1) == y.numpy()))
  assert scored["reward"] == pytest.approx(np.exp(-np.mean(losses)), rel=1e-4)
  assert scored["likelihood"] == scored["reward"] and 0 < scored["reward"] <= 1
  assert scored["accuracy"] == pytest.approx(np.mean(hits))
  params = path_cost.path_cost(trainer.model, arc)["params"]
  hard = objectives.Objective("hard", cost="params", target=params / 2)
  costed = enas_search_lib.Scorer(trainer, hard, "moving", "likelihood")(batches, arc)
  assert costed["reward"] == pytest.approx(scored["likelihood"] * 0.5, rel=1e-4)
  with pytest.raises(ValueError, match="score metric must be one of"):
    enas_search_lib.Scorer(trainer, objectives.Objective(), "moving", "top5")


def test_fine_tuned_scoring_trains_the_path_then_restores_everything(trainer):
  """Scorer(fine_tune=(batches, lr)) scores a cell after training its path on those batches from
  zero momentum; afterwards every weight, statistic and optimizer state is what it was, so a
  cell's score does not depend on which cells were scored before it."""
  from nasnet_rl import objectives
  x, y = _batch(11)
  trainer.train_step(x, y, _arc(1), 0.05)  # some momentum to be zeroed and restored
  state = list(trainer._named_variables().values())
  before = [v.numpy() for v in state]
  tune = [_batch(12), _batch(13)]
  val = [_batch(14)]
  tuned = enas_search_lib.Scorer(trainer, objectives.Objective(), "moving", "likelihood",
                                 (tune, 0.5))
  plain = enas_search_lib.Scorer(trainer, objectives.Objective(), "moving", "likelihood")
  a, b = _arc(2), _arc(3)
  alone = tuned(val, b)["reward"]
  for v, w in zip(state, before):
    np.testing.assert_array_equal(v.numpy(), w)
  tuned(val, a)
  assert tuned(val, b)["reward"] == alone  # order-independent
  assert alone != plain(val, b)["reward"]  # the fine-tuning changed what is scored
  with trainer.fine_tuned(tune, b, 0.5):
    inside = [v.numpy() for v in trainer.model.trainable_variables]
  assert any(not np.array_equal(i, v.numpy()) for i, v in
             zip(inside, trainer.model.trainable_variables))
  for v, w in zip(state, before):
    np.testing.assert_array_equal(v.numpy(), w)


def _noinline_functions(graph):
  """The functions of a traced graph's library marked `_noinline` (the attribute sits on the
  function's definition, not on the ops that call it)."""
  return [f.signature.name for f in graph.as_graph_def().library.function
          if "_noinline" in f.attr and f.attr["_noinline"].b]


def test_dispatch_ablation_steps_the_same_path_without_case_ops():
  """dev/bench_enas_dispatch.py times the supernet step traced for one architecture
  (enas/dispatch_ablation.py); its numbers mean something only if that step is the same
  computation minus the dispatch."""
  x, y = _batch()
  arc = _arc(1)
  with dispatch.op_function_attributes(inline_ops=True):
    trainer = _trainer()  # the usual step over inlinable op functions: the same values
  trainer.train_step(x, y, _arc(2), 0.01)  # builds the optimizer's momentum
  state = trainer.model.weights + list(trainer.optimizer.variables)
  before = [v.numpy() for v in state]
  loss, _, _ = trainer.train_step(x, y, arc, 0.01)
  after = [v.numpy() for v in trainer.model.weights]
  for v, value in zip(state, before):
    v.assign(value)
  step = dispatch.fixed_architecture_step(trainer, arc, inline_ops=True)
  ablated_loss, _, finite = step(x, y)
  assert bool(finite) and float(ablated_loss) == pytest.approx(loss, rel=1e-5)
  for v, value in zip(trainer.model.weights, after):
    np.testing.assert_allclose(v.numpy(), value, rtol=1e-4, atol=1e-6, err_msg=v.name)
  graph = step.get_concrete_function(x, y).graph
  assert not _case_ops(graph)
  assert not _noinline_functions(graph)
  with pytest.raises(ValueError, match="constant"):  # an index it cannot know while tracing
    tf.function(lambda i: dispatch.direct_case(i + 1, [], [])).get_concrete_function(
        tf.TensorSpec([], tf.int32))
