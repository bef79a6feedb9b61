"""CIFAR-10 from the python pickle batches (cifar-10-batches-py), no tensorflow-datasets needed.

Each batch pickles {b"data": uint8 [N, 3072] (channel-major 3x32x32), b"labels": [N]}. The
unpickler only admits the numpy classes those files use, so a crafted file cannot run code.
"""

import io
import os
import pickle
import tarfile
import zlib
from typing import Dict

import gin
import numpy as np

from nasnet_rl.data import registry
from nasnet_rl.data import source

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
DEFAULT_PATH = os.path.join(os.path.expanduser("~"), ".keras", "datasets", FOLDER)
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck")
_HOW_TO_GET = (f"download {URL} and unpack it (or point at the .tar.gz itself), then pass the "
               f"{FOLDER} folder as load_dataset.data_dir (or load_cifar10_local.path); keras' "
               f"cache ({DEFAULT_PATH}) is the default")
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
            ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Resolves only the globals a pickled numpy array needs."""

  def find_class(self, module, name):
    if (module, name) not in _ALLOWED:
      raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
    return super().find_class(module, name)


def parse_batch(raw: bytes, what: str):
  """(images uint8 [N, 32, 32, 3], labels int64 [N]) from one pickled batch."""
  try:
    batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
  except Exception as e:  # pickle raises many types on garbage input
    raise ValueError(f"{what}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
  if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
    keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
    raise ValueError(f"{what}: expected a dict with b'data' and b'labels', got {keys}")
  data = np.asarray(batch[b"data"])
  if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
    raise ValueError(f"{what}: b'data' is {data.dtype} {data.shape}; expected uint8 (N, 3072)")
  labels = source.check_labels(batch[b"labels"], f"{what} b'labels'")
  if len(labels) != len(data) or labels.size and labels.max() >= len(CLASS_NAMES):
    raise ValueError(f"{what}: expected {len(data)} labels in 0..9, got {len(labels)} "
                     f"(max {labels.max() if labels.size else None})")
  return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read_files(path: str) -> Dict[str, bytes]:
  """Raw bytes of every batch file, from the folder, a folder containing it, or the tarball."""
  names = TRAIN_FILES + TEST_FILES
  if os.path.isfile(path):
    if not tarfile.is_tarfile(path):
      raise ValueError(f"{path}: not a tar archive of the CIFAR-10 python batches (expected "
                       f"cifar-10-python.tar.gz or its extracted folder); {_HOW_TO_GET}")
    try:
      with tarfile.open(path) as tar:
        members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
        found = {n: tar.extractfile(members[n]).read() for n in names if n in members}
    except (EOFError, OSError, tarfile.TarError, zlib.error) as e:
      raise ValueError(f"{path}: truncated or damaged archive ({type(e).__name__}: {e}); "
                       "download it again") from None
  elif os.path.isdir(path):
    if not os.path.exists(os.path.join(path, TRAIN_FILES[0])):
      path = os.path.join(path, FOLDER) if os.path.isdir(os.path.join(path, FOLDER)) else path
    found = {}
    for n in names:
      if os.path.isfile(os.path.join(path, n)):
        with open(os.path.join(path, n), "rb") as f:
          found[n] = f.read()
  else:
    raise source.DatasetNotFoundError(f"CIFAR-10 batches {path!r} do not exist; {_HOW_TO_GET}")
  missing = [n for n in names if n not in found]
  if missing:
    raise source.DatasetNotFoundError(f"CIFAR-10 batch files {missing} not found in {path!r}; "
                                      f"{_HOW_TO_GET}")
  return found


@registry.register("cifar10_local")
@gin.configurable
def load_cifar10_local(path: str = DEFAULT_PATH) -> source.Source:
  """CIFAR-10 (50000 train / 10000 test 32x32x3, 10 classes) from the python pickle batches."""
  raw = _read_files(path)

  def split(files):
    parts = [parse_batch(raw[n], os.path.join(path, n)) for n in files]
    return source.Examples.from_arrays(np.concatenate([p[0] for p in parts]),
                                       np.concatenate([p[1] for p in parts]), what=path)
  return source.Source(train=split(TRAIN_FILES), test=split(TEST_FILES),
                       num_classes=len(CLASS_NAMES), image_shape=(32, 32, 3),
                       name="cifar10_local")
