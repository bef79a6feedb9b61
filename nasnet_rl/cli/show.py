"""Draw a genotype's normal and reduction cells as a picture (PNG or SVG).

  python scripts/show.py --genotype=nasnet_a --out=nasnet_a.png
  python scripts/show.py --genotype=runs/x/genotype.json --out=cells.svg --print
"""

import sys

from absl import app
from absl import flags

from nasnet_rl import genotype as genotype_lib
from nasnet_rl import viz
from nasnet_rl.cli import common

FLAGS = common.FLAGS
common.define_genotype_flag()
if "out" not in FLAGS:
  flags.DEFINE_string("out", None, "Output picture (.png or .svg).")
if "print" not in FLAGS:
  flags.DEFINE_bool("print", False, "Also print the genotype as text.")


def main(argv):
  del argv
  if not FLAGS.out:
    raise ValueError("--out is required (a .png or .svg path)")
  geno = genotype_lib.load(FLAGS.genotype or "nasnet_a")
  viz.save_picture(geno, FLAGS.out)
  if FLAGS.print:
    print(geno)
  print(f"wrote {FLAGS.out}")


def run():
  """Console-script entry point (`nasnet-show`)."""
  try:
    app.run(main)
  except ValueError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  run()
