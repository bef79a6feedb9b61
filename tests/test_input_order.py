"""Streamed training input is sharded and shuffled as records (file names, encoded tfds
examples) and decoded after: the order of the dataset graph, shards of whole files that are
disjoint and cover the set, the same batches for the same seed and on resume.

Every training file has its own class, so a label names the file it came from."""

import os

import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import data as data_lib
from nasnet_rl.data import source as source_lib
from nasnet_rl.transfer import preprocess

DECODE_OPS = {"ReadFile", "DecodeImage", "DecodeJpeg", "DecodePng", "DecodeBmp", "DecodeGif"}
MODES = [("L", ".png"), ("RGB", ".png"), ("RGBA", ".png"), ("RGB", ".jpg"), ("L", ".jpg")]
SIZE = (24, 24)


def _image_folder(root, num_train=16):
  """root/train/cNN/0.* (one file per class, modes and sizes mixed), root/test/ two files."""
  from PIL import Image
  rng = np.random.default_rng(0)

  def save(path, k):
    mode, ext = MODES[k % len(MODES)]
    h, w = 10 + 3 * (k % 4), 12 + 5 * (k % 3)
    pixels = rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode).save(path + ext)
  for k in range(num_train):
    save(os.path.join(root, "train", f"c{k:02d}", "0"), k)
  for k in range(2):
    save(os.path.join(root, "test", f"c{k:02d}", "1"), k + 1)
  return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  root = _image_folder(str(tmp_path_factory.mktemp("mixed")))
  return data_lib.load_dataset("image_folder", data_dir=root, validation_size=0,
                               varying_sizes=True)


def _labels(ds):
  return np.concatenate([y.numpy() for _, y in ds])


def _record_labels(enc, seed=None):
  return np.array([int(y) for _, y in enc.records(seed)])


def _batches(enc, seed=0, start=0, count=6, batch=4):
  ds = preprocess.make_pipeline("imagenet", enc, batch, True, SIZE, None, None, seed=seed,
                                start_batch=start).take(count)
  return [(x.numpy(), y.numpy()) for x, y in ds]


def _decode_chain(dataset):
  """For each map that decodes (its function reads or decodes an image): the dataset ops from
  it up its input chain, with the shuffle's element types where one is met."""
  serialized = dataset._as_serialized_graph().numpy()  # pylint: disable=protected-access
  graph = tf.compat.v1.GraphDef.FromString(serialized)
  functions = {f.signature.name: f for f in graph.library.function}

  def ops_of(name, seen=()):
    f = functions.get(name)
    if f is None or name in seen:
      return set()
    found = {n.op for n in f.node_def}
    for n in f.node_def:
      for attr in n.attr.values():
        if attr.func.name:
          found |= ops_of(attr.func.name, seen + (name,))
    return found

  chains = []
  for f in functions.values():
    nodes = {n.name: n for n in f.node_def}
    for n in f.node_def:
      if "Map" in n.op and ops_of(n.attr["f"].func.name) & DECODE_OPS:
        chain, node = [], n
        while node is not None:
          types = ([tf.dtypes.as_dtype(t).name for t in node.attr["output_types"].list.type]
                   if node.op.startswith("Shuffle") else None)
          chain.append((node.op, types))
          upstream = node.input[0].split(":")[0] if node.input else None
          node = nodes.get(upstream)
        chains.append(chain)
  return chains


def _assert_decoded_after_shuffle(stream):
  """Every map that decodes follows the shuffle of (record, label) pairs through only a skip,
  the take of the pass's whole global batches (and the zip with per-example seeds)."""
  chains = _decode_chain(stream)
  assert chains, "no map that decodes images"
  for chain in chains:
    ops = [op for op, _ in chain]
    shuffle = next(i for i, op in enumerate(ops) if op.startswith("Shuffle"))
    assert "SkipDataset" in ops[1:shuffle], ops
    assert set(ops[1:shuffle]) <= {"SkipDataset", "TakeDataset", "ZipDataset"}, ops
    assert chain[shuffle][1] == ["string", "int64"]  # the shuffled unit: (record, label)


def test_mixed_image_folder_shuffles_file_names_and_decodes_after(folder):
  assert folder.image_shape == (None, None, 3) and folder.sizes["train"] == 16
  enc = folder.training_input()
  assert enc.unit == "file name" and enc.shuffle_buffer == 16  # every name in the buffer
  assert enc.records().element_spec == (tf.TensorSpec((), tf.string),
                                        tf.TensorSpec((), tf.int64))
  # The pipeline's graph: records -> shuffle (of file names) -> skip -> map (read + decode +
  # crop); nothing upstream of the shuffle decodes.
  stream = preprocess.make_pipeline("imagenet", enc, 4, True, SIZE, None, None, start_batch=0)
  _assert_decoded_after_shuffle(stream)
  x, y = next(iter(stream))
  assert x.shape == (4, *SIZE, 3) and -1.0 <= x.numpy().min() <= x.numpy().max() <= 1.0
  # Each pass is a new permutation of the file names.
  pass0, pass1 = _labels(stream.take(4))[:16], _labels(stream.take(8))[16:]
  assert sorted(pass0) == sorted(pass1) == list(range(16)) and list(pass0) != list(pass1)
  # The eval pipeline decodes in file order, every image at its own size before its crop.
  x, y = next(iter(preprocess.make_pipeline("imagenet", folder.test, 8, False, SIZE, None,
                                            None)))
  assert x.shape == (2, *SIZE, 3) and y.numpy().tolist() == [0, 1]


def test_grey_images_made_rgb_for_pretrained_weights_still_decode_after_shuffle(tmp_path):
  """transfer's grey -> RGB conversion (init_from on a grey data set) composes into the decode
  step instead of replacing the streamed input with decoded images."""
  from nasnet_rl.transfer import train as transfer_train  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for split, count in (("train", 6), ("test", 2)):
    for k in range(count):
      os.makedirs(tmp_path / split / f"c{k % 2}", exist_ok=True)
      Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8), "L").save(
          tmp_path / split / f"c{k % 2}" / f"{k}.png")
  grey = data_lib.load_dataset("image_folder", data_dir=str(tmp_path), validation_size=0,
                               channels=1)
  assert grey.image_shape[-1] == 1
  rgb = transfer_train._to_rgb(grey)  # pylint: disable=protected-access
  enc = rgb.training_input()
  assert enc.unit == "file name" and enc.decode is not None
  stream = preprocess.make_pipeline("imagenet", enc, 3, True, SIZE, None, None, start_batch=0)
  _assert_decoded_after_shuffle(stream)
  assert next(iter(stream))[0].shape == (3, *SIZE, 3)


def test_two_pipelines_get_disjoint_files_covering_the_set(folder):
  shards = [folder.training_input(2, i) for i in range(2)]
  names = [{p.numpy() for p, _ in s.records()} for s in shards]
  assert not names[0] & names[1] and len(names[0] | names[1]) == 16
  assert len(shards[0]) == len(shards[1]) == 8
  # Each pipeline shuffles its own files with its own seed (as local_batches does: seed + id)
  # and decodes only those: one pass of each covers the set once.
  labels = [_labels(preprocess.make_pipeline("imagenet", s, 4, True, SIZE, None, None,
                                             seed=i, start_batch=0).take(2))
            for i, s in enumerate(shards)]
  assert not set(labels[0]) & set(labels[1])
  assert sorted(np.concatenate(labels)) == list(range(16))
  # The cifar style (fixed sizes after resizing) takes the same shards.
  resized = shards[1].map(lambda x, y: (source_lib.resize_uint8(x, SIZE), y))
  cifar = data_lib.make_batches(resized, 4, training=True, start_batch=0)
  assert set(_labels(cifar.take(2))) == set(labels[1])
  # Without start_batch (tf.data's reshuffle each epoch): the same files, decoded after.
  assert set(_labels(data_lib.make_batches(resized, 4, training=True))) == set(labels[1])
  assert set(_labels(preprocess.imagenet_batches(shards[0], 4, True, SIZE))) == set(labels[0])


def test_same_seed_same_batches_and_a_resumed_stream_continues(folder):
  enc = folder.training_input()
  first = _batches(enc, seed=5)
  again = _batches(folder.training_input(), seed=5)
  for (x, y), (x2, y2) in zip(first, again):
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
  other = _batches(enc, seed=6)
  assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))
  resumed = _batches(enc, seed=5, start=3, count=3)  # from the middle of pass 0 into pass 1
  for (x, y), (x2, y2) in zip(first[3:], resumed):
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_in_memory_data_keeps_its_pipeline():
  s = data_lib.load_dataset("synthetic", validation_size=8)
  assert s.train_encoded is None
  enc = s.training_input()
  assert enc.decode is None and enc.records() is s.train
  a = data_lib.make_batches(s.train, 16, training=True, seed=1, start_batch=2).take(3)
  b = data_lib.make_batches(enc, 16, training=True, seed=1, start_batch=2).take(3)
  for (x, y), (x2, y2) in zip(a, b):
    np.testing.assert_array_equal(x.numpy(), x2.numpy())
    np.testing.assert_array_equal(y.numpy(), y2.numpy())
  half = [s.training_input(2, i).records() for i in range(2)]
  np.testing.assert_array_equal(_labels(half[1].batch(1000)),
                                _labels(s.train.shard(2, 1).batch(1000)))


# ---- tfds: files shuffled per pass, whole files per pipeline -----------------------------------
tfds = pytest.importorskip("tensorflow_datasets")
NUM_FILES, PER_FILE = 4, 5


class NasnetRlTinyVaried(tfds.core.GeneratorBasedBuilder):
  """20 train / 6 test JPEGs of varying size; example i of train has label i."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
        "label": tfds.features.ClassLabel(num_classes=100)}), supervised_keys=("image", "label"))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(NUM_FILES * PER_FILE, 0),
            "test": self._generate_examples(6, 50)}

  def _generate_examples(self, n, first):
    rng = np.random.default_rng(first)
    for i in range(n):
      shape = (8 + i % 5, 10 + 3 * (i % 3), 3)
      yield first + i, {"image": rng.integers(0, 256, shape, dtype=np.uint8), "label": first + i}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """The dataset prepared in NUM_FILES files, and the file each train label is in."""
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  builder = NasnetRlTinyVaried(data_dir=data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=NUM_FILES))
  ids = builder.as_dataset(split="train", read_config=tfds.ReadConfig(add_tfds_id=True))
  file_of = {int(ex["label"]): int(ex["tfds_id"].numpy().decode().split("-of-")[0][-5:])
             for ex in ids}
  assert sorted(file_of) == list(range(20)) and sorted(set(file_of.values())) == [0, 1, 2, 3]
  return data_dir, file_of


@pytest.fixture(scope="module")
def tiny_tfds(prepared):
  return data_lib.load_dataset("tfds:nasnet_rl_tiny_varied", data_dir=prepared[0],
                               validation_size=4, seed=3, in_memory=False, download=False)


def test_tfds_files_are_shuffled_per_pass_and_the_proxy_split_holds(tiny_tfds):
  s = tiny_tfds
  assert s.image_shape == (None, None, 3) and s.sizes == {"train": 16, "validation": 4,
                                                         "test": 6}
  enc = s.training_input()
  assert enc.unit == "encoded example"
  val = set(_record_labels(data_lib.Encoded.of_dataset(s.validation)))
  train = _record_labels(data_lib.Encoded.of_dataset(s.train))
  assert len(val) == 4 and not val & set(train) and sorted(val | set(train)) == list(range(20))
  orders = [_record_labels(enc, tf.constant(seed, tf.int64)) for seed in (1, 2, 3)]
  for order in orders:
    assert sorted(order) == sorted(train)  # every pass: the training part, once
  assert len({tuple(o) for o in orders}) > 1  # in another file order
  np.testing.assert_array_equal(_record_labels(enc, tf.constant(2, tf.int64)), orders[1])
  _assert_decoded_after_shuffle(
      preprocess.make_pipeline("imagenet", enc, 4, True, SIZE, None, None, start_batch=0))
  once = _labels(preprocess.imagenet_batches(enc, 4, True, SIZE, seed=1))  # no start_batch
  assert sorted(once) == sorted(train)
  first = _batches(enc, seed=4, count=5)
  resumed = _batches(enc, seed=4, start=2, count=3)
  assert sorted(np.concatenate([y for _, y in first[:4]])) == sorted(train)
  for (x, y), (x2, y2) in zip(first[2:], resumed):
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize("pipelines", [2, 3, 8])
def test_tfds_shards_are_whole_files_or_every_nth_example(prepared, tiny_tfds, pipelines):
  train = set(_record_labels(data_lib.Encoded.of_dataset(tiny_tfds.train)))
  seen = []
  for i in range(pipelines):
    labels = _record_labels(tiny_tfds.training_input(pipelines, i), tf.constant(i, tf.int64))
    assert len(labels) == len(tiny_tfds.training_input(pipelines, i))
    seen.append(set(labels))
    files = {prepared[1][label] for label in labels}
    if pipelines <= NUM_FILES:  # whole files dealt out: file k goes to pipeline k % n
      assert files <= set(range(i, NUM_FILES, pipelines))
    else:  # fewer files than pipelines: every n-th example of the stored order
      assert labels.size <= -(-20 // pipelines)
  assert sum(len(s) for s in seen) == len(set().union(*seen)) and set().union(*seen) == train


def _sliced(make, slices, count):
  """The per-slice streams of `make(slices, index)` put back together, batch by batch."""
  parts = [[(x.numpy(), y.numpy()) for x, y in make(slices, i).take(count)]
           for i in range(slices)]
  return [(np.concatenate([p[b][0] for p in parts]), np.concatenate([p[b][1] for p in parts]))
          for b in range(count)]


@pytest.mark.parametrize("style", ["imagenet", "cifar"])
def test_slices_of_the_global_batch_are_one_process_batches(folder, style):
  """Each cluster worker reads only its slice of every global batch (loop input): the slices,
  put together, are the global batches one process builds, pixels and augmentation included,
  across a pass boundary and from a resumed start."""
  def make(slices, index, start=3):
    return preprocess.make_pipeline(style, folder.training_input(), 4, True, SIZE, None, None,
                                    seed=7, start_batch=start, num_slices=slices,
                                    slice_index=index, cutout=4 if style == "cifar" else 0)
  whole = [(x.numpy(), y.numpy()) for x, y in make(1, 0).take(5)]
  for slices in (2, 4):
    for (x, y), (wx, wy) in zip(_sliced(make, slices, 5), whole):
      np.testing.assert_array_equal(y, wy)
      np.testing.assert_array_equal(x, wx)
  with pytest.raises(ValueError, match="splits into 3"):
    make(3, 0)


def test_slices_of_in_memory_batches_are_one_process_batches():
  splits = data_lib.load_dataset("synthetic", num_train=40, num_test=8, validation_size=0,
                                 image_shape=(8, 8, 3), seed=0)
  make = lambda slices, index: data_lib.make_batches(
      splits.train, batch_size=8, training=True, seed=3, start_batch=2, cutout=3,
      num_slices=slices, slice_index=index)
  whole = [(x.numpy(), y.numpy()) for x, y in make(1, 0).take(6)]
  for (x, y), (wx, wy) in zip(_sliced(make, 2, 6), whole):
    np.testing.assert_array_equal(y, wy)
    np.testing.assert_array_equal(x, wx)
