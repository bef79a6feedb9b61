"""A supernet cell's states as a TensorList: blocks and consumers read entries without copying
them, and the gradient of a read is a sparse list (only the read entry set) that adds to others
entry-wise, so a state that nothing read gets no zero gradient tensor. A `tf.switch_case` of
identities gave every unpicked candidate a zero tensor that the backward pass then added into
its gradient (most of a step's ~270 gradient accumulations)."""

import tensorflow as tf


def element_shape(shape: tf.TensorShape) -> tf.Tensor:
  """The list ops' `element_shape` argument for entries of static shape `shape` (-1: unknown)."""
  if shape.rank is None:
    return tf.constant(-1, tf.int32)
  return tf.constant([-1 if d is None else d for d in shape.as_list()], tf.int32)


def get_item(handle: tf.Tensor, index: tf.Tensor, shape: tf.TensorShape,
             dtype: tf.DType) -> tf.Tensor:
  """Entry `index` of the list `handle`, with its static `shape`."""
  y = tf.raw_ops.TensorListGetItem(input_handle=handle, index=index,
                                   element_shape=element_shape(shape), element_dtype=dtype)
  return tf.ensure_shape(y, shape)


def empty_like(handle: tf.Tensor, shape: tf.TensorShape, dtype: tf.DType) -> tf.Tensor:
  """A list as long as `handle`'s with no entry set (a zero gradient, nothing materialized)."""
  return tf.raw_ops.TensorListReserve(
      element_shape=element_shape(shape),
      num_elements=tf.raw_ops.TensorListLength(input_handle=handle), element_dtype=dtype)


class StateList:
  """Same-shape tensors in a TensorList: `read(index)` / `gather(indices)` read entries."""

  def __init__(self, tensors):
    self.shape, self.dtype = tensors[0].shape, tensors[0].dtype
    self.size = 0
    self.handle = tf.raw_ops.EmptyTensorList(element_shape=element_shape(self.shape),
                                             max_num_elements=-1, element_dtype=self.dtype)
    for t in tensors:
      self.push(t)

  def push(self, tensor: tf.Tensor) -> None:
    """Appends `tensor` (of the list's shape); later reads can see it."""
    self.handle = tf.raw_ops.TensorListPushBack(input_handle=self.handle, tensor=tensor)
    self.size += 1

  def gather(self, indices: tf.Tensor) -> tf.Tensor:
    """The entries at `indices` stacked, [len(indices), *shape]; a sparse gradient."""
    y = tf.raw_ops.TensorListGather(input_handle=self.handle, indices=indices,
                                    element_shape=element_shape(self.shape),
                                    element_dtype=self.dtype)
    return tf.ensure_shape(y, tf.TensorShape([None]).concatenate(self.shape))

  def read(self, index: tf.Tensor) -> "ListRead":
    """Entry `index` (clipped) of the list as it is now, read later (inside an op slot's
    branch: enas/slot_case.py)."""
    index = tf.clip_by_value(tf.cast(index, tf.int32), 0, self.size - 1)
    return ListRead(self.handle, index, self.shape, self.dtype)


class ListRead:
  """One entry of a TensorList, read where it is used: an op slot's branch reads its input
  from the list itself (enas/slot_case.py), so that its gradient is a list with that entry set,
  and the branches that read another input give an empty list, where a tensor input would need
  a zero tensor from every branch that does not read it (and an AddN of those zeros)."""

  def __init__(self, handle: tf.Tensor, index: tf.Tensor, shape: tf.TensorShape,
               dtype: tf.DType):
    self.handle, self.index, self.shape, self.dtype = handle, index, shape, dtype

  def get(self, handle: tf.Tensor) -> tf.Tensor:
    """The entry, from `handle` (this read's list, as the caller holds it)."""
    return get_item(handle, self.index, self.shape, self.dtype)
