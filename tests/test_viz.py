"""Genotype pictures: well-formed SVG naming every op and block, valid PNGs, clear errors."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from nasnet_rl import genotype as g
from nasnet_rl import ops_vocabulary
from nasnet_rl import plots
from nasnet_rl import viz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SVG_NS = "{http://www.w3.org/2000/svg}"


def _check_png(path, min_w=200, min_h=100):
  """Pillow can decode it, the size is sensible and it is not a blank canvas."""
  with Image.open(path) as img:
    assert img.format == "PNG"
    img.load()
    w, h = img.size
    assert min_w <= w <= 5000 and min_h <= h <= 5000
    colours = img.convert("RGB").getcolors(maxcolors=w * h)
    assert len(colours) > 10


@pytest.mark.parametrize("name", g.published_names())
@pytest.mark.parametrize("which", viz.CELLS)
def test_cell_svg_names_every_op_and_block(name, which):
  geno = g.published(name)
  cell = getattr(geno, which)
  root = ET.fromstring(viz.cell_svg(geno, which))
  assert root.tag == SVG_NS + "svg"
  text = " ".join(root.itertext())
  for b in cell.blocks:
    for op in b.ops:
      assert op in text
  ids = {el.get("id") for el in root.iter() if el.get("id")}
  for k, b in enumerate(cell.blocks):
    assert f"{which}-s{k + 2}" in ids
    assert f"{b.combine} {k}" in text
  assert {f"{which}-s0", f"{which}-s1", f"{which}-out"} <= ids
  # One op label per block input, one dashed edge per concatenated state.
  assert len([el for el in root.iter(SVG_NS + "g") if el.get("class") == "op"]) == \
      2 * len(cell.blocks)
  dashed = [el for el in root.iter(SVG_NS + "path") if el.get("stroke-dasharray")]
  assert len(dashed) == len(cell.concat) + 1  # + the legend's sample


def test_genotype_svg_has_both_cells_and_title_and_is_deterministic():
  geno = g.published("nasnet_a")
  svg = viz.genotype_svg(geno)
  root = ET.fromstring(svg)
  text = " ".join(root.itertext())
  assert "nasnet_a" in text and "normal cell" in text and "reduction cell" in text
  ids = [el.get("id") for el in root.iter() if el.get("id")]
  assert len(ids) == len(set(ids)) == 2 * (geno.num_blocks + 3)
  assert viz.genotype_svg(g.published("nasnet_a")) == svg
  # the same picture in other processes with other string hashes (set and dict orders differ);
  # the old last line compared two calls in one process, which a hash-ordered layout passes.
  # Deliberate bug it catches: a layout whose ties are broken by hash(label) (in viz.py's
  # barycentre sort), the same within a process, not across processes
  code = ("import sys\nfrom nasnet_rl import genotype as g, viz\n"
          "sys.stdout.write(viz.genotype_svg(g.published('nasnet_a')))")
  for hash_seed in ("1", "2"):
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONHASHSEED=hash_seed))
    assert other.returncode == 0, other.stderr[-2000:]
    assert other.stdout == svg, hash_seed


def test_svg_escapes_names():
  geno = g.Genotype.from_dict(dict(g.published("enas_micro").to_dict(), name="a<b & c"))
  root = ET.fromstring(viz.genotype_svg(geno))
  assert "a<b & c" in " ".join(root.itertext())


def test_labels_do_not_overlap_each_other_or_nodes():
  for name in g.published_names():
    scene = viz._scene(g.published(name), viz.CELLS, name)
    boxes = [lab.box() for lab in scene.labels] + [n.box() for n in scene.nodes]
    for i, a in enumerate(boxes):
      for b in boxes[i + 1:]:
        assert viz._overlap(a, b) == 0.0, (name, a, b)


@pytest.mark.parametrize("name", g.published_names())
def test_save_picture_png_and_svg(name, tmp_path):
  geno = g.published(name)
  png = tmp_path / f"{name}.png"
  viz.save_picture(geno, str(png))
  _check_png(png, min_w=400, min_h=300)
  svg = tmp_path / f"{name}.SVG"
  viz.save_picture(geno, str(svg))
  assert svg.read_text() == viz.genotype_svg(geno)
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted([png.name, svg.name])


def test_save_picture_rejects_unknown_extension(tmp_path):
  geno = g.published("nasnet_a")
  for bad in ("cell.jpg", "cell"):
    with pytest.raises(ValueError, match=r"\.png, \.svg"):
      viz.save_picture(geno, str(tmp_path / bad))
  assert not list(tmp_path.iterdir())


def test_unknown_cell_name():
  with pytest.raises(ValueError, match="reduction"):
    viz.cell_svg(g.published("nasnet_a"), "reduce")


def test_op_families_cover_every_vocabulary_op():
  for ops in ops_vocabulary.VOCABULARIES.values():
    for op in ops:
      assert viz.op_family(op) in viz.FAMILY_COLOURS
  assert viz.op_family("sep_conv_3x3") == "sep conv"
  assert viz.op_family("max_pool_7x7") == "pool"
  assert viz.op_family("conv_1x7_7x1") == "conv"


@pytest.mark.parametrize("rewards", [
    [0.1 * i + 0.05 * (i % 3) for i in range(40)],
    [0.5],
    [],
    [0.3, float("nan"), 0.4, 0.4],
])
def test_reward_curve_png(rewards, tmp_path):
  path = tmp_path / "rewards.png"
  plots.reward_curve_png(rewards, str(path), title="valid accuracy")
  _check_png(path)
  assert [p.name for p in tmp_path.iterdir()] == ["rewards.png"]


def test_band_curves_and_scatter_png(tmp_path):
  mean = [50 + 10 * (1 - 0.9 ** i) for i in range(30)]
  series = {"random": (mean, [m - 1 for m in mean], [m + 1 for m in mean]),
            "reinforce": ([m + 1 for m in mean], mean, [m + 2 for m in mean])}
  plots.band_curves_png(series, str(tmp_path / "bands.png"), title="t", xlabel="queries",
                        ylabel="test accuracy (%)")
  _check_png(tmp_path / "bands.png")
  points = [(0.6 + 0.01 * i, 0.78 + 0.002 * (i % 5)) for i in range(10)] + [(float("nan"), 1)]
  plots.scatter_png(points, str(tmp_path / "scatter.png"), title="score vs accuracy",
                    xlabel="score", ylabel="accuracy", labels=[f"c{i}" for i in range(11)])
  _check_png(tmp_path / "scatter.png")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["bands.png", "scatter.png"]

