"""What the README and docs/*.md claim that a test can check: every command line parses for its
tool (flags exist, gin files and `--gin.X=V` bindings parse), every relative link and cited
repository path exists, and a saved model loads after a plain `import nasnet_rl`."""

import glob
import os
import re
import shlex
import subprocess
import sys

from absl import flags
import gin
import pytest

from nasnet_rl import config as config_lib
from nasnet_rl.cli import flagdefs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", "CHANGELOG.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                               recursive=True))
PLACEHOLDERS = {"DIR": "'/tmp/d'", "ROOT": "'/tmp/r'", "RUN_DIR_OR_.keras": "'/tmp/m.keras'"}
SCRIPT_TOOLS = {"compare_search": "compare_cells"}  # old script names in dated results
OLD_TOOLS = {"compare"}  # nasnet-compare, named where the pages say it was renamed


def _text(page: str) -> str:
  with open(os.path.join(ROOT, page)) as f:
    return f.read()


def page_bindings():
  """(page, selector, value) of every `--gin.X=V` binding the pages show."""
  out = set()
  for page in PAGES:
    for flag in re.findall(r"--gin\.[A-Za-z_][\w.]*=[^\s)`]+", _text(page)):
      selector, _, value = flag[len("--gin."):].partition("=")
      if selector == "X":  # the syntax's own description, --gin.X=V
        continue
      value = shlex.split(value)[0]  # the shell's quoting, as a user's shell would strip it
      out.add((page, selector, PLACEHOLDERS.get(value, value)))
  return sorted(out)


def test_the_pages_show_bindings():
  assert len(page_bindings()) >= 10
  assert {p for p, _, _ in page_bindings()} >= {"README.md", "docs/search.md"}


@pytest.mark.parametrize("page,selector,value", page_bindings())
def test_every_gin_binding_parses(page, selector, value):
  del page
  gin.clear_config()
  try:
    config_lib.parse([], [f"{selector} = {value}"])  # unknown or ambiguous: ValueError
  finally:
    gin.clear_config()


def test_a_saved_model_loads_after_import_nasnet_rl(tmp_path):
  """The docs: `keras.models.load_model` works after `import nasnet_rl` (fresh process)."""
  from nasnet_rl import genotype as genotype_lib  # pylint: disable=g-import-not-at-top
  from nasnet_rl.child import network  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / "model.keras")
  model = network.build_cifar_network(genotype_lib.published("nasnet_a"), num_classes=3,
                                      input_shape=(16, 16, 3), num_cells=1, filters=4,
                                      aux_head=False)
  model.save(path)
  code = ("import keras, numpy as np, nasnet_rl\n"
          f"m = keras.models.load_model({path!r})\n"
          "print('OUT', m(np.zeros((1, 16, 16, 3), 'float32')).shape)\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "OUT (1, 3)" in result.stdout


# ---- command lines ----------------------------------------------------------------------------
_COMMAND = re.compile(r"^(nasnet-[a-z-]+|python3 (?:scripts|dev)/\w+\.py)(\s|$)")


def _commands_of(text: str):
  """Command lines of code blocks (continuations joined) and of inline code spans."""
  blocks = re.findall(r"```(?:bash)?\n(.*?)```", text, re.S)
  lines = [l for b in blocks for l in b.replace("\\\n", " ").splitlines()]
  spans = [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text,
                                                                        flags=re.S))]
  return [l.strip() for l in lines + spans if _COMMAND.match(l.strip())]


def page_commands():
  """(page, tool, argv) of every command the pages show (`...` elisions and comments dropped)."""
  out = []
  for page in PAGES:
    for line in _commands_of(_text(page)):
      words = shlex.split(line.split("  #")[0].split(" # ")[0], posix=False)
      if words[0].startswith("nasnet-"):
        tool, argv = words[0][len("nasnet-"):].replace("-", "_"), words[1:]
      else:
        tool, argv = os.path.basename(words[1])[:-len(".py")], words[2:]
        tool = SCRIPT_TOOLS.get(tool, tool) if words[1].startswith("scripts/") else "dev/" + tool
      if tool not in OLD_TOOLS:
        out.append((page, tool, [w for w in argv if w != "..."]))
  return out


def test_the_pages_show_commands():
  tools = {t for _, t, _ in page_commands()}
  assert set(flagdefs.TOOLS) <= tools, set(flagdefs.TOOLS) - tools
  assert {"dev/bench_transfer", "dev/bench_enas"} <= tools


def test_the_readme_names_every_console_script():
  readme = _text("README.md")
  for tool in flagdefs.TOOLS:
    assert flagdefs.command(tool) in readme, tool


def _unquote(arg: str) -> str:
  if not arg.startswith("--") or "=" not in arg:
    return arg
  name, value = arg.split("=", 1)
  return f"{name}={shlex.split(value)[0] if value else value}"


def _placeholder(arg: str) -> str:
  """--gin_param=X=DIR -> --gin_param=X='/tmp/d' (a bare placeholder is not a gin value)."""
  if not arg.startswith("--gin_param="):
    return arg
  selector, _, value = arg[len("--gin_param="):].partition("=")
  return f"--gin_param={selector}={PLACEHOLDERS.get(value, value)}"


def _dev_flags(tool: str):
  """The flags a developer script (dev/x) defines: its own DEFINE_* calls and those of the
  bench_* modules it imports."""
  source = open(os.path.join(ROOT, f"{tool}.py")).read()
  for imported in re.findall(r"^import (bench_\w+)", source, re.M):  # shared flag modules
    source += open(os.path.join(ROOT, "dev", f"{imported}.py")).read()
  return set(re.findall(r"DEFINE_\w+\(\s*\"(\w+)\"", source))


def _parse_command(tool: str, argv):
  """Parses `argv` against `tool`'s own flags only, as its console script does: a fresh
  FlagValues holding that tool's definitions (flagdefs), never absl's global registry (which
  holds every CLI's flags once pytest imported them). Returns the parsed FlagValues; an unknown
  flag raises flags.Error."""
  assert tool in flagdefs.TOOLS, tool
  flag_values = flags.FlagValues()
  flagdefs.define(tool, flag_values)
  args = [_placeholder(_unquote(a)) for a in flagdefs.split_shortcuts(argv)]
  flag_values([flagdefs.command(tool)] + args)  # an unknown flag is an error here
  return flag_values


@pytest.mark.parametrize("page,tool,argv", page_commands(),
                         ids=[f"{p}:{t}:{i}" for i, (p, t, _) in enumerate(page_commands())])
def test_every_command_line_parses(page, tool, argv):
  """Each flag exists for that tool (its own flags, not any CLI's), and its gin files plus
  `--gin.X=V` bindings parse (a command is parsed, not run). Developer scripts (dev/) have their
  flags looked up in their source's DEFINE_* calls."""
  del page
  if tool.startswith("dev/"):
    defined = _dev_flags(tool)
    for arg in map(_unquote, argv):
      assert arg.startswith("--") and arg[2:].partition("=")[0] in defined, (tool, arg)
    return
  flag_values = _parse_command(tool, argv)
  gin_files = [os.path.join(ROOT, f) for f in flag_values["gin_file"].value or []] \
      if "gin_file" in flag_values else []
  params = list(flag_values["gin_param"].value or []) if "gin_param" in flag_values else []
  if gin_files or params:
    gin.clear_config()
    try:
      config_lib.parse(gin_files, params)
    finally:
      gin.clear_config()


# Flags that exist for one tool but not the other (issue 38: the old test parsed against absl's
# global registry, where `nasnet-train --source=nasnet_a --k=3 --init_from=keras:mobile` passed).
FOREIGN_FLAGS = [("train", ["--source=nasnet_a"]), ("train", ["--k=3"]),
                 ("train", ["--init_from=keras:mobile"]), ("show", ["--workdir=/tmp/d"]),
                 ("search", ["--genotype=nasnet_a"]), ("compare_strategies", ["--gin_file=x"])]


@pytest.mark.parametrize("tool,argv", FOREIGN_FLAGS)
def test_a_flag_of_another_tool_is_rejected(tool, argv):
  """Another CLI's flag fails the command check even with every CLI imported into this process
  (their flags all in absl's global FLAGS). Deliberate bug it catches: parsing against
  `flags.FLAGS` instead of the tool's own FlagValues (the first case then parses)."""
  for module in {t.module for t in flagdefs.TOOLS.values()}:
    __import__(module)  # every CLI's flags into the global registry
  assert argv[0][2:].split("=")[0] in flags.FLAGS  # the global registry would accept it
  with pytest.raises(flags.Error):
    _parse_command(tool, argv)


def test_the_console_script_rejects_what_the_check_rejects():
  """The real launcher (a fresh process, as `nasnet-train` runs) rejects a foreign flag too, and
  accepts the tool's own: the check above and the script agree on the definitions."""
  code = ("import sys\nfrom nasnet_rl.cli import launch\n"
          "sys.argv = ['nasnet-train'] + sys.argv[1:]\nlaunch.main('train')\n")
  bad = subprocess.run([sys.executable, "-c", code, "--gin_file=x.gin", "--source=nasnet_a"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
  assert bad.returncode != 0 and "source" in bad.stderr, bad.stderr[-2000:]
  good = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True,
                        timeout=120, cwd=ROOT)
  assert good.returncode == 0 and "--genotype" in good.stdout and "--source" not in good.stdout


# ---- links and cited paths --------------------------------------------------------------------
_REPO_PATH = re.compile(r"^(nasnet_rl|tests|gin|scripts|dev|docs|\.ci)/[\w./{},*-]*(::\w+)?$")


def _slug(heading: str) -> str:
  """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
  return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _expand(path: str):
  """`a/{b,c}.py` -> a/b.py, a/c.py (the brace lists the pages use)."""
  m = re.search(r"\{([^}]*)\}", path)
  if not m:
    return [path]
  return [q for alt in m.group(1).split(",")
          for q in _expand(path[:m.start()] + alt + path[m.end():])]


def page_links():
  """(page, target) of every relative markdown link."""
  out = []
  for page in PAGES:
    for target in re.findall(r"\]\(([^)\s]+)\)", _text(page)):
      if not re.match(r"^[a-z]+:", target):
        out.append((page, target))
  return out


@pytest.mark.parametrize("page,target", page_links())
def test_every_relative_link_exists(page, target):
  path, _, anchor = target.partition("#")
  full = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path)) if path \
      else os.path.join(ROOT, page)
  assert os.path.exists(full), f"{page}: link to {target}: no such file"
  if anchor and full.endswith(".md"):
    prose = re.sub(r"```.*?```", "", open(full).read(), flags=re.S)
    headings = re.findall(r"^#+ (.*)$", prose, re.M)
    assert anchor in {_slug(h) for h in headings}, f"{page}: no heading #{anchor} in {path}"


def cited_paths():
  """(page, path) of every repository path cited in backquotes on the pages and gin headers."""
  out = set()
  for page in PAGES:
    for span in re.findall(r"`([^`\s]+)`", _text(page)):
      if _REPO_PATH.match(span.rstrip(".,;:")):
        out.add((page, span.rstrip(".,;:")))
  for gin_file in glob.glob(os.path.join(ROOT, "gin", "*", "*.gin")):
    header = "".join(l for l in open(gin_file) if l.startswith("#"))
    for cited in re.findall(r"(?:docs|gin)/[\w./-]+\.(?:md|gin)", header):
      out.add((os.path.relpath(gin_file, ROOT), cited))
  return sorted(out)


def test_the_pages_cite_paths():
  assert len(cited_paths()) >= 50


@pytest.mark.parametrize("page,cited", cited_paths())
def test_every_cited_repository_path_exists(page, cited):
  path, _, test_name = cited.partition("::")
  for one in _expand(path):
    found = glob.glob(os.path.join(ROOT, one)) or glob.glob(
        os.path.join(ROOT, "nasnet_rl", one))  # gin/... also ships inside the package
    assert found, f"{page}: cites {one}, which does not exist"
    if test_name:
      assert f"def {test_name}(" in open(found[0]).read(), f"{page}: {cited}: no such test"
