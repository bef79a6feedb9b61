"""LSTM policy over a flat list of categorical decisions (Zoph & Le 2017; Pham et al. 2018).

One LSTM step per decision; the embedding of each decision is the next step's input. With the
NASNet `Decision` structure (search_space.py) the controller follows ENAS's micro controller
(melodyguan/enas src/cifar10/micro_controller.py, `_build_sampler`):
  * each cell starts with two LSTM steps fed the learned start embedding `g_emb`; their outputs
    are the "anchors" of the cell inputs h(i-2), h(i-1);
  * input decisions score anchor j by v^T tanh(W1 a_j + W2 h_t) (attention) and feed the chosen
    anchor's value on (zeros for the cell inputs, as in ENAS), or use per-step logits;
  * op decisions share one softmax head and one embedding table across all blocks and cells;
  * after a block's decisions one more step (fed the last op's embedding) gives the block's
    anchor; the next block starts again from `g_emb`. The LSTM state runs on from the normal
    cell into the reduction cell.
Without that structure (plain `num_choices`) every decision has its own logits head and
embedding table. Logits are shaped as in ENAS: `logits / temperature`, then
`c * tanh(logits)` with c = tanh_constant (tanh_constant / op_tanh_reduce for op decisions).
Not copied from ENAS: its fixed `b_soft_no_learn` bias that favours the first two (separable
conv) ops, which only makes sense for its 5-op vocabulary.

The decision list is compiled into a table of steps that one `tf.while_loop` walks, so tracing
costs the same for 3 or 300 decisions. Heads and tables of different sizes are stored padded
to a common width and masked. Sampling and scoring run the same loop (scoring feeds given
decisions instead of sampled ones), so `log_prob(d)` equals the log-prob `sample` returned with
`d`. Sampling is Gumbel-max with stateless noise seeded by (seed, number of samples drawn so
far), so the sampler's state is one checkpointed counter.

Traced functions belong to the program, not to a controller: every controller with the same
decision structure and shaping (one per seed in a comparison, say) shares one trace, and takes
its own weights as arguments.
"""

import dataclasses
import functools
from typing import Dict, List, Optional, Sequence, Tuple

import gin
import numpy as np
import tensorflow as tf

from nasnet_rl import search_space as search_space_lib

_TINY = float(np.finfo(np.float32).tiny)
_MASKED = -1e9  # logit of a padded (impossible) choice; finite so that 0 * it stays 0


@dataclasses.dataclass(frozen=True)
class _Step:
  """One LSTM step of the program: a decision, or a step that records an anchor."""
  action: str  # "decide" | "cell_input" (anchor of h(i-2)/h(i-1)) | "block_out" (block anchor)
  index: int = -1  # position in the decision list ("decide" only)
  num_choices: int = 1
  scorer: str = ""  # "attention" or the name of a logits head
  feed: str = ""  # next input: "anchor", an embedding table, or "" (the start embedding)
  tanh_constant: Optional[float] = None
  anchor: int = -1  # anchor slot written by "cell_input"/"block_out"


@gin.configurable
class LSTMController(tf.Module):
  """Autoregressive LSTM policy; `sample`, `log_prob` and `score` work on batches.

  Defaults are the ENAS micro-search controller but for tanh_constant: lstm_size 64 and 1
  layer (hard-coded in melodyguan/enas src/cifar10/main.py for the micro controller),
  op_tanh_reduce 2.5 (scripts/cifar10_micro_search.sh), temperature 5.0 (Pham et al. 2018,
  training details, after Bello et al. 2017; the micro search script leaves
  --controller_temperature unset, i.e. no temperature), weights uniform in [-0.1, 0.1] (ENAS
  micro_controller.py; Zoph et al. 2018 appendix A). None disables temperature or tanh.
  tanh_constant is 2.5, not ENAS's 1.10 (gin/controller/enas.gin restores it): logits bounded
  by +-1.1 cap a decision's probability at 0.69 of 5 choices, so even a converged policy
  spreads most samples two or more decisions away from its favourite; +-2.5 (0.97) lets it
  search the neighbourhood of its best cells (README "Search quality").
  `jit_compile` compiles sampling, scoring and the strategy's update with XLA.
  """

  def __init__(self, num_choices: Optional[Sequence[int]] = None,
               decisions: Optional[Sequence[search_space_lib.Decision]] = None,
               lstm_size: int = 64, lstm_num_layers: int = 1,
               temperature: Optional[float] = 5.0, tanh_constant: Optional[float] = 2.5,
               op_tanh_reduce: float = 2.5, input_scoring: str = "attention",
               init_range: float = 0.1, seed: int = 0, jit_compile: bool = False,
               name: str = "lstm_controller"):
    super().__init__(name=name)
    if decisions is not None:
      decisions = tuple(decisions)
      sizes = [d.num_choices for d in decisions]
      if num_choices is not None and [int(n) for n in num_choices] != sizes:
        raise ValueError("num_choices and decisions disagree; pass one of them")
      num_choices = sizes
    if num_choices is None or len(num_choices) == 0:
      raise ValueError("LSTMController needs num_choices or decisions")
    if input_scoring not in ("attention", "logits"):
      raise ValueError(f"input_scoring must be 'attention' or 'logits', got {input_scoring!r}")
    sizes = tuple(int(n) for n in num_choices)
    if min(sizes) < 1:
      raise ValueError(f"every decision needs >= 1 choice, got {list(sizes)}")
    # Plain Python containers are kept in a tuple so tf.Module does not wrap them.
    self._config = (sizes, decisions)
    self.lstm_size, self.lstm_num_layers = int(lstm_size), int(lstm_num_layers)
    self.temperature = temperature
    self.tanh_constant, self.op_tanh_reduce = tanh_constant, op_tanh_reduce
    self.input_scoring = input_scoring

    steps, heads, tables = self._build_program()
    self._steps = tuple(steps)
    self.head_names, self.table_names = tuple(heads), tuple(tables)
    num_anchors = max([s.anchor + 1 for s in steps] + [1])
    width = max(list(sizes) + [num_anchors])  # common padded width of every head
    attention = any(s.scorer == "attention" for s in steps)
    # XLA cuts the per-call overhead of the loop (~5x for one architecture on CPU) but compiles
    # once per batch size (seconds each; the strategy pads update batches to powers of two).
    # It also keeps in-process child training from slowing the controller: measured, a plain
    # trace's first calls after each Keras child cost ~0.7 s more (NASNet controller), the
    # compiled ones ~0.01 s.
    # The search gin files turn it on; the code default keeps tests and small uses quick.
    self.jit_compile = bool(jit_compile)
    self.program = _program(self._steps, tuple(heads), tuple(tables), width, num_anchors,
                            self.lstm_size, self.lstm_num_layers, temperature, attention,
                            self.jit_compile)
    self.seed = int(seed)
    self.init_range = float(init_range)
    self.params: Dict[str, tf.Variable] = {
        name: tf.Variable(value, name=name) for name, value in self._initial_values().items()}
    # Sampling calls so far: with the seed, it fixes the next call's noise (checkpointed).
    self.sample_counter = tf.Variable(0, dtype=tf.int64, name="sample_counter")

  def _initial_values(self) -> Dict[str, np.ndarray]:
    """Fresh weights for `self.seed`: uniform in +-init_range, head biases zero."""
    init = np.random.default_rng(self.seed)
    h, w = self.lstm_size, self.program.width
    num_heads, num_tables = max(len(self.head_names), 1), max(len(self.table_names), 1)
    shapes = {"g_emb": (1, h)}
    for layer in range(self.lstm_num_layers):
      shapes[f"lstm_w{layer}"] = (2 * h, 4 * h)
    shapes.update(head_w=(num_heads, h, w), head_b=(num_heads, w), emb=(num_tables, w, h))
    if self.program.attention:
      shapes.update(attn_w1=(h, h), attn_w2=(h, h), attn_v=(h,))
    # Insertion order is the checkpoint order.
    return {name: (np.zeros(shape) if name == "head_b" else
                   init.uniform(-self.init_range, self.init_range, size=shape)).astype(np.float32)
            for name, shape in shapes.items()}

  def reset(self, seed: int) -> None:
    """Re-initialises weights and sampler as if constructed with `seed` (no retracing)."""
    self.seed = int(seed)
    for name, value in self._initial_values().items():
      self.params[name].assign(value)
    self.sample_counter.assign(0)

  @property
  def num_choices(self) -> List[int]:
    return list(self._config[0])

  @property
  def decisions(self) -> Optional[Tuple[search_space_lib.Decision, ...]]:
    return self._config[1]

  @property
  def trainable_weights(self) -> List[tf.Variable]:
    """The policy's weights in a fixed order (the RNG state is not among them)."""
    return list(self.params.values())

  def state_variables(self) -> Dict[str, tf.Variable]:
    """Every variable a checkpoint must hold: the weights and the sampling RNG state."""
    out = dict(self.params)
    out["sample_counter"] = self.sample_counter
    return out

  # -- building the program ------------------------------------------------------------------

  def _build_program(self):
    """Lays the decisions out as LSTM steps; returns (steps, head sizes, table sizes)."""
    heads: Dict[str, int] = {}
    tables: Dict[str, int] = {}
    steps: List[_Step] = []
    tc = self.tanh_constant
    op_tc = None if tc is None else tc / self.op_tanh_reduce

    def register(where, name, n):
      for table in where:
        if table.setdefault(name, n) != n:
          raise ValueError(f"decisions sharing {name!r} have different sizes")
      return name

    if self.decisions is None:
      for t, n in enumerate(self.num_choices):
        name = register((heads, tables), f"step{t}", n)
        steps.append(_Step("decide", t, n, name, name, tc))
      return steps, heads, tables

    attention = self.input_scoring == "attention"
    prev, num_anchors = None, 0
    for t, d in enumerate(self.decisions):
      if attention and (prev is None or d.cell != prev[0]):
        if prev is not None:  # the previous cell's last block, carried into the LSTM state
          steps.append(_Step("block_out", anchor=num_anchors))
        steps += [_Step("cell_input", anchor=0), _Step("cell_input", anchor=1)]
        num_anchors = 2
      elif attention and d.block != prev[1]:
        steps.append(_Step("block_out", anchor=num_anchors))
        num_anchors += 1
      prev = (d.cell, d.block)
      n = d.num_choices
      if d.kind == "input" and attention:
        if n > num_anchors:
          raise ValueError(f"decision {t} chooses among {n} inputs but only {num_anchors} "
                           f"states exist at {d.cell} block {d.block}; use "
                           f"input_scoring='logits' for this decision structure")
        steps.append(_Step("decide", t, n, "attention", "anchor", tc))
      elif d.kind == "input":
        head = register((heads,), f"input/{d.cell}/{d.block}/{d.slot}", n)  # per-step logits
        table = register((tables,), f"input{n}", n)  # shared by inputs with n choices
        steps.append(_Step("decide", t, n, head, table, tc))
      elif d.kind in ("op", "combine"):
        name = register((heads, tables), f"{d.kind}{n}", n)  # shared across blocks and cells
        steps.append(_Step("decide", t, n, name, name, op_tc if d.kind == "op" else tc))
      else:
        name = register((heads, tables), f"step{t}", n)
        steps.append(_Step("decide", t, n, name, name, tc))
    return steps, heads, tables

  # -- running it ----------------------------------------------------------------------------

  def _next_seed(self) -> tf.Tensor:
    counter = int(self.sample_counter.assign_add(1).numpy())
    return tf.constant([self.seed % (2**31 - 1), counter], tf.int64)

  def score(self, decisions):
    """(log_prob [B], entropy [B]) of given decisions [B, T]; differentiable, graph-friendly."""
    decisions = tf.convert_to_tensor(decisions, tf.int32)
    _, log_prob, entropy = self.program.run(dict(self.params), tf.shape(decisions)[0],
                                            given=decisions)
    return log_prob, entropy

  def sample(self, batch_size: int = 1):
    """Samples `batch_size` decision lists: (decisions [B, T] int32, log_prob [B], entropy [B]).
    Entropy is the sum over decisions of each step's full categorical entropy."""
    return self.program.sample_fn(dict(self.params), self._next_seed(),
                                  tf.constant(batch_size, tf.int32), tf.constant(1.0))

  def most_likely(self) -> List[int]:
    """Greedy decode: the most likely choice at every step given the earlier ones."""
    decisions, _, _ = self.program.sample_fn(dict(self.params), tf.constant([0, 0], tf.int64),
                                             tf.constant(1, tf.int32), tf.constant(0.0))
    return decisions.numpy()[0].tolist()

  def log_prob(self, decisions):
    """Total log-probability of decision lists ([T] or [B, T]) under the current policy."""
    arr = np.asarray(decisions, dtype=np.int32)
    single = arr.ndim == 1
    arr = arr.reshape(1, -1) if single else arr
    if arr.ndim != 2 or arr.shape[1] != len(self.num_choices):
      raise ValueError(f"expected {len(self.num_choices)} decisions, got shape {arr.shape}")
    if ((arr < 0) | (arr >= np.asarray(self.num_choices))).any():
      raise ValueError("a decision is outside its range 0..num_choices-1")
    log_prob, _ = self.program.score_fn(dict(self.params), tf.constant(arr))
    return log_prob[0] if single else log_prob


@functools.lru_cache(maxsize=None)
def _program(steps, heads, tables, width, num_anchors, lstm_size, lstm_num_layers, temperature,
             attention, jit_compile) -> "_Program":
  """One `_Program` (and so one trace) per decision structure and shaping."""
  return _Program(steps, heads, tables, width, num_anchors, lstm_size, lstm_num_layers,
                  temperature, attention, jit_compile)


class _Program:
  """The decision program as constant per-step rows, and the traced loop that walks it with
  weights passed in as arguments."""

  def __init__(self, steps, heads, tables, width, num_anchors, lstm_size, lstm_num_layers,
               temperature, attention, jit_compile):
    self.steps, self.width, self.num_anchors = steps, width, num_anchors
    self.lstm_size, self.lstm_num_layers = lstm_size, lstm_num_layers
    self.temperature, self.attention = temperature, attention
    self.rows = self._compile(steps, heads, tables)
    self.sample_fn = tf.function(self._sample, autograph=False, jit_compile=jit_compile)
    self.score_fn = tf.function(self._score, autograph=False, jit_compile=jit_compile,
                                reduce_retracing=True)
    self.jit_compile = jit_compile

  def _compile(self, steps, heads, tables) -> Dict[str, tf.Tensor]:
    """Per-step constant rows that the loop body reads with the step counter."""
    head_id = {k: i for i, k in enumerate(heads)}
    table_id = {k: i for i, k in enumerate(tables)}
    floats, ints, masks = [], [], []
    for s in steps:
      # Order must match the unpacking in `run`.
      floats.append([float(s.action == "decide"), float(s.scorer == "attention"),
                     float(s.tanh_constant is not None), s.tanh_constant or 0.0,
                     float(s.feed not in table_id and s.feed != "anchor"),
                     float(s.feed in table_id), float(s.feed == "anchor"),
                     float(s.anchor >= 0), float(s.action == "cell_input")])
      ints.append([max(s.index, 0), max(s.anchor, 0)])
      masks.append([0.0 if j < s.num_choices else _MASKED for j in range(self.width)])
    # Step of each decision, in decision order, to pick the decisions out of the step outputs.
    decide_steps = sorted((s.index, i) for i, s in enumerate(steps) if s.action == "decide")
    return {"floats": tf.constant(floats, tf.float32), "ints": tf.constant(ints, tf.int32),
            "mask": tf.constant(masks, tf.float32),
            "head": tf.constant([head_id.get(s.scorer, 0) for s in steps], tf.int32),
            "table": tf.constant([table_id.get(s.feed, 0) for s in steps], tf.int32),
            "decide_steps": tf.constant([i for _, i in decide_steps], tf.int32)}

  def _lstm(self, p, x, c, h):
    """One step of the stacked LSTM (no bias, as ENAS's stack_lstm)."""
    new_c, new_h = [], []
    for layer in range(self.lstm_num_layers):
      gates = tf.matmul(tf.concat([x, h[layer]], axis=1), p[f"lstm_w{layer}"])
      i, f, g, o = tf.split(gates, 4, axis=1)
      cell = tf.sigmoid(f) * c[layer] + tf.sigmoid(i) * tf.tanh(g)
      out = tf.sigmoid(o) * tf.tanh(cell)
      new_c.append(cell)
      new_h.append(out)
      x = out
    return new_c, new_h

  def _sample(self, params, seed, batch_size, noise_scale):
    return self.run(params, batch_size, seed=seed, noise_scale=noise_scale)

  def _score(self, params, decisions):
    _, log_prob, entropy = self.run(params, tf.shape(decisions)[0], given=decisions)
    return log_prob, entropy

  def run(self, p, batch_size, given=None, seed=None, noise_scale=1.0):
    """Walks the program for `batch_size` rows, sampling decisions (Gumbel noise times
    `noise_scale`: 0 decodes greedily) or scoring `given` [B, T].
    Returns (decisions [B, T] int32, log_prob [B], entropy [B])."""
    tab = self.rows
    num_steps, width, num_anchors = len(self.steps), self.width, self.num_anchors
    h_size = self.lstm_size
    zeros = tf.zeros(tf.stack([batch_size, h_size]))
    g = tf.tile(p["g_emb"], tf.stack([batch_size, 1]))
    if given is None:
      noise = tf.random.stateless_uniform(tf.stack([num_steps, batch_size, width]), seed=seed,
                                          minval=_TINY, maxval=1.0)
      gumbel = -tf.math.log(-tf.math.log(noise)) * noise_scale
    # Each step's head and embedding table, gathered once outside the loop.
    head_w = tf.gather(p["head_w"], tab["head"])  # [S, H, W]
    head_b = tf.gather(p["head_b"], tab["head"])  # [S, W]
    emb = tf.gather(p["emb"], tab["table"])  # [S, W, H]

    def body(s, x, c, h, anchors, keys, log_prob, entropy, chosen):
      (decide, use_attn, use_tanh, tanh_c, feed_g, feed_emb, feed_anchor, write_anchor,
       anchor_zero) = tf.unstack(tab["floats"][s])
      index, anchor_pos = tf.unstack(tab["ints"][s])
      c, h = self._lstm(p, x, c, h)
      out = h[-1]
      # Logits from the step's head, or (attention) scores of the anchors, padded to `width`.
      logits = tf.matmul(out, head_w[s]) + head_b[s]
      if self.attention:
        # Anchor steps overwrite one slot of the anchor memory (values and attention keys).
        put = (write_anchor * tf.one_hot(anchor_pos, num_anchors))[None, :, None]
        anchors = anchors * (1.0 - put) + (out * (1.0 - anchor_zero))[:, None, :] * put
        keys = keys * (1.0 - put) + tf.matmul(out, p["attn_w1"])[:, None, :] * put
        query = tf.tanh(keys + tf.matmul(out, p["attn_w2"])[:, None, :])
        att = tf.einsum("bah,h->ba", query, p["attn_v"])
        att = tf.pad(att, [[0, 0], [0, width - num_anchors]])
        logits = tf.where(use_attn > 0, att, logits)
      if self.temperature is not None:
        logits = logits / self.temperature
      logits = tf.where(use_tanh > 0, tanh_c * tf.tanh(logits), logits)
      logits += tab["mask"][s]  # padded choices get a -1e9 logit
      if given is None:
        d = tf.argmax(logits + gumbel[s], axis=1, output_type=tf.int32)
      else:
        d = given[:, index]
      log_p = tf.nn.log_softmax(logits, axis=1)
      log_prob += decide * tf.gather(log_p, d, batch_dims=1)
      entropy -= decide * tf.reduce_sum(tf.exp(log_p) * log_p, axis=1)
      chosen = chosen.write(s, d)
      # Next input: the start embedding, the decision's embedding, or the chosen anchor.
      x = feed_g * g + feed_emb * tf.gather(emb[s], d)
      if self.attention:
        x += feed_anchor * tf.gather(anchors, tf.minimum(d, num_anchors - 1), batch_dims=1)
      return s + 1, x, c, h, anchors, keys, log_prob, entropy, chosen

    memory = tf.zeros(tf.stack([batch_size, num_anchors, h_size]))
    state = [zeros] * self.lstm_num_layers
    loop_vars = (tf.constant(0), g, state, list(state), memory, memory,
                 tf.zeros(tf.stack([batch_size])), tf.zeros(tf.stack([batch_size])),
                 tf.TensorArray(tf.int32, size=num_steps))
    out = tf.while_loop(lambda s, *_: s < num_steps, body, loop_vars,
                        maximum_iterations=num_steps)
    _, _, _, _, _, _, log_prob, entropy, chosen = out
    decisions = tf.transpose(tf.gather(chosen.stack(), tab["decide_steps"]))
    return decisions, log_prob, entropy
