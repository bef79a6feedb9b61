"""Tabular-benchmark mode: search spaces whose every cell has been trained already, so a whole
search costs seconds and can be repeated over many seeds against its random baseline."""

from nasnet_rl.benchmarks.nb201 import NB201Space, format_arch, parse_arch
from nasnet_rl.benchmarks.table import TabularBenchmark

__all__ = ["NB201Space", "TabularBenchmark", "format_arch", "parse_arch"]
