"""Policy-gradient training of the LSTM controller behind the propose/feedback interface.

update="reinforce" (Williams 1992; Zoph & Le 2017; ENAS): per architecture
  loss = -(reward - baseline) * log p(decisions) - entropy_weight * H,
averaged over the architectures of one `feedback` call (ENAS aggregates 10 per step with
--controller_num_aggregate=10), one Adam step per call. The baseline is an exponential moving
average of rewards, updated before the advantage is taken, one reward at a time, as ENAS's
micro_controller.py does (`baseline -= (1 - bl_dec) * (baseline - reward)`).
ENAS adds `entropy_weight * H` to the reward instead; as a loss term it pushes the whole
distribution towards higher entropy rather than rewarding high-entropy samples.

update="ppo" (Schulman et al. 2017), as NASNet used (Zoph et al. 2018, sec. 3): the log-probs
of proposed samples are kept at `propose` time, and `feedback` runs `ppo_epochs` Adam steps on
the clipped surrogate -min(ratio * A, clip(ratio, 1 - ppo_clip, 1 + ppo_clip) * A).

Defaults are ENAS's micro search (scripts/cifar10_micro_search.sh: --controller_lr=0.0035,
--controller_entropy_weight=0.0001; src/cifar10/main.py: --controller_bl_dec default 0.99;
src/utils.py get_train_ops: Adam with beta1=0.0, epsilon=1e-3). NASNet's are in
gin/controller/nasnet.gin.
"""

import collections
import os
from typing import Dict, List, Optional

import gin
import keras
import numpy as np
import tensorflow as tf

from nasnet_rl.controller import lstm_controller as lstm_lib
from nasnet_rl.controller import strategy as strategy_lib

_MAX_PENDING = 100_000  # PPO proposals kept while waiting for their rewards


@gin.configurable
class ReinforceStrategy(strategy_lib.Strategy):
  """A Strategy that samples from an LSTMController and trains it with REINFORCE or PPO."""

  def __init__(self, controller: lstm_lib.LSTMController, update: str = "reinforce",
               learning_rate: float = 0.0035, entropy_weight: float = 0.0001,
               baseline_decay: float = 0.99, grad_clip_norm: Optional[float] = None,
               adam_beta1: float = 0.0, adam_epsilon: float = 1e-3,
               ppo_clip: float = 0.2, ppo_epochs: int = 4):
    if update not in ("reinforce", "ppo"):
      raise ValueError(f"update must be 'reinforce' or 'ppo', got {update!r}")
    self.controller = controller
    self.num_choices = list(controller.num_choices)
    self.update = update
    self.entropy_weight = float(entropy_weight)
    self.baseline_decay = float(baseline_decay)
    self.grad_clip_norm = grad_clip_norm
    self.ppo_clip, self.ppo_epochs = float(ppo_clip), int(ppo_epochs)
    self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=adam_beta1,
                                           epsilon=adam_epsilon)
    self.optimizer.build(controller.trainable_weights)  # slots exist before any restore
    self.baseline = 0.0  # ENAS starts its baseline variable at 0
    self.num_updates = 0
    self.num_feedback = 0
    # PPO: old log-probs of proposals not yet fed back, FIFO per decision list.
    self._pending: "collections.OrderedDict[tuple, List[float]]" = collections.OrderedDict()

    spec_d = tf.TensorSpec([None, None], tf.int32)
    spec_f = tf.TensorSpec([None], tf.float32)
    self._train_fn = tf.function(self._train_step, input_signature=[spec_d, spec_f, spec_f],
                                 jit_compile=controller.jit_compile)

  # -- the strategy interface ----------------------------------------------------------------

  def propose(self, n: int = 1) -> List[List[int]]:
    decisions, log_prob, _ = self.controller.sample(n)
    decisions = decisions.numpy().tolist()
    if self.update == "ppo":
      for d, lp in zip(decisions, log_prob.numpy().tolist()):
        self._pending.setdefault(tuple(d), []).append(float(lp))
      while len(self._pending) > _MAX_PENDING:
        self._pending.popitem(last=False)
    return decisions

  def feedback(self, decisions, rewards) -> Dict[str, float]:
    if len(decisions) == 0 and len(rewards) == 0:
      return {}
    arr = strategy_lib.check_decisions(decisions, self.num_choices, rewards).astype(np.int32)
    rewards = np.asarray(rewards, dtype=np.float64)
    advantages = np.empty_like(rewards)
    for i, r in enumerate(rewards):  # one reward at a time, as ENAS's per-sample update
      self.baseline -= (1.0 - self.baseline_decay) * (self.baseline - r)
      advantages[i] = r - self.baseline
    adv = tf.constant(advantages, tf.float32)
    d = tf.constant(arr)
    if self.update == "ppo":
      old = self._old_log_probs(arr)
      for _ in range(self.ppo_epochs):
        stats = self._train_fn(d, adv, old)
    else:
      stats = self._train_fn(d, adv, tf.zeros_like(adv))
    self.num_updates += 1
    self.num_feedback += len(arr)
    out = {k: float(v) for k, v in stats.items()}
    out.update(baseline=self.baseline, reward_mean=float(rewards.mean()),
               advantage_mean=float(advantages.mean()))
    return out

  def _old_log_probs(self, arr: np.ndarray) -> tf.Tensor:
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
    return tf.constant(old)

  def _train_step(self, decisions, advantages, old_log_prob):
    weights = self.controller.trainable_weights
    with tf.GradientTape() as tape:
      log_prob, entropy = self.controller.score(decisions)
      if self.update == "ppo":
        ratio = tf.exp(log_prob - old_log_prob)
        clipped = tf.clip_by_value(ratio, 1.0 - self.ppo_clip, 1.0 + self.ppo_clip)
        pg_loss = -tf.reduce_mean(tf.minimum(ratio * advantages, clipped * advantages))
      else:
        pg_loss = -tf.reduce_mean(advantages * log_prob)
      loss = pg_loss - self.entropy_weight * tf.reduce_mean(entropy)
    grads = tape.gradient(loss, weights)
    # Dense gradients: gathered heads/tables give IndexedSlices with repeated rows.
    grads = [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g)
             for g, w in zip(grads, weights)]
    norm = tf.linalg.global_norm(grads)
    if self.grad_clip_norm is not None:
      grads, _ = tf.clip_by_global_norm(grads, self.grad_clip_norm, use_norm=norm)
    self.optimizer.apply_gradients(zip(grads, weights))
    stats = {"loss": loss, "pg_loss": pg_loss, "entropy": tf.reduce_mean(entropy),
             "log_prob": tf.reduce_mean(log_prob), "grad_norm": norm}
    if self.update == "ppo":
      stats["clip_fraction"] = tf.reduce_mean(
          tf.cast(tf.abs(ratio - 1.0) > self.ppo_clip, tf.float32))
    return stats

  # -- checkpoints ---------------------------------------------------------------------------

  def _variables(self) -> Dict[str, tf.Variable]:
    out = {"controller/" + k: v for k, v in self.controller.state_variables().items()}
    # Step count and Adam slots; the learning rate comes from the config, so a resumed run
    # can change it.
    slots = [v for v in self.optimizer.variables if not v.path.endswith("learning_rate")]
    for i, v in enumerate(slots):
      out[f"optimizer/{i:04d}"] = v
    return out

  def save(self, directory: str) -> str:
    path = os.path.join(directory, self.checkpoint_name)
    arrays = {k: v.numpy() for k, v in self._variables().items()}
    state = {"num_choices": self.num_choices, "update": self.update,
             "baseline": self.baseline, "num_updates": self.num_updates,
             "num_feedback": self.num_feedback,
             "pending": [[list(d), lps] for d, lps in self._pending.items()]}
    strategy_lib.save_arrays(path, arrays, state)
    return path

  def restore(self, directory: str) -> None:
    arrays, state = strategy_lib.load_arrays(os.path.join(directory, self.checkpoint_name))
    if state["num_choices"] != self.num_choices:
      raise ValueError("checkpoint was written for different num_choices")
    variables = self._variables()
    if set(arrays) != set(variables):
      raise ValueError(f"checkpoint variables differ from this strategy's: missing "
                       f"{sorted(set(variables) - set(arrays))[:5]}, unexpected "
                       f"{sorted(set(arrays) - set(variables))[:5]}")
    for k, v in variables.items():
      if tuple(arrays[k].shape) != tuple(v.shape):
        raise ValueError(f"checkpoint {k} has shape {arrays[k].shape}, expected {v.shape}")
    for k, v in variables.items():
      v.assign(arrays[k])
    self.baseline = float(state["baseline"])
    self.num_updates, self.num_feedback = state["num_updates"], state["num_feedback"]
    self._pending = collections.OrderedDict((tuple(d), list(lps)) for d, lps in state["pending"])
