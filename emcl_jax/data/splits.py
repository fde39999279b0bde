"""Class-incremental task splits (Split MNIST, CIFAR-100, miniImageNet).

Task k owns `classes_per_task` classes, `order[k*c:(k+1)*c]`, where `order`
is 0..C-1 ('natural') or a permutation of them drawn from the seed
('random'). Its training stream is its classes' training images, shuffled;
its test set is its classes' test images, in the source's order. Labels stay
global class ids; `TaskSet.class_mask` tells a multi-head model which logits
of the shared C-way head belong to each task.
"""

import numpy as np

from emcl_jax.data.tasks import TaskSet
from emcl_jax.errors import DataError

CLASS_ORDERS = ('natural', 'random')


def order_classes(num_classes: int, order: str, seed: int) -> np.ndarray:
  """The classes in task order: 0..C-1, or a permutation from `seed`.

  Raises:
    DataError: `order` is neither 'natural' nor 'random'.
  """
  if order not in CLASS_ORDERS:
    raise DataError(f'unknown class order {order!r}; use '
                    "class_order='natural' or class_order='random'")
  if order == 'natural':
    return np.arange(num_classes)
  return np.random.default_rng((seed, 0)).permutation(num_classes)


def class_split(train_x: np.ndarray, train_y: np.ndarray,
                test_x: np.ndarray, test_y: np.ndarray, *, num_tasks: int,
                classes_per_task: int, seed: int,
                class_order: str = 'natural',
                samples_per_task: int | None = None, source: str,
                num_classes: int) -> TaskSet:
  """Splits a labelled dataset into tasks of disjoint classes.

  Every task's stream has the same length (the smallest task's count, or
  `samples_per_task`), and so does every test set (the smallest task's
  count; larger ones keep a seed-determined subset, in source order), so the
  arrays stack. With balanced classes (CIFAR-100, miniImageNet, the bundled
  MNIST) nothing is dropped.

  Args:
    train_x: [N, ...] training images (uint8), any trailing shape.
    train_y: [N] integer class ids in 0..num_classes-1.
    test_x: [M, ...] test images.
    test_y: [M] class ids.
    num_tasks: T, with T * classes_per_task <= num_classes.
    classes_per_task: c.
    seed: fixes the class order ('random') and the stream shuffles.
    class_order: 'natural' or 'random'.
    samples_per_task: truncates each stream to this length; None keeps all.
    source: where the data came from, kept in the TaskSet.
    num_classes: C, the size of the shared head.

  Returns:
    A TaskSet with train_x [T, n, ...], test_x [T, m, ...], int32 labels and
    class_mask [T, C].

  Raises:
    DataError: sizes that disagree, labels out of range, too many tasks, a
      class without images, or more samples per task than there are.
  """
  _check_arrays(train_x, train_y, test_x, test_y, source, num_classes)
  _check_sizes(num_tasks, classes_per_task, num_classes)
  order = order_classes(num_classes, class_order, seed)
  groups = order[:num_tasks * classes_per_task].reshape(num_tasks, -1)
  _check_classes(groups, train_y, test_y, source, num_classes)
  train_idx, test_idx = _task_indices(groups, train_y, test_y, seed,
                                      samples_per_task, source)
  mask = np.zeros((num_tasks, num_classes), bool)
  np.put_along_axis(mask, groups, True, axis=1)
  return TaskSet(train_x[train_idx], train_y[train_idx].astype(np.int32),
                 test_x[test_idx], test_y[test_idx].astype(np.int32), source,
                 num_classes, class_mask=mask)


def _check_arrays(train_x: np.ndarray, train_y: np.ndarray,
                  test_x: np.ndarray, test_y: np.ndarray, source: str,
                  num_classes: int) -> None:
  """Raises DataError for images and labels that disagree in number or
  shape, or labels outside 0..num_classes-1."""
  for split, x, y in (('train', train_x, train_y), ('test', test_x, test_y)):
    if y.ndim != 1 or x.shape[0] != y.shape[0]:
      raise DataError(f'{split} images {x.shape} and labels {y.shape} of '
                      f'{source} do not match; re-download the data')
    if y.size and (y.min() < 0 or y.max() >= num_classes):
      raise DataError(f'{split} labels of {source} lie in {y.min()}..'
                      f'{y.max()}, outside 0..{num_classes - 1}; re-download '
                      'the data')
  if train_x.shape[1:] != test_x.shape[1:]:
    raise DataError(f'train images {train_x.shape[1:]} and test images '
                    f'{test_x.shape[1:]} of {source} differ in shape; '
                    're-download the data')


def _check_sizes(num_tasks: int, classes_per_task: int,
                 num_classes: int) -> None:
  """Raises DataError unless 1 <= num_tasks * classes_per_task <= C."""
  if classes_per_task < 1 or num_tasks < 1:
    raise DataError(f'num_tasks={num_tasks} and classes_per_task='
                    f'{classes_per_task} must be positive')
  max_tasks = num_classes // classes_per_task
  if num_tasks > max_tasks:
    raise DataError(f'num_tasks={num_tasks} exceeds the {max_tasks} tasks of '
                    f'{classes_per_task} classes that {num_classes} classes '
                    'give; lower num_tasks')


def _check_classes(groups: np.ndarray, train_y: np.ndarray,
                   test_y: np.ndarray, source: str, num_classes: int) -> None:
  """Raises DataError for a class of `groups` [T, c] without training or
  test images."""
  train_count = np.bincount(train_y, minlength=num_classes)
  test_count = np.bincount(test_y, minlength=num_classes)
  for c in groups.reshape(-1):
    if not train_count[c] or not test_count[c]:
      raise DataError(f'class {c} of {source} has {train_count[c]} training '
                      f'and {test_count[c]} test images; every class needs '
                      'both: re-download the data')


def _task_indices(groups: np.ndarray, train_y: np.ndarray,
                  test_y: np.ndarray, seed: int,
                  samples_per_task: int | None, source: str
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(train [T, n], test [T, m]) indices of each task's images: its
  classes' training images shuffled and cut to the shortest task's count
  (or `samples_per_task`); its test images in source order, larger sets
  cut to the smallest's size by a seeded subset.

  Raises:
    DataError: samples_per_task outside 1..n.
  """
  rng = np.random.default_rng((seed, 1))
  train_idx = [rng.permutation(np.flatnonzero(np.isin(train_y, g)))
               for g in groups]
  test_idx = [np.flatnonzero(np.isin(test_y, g)) for g in groups]
  n = min(len(i) for i in train_idx)
  if samples_per_task is not None:
    if not 1 <= samples_per_task <= n:
      raise DataError(f'samples_per_task={samples_per_task} is outside 1..{n}'
                      f', the training images per task of {source}; lower '
                      'samples_per_task, or load the full data (data_dir)')
    n = samples_per_task
  m = min(len(i) for i in test_idx)
  test_idx = [i if len(i) == m else np.sort(rng.choice(i, m, replace=False))
              for i in test_idx]
  return (np.stack([i[:n] for i in train_idx]), np.stack(test_idx))
