"""A benchmark as a set of tasks: arrays with a leading task axis."""

import math
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from emcl_jax.errors import DataError


class TaskSet(NamedTuple):
  """All tasks of a benchmark, kept on the host as compact arrays.

  Attributes:
    train_x: [T, n, ...] inputs of each task's training stream, in stream
      order (uint8 pixels for images).
    train_y: [T, n] int32 labels.
    test_x: [T, m, ...] inputs of each task's test set.
    test_y: [T, m] int32 labels.
    source: where the data came from (recorded in the results file).
    num_classes: size of the (shared) output layer.
    train_t: [T, n] int32 task identity of each training sample, or None
      when stream t holds task t's samples only (the continual protocol).
    class_mask: [T_test, num_classes] bool, the classes of each task in the
      multi-head setting: training on and evaluating task t mask the logits
      of the shared num_classes-way head to the classes where
      class_mask[t] is True (labels stay global class ids). None: a single
      head, all classes for every task (the permutation benchmarks).
    val_x: [T', v, ...] each task's validation set, held out of its
      training samples (`hold_out`), or None: no validation split.
    val_y: [T', v] int32 labels, or None.
  """
  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  source: str
  num_classes: int
  train_t: Optional[np.ndarray] = None
  class_mask: Optional[np.ndarray] = None
  val_x: Optional[np.ndarray] = None
  val_y: Optional[np.ndarray] = None

  @property
  def num_tasks(self) -> int:
    """Training streams, trained on one after the other."""
    return self.train_y.shape[0]

  @property
  def num_test_tasks(self) -> int:
    """Test sets, all evaluated after each training stream."""
    return self.test_y.shape[0]


def joint(tasks: TaskSet, seed: int) -> TaskSet:
  """The multitask upper bound's data: every task's training samples in one
  stream, shuffled together (each sample keeps its task identity, so a
  multi-head model still masks it by `class_mask[train_t]`); the test sets
  and `class_mask` are unchanged."""
  t, n = tasks.train_y.shape
  order = np.random.default_rng(seed).permutation(t * n)
  task_ids = np.repeat(np.arange(t, dtype=np.int32), n)
  flat = lambda a: a.reshape((t * n,) + a.shape[2:])[order][None]
  return tasks._replace(train_x=flat(tasks.train_x),
                        train_y=flat(tasks.train_y),
                        train_t=task_ids[order][None])


def task_ordered_labels(tasks: TaskSet) -> TaskSet:
  """Relabels a class-split benchmark's classes by their position in task
  order (task t's classes become t*c .. t*c+c-1, in increasing class id).

  Multi-head training and evaluation do not change (each task still sees
  only its own c logits), but the class mask then no longer depends on the
  class order, so seeds with different random class orders share one loss
  function (and one vmapped program). A single-head TaskSet is returned as
  it is.

  Raises:
    ValueError: two tasks share a class.
  """
  if tasks.class_mask is None:
    return tasks
  order = np.concatenate([np.flatnonzero(m) for m in tasks.class_mask])
  if len(np.unique(order)) != len(order):
    raise ValueError('tasks share classes; a class split must be disjoint')
  relabel = np.full(tasks.num_classes, -1, np.int32)
  relabel[order] = np.arange(len(order), dtype=np.int32)
  mask = np.zeros_like(tasks.class_mask)
  for t, m in enumerate(tasks.class_mask):
    mask[t, relabel[np.flatnonzero(m)]] = True
  return tasks._replace(
      train_y=relabel[tasks.train_y], test_y=relabel[tasks.test_y],
      val_y=None if tasks.val_y is None else relabel[tasks.val_y],
      class_mask=mask)


def hold_out(tasks: TaskSet, fraction: float, seed: int,
             multiple: int = 1) -> TaskSet:
  """Each task's validation set, held out of its training samples before
  the stream is formed (as La-MAML's scripts hold out `--validation`):
  ceil(fraction * n) of task t's n training samples, drawn at random
  (seeded), rounded up so that the n - v left are a multiple of `multiple`
  (whole batches); the stream keeps the rest in their order, so training
  sees fewer samples. The validation sets are scored like the test sets
  after every task (`val_x`, `val_y`). fraction 0 returns `tasks`.

  Raises:
    DataError: a fraction outside [0, 1), a split already held out, or one
      that leaves no whole batch to train on.
  """
  if not 0 <= fraction < 1:
    raise DataError(f'validation={fraction} must be in [0, 1); give the '
                    'fraction of each task held out, e.g. 0.1')
  if fraction == 0:
    return tasks
  if tasks.val_y is not None or tasks.train_t is not None:
    raise DataError('hold out the validation split once, before the '
                    'streams are merged (joint) or repeated')
  t, n = tasks.train_y.shape
  keep = (n - math.ceil(fraction * n)) // multiple * multiple
  if keep <= 0:
    raise DataError(f'validation={fraction} of {n} samples per task leaves '
                    f'no batch of {multiple} to train on; lower validation')
  rng = np.random.default_rng([seed, 0x7A11D])
  order = np.stack([rng.permutation(n) for _ in range(t)])
  train = np.sort(order[:, :keep], axis=1)  # the stream's own order
  val = np.sort(order[:, keep:], axis=1)
  take = lambda a, idx: np.take_along_axis(  # noqa: E731
      a, idx.reshape(idx.shape + (1,) * (a.ndim - 2)), axis=1)
  return tasks._replace(
      train_x=take(tasks.train_x, train), train_y=take(tasks.train_y, train),
      val_x=take(tasks.train_x, val), val_y=take(tasks.train_y, val))


def repeat_epochs(tasks: TaskSet, epochs: int, seed: int) -> TaskSet:
  """Each task's training stream repeated `epochs` times: epoch 0 in its
  order, every later epoch a fresh shuffle of the same samples (seeded), so
  a task's E epochs are one stream of E * n samples (`engine` trains it as
  one scan and keeps the replay memory to epoch 0).

  Raises:
    ValueError: epochs < 1.
  """
  if epochs < 1:
    raise ValueError(f'epochs must be >= 1, got {epochs}')
  if epochs == 1:
    return tasks
  rng = np.random.default_rng([seed, 0xE90C])
  t, n = tasks.train_y.shape
  order = np.stack([np.concatenate(
      [np.arange(n)] + [rng.permutation(n) for _ in range(epochs - 1)])
                    for _ in range(t)])  # [T, E * n]
  take = lambda a: np.take_along_axis(  # noqa: E731
      a, order.reshape(order.shape + (1,) * (a.ndim - 2)), axis=1)
  return tasks._replace(
      train_x=take(tasks.train_x), train_y=take(tasks.train_y),
      train_t=None if tasks.train_t is None else take(tasks.train_t))


def transformed_tasks(
    split: Any, num_tasks: int, samples_per_task: int, seed: int,
    transform_of: Callable[[int, np.random.Generator],
                           Callable[[np.ndarray], np.ndarray]],
    num_classes: int = 10) -> TaskSet:
  """Tasks made by transforming one image split (Permutations, Rotations).

  Task t's training stream is `samples_per_task` images drawn without
  replacement from the training split (a fresh draw per task, as in GEM's
  and La-MAML's loaders) and its test set the whole test split, both passed
  through `transform_of(t, rng)` ([N, ...] images -> [N, D]), which is
  asked for before the task's draw from the same seeded generator.

  Raises:
    DataError: more samples per task than the split holds.
  """
  n_train = split.train_x.shape[0]
  if samples_per_task > n_train:
    raise DataError(f'samples_per_task={samples_per_task} exceeds the '
                    f'{n_train} training images of {split.source}; lower '
                    'samples_per_task, or load the full data (data_dir)')
  rng = np.random.default_rng(seed)
  tx, ty, sx = [], [], []
  for t in range(num_tasks):
    transform = transform_of(t, rng)
    pick = rng.choice(n_train, samples_per_task, replace=False)
    tx.append(transform(split.train_x[pick]))
    ty.append(split.train_y[pick])
    sx.append(transform(split.test_x))
  test_y = np.broadcast_to(split.test_y, (num_tasks,) + split.test_y.shape)
  return TaskSet(np.stack(tx), np.stack(ty).astype(np.int32), np.stack(sx),
                 np.array(test_y, np.int32), split.source, num_classes)
