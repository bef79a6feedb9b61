"""nasnet-compare-cells for a checkout: the same tool, flags and --help."""
from nasnet_rl.cli import launch

if __name__ == "__main__":
  launch.compare_cells()
