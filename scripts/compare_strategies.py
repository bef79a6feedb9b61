"""Compare search strategies on a tabular benchmark; see nasnet_rl/cli/compare_strategies.py."""

from nasnet_rl.cli import compare_strategies

if __name__ == "__main__":
  compare_strategies.run()
