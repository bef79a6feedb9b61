"""Search strategies behind one propose/feedback interface: the LSTM controller trained with
REINFORCE or PPO, random search and regularized evolution."""

import inspect
from typing import Any, Optional, Sequence

import gin

from nasnet_rl import search_space as search_space_lib
from nasnet_rl.controller.baselines import RandomSearch, RegularizedEvolution
from nasnet_rl.controller.lstm_controller import LSTMController
from nasnet_rl.controller.reinforce import ReinforceStrategy
from nasnet_rl.controller.strategy import Strategy

STRATEGIES = ("reinforce", "ppo", "random", "evolution")


def _settings_of(cls, exclude=()):
  return [p for p in inspect.signature(cls.__init__).parameters
          if p not in ("self",) + tuple(exclude)]


@gin.configurable
def make_strategy(name: str = "reinforce", num_choices: Optional[Sequence[int]] = None,
                  decisions: Optional[Sequence[search_space_lib.Decision]] = None,
                  seed: int = 0, **settings: Any) -> Strategy:
  """A strategy by name over `num_choices` (or a `Decision` list, which the LSTM controller
  uses for attention over earlier blocks).

  `settings` are keyword arguments of the strategy's classes (LSTMController and
  ReinforceStrategy for 'reinforce'/'ppo', RegularizedEvolution for 'evolution'); what they
  leave unset comes from gin bindings of those classes, then from the code defaults. 'ppo' is
  the controller with `update='ppo'`; 'reinforce' takes `update` from gin (default
  'reinforce')."""
  if name not in STRATEGIES:
    raise ValueError(f"unknown strategy {name!r}; expected one of {list(STRATEGIES)}")
  if decisions is not None:
    sizes = [d.num_choices for d in decisions]
    if num_choices is not None and list(num_choices) != sizes:
      raise ValueError("num_choices and decisions disagree; pass one of them")
    num_choices = sizes
  if num_choices is None:
    raise ValueError("make_strategy needs num_choices or decisions")
  if name in ("reinforce", "ppo"):
    ctrl_keys = _settings_of(LSTMController, ("num_choices", "decisions", "seed"))
    rl_keys = _settings_of(ReinforceStrategy, ("controller", "update"))
    _check_settings(name, settings, ctrl_keys + rl_keys)
    controller = LSTMController(num_choices=num_choices, decisions=decisions, seed=seed,
                                **{k: v for k, v in settings.items() if k in ctrl_keys})
    rl = {k: v for k, v in settings.items() if k in rl_keys}
    if name == "ppo":  # 'reinforce' leaves `update` to gin (gin/controller/nasnet.gin sets ppo)
      rl["update"] = "ppo"
    return ReinforceStrategy(controller, **rl)
  if name == "random":
    _check_settings(name, settings, [])
    return RandomSearch(num_choices, seed=seed)
  _check_settings(name, settings, _settings_of(RegularizedEvolution, ("num_choices", "seed")))
  return RegularizedEvolution(num_choices, seed=seed, **settings)


def _check_settings(name, settings, known):
  unknown = sorted(set(settings) - set(known))
  if unknown:
    raise ValueError(f"unknown setting {unknown[0]!r} for strategy {name!r}; it takes "
                     f"{sorted(known) or 'no settings'}")


__all__ = ["LSTMController", "RandomSearch", "RegularizedEvolution", "ReinforceStrategy",
           "Strategy", "STRATEGIES", "make_strategy"]
