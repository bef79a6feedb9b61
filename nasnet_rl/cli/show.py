"""Draw a genotype's normal and reduction cells as a picture (PNG or SVG).

  nasnet-show --genotype=nasnet_a --out=nasnet_a.png
  nasnet-show --genotype=runs/x/genotype.json --out=cells.svg --print
  nasnet-show --genotype=runs/search1 --out=best.png   # a run directory's best cell
"""

from nasnet_rl import genotype as genotype_lib
from nasnet_rl import viz
from nasnet_rl.cli import common
from nasnet_rl.cli import flagdefs

FLAGS = common.FLAGS
flagdefs.define("show")


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
