"""Transfer a cell: scale it, train it on a dataset (one or many devices), export the run.

  nasnet-transfer --gin_file=gin/transfer/mobile.gin --source=nasnet_a --workdir=runs/t
  nasnet-transfer --gin_file=gin/tiny/transfer.gin --source=runs/search_fmnist ...
  nasnet-transfer --gin_file=gin/transfer/large.gin --source=nasnet_a --report_only

--source: a genotype JSON file, a published name (nasnet_a, enas_micro, pnasnet_5) or a search
run directory (its best genotype); --genotype is accepted as a synonym. --report_only prints
parameters and mult-adds per stage of the configured network and trains nothing.
"""

import dataclasses
import json
import os

import gin

from nasnet_rl import config
from nasnet_rl import data as data_lib
from nasnet_rl import jsonio
from nasnet_rl import rundir
from nasnet_rl.cli import banner
from nasnet_rl.cli import common
from nasnet_rl.cli import flagdefs
from nasnet_rl import distribute
from nasnet_rl.transfer import report
from nasnet_rl.transfer import scaling
from nasnet_rl.transfer import source as source_lib
from nasnet_rl.transfer import train

FLAGS = common.FLAGS
flagdefs.define("transfer")


@gin.configurable
def transfer_report(source: str = "nasnet_a", num_classes: int = 1000,
                    channels: int = 3) -> dict:
  """Builds the configured network (no data needed) and returns its report."""
  geno = source_lib.load_source(source)
  sc = scaling.scale()
  model = scaling.build(geno, sc, num_classes, channels)
  out = report.network_report(model)
  out.update(genotype=geno.name, size=sc.size_name, scale=dataclasses.asdict(sc))
  return out


@gin.configurable
def transfer_main(workdir: str, source: str = "nasnet_a", seed: int = 0):
  """Creates the strategy (first: MultiWorkerMirroredStrategy must precede other TF ops),
  loads the genotype and the dataset named by gin, trains, exports the run directory."""
  strategy = distribute.make_distribution()
  geno = source_lib.load_source(source)
  init_from, finetune_from, preprocessing = train.query_init_from()
  train.check_init_from(init_from, geno, finetune_from, preprocessing)  # before config.gin
  splits = data_lib.load_dataset(seed=seed)
  print(f"transferring {geno.name or source} to {splits.name}: {splits.sizes} examples, "
        f"image {splits.image_shape}", flush=True)
  # config.gin is written once the source, the data and the checkpoint (if any) are good:
  # train_transfer validates after its restore
  with common.validated_unless_resume_fails(workdir):
    metrics, _ = train.train_transfer(geno, splits, workdir, strategy=strategy, seed=seed)
  summary = {k: metrics.get(k) for k in ("size", "params", "mult_adds", "val_accuracy",
                                         "test_accuracy", "train_seconds", "images_per_second",
                                         "replicas")}
  print(json.dumps(summary, sort_keys=True), flush=True)
  return metrics


def main(argv):
  del argv
  params = list(FLAGS.gin_param)
  source = FLAGS.source or FLAGS.genotype
  if FLAGS.source and FLAGS.genotype and FLAGS.source != FLAGS.genotype:
    raise ValueError("give --source or --genotype, not both")
  if source:
    params += [f"transfer_main.source = {source!r}", f"transfer_report.source = {source!r}"]
  if FLAGS.seed is not None:
    params.append(f"transfer_main.seed = {FLAGS.seed}")
  if FLAGS.init_from:
    params.append(f"train_transfer.init_from = {FLAGS.init_from!r}")
  if FLAGS.report_only:
    config.parse(FLAGS.gin_file, params)
    out = transfer_report()
    print(report.format_report(out), flush=True)
    if FLAGS.workdir:
      rundir.acquire(FLAGS.workdir)
      with open(os.path.join(FLAGS.workdir, "report.json"), "w") as f:
        jsonio.dump(out, f, indent=2, sort_keys=True)
    return
  workdir = common.start_run(params)
  print(banner.transfer(workdir, banner.value("transfer_main", "source", "nasnet_a")), flush=True)
  transfer_main(workdir)
  common.finish_run(workdir)


def run():
  """Console-script entry point (`nasnet-transfer`)."""
  common.run_main(main)


if __name__ == "__main__":
  run()
