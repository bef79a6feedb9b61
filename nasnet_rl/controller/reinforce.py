"""Policy-gradient training of the LSTM controller behind the propose/feedback interface.

update="reinforce" (Williams 1992; Zoph & Le 2017; ENAS): per architecture
  loss = -A * log p(decisions) - entropy_weight * H,   A = (reward - baseline) / scale,
averaged over the architectures of one `feedback` call, one Adam step per call.
update="ppo" (Schulman et al. 2017), as NASNet used (Zoph et al. 2018, sec. 3): the log-probs
of proposals are kept at `propose` time, and `feedback` runs `ppo_epochs` Adam steps on the
clipped surrogate -min(ratio * A, clip(ratio, 1 - ppo_clip, 1 + ppo_clip) * A).

The baseline is an exponential moving average of rewards, updated one reward at a time before
the advantage is taken (ENAS micro_controller.py). Three changes from ENAS make the controller
learn within the few hundred children a search can afford (measured on NAS-Bench-201 tables,
README "Search quality"):
  * the average is bias-corrected (as Adam's moments): ENAS starts it at 0, so with decay 0.99
    every advantage of the first ~100 children is large and positive and the policy learns
    "whatever came first";
  * advantages are divided by a running (bias-corrected) standard deviation of the rewards, so
    the step size does not depend on the reward's scale: accuracies that differ by 0.5% (a
    real proxy task) and by 20% (a benchmark table) move the policy alike;
  * risk-seeking (Petersen et al. 2021, "Deep symbolic regression", risk-seeking policy
    gradient): with `risk_quantile=q`, a child's advantage is how far its reward exceeds the
    q-quantile of the last `risk_window` rewards, and 0 below it. A search keeps its best
    child, not its average one, so the policy is pulled towards the best children only.
`learn_from_repeats=False` skips rewards of architectures already fed back: a search's budget
counts distinct children and a repeat's reward is a cached copy, so relearning it only pulls
the policy further into the cell it already knows (on the tables: less local exploration, and
the best cells found less often). ENAS must keep it on, as a cell's shared-weight reward
changes while the supernet trains.
`normalize_advantage=False`, `baseline_bias_correction=False`, `risk_quantile=None` and
`learn_from_repeats=True` give ENAS's exact update (gin/controller/enas.gin).

Everything a step needs besides the data (learning rate, Adam constants, entropy weight, PPO
clip, clip norm) is passed to the traced step as numbers, and the Adam moments are the
strategy's own variables, so every strategy over the same controller program shares one trace.
"""

import collections
import functools
import os
from typing import Dict, List, Optional

import gin
import numpy as np
import tensorflow as tf

from nasnet_rl.controller import lstm_controller as lstm_lib
from nasnet_rl.controller import strategy as strategy_lib

_MAX_PENDING = 100_000  # PPO proposals kept while waiting for their rewards
_DRAW_BLOCK = 32  # samples drawn per call when looking for architectures not seen yet


@gin.configurable
class ReinforceStrategy(strategy_lib.Strategy):
  """A Strategy that samples from an LSTMController and trains it with REINFORCE or PPO.

  Defaults were chosen on the two shipped NAS-Bench-201 tables (see README "Search quality"
  for what each one did); `gin/controller/enas.gin` and `nasnet.gin` hold the published
  recipes."""

  def __init__(self, controller: lstm_lib.LSTMController, update: str = "reinforce",
               learning_rate: Optional[float] = None, entropy_weight: float = 0.0,
               baseline_decay: float = 0.9, baseline_bias_correction: bool = True,
               normalize_advantage: bool = True, risk_quantile: Optional[float] = 0.9,
               risk_window: int = 50, grad_clip_norm: Optional[float] = None,
               adam_beta1: float = 0.9, adam_beta2: float = 0.999, adam_epsilon: float = 1e-8,
               ppo_clip: float = 0.2, ppo_epochs: int = 4, learn_from_repeats: bool = False):
    if update not in ("reinforce", "ppo"):
      raise ValueError(f"update must be 'reinforce' or 'ppo', got {update!r}")
    if learning_rate is None:
      # 0.02 per pass over a batch: PPO takes ppo_epochs Adam steps on each batch.
      learning_rate = 0.02 / (int(ppo_epochs) if update == "ppo" else 1)
    if learning_rate <= 0:
      raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not 0.0 <= baseline_decay < 1.0:
      raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
    self.controller = controller
    self.num_choices = list(controller.num_choices)
    self.update = update
    self.learning_rate = float(learning_rate)
    self.entropy_weight = float(entropy_weight)
    self.baseline_decay = float(baseline_decay)
    self.baseline_bias_correction = bool(baseline_bias_correction)
    self.normalize_advantage = bool(normalize_advantage)
    if risk_quantile is not None and not 0.0 < risk_quantile < 1.0:
      raise ValueError(f"risk_quantile must be in (0, 1) or None, got {risk_quantile}")
    self.risk_quantile, self.risk_window = risk_quantile, int(risk_window)
    self.grad_clip_norm = grad_clip_norm
    self.adam = (float(adam_beta1), float(adam_beta2), float(adam_epsilon))
    self.ppo_clip, self.ppo_epochs = float(ppo_clip), int(ppo_epochs)
    self.learn_from_repeats = bool(learn_from_repeats)
    weights = controller.trainable_weights
    self._slots = {"m": [tf.Variable(tf.zeros_like(w)) for w in weights],
                   "v": [tf.Variable(tf.zeros_like(w)) for w in weights]}
    self._step = tf.Variable(0, dtype=tf.int64)
    self._train_fn = _train_function(controller.program, update,
                                     self.ppo_epochs if update == "ppo" else 1)
    self._reset_state()

  def _reset_state(self):
    # Moving averages: sum of weighted rewards, sum of weights, and of squared deviations.
    self._ema = {"mean": 0.0, "sq": 0.0, "weight": 0.0}
    self._recent: List[float] = []  # the last `risk_window` rewards (risk-seeking baseline)
    self.num_updates = 0
    self.num_feedback = 0
    self.best_reward: Optional[float] = None
    self.best_decisions: Optional[List[int]] = None
    self._seen = set()  # decision tuples fed back so far (for learn_from_repeats=False)
    # PPO: old log-probs of proposals not yet fed back, FIFO per decision list.
    self._pending: "collections.OrderedDict[tuple, List[float]]" = collections.OrderedDict()

  def reset(self, seed: int) -> None:
    """Back to a fresh strategy for `seed`, reusing the traced functions."""
    self.controller.reset(seed)
    for slot in self._slots["m"] + self._slots["v"]:
      slot.assign(tf.zeros_like(slot))
    self._step.assign(0)
    self._reset_state()

  @property
  def baseline(self) -> float:
    """The moving average of rewards (bias-corrected unless disabled)."""
    w = self._ema["weight"] if self.baseline_bias_correction else 1.0
    return self._ema["mean"] / w if w > 0 else 0.0

  def _reward_scale(self) -> float:
    w = self._ema["weight"] if self.baseline_bias_correction else 1.0
    return float(np.sqrt(self._ema["sq"] / w)) if w > 0 else 0.0

  def _advantages(self, rewards: np.ndarray) -> np.ndarray:
    """Per reward, in order: update the baseline (and spread), then take the advantage."""
    out = np.empty_like(rewards)
    decay = self.baseline_decay
    for i, r in enumerate(rewards):
      self._ema["mean"] = decay * self._ema["mean"] + (1.0 - decay) * r
      self._ema["weight"] = decay * self._ema["weight"] + (1.0 - decay)
      dev = r - self.baseline
      self._ema["sq"] = decay * self._ema["sq"] + (1.0 - decay) * dev * dev
      if self.risk_quantile is not None:
        self._recent = (self._recent + [float(r)])[-self.risk_window:]
        dev = max(0.0, r - float(np.quantile(self._recent, self.risk_quantile)))
      out[i] = dev
      if self.normalize_advantage:
        scale = self._reward_scale()
        out[i] = dev / scale if scale > 1e-12 else 0.0
    return out

  # -- the strategy interface ----------------------------------------------------------------

  def propose(self, n: int = 1) -> List[List[int]]:
    """`n` samples of the policy. With `learn_from_repeats=False` a repeat teaches nothing,
    so the policy does not change between sequential samples until a new architecture comes
    up: drawing a block of samples at once and keeping the first unseen ones has the same
    distribution as proposing one at a time and having the loop skip repeats, at a fraction of
    the calls. After `_DRAW_BLOCK` draws per wanted proposal without enough new ones, repeats
    fill the rest (the search loop's proposal cap then ends a run that only repeats itself)."""
    if self.learn_from_repeats:
      decisions, log_prob, _ = self.controller.sample(n)
      decisions, log_prob = decisions.numpy().tolist(), log_prob.numpy().tolist()
    else:
      decisions, log_prob = self._propose_unseen(n)
    if self.update == "ppo":
      for d, lp in zip(decisions, log_prob):
        self._pending.setdefault(tuple(d), []).append(float(lp))
      while len(self._pending) > _MAX_PENDING:
        self._pending.popitem(last=False)
    return decisions

  def _propose_unseen(self, n: int):
    # One block size (a power of two >= n): an XLA-compiled sampler compiles once per size.
    block = max(_DRAW_BLOCK, 1 << (n - 1).bit_length())
    fresh, fresh_lp, repeats, repeats_lp, keys = [], [], [], [], set()
    for _ in range(-(-n * _DRAW_BLOCK // block)):
      decisions, log_prob, _ = self.controller.sample(block)
      for d, lp in zip(decisions.numpy().tolist(), log_prob.numpy().tolist()):
        key = tuple(d)
        if key in self._seen or key in keys:
          repeats.append(d)
          repeats_lp.append(lp)
        elif len(fresh) < n:
          keys.add(key)
          fresh.append(d)
          fresh_lp.append(lp)
      if len(fresh) == n:
        break
    missing = n - len(fresh)
    return fresh + repeats[:missing], fresh_lp + repeats_lp[:missing]

  def feedback(self, decisions, rewards) -> Dict[str, float]:
    if len(decisions) == 0 and len(rewards) == 0:
      return {}
    arr = strategy_lib.check_decisions(decisions, self.num_choices, rewards).astype(np.int32)
    rewards = np.asarray(rewards, dtype=np.float64)
    if not np.isfinite(rewards).all():
      raise ValueError(f"rewards must be finite, got {rewards.tolist()}")
    for d, r in zip(arr.tolist(), rewards.tolist()):
      if self.best_reward is None or r > self.best_reward:
        self.best_reward, self.best_decisions = float(r), d
    if not self.learn_from_repeats:
      keep = []
      for i, d in enumerate(arr.tolist()):
        if tuple(d) not in self._seen:
          self._seen.add(tuple(d))
          keep.append(i)
      arr, rewards = arr[keep], rewards[keep]
      if len(arr) == 0:
        return {}
    advantages = self._advantages(rewards)
    old = (self._old_log_probs(arr) if self.update == "ppo"
           else np.zeros(len(arr), np.float32))
    # Padded to a power-of-two batch with zero-weight rows: an XLA-compiled update compiles
    # once per batch shape, so a search feeding 1..n children at a time compiles log2(n) times.
    size = 1 << (len(arr) - 1).bit_length()
    pad = size - len(arr)
    weight = np.concatenate([np.ones(len(arr)), np.zeros(pad)]).astype(np.float32)
    d = tf.constant(np.concatenate([arr, np.zeros((pad, arr.shape[1]), np.int32)]))
    adv = tf.constant(np.concatenate([advantages, np.zeros(pad)]), tf.float32)
    old = tf.constant(np.concatenate([old, np.zeros(pad, np.float32)]))
    hparams = tf.constant([self.learning_rate, *self.adam, self.entropy_weight, self.ppo_clip,
                           self.grad_clip_norm or 0.0], tf.float32)
    stats = self._train_fn(dict(self.controller.params), self._slots, self._step, d, adv, old,
                           tf.constant(weight), hparams)
    self.num_updates += 1
    self.num_feedback += len(arr)
    out = {k: float(v) for k, v in stats.items()}
    out.update(baseline=self.baseline, reward_mean=float(rewards.mean()),
               advantage_mean=float(advantages.mean()))
    return out

  def best(self):
    """(decisions, reward) of the best architecture fed back so far, or (None, None)."""
    return self.best_decisions, self.best_reward

  def most_likely(self) -> List[int]:
    """The controller's greedy decode: its current favourite architecture."""
    return self.controller.most_likely()

  def _old_log_probs(self, arr: np.ndarray) -> np.ndarray:
    """Log-probs recorded at proposal time; decisions never proposed get the current ones."""
    old = np.zeros(len(arr), dtype=np.float32)
    missing = []
    for i, d in enumerate(arr.tolist()):
      kept = self._pending.get(tuple(d))
      if kept:
        old[i] = kept.pop(0)
        if not kept:
          del self._pending[tuple(d)]
      else:
        missing.append(i)
    if missing:
      old[missing] = self.controller.log_prob(arr[missing]).numpy()
    return old

  # -- checkpoints ---------------------------------------------------------------------------

  def _variables(self) -> Dict[str, tf.Variable]:
    out = {"controller/" + k: v for k, v in self.controller.state_variables().items()}
    for kind in ("m", "v"):
      for i, v in enumerate(self._slots[kind]):
        out[f"adam/{kind}{i:03d}"] = v
    out["adam/step"] = self._step
    return out

  def save(self, directory: str) -> str:
    path = os.path.join(directory, self.checkpoint_name)
    arrays = {k: v.numpy() for k, v in self._variables().items()}
    state = {"num_choices": self.num_choices, "update": self.update, "ema": self._ema,
             "recent": self._recent,
             "num_updates": self.num_updates, "num_feedback": self.num_feedback,
             "seed": self.controller.seed, "best_reward": self.best_reward,
             "best_decisions": self.best_decisions, "seen": sorted(self._seen),
             "pending": [[list(d), lps] for d, lps in self._pending.items()]}
    strategy_lib.save_arrays(path, arrays, state)
    return path

  def restore(self, directory: str) -> None:
    path = os.path.join(directory, self.checkpoint_name)
    arrays, state = strategy_lib.load_arrays(path)
    if state.get("num_choices") != self.num_choices:
      raise ValueError(f"{path} was written for different num_choices")
    if "ema" not in state:
      raise ValueError(f"{path} was written by an older version of ReinforceStrategy")
    variables = self._variables()
    if set(arrays) != set(variables):
      raise ValueError(f"{path}: variables differ from this strategy's: missing "
                       f"{sorted(set(variables) - set(arrays))[:5]}, unexpected "
                       f"{sorted(set(arrays) - set(variables))[:5]}")
    for k, v in variables.items():
      if tuple(arrays[k].shape) != tuple(v.shape):
        raise ValueError(f"{path}: {k} has shape {arrays[k].shape}, expected {v.shape}")
    for k, v in variables.items():
      v.assign(arrays[k])
    self.controller.seed = int(state["seed"])
    self._ema = {k: float(v) for k, v in state["ema"].items()}
    self._recent = [float(r) for r in state.get("recent", [])]
    self.num_updates, self.num_feedback = state["num_updates"], state["num_feedback"]
    self.best_reward, self.best_decisions = state["best_reward"], state["best_decisions"]
    self._seen = {tuple(d) for d in state.get("seen", [])}
    self._pending = collections.OrderedDict((tuple(d), list(lps)) for d, lps in state["pending"])


@functools.lru_cache(maxsize=None)
def _train_function(program: "lstm_lib._Program", update: str, epochs: int):
  """One traced update per (controller program, update rule, epochs): `epochs` policy-gradient
  + Adam steps on the same batch in one call (PPO's epochs; 1 for REINFORCE). Rows with
  `row_weight` 0 are padding and change nothing."""

  def train_fn(params, slots, step, decisions, advantages, old_log_prob, row_weight, hparams):
    for _ in range(epochs):
      stats = step_fn(params, slots, step, decisions, advantages, old_log_prob, row_weight,
                      hparams)
    return stats

  def step_fn(params, slots, step, decisions, advantages, old_log_prob, row_weight, hparams):
    lr, beta1, beta2, eps, entropy_weight, ppo_clip, clip_norm = tf.unstack(hparams)
    weights = list(params.values())
    mean = lambda x: tf.reduce_sum(row_weight * x) / tf.reduce_sum(row_weight)  # padding out
    with tf.GradientTape() as tape:
      _, log_prob, entropy = program.run(params, tf.shape(decisions)[0], given=decisions)
      if update == "ppo":
        ratio = tf.exp(log_prob - old_log_prob)
        clipped = tf.clip_by_value(ratio, 1.0 - ppo_clip, 1.0 + ppo_clip)
        pg_loss = -mean(tf.minimum(ratio * advantages, clipped * advantages))
      else:
        pg_loss = -mean(advantages * log_prob)
      loss = pg_loss - entropy_weight * mean(entropy)
    grads = tape.gradient(loss, weights)
    # Dense gradients: gathered heads/tables give IndexedSlices with repeated rows.
    grads = [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g)
             for g, w in zip(grads, weights)]
    norm = tf.linalg.global_norm(grads)
    factor = tf.where(clip_norm > 0, tf.minimum(1.0, clip_norm / tf.maximum(norm, 1e-12)), 1.0)
    t = tf.cast(step.assign_add(1), tf.float32)
    lr_t = lr * tf.sqrt(1.0 - tf.pow(beta2, t)) / (1.0 - tf.pow(beta1, t))
    for w, g, m, v in zip(weights, grads, slots["m"], slots["v"]):
      g = g * factor
      m.assign(beta1 * m + (1.0 - beta1) * g)
      v.assign(beta2 * v + (1.0 - beta2) * tf.square(g))
      w.assign_sub(lr_t * m / (tf.sqrt(v) + eps))
    stats = {"loss": loss, "pg_loss": pg_loss, "entropy": mean(entropy),
             "log_prob": mean(log_prob), "grad_norm": norm}
    if update == "ppo":
      stats["clip_fraction"] = mean(tf.cast(tf.abs(ratio - 1.0) > ppo_clip, tf.float32))
    return stats

  # reduce_retracing: after a second batch size the trace takes any batch size.
  return tf.function(train_fn, autograph=False, jit_compile=program.jit_compile,
                     reduce_retracing=True)
