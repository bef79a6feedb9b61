"""Transfer a cell to a new dataset and export it. See nasnet_rl/cli/transfer.py for flags."""
from nasnet_rl.cli import transfer

if __name__ == "__main__":
  transfer.run()
