"""Transfer: scale a found cell to CIFAR- and ImageNet-size networks, train it on a new dataset
(one device or many under tf.distribute), report its size and cost, export it.

  sc = transfer.scale("mobile")                       # NASNet-A Mobile numbers, any genotype
  model = transfer.build(genotype, sc, num_classes=10)
  print(transfer.format_report(transfer.network_report(model)))
"""

from nasnet_rl.transfer.report import format_report
from nasnet_rl.transfer.report import network_report
from nasnet_rl.transfer.scaling import PRESETS
from nasnet_rl.transfer.scaling import Scale
from nasnet_rl.transfer.scaling import build
from nasnet_rl.transfer.scaling import choose_stem
from nasnet_rl.transfer.scaling import get_preset
from nasnet_rl.transfer.scaling import parse_size
from nasnet_rl.transfer.scaling import scale
