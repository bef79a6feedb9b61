"""Derived cell vs random cells at the same budget. See nasnet_rl/cli/compare.py for flags."""
from nasnet_rl.cli import compare

if __name__ == "__main__":
  compare.run()
