"""Genotype JSON format: round trips, published cells, and clear errors for bad input."""
import json

import pytest

from nasnet_rl import genotype as g


@pytest.mark.parametrize("name", g.published_names())
def test_published_round_trip(name, tmp_path):
  geno = g.published(name)
  path = str(tmp_path / "x.json")
  g.save(geno, path)
  assert g.load(path) == geno
  text = open(path).read()
  assert text == geno.to_json()  # stable: sorted keys, indented
  assert json.loads(text)["format"] == g.FORMAT
  assert geno.source and "paper" in geno.source
  assert "s6 = add(" in str(geno)


def test_published_set_and_nasnet_a_concat():
  assert {"nasnet_a", "enas_micro", "pnasnet_5"} <= set(g.published_names())
  a = g.published("nasnet_a")
  # NASNet-A does not follow the unused-states rule (DESIGN.md): concat is explicit.
  assert a.normal.concat == (0, 2, 3, 4, 5, 6)
  assert a.reduction.concat == (3, 4, 5, 6)
  assert g.Cell.unused_states(a.normal.blocks) == (2, 3, 4, 5, 6)
  e = g.published("enas_micro")
  assert e.reduction.concat == g.Cell.unused_states(e.reduction.blocks) == (2, 4, 5, 6)


def test_load_by_name_and_unknown_name():
  assert g.load("nasnet_a") == g.published("nasnet_a")
  with pytest.raises(ValueError, match="no genotype file or published genotype"):
    g.load("nasnet_z")


def _mutated(fn):
  d = g.published("nasnet_a").to_dict()
  fn(d)
  return d


@pytest.mark.parametrize("mutate, field, message", [
    (lambda d: d.update(format="nasnet_rl.genotype/9"), "format", "expected"),
    (lambda d: d["normal"]["blocks"][1]["ops"].__setitem__(0, "conv_9x9"),
     "normal.blocks[1].ops[0]", "unknown op 'conv_9x9'"),
    (lambda d: d["reduction"]["blocks"][0]["inputs"].__setitem__(1, 2),
     "reduction.blocks[0].inputs[1]", "points forward"),
    (lambda d: d["normal"]["blocks"].pop(), "normal.blocks", "expected 5 blocks"),
    (lambda d: d["normal"]["blocks"][0].update(combine="mul"), "normal.blocks[0].combine",
     "unknown combine"),
    (lambda d: d["normal"].update(concat=[0, 9]), "normal.concat[1]", "state index"),
    (lambda d: d["space"].update(ops="darts"), "space.ops", "unknown vocabulary"),
    (lambda d: d["normal"]["blocks"][0].update(inputs=[0]), "normal.blocks[0].inputs",
     "two input"),
    (lambda d: d.pop("reduction"), "reduction", "missing"),
])
def test_validation_names_the_field(mutate, field, message):
  with pytest.raises(ValueError) as err:
    g.Genotype.from_dict(_mutated(mutate))
  assert repr(field) in str(err.value) and message in str(err.value)


def test_malformed_json_file(tmp_path):
  path = tmp_path / "bad.json"
  path.write_text("{not json")
  with pytest.raises(ValueError, match="bad.json: genotype is not valid JSON"):
    g.load(str(path))


# ---- strict loading (issue 9) ----------------------------------------------------------------
@pytest.mark.parametrize("mutate, field, message", [
    (lambda d: d["normal"]["blocks"][0].update(combin="concat"), "normal.blocks[0]",
     "unknown key(s) ['combin']"),
    (lambda d: d["reduction"].update(concats=[2, 3]), "reduction", "unknown key(s) ['concats']"),
    (lambda d: d.update(nmae="x"), "<root>", "unknown key(s) ['nmae']"),
    (lambda d: d["space"].update(blocks=5), "space", "unknown key(s) ['blocks']"),
    (lambda d: d["normal"]["blocks"][2]["inputs"].__setitem__(0, True),
     "normal.blocks[2].inputs[0]", "non-negative int, got True"),
    (lambda d: d["normal"].update(concat=[0, True]), "normal.concat[1]", "got True"),
    (lambda d: d["space"].update(num_blocks=True), "space.num_blocks", "positive int"),
    (lambda d: d["space"].update(ops=["nasnet"]), "space.ops", "unknown vocabulary"),
    (lambda d: d["normal"]["blocks"][0].update(combine=["add"]), "normal.blocks[0].combine",
     "unknown combine"),
])
def test_typos_and_booleans_are_rejected(mutate, field, message):
  with pytest.raises(ValueError) as err:
    g.Genotype.from_dict(_mutated(mutate))
  assert repr(field) in str(err.value) and message in str(err.value)


def test_run_directory_and_bad_files_load_or_fail_in_one_line(tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  with pytest.raises(ValueError, match="holds none of"):
    g.load(str(run))
  g.save(g.published("enas_micro"), str(run / "genotype.json"))
  assert g.load(str(run)) == g.published("enas_micro")
  deep = tmp_path / "deep.json"
  deep.write_text("[" * 100000 + "]" * 100000)
  with pytest.raises(ValueError, match="deep.json: JSON nested too deeply"):
    g.load(str(deep))
  deep.write_text('{"a":' * 50000 + "1" + "}" * 50000)
  with pytest.raises(ValueError, match="deep.json: genotype JSON is nested too deeply"):
    g.load(str(deep))
  binary = tmp_path / "bin.json"
  binary.write_bytes(b"\xff\xfe\x00garbage")
  with pytest.raises(ValueError, match="bin.json: cannot read"):
    g.load(str(binary))
