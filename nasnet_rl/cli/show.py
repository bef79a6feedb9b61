"""Draw a genotype's normal and reduction cells as a picture (PNG or SVG).

  python scripts/show.py --genotype=nasnet_a --out=nasnet_a.png
  python scripts/show.py --genotype=runs/x/genotype.json --out=cells.svg --print
  python scripts/show.py --genotype=runs/search1 --out=best.png   # a run directory's best cell
"""

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
  common.run_main(main)


if __name__ == "__main__":
  run()
