"""Train a genotype's child network on a dataset (standalone training).

  nasnet-train --gin_file=gin/train/fashion_mnist_cpu.gin --workdir=runs/fmnist
  nasnet-train --genotype=path/to/genotype.json --gin.train_child.epochs=10 ...
"""

import json

import gin

from nasnet_rl import data as data_lib
from nasnet_rl import distribute
from nasnet_rl import genotype as genotype_lib
from nasnet_rl.child import trainer
from nasnet_rl.cli import banner
from nasnet_rl.cli import common
from nasnet_rl.cli import flagdefs

FLAGS = common.FLAGS
flagdefs.define("train")


@gin.configurable
def train_main(workdir: str, genotype: str = "nasnet_a", seed: int = 0):
  """Loads the genotype (a JSON file, published name or run directory) and the dataset named
  by gin, trains (resuming from the workdir's newest checkpoint), writes the run directory.
  config.gin is written once the genotype, the data and the checkpoint (if any) are good.
  The strategy comes first: MultiWorkerMirroredStrategy must precede every other TF op."""
  strategy = distribute.make_distribution()
  geno = genotype_lib.load(genotype)
  splits = data_lib.load_dataset(seed=seed)
  print(f"training {geno.name or genotype} on {splits.name}: "
        f"{splits.sizes} examples, image {splits.image_shape}", flush=True)
  with common.validated_unless_resume_fails(workdir):  # train_child validates after its restore
    metrics = trainer.train_child(geno, splits, workdir, seed=seed, strategy=strategy)
  summary = {k: metrics[k] for k in ("params", "val_accuracy", "test_accuracy",
                                     "train_seconds", "images_per_second") if k in metrics}
  print(json.dumps(summary, sort_keys=True), flush=True)
  return metrics


def main(argv):
  del argv
  params = list(FLAGS.gin_param)
  if FLAGS.genotype:
    params.append(f"train_main.genotype = {FLAGS.genotype!r}")
  if FLAGS.seed is not None:
    params.append(f"train_main.seed = {FLAGS.seed}")
  workdir = common.start_run(params)
  print(banner.train(workdir, banner.value("train_main", "genotype", "nasnet_a")), flush=True)
  train_main(workdir)
  common.finish_run(workdir)


def run():
  """Console-script entry point (`nasnet-train`)."""
  common.run_main(main)


if __name__ == "__main__":
  run()
