"""Fashion-MNIST from its four IDX files (gzipped or not), e.g. Debian's dataset-fashion-mnist.

60000 train / 10000 test 28x28 grayscale images, 10 classes (Xiao et al. 2017).
"""

import gzip
import os
import struct
import zlib

import gin
import numpy as np

from nasnet_rl.data import registry
from nasnet_rl.data import source

DEFAULT_PATH = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CLASS_NAMES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
               "sneaker", "bag", "ankle boot")
_HOW_TO_GET = ("install Debian's dataset-fashion-mnist package (apt-get install "
               f"dataset-fashion-mnist, files in {DEFAULT_PATH}), or download the four IDX files "
               "from https://github.com/zalandoresearch/fashion-mnist (data/fashion) into a "
               "folder and pass it as load_dataset.data_dir (or load_fashion_mnist.path)")
# IDX type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "IDX file format").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
  """Parses an IDX file: magic 0x00 0x00 <type code> <rank>, big-endian uint32 dims, data.

  The header is checked against the file length; any mismatch is a ValueError naming the file."""
  with open(path, "rb") as f:
    raw = f.read()
  if raw[:2] == b"\x1f\x8b":
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
      raise ValueError(f"{path}: corrupt gzip data ({e})") from None
  if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
    raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex() or 'empty'}; expected "
                     "0000, a type code in 08/09/0b/0c/0d/0e, and a rank >= 1)")
  rank, header = raw[3], 4 + 4 * raw[3]
  if len(raw) < header:
    raise ValueError(f"{path}: truncated IDX header (rank {rank} needs {header} bytes, "
                     f"file has {len(raw)})")
  dims = struct.unpack(f">{rank}I", raw[4:header])
  dtype = np.dtype(_IDX_DTYPES[raw[2]])
  expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
  if len(raw) - header != expected:
    raise ValueError(f"{path}: IDX header says dims {dims} ({expected} data bytes) but the file "
                     f"holds {len(raw) - header} bytes after the header")
  return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(folder: str, name: str) -> str:
  for candidate in (name, name + ".gz"):
    if os.path.isfile(os.path.join(folder, candidate)):
      return os.path.join(folder, candidate)
  raise source.DatasetNotFoundError(
      f"Fashion-MNIST file {name}[.gz] not found in {folder!r}; {_HOW_TO_GET}")


def _read_split(folder: str, split: str) -> source.Examples:
  image_file, label_file = (_find(folder, name) for name in FILES[split])
  images, labels = read_idx(image_file), read_idx(label_file)
  if images.ndim != 3:
    raise ValueError(f"{image_file}: expected [N, H, W] images, got shape {images.shape}")
  if labels.ndim != 1 or labels.size and labels.max() >= len(CLASS_NAMES):
    raise ValueError(f"{label_file}: expected N labels in 0..9, got shape {labels.shape}")
  return source.Examples.from_arrays(images, labels, what=f"{image_file} + {label_file}")


@registry.register("fashion_mnist")
@gin.configurable
def load_fashion_mnist(path: str = DEFAULT_PATH) -> source.Source:
  """Fashion-MNIST from the folder holding the four IDX files."""
  if not os.path.isdir(path):
    raise source.DatasetNotFoundError(
        f"Fashion-MNIST folder {path!r} does not exist; {_HOW_TO_GET}")
  train, test = _read_split(path, "train"), _read_split(path, "test")
  if train.x.shape[1:] != test.x.shape[1:]:
    raise ValueError(f"{path}: train images are {train.x.shape[1:]} but test images are "
                     f"{test.x.shape[1:]}")
  return source.Source(train=train, test=test, num_classes=len(CLASS_NAMES),
                       image_shape=tuple(int(d) for d in train.x.shape[1:]),
                       name="fashion_mnist")
