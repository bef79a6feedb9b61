"""What this machine gives nasnet_rl: versions, devices, the distribution a training would pick,
mixed-precision support, and which datasets are present.

  nasnet-doctor          # or, in a checkout: python3 scripts/doctor.py

Nothing is downloaded and nothing trains; every line is a check, so a GPU machine that would
silently run on the CPU (say, `tensorflow-cpu` installed, or a TensorFlow built without CUDA)
shows up here first.
"""

import importlib
import importlib.metadata
import os
import platform
from typing import List, Optional

from nasnet_rl.cli import common


def _version(dist: str) -> Optional[str]:
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return None


def _cpu_flags() -> List[str]:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("flags"):
          return line.split(":", 1)[1].split()
  except OSError:
    pass
  return []


def _tfds_prepared(name: str) -> bool:
  root = os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"),
                                                          "tensorflow_datasets")
  return os.path.isdir(os.path.join(root, name))


def packages() -> List[str]:
  """Installed versions of what nasnet_rl uses, and a warning for `tensorflow-cpu`."""
  lines = [f"python {platform.python_version()} ({platform.machine()})"]
  for dist in ("tensorflow", "keras", "tensorflow-datasets", "gin-config", "numpy", "ray"):
    lines.append(f"{dist} {_version(dist) or 'not installed'}")
  if _version("tensorflow-cpu"):
    lines.append("WARNING: tensorflow-cpu is installed: it never uses a GPU; pip uninstall "
                 "tensorflow-cpu and install the project again (it depends on tensorflow)")
  return lines


def devices(tf) -> List[str]:
  """Build flags, physical devices (GPU compute capability), the distribution `auto` picks."""
  build = tf.sysconfig.get_build_info()
  cuda = build.get("is_cuda_build", False)
  lines = [f"tensorflow built with CUDA: {bool(cuda)}"
           + (f" (CUDA {build.get('cuda_version')}, cuDNN {build.get('cudnn_version')})"
              if cuda else "")]
  cpus, gpus = tf.config.list_physical_devices("CPU"), tf.config.list_physical_devices("GPU")
  lines.append(f"CPUs: {len(cpus)} device(s), {os.cpu_count()} cores")
  capabilities = []
  for gpu in gpus:
    details = tf.config.experimental.get_device_details(gpu)
    cc = details.get("compute_capability")
    capabilities.append(cc)
    lines.append(f"GPU {gpu.name}: {details.get('device_name', '?')}, compute capability {cc}")
  if not gpus:
    lines.append("GPUs: none visible" + (" (a CUDA build: check the driver, nvidia-smi)"
                                         if cuda else ""))
  from nasnet_rl import distribute  # pylint: disable=g-import-not-at-top
  strategy = distribute.make_distribution("auto")
  lines.append(f"distribution (kind='auto'): {type(strategy).__name__}, "
               f"{strategy.num_replicas_in_sync} replica(s)")
  flags = _cpu_flags()
  fp16 = any(cc and cc >= (7, 0) for cc in capabilities)
  bf16_gpu = any(cc and cc >= (8, 0) for cc in capabilities)
  bf16_cpu = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
  lines.append(f"mixed_float16: {'fast (tensor cores)' if fp16 else 'no fast path here'}")
  lines.append("mixed_bfloat16: " + ("fast on GPU" if bf16_gpu else
                                     f"CPU has {', '.join(bf16_cpu)}" if bf16_cpu else
                                     "no fast path here"))
  return lines


def datasets() -> List[str]:
  """Each shipped dataset source: present, or where it would come from."""
  from nasnet_rl.benchmarks import table  # pylint: disable=g-import-not-at-top
  from nasnet_rl.data import cifar10, fashion_mnist  # pylint: disable=g-import-not-at-top
  fm = all(os.path.exists(os.path.join(fashion_mnist.DEFAULT_PATH, f)) or
           os.path.exists(os.path.join(fashion_mnist.DEFAULT_PATH, f + ".gz"))
           for pair in fashion_mnist.FILES.values() for f in pair)
  checks = [
      ("fashion_mnist", fm, f"IDX files in {fashion_mnist.DEFAULT_PATH} "
                            "(apt-get install dataset-fashion-mnist)"),
      ("cifar10_local", os.path.isdir(cifar10.DEFAULT_PATH), f"{cifar10.DEFAULT_PATH} "
                                                             f"(unpack {cifar10.URL})"),
      ("cifar10 (tfds)", _tfds_prepared("cifar10"), "~/tensorflow_datasets/cifar10 "
                                                    "(tfds downloads it on an online machine)"),
      ("tfds:imagenet2012", _tfds_prepared("imagenet2012"),
       "~/tensorflow_datasets/imagenet2012 (tfds prepares it from the ILSVRC2012 tars in "
       "~/tensorflow_datasets/downloads/manual)"),
      ("NAS-Bench-201 12-epoch table", os.path.exists(table.SHIPPED_TABLE),
       f"{table.SHIPPED_TABLE} (ships with the package)"),
      ("synthetic", True, "generated"),
  ]
  return [f"{name}: {'present' if ok else 'missing'} - {where}" for name, ok, where in checks]


def report() -> List[str]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (["== packages"] + packages() + ["== devices"] + devices(tf)
          + ["== datasets"] + datasets())


def main(argv):
  del argv
  print("\n".join(report()))


def run():
  """Console-script entry point (`nasnet-doctor`)."""
  common.run_main(main)


if __name__ == "__main__":
  run()
