"""Pictures of genotypes (cells drawn as DAGs, SVG or PNG) and of reward curves (PNG).

`_scene` lays a genotype out once (inputs left, blocks in columns by depth, output right,
op labels slid along their edges until they stop overlapping); `_render_svg` and
`_render_png` only draw that scene, so both pictures agree. No graphviz: Pillow only.
"""

import dataclasses
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

from nasnet_rl import genotype as genotype_lib
from nasnet_rl import ops_vocabulary

Point = Tuple[float, float]

PICTURE_EXTENSIONS = (".png", ".svg")
CELLS = ("normal", "reduction")

# ---- style -----------------------------------------------------------------------------
FAMILY_COLOURS: Dict[str, str] = {
    "sep conv": "#1f6fb4", "pool": "#2e9b3a", "identity": "#333333", "conv": "#d0452c"}
_KIND_FAMILY = {"sep_conv": "sep conv", "avg_pool": "pool", "max_pool": "pool",
                "identity": "identity", "conv": "conv", "factorized_conv": "conv",
                "dil_conv": "conv"}
_CONCAT_COLOUR = "#a0a0a0"
_FILLS = {"input": "#d8f0d8", "block": "#dce8f6", "output": "#fbefc0"}
_STROKE = "#555555"
_FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_CHAR_W = 0.602      # advance of a monospace glyph, in font sizes (DejaVu Sans Mono)
_NODE_FONT = 12
_LABEL_FONT = 11
_NODE_H = 30
_ROW = 66            # vertical pitch of nodes in the busiest column
_GAP = 170           # horizontal room between node columns, where op labels go
_PAD = 20
_LABEL_TS = (0.5, 0.6, 0.4, 0.7, 0.3, 0.65, 0.35, 0.75, 0.25, 0.55, 0.45, 0.8, 0.2, 0.85, 0.15)
_BEND_STEPS = (0, 40, -40, 80, -80, 120, -120, 160, -160)


def op_family(op: str) -> str:
  """The colour family of an op: 'sep conv', 'pool', 'identity' or 'conv'."""
  spec = ops_vocabulary.OP_SPECS.get(op)
  if spec is not None:
    return _KIND_FAMILY.get(spec.kind, "conv")
  if "pool" in op:
    return "pool"
  if "sep" in op:
    return "sep conv"
  return "identity" if op in ("identity", "skip_connect", "none") else "conv"


def _text_w(text: str, size: float) -> float:
  return len(text) * size * _CHAR_W


# ---- scene: what both renderers draw ---------------------------------------------------
@dataclasses.dataclass
class _Node:
  key: str                # unique id in the document, e.g. "normal-s3"
  cx: float
  cy: float
  w: float
  h: float
  text: str
  kind: str               # input | block | output
  tooltip: str

  def box(self, grow: float = 0.0) -> Tuple[float, float, float, float]:
    return (self.cx - self.w / 2 - grow, self.cy - self.h / 2 - grow,
            self.cx + self.w / 2 + grow, self.cy + self.h / 2 + grow)


@dataclasses.dataclass
class _Edge:
  """A quadratic Bezier p0 -> c -> p1 ending in an arrow head (a triangle)."""
  p0: Point
  c: Point
  p1: Point
  colour: str
  dashed: bool
  head: Tuple[Point, Point, Point]

  def at(self, t: float) -> Point:
    u = 1 - t
    return (u * u * self.p0[0] + 2 * u * t * self.c[0] + t * t * self.p1[0],
            u * u * self.p0[1] + 2 * u * t * self.c[1] + t * t * self.p1[1])

  def polyline(self, steps: int = 32) -> List[Point]:
    return [self.at(i / steps) for i in range(steps + 1)]


@dataclasses.dataclass
class _Label:
  cx: float
  cy: float
  w: float
  h: float
  text: str
  colour: str

  def box(self, grow: float = 0.0) -> Tuple[float, float, float, float]:
    return (self.cx - self.w / 2 - grow, self.cy - self.h / 2 - grow,
            self.cx + self.w / 2 + grow, self.cy + self.h / 2 + grow)


@dataclasses.dataclass
class _Text:
  x: float
  y: float                # vertical centre
  text: str
  size: float
  colour: str = "#000000"
  bold: bool = False
  anchor: str = "start"   # start | middle


@dataclasses.dataclass
class _Scene:
  width: float = 0.0
  height: float = 0.0
  nodes: List[_Node] = dataclasses.field(default_factory=list)
  edges: List[_Edge] = dataclasses.field(default_factory=list)
  labels: List[_Label] = dataclasses.field(default_factory=list)
  texts: List[_Text] = dataclasses.field(default_factory=list)


def _overlap(a, b) -> float:
  """Area shared by two (x0, y0, x1, y1) boxes."""
  w = min(a[2], b[2]) - max(a[0], b[0])
  h = min(a[3], b[3]) - max(a[1], b[1])
  return w * h if w > 0 and h > 0 else 0.0


def _inside(p: Point, box) -> bool:
  return box[0] < p[0] < box[2] and box[1] < p[1] < box[3]


def _arrow(p1: Point, c: Point, length: float = 8.0, half: float = 3.5):
  """Triangle with its tip at p1, pointing along the curve's end tangent (c -> p1)."""
  dx, dy = p1[0] - c[0], p1[1] - c[1]
  n = math.hypot(dx, dy) or 1.0
  ux, uy = dx / n, dy / n
  bx, by = p1[0] - ux * length, p1[1] - uy * length
  return (p1, (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half))


def _route(p0: Point, p1: Point, base: float, obstacles) -> _Edge:
  """Bends the edge (control point off the chord) until it misses every obstacle box."""
  dx, dy = p1[0] - p0[0], p1[1] - p0[1]
  n = math.hypot(dx, dy) or 1.0
  nx, ny = -dy / n, dx / n
  mx, my = (p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2
  best, best_hits = None, None
  for step in _BEND_STEPS:
    off = base + step
    c = (mx + nx * off, my + ny * off)
    edge = _Edge(p0, c, p1, "", False, _arrow(p1, c))
    pts = edge.polyline(24)
    hits = sum(any(_inside(p, box) for p in pts) for box in obstacles)
    if best_hits is None or hits < best_hits:
      best, best_hits = edge, hits
    if hits == 0:
      break
  return best


def _place_label(edge: _Edge, text: str, colour: str, obstacles, foreign: Sequence[Point],
                 bounds) -> _Label:
  """Slides the op label along its edge to the spot that overlaps no node or placed label
  and covers the fewest points of other edges (so each label reads as its own edge's)."""
  w, h = _text_w(text, _LABEL_FONT) + 8, _LABEL_FONT + 5
  best, best_cost = None, None
  spots = [(t, 0.0) for t in _LABEL_TS]  # on the edge first, then just above / below it
  spots += [(t, dy) for t in _LABEL_TS for dy in (-h / 2 - 1, h / 2 + 1)]
  for rank, (t, dy) in enumerate(spots):
    x, y = edge.at(t)
    label = _Label(x, y + dy, w, h, text, colour)
    box = label.box(1.5)
    cost = 1e3 * sum(_overlap(box, o) for o in obstacles) + rank
    cost += 40 * sum(_inside(p, box) for p in foreign)
    if box[0] < bounds[0] or box[2] > bounds[2] or box[1] < bounds[1] or box[3] > bounds[3]:
      cost += 1e6
    if best_cost is None or cost < best_cost:
      best, best_cost = label, cost
  return best


def _ports(ends: Dict[int, List[Tuple[float, int]]], half: float) -> Dict[int, Dict[int, float]]:
  """Spreads the edges meeting one side of a node along it, ordered by the far end's y."""
  out: Dict[int, Dict[int, float]] = {}
  for key, items in ends.items():
    m = len(items)
    gap = min(7.0, 2 * half / max(m - 1, 1))
    out[key] = {w: (j - (m - 1) / 2) * gap for j, (_, w) in enumerate(sorted(items))}
  return out


def _depths(cell: genotype_lib.Cell) -> List[int]:
  """Longest path from the cell inputs to each hidden state (inputs are depth 0)."""
  depth = [0, 0]
  for b in cell.blocks:
    depth.append(1 + max(depth[i] for i in b.inputs))
  return depth


def _layout_cell(scene: _Scene, cell: genotype_lib.Cell, which: str,
                 ox: float, oy: float) -> Tuple[float, float]:
  """Appends one cell's nodes, edges and labels at (ox, oy); returns its (width, height)."""
  scene.texts.append(_Text(ox + _PAD, oy + 10, f"{which} cell", 13, bold=True))
  top = oy + 26
  depth = _depths(cell)
  out_col = max(depth) + 1
  texts = {0: "h[i-2]", 1: "h[i-1]"}
  for k, b in enumerate(cell.blocks):
    texts[k + 2] = f"{b.combine} {k}"
  node_w = max(_text_w(t, _NODE_FONT) for t in list(texts.values()) + ["concat"]) + 18
  pitch = node_w + _GAP
  columns: Dict[int, List[int]] = {}
  for s, d in enumerate(depth):
    columns.setdefault(d, []).append(s)
  body_h = max(max(len(c) for c in columns.values()), 3) * _ROW
  pos: Dict[int, Point] = {}
  for d in sorted(columns):
    states = columns[d]
    if d > 0:  # barycentre order: blocks sit near the states they read, fewer crossings
      states = sorted(states, key=lambda s: (
          sum(pos[i][1] for i in cell.blocks[s - 2].inputs) / 2, s))
    for j, s in enumerate(states):
      pos[s] = (ox + _PAD + node_w / 2 + d * pitch, top + (j + 0.5) * body_h / len(states))
  out_pos = (ox + _PAD + node_w / 2 + out_col * pitch, top + body_h / 2)

  nodes: Dict[object, _Node] = {}
  for s, (x, y) in pos.items():
    if s < 2:
      kind = "input"
      tip = f"{genotype_lib.state_name(s)}: output of cell {'i-2' if s == 0 else 'i-1'}"
    else:
      b = cell.blocks[s - 2]
      (i0, i1), (o0, o1) = b.inputs, b.ops
      kind = "block"
      tip = (f"s{s} = {b.combine}({o0}({genotype_lib.state_name(i0)}), "
             f"{o1}({genotype_lib.state_name(i1)}))")
    nodes[s] = _Node(f"{which}-s{s}", x, y, node_w, _NODE_H, texts[s], kind, tip)
  tip = "out = concat(" + ", ".join(genotype_lib.state_name(i) for i in cell.concat) + ")"
  nodes["out"] = _Node(f"{which}-out", out_pos[0], out_pos[1], node_w, _NODE_H, "concat",
                       "output", tip)
  scene.nodes.extend(nodes[s] for s in sorted(pos))
  scene.nodes.append(nodes["out"])

  # (source, target, op or None) in a fixed order: block inputs, then the output concat.
  wires = [(i, k + 2, op) for k, b in enumerate(cell.blocks) for i, op in zip(b.inputs, b.ops)]
  wires += [(i, "out", None) for i in cell.concat]
  out_ends: Dict[object, List[Tuple[float, int]]] = {}
  in_ends: Dict[object, List[Tuple[float, int]]] = {}
  for w, (src, dst, _) in enumerate(wires):
    out_ends.setdefault(src, []).append((nodes[dst].cy, w))
    in_ends.setdefault(dst, []).append((nodes[src].cy, w))
  half = _NODE_H / 2 - 6
  out_dy, in_dy = _ports(out_ends, half), _ports(in_ends, half)
  pair_count: Dict[Tuple[object, object], int] = {}
  for src, dst, _ in wires:
    pair_count[(src, dst)] = pair_count.get((src, dst), 0) + 1
  pair_seen: Dict[Tuple[object, object], int] = {}
  width = out_pos[0] + node_w / 2 + _PAD - ox
  bounds = (ox, top - 4, ox + width, top + body_h + 4)
  edges = []
  for w, (src, dst, op) in enumerate(wires):
    a, b = nodes[src], nodes[dst]
    n_pair, j = pair_count[(src, dst)], pair_seen.get((src, dst), 0)
    pair_seen[(src, dst)] = j + 1
    base = (j - (n_pair - 1) / 2) * 44.0  # fan out parallel edges (same state read twice)
    others = [n.box(3) for key, n in nodes.items() if key not in (src, dst)]
    edge = _route((a.cx + a.w / 2, a.cy + out_dy[src][w]),
                  (b.cx - b.w / 2, b.cy + in_dy[dst][w]), base, others)
    edge.colour = _CONCAT_COLOUR if op is None else FAMILY_COLOURS[op_family(op)]
    edge.dashed = op is None
    edges.append(edge)
  scene.edges.extend(edges)
  # Labels go on after all edges are routed, so they can dodge edges they do not belong to.
  samples = [e.polyline(64) for e in edges]
  label_obstacles = [n.box(2) for n in nodes.values()]
  for w, (_, _, op) in enumerate(wires):
    if op is None:
      continue
    foreign = [p for v, pts in enumerate(samples) if v != w for p in pts]
    label = _place_label(edges[w], op, edges[w].colour, label_obstacles, foreign, bounds)
    scene.labels.append(label)
    label_obstacles.append(label.box(1))
  return width, body_h + (top - oy)


def _scene(genotype: genotype_lib.Genotype, cells: Sequence[str], title: str) -> _Scene:
  """Title, the requested cells stacked top to bottom, then a legend of op colours."""
  for which in cells:
    if which not in CELLS:
      raise ValueError(f"unknown cell {which!r}; expected one of {list(CELLS)}")
  scene = _Scene()
  y, width = float(_PAD), 0.0
  if title:
    scene.texts.append(_Text(_PAD, y + 8, title, 15, bold=True))
    width = _text_w(title, 15) + 2 * _PAD
    y += 28
  for which in cells:
    w, h = _layout_cell(scene, getattr(genotype, which), which, 0.0, y)
    width = max(width, w)
    y += h + 18
  x = float(_PAD)
  legend = [(f, c, False) for f, c in FAMILY_COLOURS.items()]
  legend.append(("into output", _CONCAT_COLOUR, True))
  for name, colour, dashed in legend:
    p0, p1 = (x, y + 6), (x + 26, y + 6)
    c = ((p0[0] + p1[0]) / 2, p0[1])
    scene.edges.append(_Edge(p0, c, p1, colour, dashed, _arrow(p1, c)))
    scene.texts.append(_Text(x + 32, y + 6, name, _LABEL_FONT, colour="#333333"))
    x += 32 + _text_w(name, _LABEL_FONT) + 22
  scene.width = max(width, x)
  scene.height = y + 12 + _PAD
  return scene


# ---- SVG ---------------------------------------------------------------------------------
def _f(v: float) -> str:
  return f"{v:.1f}"


def _svg_text(t: _Text) -> str:
  weight = ' font-weight="bold"' if t.bold else ""
  return (f'<text x="{_f(t.x)}" y="{_f(t.y)}" dy="0.35em" font-size="{_f(t.size)}" '
          f'fill="{t.colour}" text-anchor="{t.anchor}"{weight}>{escape(t.text)}</text>')


def _render_svg(scene: _Scene) -> str:
  """The scene as a standalone SVG document (edges under nodes, labels on top)."""
  out = ['<?xml version="1.0" encoding="UTF-8"?>',
         f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(scene.width)}" '
         f'height="{_f(scene.height)}" viewBox="0 0 {_f(scene.width)} {_f(scene.height)}" '
         f'font-family={quoteattr(_FONT_FAMILY)}>',
         '<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>']
  for e in scene.edges:
    dash = ' stroke-dasharray="5 4"' if e.dashed else ""
    out.append(f'<path d="M {_f(e.p0[0])} {_f(e.p0[1])} Q {_f(e.c[0])} {_f(e.c[1])} '
               f'{_f(e.p1[0])} {_f(e.p1[1])}" fill="none" stroke="{e.colour}" '
               f'stroke-width="1.4"{dash}/>')
    pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in e.head)
    out.append(f'<polygon points="{pts}" fill="{e.colour}"/>')
  for n in scene.nodes:
    x0, y0, _, _ = n.box()
    out.append(f'<g id={quoteattr(n.key)} class="node {n.kind}"><title>{escape(n.tooltip)}</title>'
               f'<rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(n.w)}" height="{_f(n.h)}" rx="6" '
               f'fill="{_FILLS[n.kind]}" stroke="{_STROKE}" stroke-width="1.2"/>'
               + _svg_text(_Text(n.cx, n.cy, n.text, _NODE_FONT, anchor="middle")) + "</g>")
  for lab in scene.labels:
    x0, y0, _, _ = lab.box()
    out.append(f'<g class="op"><rect x="{_f(x0)}" y="{_f(y0)}" width="{_f(lab.w)}" '
               f'height="{_f(lab.h)}" rx="3" fill="#ffffff" stroke="{lab.colour}" '
               f'stroke-width="0.8"/>'
               + _svg_text(_Text(lab.cx, lab.cy, lab.text, _LABEL_FONT, lab.colour,
                                 anchor="middle")) + "</g>")
  out.extend(_svg_text(t) for t in scene.texts)
  out.append("</svg>")
  return "\n".join(out) + "\n"


def cell_svg(genotype: genotype_lib.Genotype, which: str = "normal") -> str:
  """One cell ('normal' or 'reduction') as a standalone SVG document."""
  return _render_svg(_scene(genotype, [which], genotype.name))


def _title(genotype: genotype_lib.Genotype) -> str:
  return f"{genotype.name or '(unnamed)'}  [ops={genotype.ops}, B={genotype.num_blocks}]"


def genotype_svg(genotype: genotype_lib.Genotype) -> str:
  """Both cells stacked (normal above reduction) under the genotype's name."""
  return _render_svg(_scene(genotype, CELLS, _title(genotype)))


# ---- PNG (Pillow) --------------------------------------------------------------------------
_FONTS: Dict[Tuple[int, bool], object] = {}


def _font(size: int, bold: bool = False):
  """DejaVu Sans Mono when installed (matches the layout's metrics), else Pillow's default."""
  from PIL import ImageFont
  key = (size, bold)
  if key not in _FONTS:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    try:
      _FONTS[key] = ImageFont.truetype(name, size)
    except OSError:
      try:
        _FONTS[key] = ImageFont.load_default(size=size)
      except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        _FONTS[key] = ImageFont.load_default()
  return _FONTS[key]


def _draw_text(draw, x: float, y: float, text: str, size: int, colour: str,
               bold: bool = False, anchor: str = "start") -> None:
  """Draws text vertically centred on y, starting at or centred on x."""
  font = _font(size, bold)
  x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
  left = x - (x1 - x0) / 2 if anchor == "middle" else x
  draw.text((left - x0, y - (y1 - y0) / 2 - y0), text, fill=colour, font=font)


def _dashed(draw, pts: Sequence[Point], colour: str, width: int, on: float, off: float) -> None:
  """Draws a polyline as dashes of length `on` separated by gaps of length `off`."""
  pos, period = 0.0, on + off
  for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
    seg = math.hypot(xb - xa, yb - ya)
    s = 0.0
    while s < seg:
      phase = (pos + s) % period
      step = min(seg - s, (on - phase) if phase < on else (period - phase))
      if phase < on:
        t0, t1 = s / seg, (s + step) / seg
        draw.line([(xa + (xb - xa) * t0, ya + (yb - ya) * t0),
                   (xa + (xb - xa) * t1, ya + (yb - ya) * t1)], fill=colour, width=width)
      s += max(step, 1e-6)
    pos += seg


def _render_png(scene: _Scene, path: str, scale: float = 1.0, supersample: int = 3) -> None:
  """Draws the scene with Pillow at `supersample`x, then downsizes (cheap anti-aliasing)."""
  from PIL import Image, ImageDraw
  k = scale * supersample
  img = Image.new("RGB", (math.ceil(scene.width * k), math.ceil(scene.height * k)), "white")
  draw = ImageDraw.Draw(img)

  def sc(p: Point) -> Point:
    return (p[0] * k, p[1] * k)

  for e in scene.edges:
    pts = [sc(p) for p in e.polyline()]
    if e.dashed:
      _dashed(draw, pts, e.colour, max(1, round(1.4 * k)), 5 * k, 4 * k)
    else:
      draw.line(pts, fill=e.colour, width=max(1, round(1.4 * k)), joint="curve")
    draw.polygon([sc(p) for p in e.head], fill=e.colour)
  for n in scene.nodes:
    x0, y0, x1, y1 = n.box()
    draw.rounded_rectangle([x0 * k, y0 * k, x1 * k, y1 * k], radius=6 * k,
                           fill=_FILLS[n.kind], outline=_STROKE, width=max(1, round(1.2 * k)))
    _draw_text(draw, n.cx * k, n.cy * k, n.text, round(_NODE_FONT * k), "#000000",
               anchor="middle")
  for lab in scene.labels:
    x0, y0, x1, y1 = lab.box()
    draw.rounded_rectangle([x0 * k, y0 * k, x1 * k, y1 * k], radius=3 * k, fill="white",
                           outline=lab.colour, width=max(1, round(0.8 * k)))
    _draw_text(draw, lab.cx * k, lab.cy * k, lab.text, round(_LABEL_FONT * k), lab.colour,
               anchor="middle")
  for t in scene.texts:
    _draw_text(draw, t.x * k, t.y * k, t.text, round(t.size * k), t.colour, t.bold, t.anchor)
  size = (math.ceil(scene.width * scale), math.ceil(scene.height * scale))
  _save_png(img.resize(size, Image.LANCZOS), path)


def _save_png(img, path: str) -> None:
  """Writes atomically, like genotype.save: a reader never sees half a file."""
  tmp = path + ".tmp"
  img.save(tmp, format="PNG")
  os.replace(tmp, path)


def save_picture(genotype: genotype_lib.Genotype, path: str, scale: float = 1.0) -> None:
  """Writes both cells to `path`: .svg (genotype_svg) or .png (same layout, via Pillow)."""
  ext = os.path.splitext(path)[1].lower()
  if ext == ".svg":
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      f.write(genotype_svg(genotype))
    os.replace(tmp, path)
  elif ext == ".png":
    _render_png(_scene(genotype, CELLS, _title(genotype)), path, scale=scale)
  else:
    raise ValueError(f"cannot save a genotype picture as {ext or '(no extension)'!r} ({path}); "
                     f"supported extensions: {', '.join(PICTURE_EXTENSIONS)}")


# ---- NAS-Bench-201 cells --------------------------------------------------------------------
def nb201_cell_png(edges: Sequence[Tuple[int, int, str]], path: str, title: str = "",
                   num_nodes: int = 4) -> None:
  """A NAS-Bench-201 cell: nodes 0..n-1 left to right, each (target, source, op) edge an arc
  above the nodes labelled with its op (`none` edges dashed and grey: they carry nothing)."""
  from PIL import Image, ImageDraw
  ss, gap, node_w, node_h = 3, 190, 44, 30
  width = _PAD * 2 + node_w + gap * (num_nodes - 1)
  span = max(t - s for t, s, _ in edges) if edges else 1
  base_y = 60 + 48 * span
  height = base_y + node_h + _PAD
  img = Image.new("RGB", (width * ss, height * ss), "white")
  draw = ImageDraw.Draw(img)
  if title:
    _draw_text(draw, width / 2 * ss, 16 * ss, title, 13 * ss, "#000000", True, "middle")

  def centre(n: int) -> Point:
    return (_PAD + node_w / 2 + n * gap, base_y + node_h / 2)

  for target, source, op in edges:
    (x0, y), (x1, _) = centre(source), centre(target)
    lift = 26 + 48 * (target - source - 1) + (6 * source if target - source > 1 else 0)
    top = base_y - lift
    pts = []
    for k in range(33):  # quadratic Bezier from source to target through (mid, top)
      t = k / 32
      px = (1 - t) ** 2 * x0 + 2 * t * (1 - t) * (x0 + x1) / 2 + t ** 2 * x1
      py = (1 - t) ** 2 * base_y + 2 * t * (1 - t) * (2 * top - base_y) + t ** 2 * base_y
      pts.append((px * ss, py * ss))
    colour = "#b0b0b0" if op == "none" else FAMILY_COLOURS[op_family(op)]
    if op == "none":
      _dashed(draw, pts, colour, 2 * ss, 5 * ss, 4 * ss)
    else:
      draw.line(pts, fill=colour, width=2 * ss, joint="curve")
    lx, ly = (x0 + x1) / 2, top + (base_y - top) / 2
    w = _text_w(op, _LABEL_FONT) + 8
    draw.rounded_rectangle([(lx - w / 2) * ss, (ly - 9) * ss, (lx + w / 2) * ss, (ly + 9) * ss],
                           radius=3 * ss, fill="white", outline=colour, width=ss)
    _draw_text(draw, lx * ss, ly * ss, op, _LABEL_FONT * ss, colour, anchor="middle")
  for n in range(num_nodes):
    cx, cy = centre(n)
    kind = "input" if n == 0 else ("output" if n == num_nodes - 1 else "block")
    draw.rounded_rectangle([(cx - node_w / 2) * ss, (cy - node_h / 2) * ss,
                            (cx + node_w / 2) * ss, (cy + node_h / 2) * ss], radius=6 * ss,
                           fill=_FILLS[kind], outline=_STROKE, width=ss)
    _draw_text(draw, cx * ss, cy * ss, str(n), _NODE_FONT * ss, "#000000", anchor="middle")
  _save_png(img.resize((width, height), Image.LANCZOS), path)
