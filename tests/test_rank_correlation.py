"""Rank correlation of shared-weight scores and standalone accuracy (issue 10 item 3): the numpy
tau-b / rho against hand-computed values, the restored supernet scoring exactly as derive did,
BN recalibration, and scripts/rank_correlation.py end to end on a tiny ENAS run."""

import json
import os
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import config
from nasnet_rl import rank_stats
from nasnet_rl import search as search_lib
from nasnet_rl import search_space as ss
from nasnet_rl.cli import common
from nasnet_rl.cli import rank_correlation as rc_cli
from nasnet_rl.enas import search as enas_search_lib
from nasnet_rl.enas import trainer as trainer_lib

TINY_ENAS = ["search_space.SearchSpace.num_blocks = 1", "enas_search.epochs = 1",
             "enas_search.steps_per_epoch = 2", "enas_search.controller_steps = 1",
             "enas_search.derive_samples = 2", "enas_search.derive_batches = 2"]
TINY_BUDGET = ["train_child.epochs = 1", "train_child.steps_per_epoch = 1",
               "train_child.verbose = 0", "train_child.save_model = False",
               "train_child.count_mult_adds = False", "build_child.aux_head = False",
               "build_child.drop_path_rate = 0.0", "training_checkpoints.enabled = False",
               "load_dataset.num_train = 96", "load_dataset.validation_size = 32",
               "load_dataset.image_shape = (8, 8, 3)"]


# ---- rank statistics ---------------------------------------------------------------------------
def test_tau_b_and_rho_hand_computed():
  up = [1, 2, 3, 4]
  assert rank_stats.kendall_tau_b(up, [10, 20, 30, 40]) == pytest.approx(1.0)
  assert rank_stats.spearman_rho(up, [10, 20, 30, 40]) == pytest.approx(1.0)
  # perfectly reversed
  assert rank_stats.kendall_tau_b(up, [40, 30, 20, 10]) == pytest.approx(-1.0)
  assert rank_stats.spearman_rho(up, [40, 30, 20, 10]) == pytest.approx(-1.0)
  # a tie in x: 5 concordant pairs, 0 discordant, 5 pairs untied in x, 6 in y
  x, y = [1, 2, 2, 3], [1, 3, 2, 4]
  assert rank_stats.kendall_tau_b(x, y) == pytest.approx(5 / np.sqrt(30))
  # ranks x (1, 2.5, 2.5, 4), y (1, 3, 2, 4): centred products 4.5 / sqrt(4.5 * 5)
  assert rank_stats.spearman_rho(x, y) == pytest.approx(3 / np.sqrt(10))
  # ties in both and one discordant pair: (3 - 1) / sqrt(5 * 5); rho 2.25 / 4.5
  x, y = [1, 1, 2, 3], [2, 1, 1, 3]
  assert rank_stats.kendall_tau_b(x, y) == pytest.approx(0.4)
  assert rank_stats.spearman_rho(x, y) == pytest.approx(0.5)
  np.testing.assert_array_equal(rank_stats.average_ranks([3, 1, 3, 2]), [3.5, 1, 3.5, 2])
  # a constant column has no ranking: undefined, not 0
  assert np.isnan(rank_stats.kendall_tau_b([1, 2, 3], [5, 5, 5]))
  assert np.isnan(rank_stats.spearman_rho([1, 2, 3], [5, 5, 5]))
  for bad in (([1], [2]), ([1, 2], [1, 2, 3]), ([1, np.nan], [1, 2])):
    with pytest.raises(ValueError):
      rank_stats.kendall_tau_b(*bad)


def test_tau_b_and_rho_match_scipy_with_many_ties():
  stats = pytest.importorskip("scipy.stats")  # not a dependency: a cross-check where present
  rng = np.random.default_rng(0)
  for n in (2, 5, 17):
    x, y = rng.integers(0, 4, n), rng.integers(0, 3, n)
    if len(set(x)) < 2 or len(set(y)) < 2:
      continue
    assert rank_stats.kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y)[0])
    assert rank_stats.spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


def test_retraining_reliability_hand_computed():
  # seed offsets (a seed that trains every cell better) are not noise
  exact = rank_stats.retraining_reliability([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
  assert exact["seed_noise_std"] == 0.0 and exact["reliability"] == 1.0
  assert exact["oracle_kendall_tau_b"] == pytest.approx(1.0)
  # swapped ranks between the two seeds: all noise, no predictor can rank them
  noise = rank_stats.retraining_reliability([[0.0, 2.0], [2.0, 0.0]])
  assert noise["between_cell_std"] == 0.0 and noise["oracle_kendall_tau_b"] == 0.0
  # centred [[-1.5, -0.5], [1.5, 0.5]]: noise variance 0.5, cell means -1 and 1 (variance 2),
  # between-cell variance 2 - 0.5 / 2 = 1.75
  mixed = rank_stats.retraining_reliability([[0.0, 1.0], [3.0, 2.0]])
  assert mixed["seed_noise_std"] == pytest.approx(np.sqrt(0.5))
  assert mixed["between_cell_std"] == pytest.approx(np.sqrt(1.75))
  assert mixed["reliability"] == pytest.approx(1.75 / 2.0)
  assert mixed["reliability_one_seed"] == pytest.approx(1.75 / 2.25)
  assert mixed["oracle_kendall_tau_b"] == pytest.approx(2 / np.pi * np.arcsin(np.sqrt(0.875)))
  with pytest.raises(ValueError, match="seeds >= 2"):
    rank_stats.retraining_reliability([[0.5], [0.6]])


def test_sample_cells_are_distinct_and_seeded():
  from nasnet_rl import search_space as ss
  space = ss.SearchSpace("enas", 1)
  cells = rc_cli.sample_cells(space, 20, seed=3)
  assert len({space.key(space.decode(c)) for c in cells}) == 20
  assert cells == rc_cli.sample_cells(space, 20, seed=3)
  assert cells != rc_cli.sample_cells(space, 20, seed=4)


# ---- a tiny ENAS run ---------------------------------------------------------------------------
def _perturbing_step(self, images, labels, arc, learning_rate):
  """Stands in for a shared-weight step: moves every weight and BN statistic (so a restore that
  missed one shows), without tracing the supernet's gradient (~25 s here; tests/test_enas.py
  runs real steps)."""
  del images, labels, arc, learning_rate
  rng = np.random.default_rng(len(self.model.weights))
  for v in self.model.weights:
    v.assign(v.numpy() + rng.uniform(0.0, 0.5, v.shape).astype(np.float32))
  return 2.3, 0.1, True


@pytest.fixture(scope="module")
def enas_run(tmp_path_factory):
  """A finished 1-epoch ENAS search (gin/tiny/enas.gin, B=1) in this process: controller steps,
  checkpoint, derive and best_genotypes.json as usual, shared-weight steps perturbing instead."""
  workdir = str(tmp_path_factory.mktemp("enas"))
  gin.clear_config()
  config.parse(["tiny/enas.gin"], TINY_ENAS)
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(trainer_lib.SupernetTrainer, "train_step", _perturbing_step)
    search_lib.search_main(workdir)
  config.write_config(workdir, "config.gin", gin.config_str())  # as scripts/search.py does
  gin.clear_config()
  yield workdir
  gin.clear_config()


def test_restored_supernet_scores_derived_cells_exactly_as_derive(enas_run):
  run = enas_search_lib.restore_run(enas_run)
  derived = json.load(open(os.path.join(enas_run, "best_genotypes.json")))
  arcs = [d["decisions"] for d in derived]
  scores = rc_cli.score_cells(run, arcs, bn_recalibrate=0, seed=0)
  assert [s["reward"] for s in scores] == [d["score"] for d in derived]

  # BN recalibration: inside the block the stem BN's moving mean is the mean of the per-batch
  # means of the stem conv's output; on exit every statistic is back, the weights untouched
  trainer, arc = run.trainer, arcs[0]
  batches = [(tf.random.stateless_normal((8, 8, 8, 3), (i, 0)), tf.zeros([8], tf.int64))
             for i in range(3)]
  before = [v.numpy() for v in trainer.model.weights]
  progress = float(trainer.model.drop_path_progress.numpy())
  want = np.mean([tf.reduce_mean(trainer.model.stem(x), [0, 1, 2]).numpy()
                  for x, _ in batches], axis=0)
  with trainer.recalibrated_bn(batches, arc):
    np.testing.assert_allclose(trainer.model.stem_bn.moving_mean.numpy(), want, rtol=1e-4,
                               atol=1e-5)
    moved = [not np.array_equal(v.numpy(), b) for v, b in zip(trainer.model.weights, before)]
    assert any(moved)
    assert not any(m for m, v in zip(moved, trainer.model.weights) if v.trainable)
    rescored = rc_cli.score_cells(run, [arc], 0, 0)  # scores with the recalibrated statistics
  for v, b in zip(trainer.model.weights, before):
    np.testing.assert_array_equal(v.numpy(), b)
  assert float(trainer.model.drop_path_progress.numpy()) == progress
  assert 0.0 <= rescored[0]["reward"] <= 1.0
  gin.clear_config()


def test_rank_correlation_end_to_end(enas_run, tmp_path, monkeypatch):
  out = str(tmp_path / "rc")
  # fine-tuned scorings step the supernet: a few perturbing steps here (test_enas.py trains for
  # real)
  monkeypatch.setattr(trainer_lib.SupernetTrainer, "train_step", _perturbing_step)
  for name, setting in rc_cli.SCORINGS.items():
    if setting[4]:
      monkeypatch.setitem(rc_cli.SCORINGS, name, setting[:4] + (min(setting[4], 2),))
  result = rc_cli.rank_correlation(enas_run, out, 3, 0, ["tiny/train.gin"], TINY_BUDGET,
                                   bn_recalibrate=1, command={"num_cells": 3}, train_repeats=2)
  gin.clear_config()
  saved = json.load(open(os.path.join(out, "rank_correlation.json")))
  assert saved == json.loads(json.dumps(result))
  assert os.path.getsize(os.path.join(out, "rank_correlation.png")) > 1000
  assert os.path.exists(os.path.join(out, "config.gin"))
  cells = saved["cells"]
  assert len(cells) == 3 and len({json.dumps(c["genotype"]) for c in cells}) == 3
  score = [c["score"] for c in cells]
  accuracy = [c["test_accuracy"] for c in cells]
  # two training seeds per cell, in folders 00-02 (seed 0, as a one-repeat run) and 03-05
  for i, c in enumerate(cells):
    assert len(c["test_accuracies"]) == 2 and c["test_accuracy"] == np.mean(c["test_accuracies"])
    for r in range(2):
      with open(os.path.join(out, f"{3 * r + i:02d}_{c['name']}", "trained_with.json")) as f:
        assert json.load(f)["seed"] == r
  standalone = saved["standalone"]
  assert set(standalone) == {"params_kendall_tau_b", "params_spearman_rho",
                             "split_seeds_kendall_tau_b", "seed_noise_std", "between_cell_std",
                             "reliability", "oracle_kendall_tau_b", "reliability_one_seed",
                             "oracle_kendall_tau_b_one_seed"}
  assert all(v is None or -1.0 <= v <= 1.0 for v in standalone.values())
  tau, rho = rank_stats.kendall_tau_b(score, accuracy), rank_stats.spearman_rho(score, accuracy)
  for key, value in (("kendall_tau_b", tau), ("spearman_rho", rho)):
    if np.isnan(value):  # a constant column (tiny budget) is recorded as null
      assert saved[key] is None
    else:
      assert -1.0 <= saved[key] <= 1.0 and saved[key] == pytest.approx(value)
  assert saved["flags"] == {"num_cells": 3} and "recalibration on 1" in saved["score"]
  assert set(saved["by_scoring"]) == set(rc_cli.SCORINGS)
  for entry in saved["by_scoring"].values():
    assert len(entry["scores"]) == 3 and all(0.0 <= v <= 1.0 for v in entry["scores"])
    half = entry["split_half_kendall_tau_b"]
    assert half is None or -1.0 <= half <= 1.0
  # the likelihood scorings rank like the negative validation loss, not like the accuracy
  assert saved["by_scoring"]["batch_statistics_likelihood"]["scores"] != \
      saved["by_scoring"]["batch_statistics"]["scores"]


def test_reuse_trained_reads_finished_cells_and_retrains_on_another_config(
    tmp_path, monkeypatch):
  """--reuse_trained (compare.train_standalone(reuse=True)): a cell already trained in the
  folder with the same seed and gin config is read, not retrained; another config retrains."""
  cell = ss.SearchSpace("enas", 1).decode([0] * 8, name="cell_00")
  calls = []
  real = rc_cli.compare.trainer.train_child
  monkeypatch.setattr(rc_cli.compare.trainer, "train_child",
                      lambda *a, **k: calls.append(1) or real(*a, **k))

  def run(extra=(), reuse=True):
    gin.clear_config()
    config.parse(["tiny/train.gin"], TINY_BUDGET + list(extra))
    try:
      return rc_cli.compare.train_standalone([("sampled", cell, 0)], str(tmp_path), 0,
                                             reuse=reuse)
    finally:
      gin.clear_config()

  first = run(reuse=False)
  again = run()
  assert len(calls) == 1 and again == first
  run(["train_child.learning_rate = 0.05"])
  assert len(calls) == 2


def _cli(argv, monkeypatch):
  """scripts/rank_correlation.py's main through common.run_main in this process: exit message."""
  common.FLAGS.unparse_flags()
  gin.clear_config()
  monkeypatch.setattr(sys, "argv", ["prog"] + argv)
  with pytest.raises(SystemExit) as exit_info:
    common.run_main(rc_cli.main)
  gin.clear_config()
  code = exit_info.value.code
  assert isinstance(code, str) and code.startswith("error: ") and "\n" not in code, code
  return code


def test_bad_input_is_one_clear_error(tmp_path, monkeypatch):
  plain = tmp_path / "not_a_run"
  plain.mkdir()
  code = _cli([f"--enas_run={plain}"], monkeypatch)
  assert f"{plain} is not an ENAS run directory" in code
  assert not os.path.exists(plain / "rank_correlation")  # nothing written
  standalone = tmp_path / "standalone"
  standalone.mkdir()
  (standalone / "config.gin").write_text("search_main.mode = 'standalone'\n")
  code = _cli([f"--workdir={standalone}"], monkeypatch)  # the old form: --workdir is the run
  assert "not an ENAS run directory" in code and "'standalone'" in code
  code = _cli([f"--enas_run={plain}", "--num_cells=1"], monkeypatch)
  assert "--num_cells must be at least 2" in code
  code = _cli([f"--enas_run={plain}", "--train_repeats=0"], monkeypatch)
  assert "--train_repeats must be at least 1" in code
