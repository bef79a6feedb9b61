"""Input pipelines: every loader, the seeded proxy split, batching/augmentation, clear errors."""
import gzip
import os
import pickle
import struct
import tarfile

import gin
import numpy as np
import pytest
import tensorflow as tf

from nasnet_rl import data
from nasnet_rl.data import cifar10
from nasnet_rl.data import fashion_mnist
from nasnet_rl.data import registry
from nasnet_rl.data import tfds_loader

FMNIST = fashion_mnist.DEFAULT_PATH


def _arrays(ds, batch=100000):
  """All (images, labels) of an unbatched dataset as numpy, in one step."""
  x, y = ds.batch(batch).get_single_element()
  return x.numpy(), y.numpy()


@pytest.fixture
def indexed(monkeypatch):
  """Registers "indexed": example i of train has label i, test labels are 1000 + i."""
  monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))

  @data.register("indexed")
  def load(num_train=40, num_test=7):
    rng = np.random.default_rng(0)
    make = lambda n, first: data.Examples.from_arrays(
        rng.integers(0, 256, (n, 4, 4, 3)), np.arange(first, first + n))
    return data.Source(train=make(num_train, 0), test=make(num_test, 1000),
                       num_classes=2000, image_shape=(4, 4, 3), name="indexed")
  return load


# ---- registry and load_dataset ---------------------------------------------------------
def test_unknown_name_lists_known_names():
  with pytest.raises(ValueError, match="unknown dataset 'imagenet9'; known: .*cifar10_local.*"
                     "fashion_mnist.*synthetic.*tfds:<name>"):
    data.load_dataset("imagenet9")


def test_register_twice_and_bad_names(indexed):
  with pytest.raises(ValueError, match="already registered"):
    data.register("indexed")(lambda: None)
  with pytest.raises(ValueError, match="bad loader name"):
    data.register("a:b")
  assert "indexed" in data.loader_names()


def test_split_is_seeded_disjoint_and_leaves_test_alone(indexed):
  a = data.load_dataset("indexed", validation_size=10, seed=0)
  b = data.load_dataset("indexed", validation_size=10, seed=0)
  c = data.load_dataset("indexed", validation_size=10, seed=1)
  train, val = _arrays(a.train)[1], _arrays(a.validation)[1]
  assert a.sizes == {"train": 30, "validation": 10, "test": 7}
  assert not set(train) & set(val) and sorted(set(train) | set(val)) == list(range(40))
  np.testing.assert_array_equal(val, _arrays(b.validation)[1])
  assert set(val) != set(_arrays(c.validation)[1])
  for splits in (a, c):
    np.testing.assert_array_equal(_arrays(splits.test)[1], np.arange(1000, 1007))
  src = indexed()
  x_train = _arrays(a.train)[0]
  np.testing.assert_array_equal(x_train, src.train.x[train])  # images travel with labels


def test_proxy_split_indices():
  t0, v0 = data.proxy_split(100, 20, seed=3)
  t1, v1 = data.proxy_split(100, 20, seed=3)
  np.testing.assert_array_equal(v0, v1)
  assert len(v0) == 20 and len(t0) == 80 and not set(t0) & set(v0)
  assert np.all(np.diff(t0) > 0) and np.all(np.diff(v0) > 0)
  for bad in (-1, 100, 2.5, True):
    with pytest.raises(ValueError, match="validation_size"):
      data.proxy_split(100, bad)


def test_validation_size_zero_gives_empty_split(indexed):
  s = data.load_dataset("indexed", validation_size=0)
  assert s.sizes == {"train": 40, "validation": 0, "test": 7}
  assert s.validation.element_spec == s.train.element_spec
  assert int(s.validation.cardinality()) == 0
  with pytest.raises(ValueError, match=r"validation_size=40 must be an int in \[0, 40\)"):
    data.load_dataset("indexed", validation_size=40)
  with pytest.raises(ValueError, match="non-negative int"):
    data.load_dataset("indexed", validation_size=-1)


def test_mean_std_from_train_split_and_overrides(indexed):
  s = data.load_dataset("indexed", validation_size=10)
  x = _arrays(s.train)[0] / 255.0
  np.testing.assert_allclose(s.mean, x.mean(axis=(0, 1, 2)), rtol=1e-9)
  np.testing.assert_allclose(s.std, x.std(axis=(0, 1, 2)), rtol=1e-9)
  s = data.load_dataset("indexed", validation_size=10, mean=0.5, std=(0.1, 0.2, 0.3))
  assert s.mean == (0.5, 0.5, 0.5) and s.std == (0.1, 0.2, 0.3)
  s = data.load_dataset("indexed", validation_size=10, mean=0.5)
  np.testing.assert_allclose(s.std, x.std(axis=(0, 1, 2)), rtol=1e-9)  # std still measured
  with pytest.raises(ValueError, match="mean must be a number or 3 per-channel"):
    data.load_dataset("indexed", validation_size=10, mean=(0.1, 0.2))
  with pytest.raises(ValueError, match="std must be positive"):
    data.load_dataset("indexed", validation_size=10, std=0.0)


def test_loader_arguments_are_checked(indexed):
  with pytest.raises(ValueError, match=r"takes no argument\(s\) \['colour'\]; it takes "
                     r"\['num_train', 'num_test'\]"):
    data.load_dataset("indexed", validation_size=1, colour=True)
  with pytest.raises(ValueError, match="reads no files, so data_dir='/x' means nothing"):
    data.load_dataset("synthetic", data_dir="/x")
  with pytest.raises(ValueError, match="pass data_dir or path, not both"):
    data.load_dataset("fashion_mnist", data_dir="/x", path="/y")
  with pytest.raises(ValueError, match="image_size must be a positive int or"):
    data.load_dataset("indexed", image_size=(0, 3))


def test_resize_to_image_size(indexed):
  s = data.load_dataset("indexed", validation_size=5, image_size=8)
  assert s.image_shape == (8, 8, 3)
  for ds in (s.train, s.validation, s.test):
    assert ds.element_spec[0] == tf.TensorSpec((8, 8, 3), tf.uint8)
  assert _arrays(s.validation)[0].shape == (5, 8, 8, 3)


def test_wrong_rank_and_dtype_are_clear_errors(monkeypatch):
  with pytest.raises(ValueError, match=r"\[N, H, W, C\].*got shape \(2, 3\)"):
    data.Examples.from_arrays(np.zeros((2, 3)), [0, 1])
  with pytest.raises(ValueError, match=r"got shape \(2, 3, 8, 8\) \(looks channel-first"):
    data.Examples.from_arrays(np.zeros((2, 3, 8, 8), np.uint8), [0, 1])
  with pytest.raises(ValueError, match="expected uint8 pixels in 0..255, got dtype float32"):
    data.Examples.from_arrays(np.zeros((2, 4, 4), np.float32), [0, 1])
  with pytest.raises(ValueError, match="outside 0..255"):
    data.Examples.from_arrays(np.full((2, 4, 4), 300), [0, 1])
  with pytest.raises(ValueError, match="2 images but 3 labels"):
    data.Examples.from_arrays(np.zeros((2, 4, 4), np.uint8), [0, 1, 1])
  with pytest.raises(ValueError, match="1-D array of integer labels"):
    data.Examples.from_arrays(np.zeros((2, 4, 4), np.uint8), [[0], [1]])
  x = data.Examples.from_arrays(np.zeros((2, 4, 4), np.int32), [0, 1]).x
  assert x.shape == (2, 4, 4, 1) and x.dtype == np.uint8
  monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))
  data.register("flat")(lambda: data.Source(
      train=data.Examples.from_arrays(np.zeros((4, 16), np.uint8), np.zeros(4)), test=None,
      num_classes=1, image_shape=(4, 4, 1), name="flat"))
  with pytest.raises(ValueError, match=r"got shape \(4, 16\)"):
    data.load_dataset("flat")


def test_gin_configures_load_dataset_and_loaders():
  try:
    gin.bind_parameter("load_dataset.name", "synthetic")
    gin.bind_parameter("load_dataset.validation_size", 8)
    gin.bind_parameter("load_synthetic.num_train", 40)
    gin.bind_parameter("make_batches.batch_size", 4)
    s = data.load_dataset()
    assert s.name == "synthetic" and s.sizes == {"train": 32, "validation": 8, "test": 128}
    assert len(list(data.make_batches(s.validation))) == 2
  finally:
    gin.clear_config()


# ---- augmentation and batching ---------------------------------------------------------
def test_normalize():
  x = tf.constant([[[[0, 255]]]], tf.uint8)
  np.testing.assert_allclose(data.normalize(x).numpy(), [[[[0.0, 1.0]]]])
  np.testing.assert_allclose(data.normalize(x, (0.5, 0.5), (0.25, 0.5)).numpy(),
                             [[[[-2.0, 1.0]]]])


def test_random_crop_flip_is_a_shifted_or_mirrored_window():
  images = tf.random.uniform((6, 8, 8, 2), 1, 255, seed=1)
  out = data.random_crop_flip(images, tf.constant([1, 2]), pad=2)
  assert out.shape == images.shape and out.dtype == tf.float32
  np.testing.assert_array_equal(out, data.random_crop_flip(images, tf.constant([1, 2]), pad=2))
  assert not np.array_equal(out, data.random_crop_flip(images, tf.constant([3, 4]), pad=2))
  padded = np.pad(images.numpy(), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for img, result in zip(padded, out.numpy()):
    windows = [w for dy in range(5) for dx in range(5)
               for w in (img[dy:dy + 8, dx:dx + 8], img[dy:dy + 8, dx:dx + 8][:, ::-1])]
    assert any(np.array_equal(result, w) for w in windows)
  same = data.random_crop_flip(images, tf.constant([1, 2]), pad=0, flip=False)
  np.testing.assert_array_equal(same, images)


def test_cutout_zeroes_one_square():
  images = tf.ones((64, 12, 12, 3))
  out = data.cutout(images, 4, tf.constant([0, 7])).numpy()
  assert out.shape == (64, 12, 12, 3)
  full = 0
  for img in out:
    zero = img[..., 0] == 0
    assert np.array_equal(zero, (img == 0).all(-1))  # all channels together
    rows, cols = np.nonzero(zero)
    h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert h <= 4 and w <= 4 and zero.sum() == h * w  # one (border-clipped) rectangle
    full += zero.sum() == 16
  assert full > 16  # most squares lie inside the image


def test_make_batches_training(indexed):
  s = data.load_dataset("indexed", num_train=43, validation_size=0)
  ds = data.make_batches(s.train, batch_size=8, training=True, mean=s.mean, std=s.std,
                         cutout=2, seed=0)
  batches = list(ds)
  assert len(batches) == 5  # 43 // 8, remainder dropped
  assert "Prefetch" in type(ds).__name__
  for x, y in batches:
    assert x.shape == (8, 4, 4, 3) and x.dtype == tf.float32 and y.dtype == tf.int64
  seen = np.concatenate([y for _, y in batches])
  assert len(set(seen)) == 40 and not np.array_equal(seen, np.sort(seen))  # shuffled
  again = list(data.make_batches(s.train, batch_size=8, training=True, mean=s.mean, std=s.std,
                                 cutout=2, seed=0))
  other = list(data.make_batches(s.train, batch_size=8, training=True, seed=1))
  np.testing.assert_array_equal(batches[0][0], again[0][0])
  assert not np.array_equal(batches[0][1], other[0][1])
  epoch2 = np.concatenate([y for _, y in ds])
  assert not np.array_equal(seen, epoch2)  # reshuffled every epoch
  with pytest.raises(ValueError, match="fewer than batch_size=64"):
    data.make_batches(s.test, batch_size=64, training=True)
  with pytest.raises(ValueError, match="cutout must be an int >= 0"):
    data.make_batches(s.train, training=True, cutout=-1)


def test_make_batches_eval_keeps_order_and_remainder(indexed):
  s = data.load_dataset("indexed", validation_size=10)
  batches = list(data.make_batches(s.train, batch_size=8, mean=s.mean, std=s.std))
  assert [int(y.shape[0]) for _, y in batches] == [8, 8, 8, 6]
  x, y = _arrays(s.train)
  np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
  expected = (x / 255.0 - np.array(s.mean)) / np.array(s.std)
  np.testing.assert_allclose(np.concatenate([b[0] for b in batches]), expected, atol=1e-5)


# ---- loaders ---------------------------------------------------------------------------
def test_synthetic_is_seeded_and_learnable():
  a = data.get_loader("synthetic")(num_train=200, num_test=100, image_shape=(8, 8, 1),
                                   num_classes=4)
  b = data.get_loader("synthetic")(num_train=200, num_test=100, image_shape=(8, 8, 1),
                                   num_classes=4)
  c = data.get_loader("synthetic")(num_train=200, num_test=100, image_shape=(8, 8, 1),
                                   num_classes=4, seed=1)
  np.testing.assert_array_equal(a.train.x, b.train.x)
  assert not np.array_equal(a.train.x, c.train.x)
  assert np.bincount(a.train.y).tolist() == [50] * 4
  centroids = np.stack([a.train.x[a.train.y == k].mean(0) for k in range(4)])
  dist = ((a.test.x[:, None].astype(float) - centroids[None]) ** 2).sum((2, 3, 4))
  assert (dist.argmin(1) == a.test.y).mean() > 0.95
  with pytest.raises(ValueError, match="image_shape must be"):
    data.load_dataset("synthetic", image_shape=(8, 8))
  with pytest.raises(ValueError, match="num_classes must be a positive int"):
    data.load_dataset("synthetic", num_classes=0)


@pytest.fixture(scope="module")
def real_fmnist():
  if not os.path.isdir(FMNIST):
    pytest.skip(f"{FMNIST} missing (apt-get install dataset-fashion-mnist)")
  return fashion_mnist.load_fashion_mnist()


def test_fashion_mnist_real_files(real_fmnist):
  src = real_fmnist
  assert src.train.x.shape == (60000, 28, 28, 1) and src.test.x.shape == (10000, 28, 28, 1)
  assert src.train.x.dtype == np.uint8 and src.num_classes == 10
  assert np.bincount(src.train.y).tolist() == [6000] * 10
  assert np.bincount(src.test.y).tolist() == [1000] * 10
  s = data.load_dataset("fashion_mnist", validation_size=5000, seed=0)
  assert s.sizes == {"train": 55000, "validation": 5000, "test": 10000}
  assert s.image_shape == (28, 28, 1) and s.num_classes == 10 and s.name == "fashion_mnist"
  assert s.train.element_spec == (tf.TensorSpec((28, 28, 1), tf.uint8),
                                  tf.TensorSpec((), tf.int64))
  assert abs(s.mean[0] - 0.286) < 0.002 and abs(s.std[0] - 0.353) < 0.002
  np.testing.assert_array_equal(_arrays(s.test)[1], src.test.y)


def _write_idx(path, array, code=0x08, compress=False):
  header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
  with open(path, "wb") as f:
    f.write(gzip.compress(payload) if compress else payload)


def _fake_fmnist(folder, n_train=12, n_test=5):
  rng = np.random.default_rng(0)
  os.makedirs(folder, exist_ok=True)
  arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 6, 5), dtype=np.uint8),
            "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 6, 5), dtype=np.uint8),
            "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10}
  for i, (name, array) in enumerate(arrays.items()):
    compress = i % 2 == 0  # gzipped and plain files mixed
    _write_idx(os.path.join(folder, name + (".gz" if compress else "")), array,
               compress=compress)
  return arrays


def test_fashion_mnist_fake_idx_files(tmp_path):
  arrays = _fake_fmnist(str(tmp_path))
  s = data.load_dataset("fashion_mnist", data_dir=str(tmp_path), validation_size=2)
  assert s.sizes == {"train": 10, "validation": 2, "test": 5} and s.image_shape == (6, 5, 1)
  x, y = _arrays(s.test)
  np.testing.assert_array_equal(x[..., 0], arrays["t10k-images-idx3-ubyte"])
  np.testing.assert_array_equal(y, arrays["t10k-labels-idx1-ubyte"])
  wide = np.arange(-3, 3, dtype=np.int32).reshape(2, 3)
  _write_idx(str(tmp_path / "wide"), wide, code=0x0C)
  np.testing.assert_array_equal(fashion_mnist.read_idx(str(tmp_path / "wide")), wide)


def test_fashion_mnist_errors(tmp_path):
  with pytest.raises(data.DatasetNotFoundError, match="'/nonexistent/fm' does not exist; "
                     "install Debian's dataset-fashion-mnist"):
    data.load_dataset("fashion_mnist", data_dir="/nonexistent/fm")
  _fake_fmnist(str(tmp_path))
  os.remove(tmp_path / "t10k-labels-idx1-ubyte")
  with pytest.raises(data.DatasetNotFoundError, match=r"t10k-labels-idx1-ubyte\[.gz\] not found"):
    data.load_dataset("fashion_mnist", data_dir=str(tmp_path))
  bad = tmp_path / "bad"
  bad.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 2, 2) + bytes(7))
  with pytest.raises(ValueError, match=r"header says dims \(2, 2, 2\) \(8 data bytes\) but the "
                     "file holds 7"):
    fashion_mnist.read_idx(str(bad))
  bad.write_bytes(b"\x08\x03\x00\x00" + bytes(20))
  with pytest.raises(ValueError, match="not an IDX file"):
    fashion_mnist.read_idx(str(bad))
  bad.write_bytes(b"\x00\x00\x08\x05\x00")
  with pytest.raises(ValueError, match="truncated IDX header"):
    fashion_mnist.read_idx(str(bad))
  bad.write_bytes(gzip.compress(bytes(100))[:20])
  with pytest.raises(ValueError, match="corrupt gzip data"):
    fashion_mnist.read_idx(str(bad))
  _write_idx(str(tmp_path / "t10k-labels-idx1-ubyte"), np.zeros((5, 2), np.uint8))
  with pytest.raises(ValueError, match=r"expected N labels in 0..9, got shape \(5, 2\)"):
    data.load_dataset("fashion_mnist", data_dir=str(tmp_path))


def _fake_cifar(folder, per_batch=3):
  """A cifar-10-batches-py folder in the real format; returns the expected NHWC arrays."""
  rng = np.random.default_rng(0)
  os.makedirs(folder, exist_ok=True)
  out = {}
  for name in cifar10.TRAIN_FILES + cifar10.TEST_FILES:
    flat = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, per_batch)]
    with open(os.path.join(folder, name), "wb") as f:
      pickle.dump({b"batch_label": b"x", b"labels": labels, b"data": flat,
                   b"filenames": [b"f"] * per_batch}, f, protocol=2)
    out[name] = flat, labels
  return out


def test_cifar10_local_fake_batches(tmp_path):
  folder = str(tmp_path / "cifar-10-batches-py")
  raw = _fake_cifar(folder)
  for path in (folder, str(tmp_path)):  # the folder itself, or the folder containing it
    s = data.load_dataset("cifar10_local", data_dir=path, validation_size=3)
    assert s.sizes == {"train": 12, "validation": 3, "test": 3}
    assert s.image_shape == (32, 32, 3) and s.num_classes == 10 and s.name == "cifar10_local"
  x, y = _arrays(s.test)
  flat, labels = raw["test_batch"]
  assert y.tolist() == labels
  n, r, c, ch = 1, 5, 7, 2  # channel-major rows: data[n, ch * 1024 + r * 32 + c]
  assert x[n, r, c, ch] == flat[n, ch * 1024 + r * 32 + c]
  np.testing.assert_array_equal(x, flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
  archive = str(tmp_path / "cifar-10-python.tar.gz")
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(folder, arcname="cifar-10-batches-py")
  src = cifar10.load_cifar10_local(archive)
  np.testing.assert_array_equal(src.test.x, x)


def test_cifar10_local_errors(tmp_path):
  with pytest.raises(data.DatasetNotFoundError, match=r"'/nope' do not exist; download "
                     r"https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"):
    data.load_dataset("cifar10_local", data_dir="/nope")
  folder = str(tmp_path)
  _fake_cifar(folder)
  os.remove(os.path.join(folder, "data_batch_4"))
  with pytest.raises(data.DatasetNotFoundError, match=r"\['data_batch_4'\] not found"):
    data.load_dataset("cifar10_local", data_dir=folder)
  with open(os.path.join(folder, "data_batch_4"), "wb") as f:
    pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
  with pytest.raises(ValueError, match=r"data_batch_4: b'data' is uint8 \(2, 100\); expected"):
    data.load_dataset("cifar10_local", data_dir=folder)
  with open(os.path.join(folder, "data_batch_4"), "wb") as f:
    pickle.dump(os.system, f, protocol=2)
  with pytest.raises(ValueError, match="not a CIFAR-10 python batch.*refusing to load"):
    data.load_dataset("cifar10_local", data_dir=folder)


def test_tfds_loaders_on_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=24):
    s = data.load_dataset("cifar10", validation_size=4, seed=0)
    assert s.name == "cifar10" and s.num_classes == 10 and s.image_shape == (32, 32, 3)
    assert s.sizes == {"train": 20, "validation": 4, "test": 24}
    assert s.train.element_spec == (tf.TensorSpec((32, 32, 3), tf.uint8),
                                    tf.TensorSpec((), tf.int64))
    x, _ = _arrays(s.train)
    np.testing.assert_allclose(s.mean, (x / 255.0).mean((0, 1, 2)))
    streamed = data.load_dataset("tfds:mnist", validation_size=4, in_memory=False)
    assert streamed.name == "tfds:mnist" and streamed.image_shape == (28, 28, 1)
    assert streamed.mean == (0.5,) and streamed.sizes["train"] == 20
    assert len(_arrays(streamed.train)[1]) == 20 and len(_arrays(streamed.validation)[1]) == 4
    in_memory = data.load_dataset("tfds:mnist", validation_size=4, in_memory=True)
    # Streaming and in-memory carve the same examples out of the same (mock) data.
    np.testing.assert_array_equal(_arrays(streamed.validation)[0],
                                  _arrays(in_memory.validation)[0])


def test_tfds_offline_errors(tmp_path, monkeypatch):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(data.DatasetNotFoundError, match="no prepared data in .* and "
                     "download=False.*--gin.load_dataset.data_dir=.*cifar10_local.*"
                     "cifar-10-python.tar.gz"):
    data.load_dataset("cifar10", data_dir=str(tmp_path), download=False)
  monkeypatch.setattr(tfds_loader, "_online", lambda: False)  # never touch the network here
  with pytest.raises(data.DatasetNotFoundError, match="this machine is offline"):
    data.load_dataset("tfds:mnist", data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="tensorflow-datasets has no dataset named 'nosuchset'"):
    data.load_dataset("tfds:nosuchset", data_dir=str(tmp_path))


def _png(path, color, size=(6, 5), mode="RGB"):
  from PIL import Image
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.new(mode, (size[1], size[0]), color).save(path)


def test_image_folder_carves_test_split(tmp_path):
  colors = {"cat": (250, 0, 0), "dog": (0, 0, 250)}
  for name, color in colors.items():
    for i in range(5):
      _png(str(tmp_path / name / f"{i}.png"), color)
  (tmp_path / "dog" / "notes.txt").write_text("not an image")
  s = data.load_dataset("image_folder", data_dir=str(tmp_path), validation_size=2,
                        test_fraction=0.2)
  assert s.sizes == {"train": 6, "validation": 2, "test": 2} and s.num_classes == 2
  assert s.image_shape == (6, 5, 3) and s.mean == (0.5,) * 3 and s.std == (0.25,) * 3
  x, y = _arrays(s.train)
  assert x.shape == (6, 6, 5, 3) and x.dtype == np.uint8
  for image, label in zip(x, y):
    assert tuple(image[0, 0]) == list(colors.values())[label]  # cat=0, dog=1 (sorted)
  again = data.load_dataset("image_folder", data_dir=str(tmp_path), validation_size=2,
                            test_fraction=0.2)
  np.testing.assert_array_equal(_arrays(again.test)[1], _arrays(s.test)[1])
  gray = data.load_dataset("image_folder", data_dir=str(tmp_path), validation_size=0,
                           image_size=4, channels=1)
  assert gray.image_shape == (4, 4, 1) and _arrays(gray.test)[0].shape == (1, 4, 4, 1)


def test_image_folder_train_test_layout_and_sizes(tmp_path):
  _png(str(tmp_path / "train" / "a" / "0.png"), (10, 20, 30))
  _png(str(tmp_path / "train" / "a" / "1.jpg"), (10, 20, 30), size=(9, 9))
  _png(str(tmp_path / "train" / "b" / "0.bmp"), (40, 50, 60))
  _png(str(tmp_path / "test" / "b" / "0.gif"), 255, mode="L")
  with pytest.raises(ValueError, match="images differ in size: 6x5 .*, 9x9 .*; pass image_size"):
    data.load_dataset("image_folder", data_dir=str(tmp_path), validation_size=0)
  s = data.load_dataset("image_folder", data_dir=str(tmp_path), validation_size=1,
                        image_size=(8, 8))
  assert s.sizes == {"train": 2, "validation": 1, "test": 1} and s.num_classes == 2
  x, y = _arrays(s.test)
  assert x.shape == (1, 8, 8, 3) and y.tolist() == [1] and (x == 255).all()


def test_image_folder_errors(tmp_path):
  with pytest.raises(data.DatasetNotFoundError, match="image folder '/no/such' does not exist; "
                     "expected root/<class>/<image>"):
    data.load_dataset("image_folder", data_dir="/no/such")
  with pytest.raises(data.DatasetNotFoundError, match="no class folders in"):
    data.load_dataset("image_folder", data_dir=str(tmp_path))
  (tmp_path / "empty_class").mkdir()
  with pytest.raises(data.DatasetNotFoundError, match="empty_class' holds no images"):
    data.load_dataset("image_folder", data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="needs the root folder"):
    data.load_dataset("image_folder")
  _png(str(tmp_path / "empty_class" / "0.png"), (1, 2, 3))
  (tmp_path / "empty_class" / "1.png").write_bytes(b"garbage")
  with pytest.raises(ValueError, match="1.png: not a readable image"):
    data.load_dataset("image_folder", data_dir=str(tmp_path), validation_size=0,
                      test_fraction=0.5)
  with pytest.raises(ValueError, match="test_fraction=0.1 of 2 images gives 0 test images"):
    data.load_dataset("image_folder", data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="channels must be 1 or 3"):
    data.load_dataset("image_folder", data_dir=str(tmp_path), channels=4)
