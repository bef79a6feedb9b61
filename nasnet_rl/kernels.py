"""Which kernel form the child ops train with: the CPU reformulations of child/ops.py (1x1
convolutions as a MatMul, 5x5/7x7 depthwise filter gradients as a depthwise conv over the batch,
the rotated-filter input gradient) or TF's native kernels.

The reformulations were measured faster on CPUs only (oneDNN, see child/ops.py); on GPUs cuDNN's
native kernels are the default. `kernel_forms.form` (gin) forces either: "cpu_reformulated",
"native", or "auto" (reformulated when no GPU is visible). The choice is read when a training
step is traced; both forms compute the same sums (tests/test_kernels.py)."""

import gin
import tensorflow as tf

FORMS = ("auto", "cpu_reformulated", "native")


@gin.configurable
def kernel_forms(form: str = "auto") -> str:
  """The configured form (one of FORMS)."""
  if form not in FORMS:
    raise ValueError(f"kernel_forms.form must be one of {list(FORMS)}, got {form!r}")
  return form


def reformulated() -> bool:
  """Whether the child ops use the CPU reformulations now (the resolved `kernel_forms`)."""
  form = kernel_forms()
  if form == "auto":
    return not tf.config.list_logical_devices("GPU")
  return form == "cpu_reformulated"


def describe() -> str:
  """One line for benchmarks and the doctor: the configured and the resolved form."""
  return (f"kernel forms: {kernel_forms()} -> "
          f"{'cpu_reformulated' if reformulated() else 'native'}")
