"""Shared-weight score vs standalone accuracy of sampled cells (Kendall tau-b, Spearman rho).
See nasnet_rl/cli/rank_correlation.py for flags."""
from nasnet_rl.cli import rank_correlation

if __name__ == "__main__":
  rank_correlation.run()
