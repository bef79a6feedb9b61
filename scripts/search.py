"""Run or resume an architecture search. See nasnet_rl/cli/search.py for flags."""
from nasnet_rl.cli import search

if __name__ == "__main__":
  search.run()
