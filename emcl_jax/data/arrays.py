"""Your own benchmark from arrays: `from_arrays(train=[(x, y), ...], ...)`.

Task t's training stream is train[t] in the given order and its test set
test[t]. The result is the `TaskSet` the engine and `runner.run`
consume (`runner.run(..., tasks=from_arrays(...))`).
"""

from typing import Optional, Sequence

import numpy as np

from emcl_jax.data.tasks import TaskSet
from emcl_jax.errors import DataError


def _check_task(split: str, t: int, pair, shape: Optional[tuple[int, ...]]):
  """(x, y) of one task as arrays, after the checks a user needs."""
  where = f'{split}[{t}]'
  try:
    x, y = pair
  except (TypeError, ValueError):
    raise DataError(f'{where} must be a pair (x, y) of arrays') from None
  x, y = np.asarray(x), np.asarray(y)
  if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
    raise DataError(f'{where}: x must be uint8 or floating point, got '
                    f'{x.dtype}; convert it with x.astype(np.float32)')
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
    raise DataError(f'{where}: y must be a 1-D array of integer labels, got '
                    f'{y.dtype} of shape {y.shape}')
  if x.ndim < 2 or x.shape[0] != y.shape[0]:
    raise DataError(f'{where}: x has {x.shape[0] if x.ndim else 0} samples '
                    f'(shape {x.shape}) but y has {y.shape[0]}; give one '
                    'label per sample')
  if x.shape[0] == 0:
    raise DataError(f'{where} is empty; every task needs samples')
  if shape is not None and x.shape[1:] != shape:
    raise DataError(f'{where}: samples of shape {x.shape[1:]}, but the '
                    f'first task\'s are {shape}; give every task one shape')
  if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
    raise DataError(f'{where}: x holds NaN or infinite values')
  return x, y


def from_arrays(train: Sequence, test: Sequence, *,
                num_classes: Optional[int] = None,
                multi_head: bool = False,
                source: str = 'arrays') -> TaskSet:
  """A benchmark of your own tasks.

  Args:
    train: one (x, y) per task, x [n, ...] (uint8 or floats), y [n] integer
      labels; every task the same n (the engine stacks the streams).
    test: one (x, y) per task, as train; every task the same number.
    num_classes: the output layer's size; default: the largest label + 1.
    multi_head: score (and train) each task over its own classes only: task
      t's classes are the labels of train[t] (task-incremental); False: one
      head over all classes.
    source: recorded as the results' data source.

  Returns:
    A `TaskSet`.

  Raises:
    DataError: one clear line for each problem (counts, shapes, dtypes,
      labels out of range, tasks sharing classes in multi_head).
  """
  if not isinstance(train, (list, tuple)) or not isinstance(test,
                                                              (list, tuple)):
    raise DataError('train and test must be lists of (x, y) pairs, one per '
                    'task')
  if not train or len(train) != len(test):
    raise DataError(f'train has {len(train)} tasks and test {len(test)}; '
                    'give one (x, y) per task to each, at least one')
  shape = None
  tr, te = [], []
  for split, pairs, out in (('train', train, tr), ('test', test, te)):
    for t, pair in enumerate(pairs):
      x, y = _check_task(split, t, pair, shape)
      shape = x.shape[1:]
      out.append((x, y))
  for split, pairs in (('train', tr), ('test', te)):
    sizes = {x.shape[0] for x, _ in pairs}
    if len(sizes) > 1:
      raise DataError(f'{split} tasks have {sorted(sizes)} samples; give '
                      f'every {split} task the same number (trim the longer '
                      'ones)')
  dtypes = {x.dtype for x, _ in tr + te}
  if len(dtypes) > 1:
    raise DataError(f'x arrays of several dtypes {sorted(map(str, dtypes))}; '
                    'give every task one dtype')
  labels = np.concatenate([y for _, y in tr + te])
  top = int(labels.max()) + 1
  num_classes = top if num_classes is None else num_classes
  if labels.min() < 0 or top > num_classes:
    raise DataError(f'labels must be in 0..{num_classes - 1}, found '
                    f'{int(labels.min())}..{top - 1}; relabel them or raise '
                    'num_classes')
  mask = None
  if multi_head:
    mask = np.zeros((len(tr), num_classes), bool)
    for t, (_, y) in enumerate(tr):
      mask[t, np.unique(y)] = True
    if np.any(mask.sum(0) > 1):
      raise DataError('tasks share classes; multi_head needs each class in '
                      'one task only (or use multi_head=False)')
    for t, (_, y) in enumerate(te):
      if not np.all(mask[t, y]):
        raise DataError(f'test[{t}] has labels that train[{t}] does not; '
                        'with multi_head each task is scored over its '
                        'training classes')
  return TaskSet(np.stack([x for x, _ in tr]),
                 np.stack([y for _, y in tr]).astype(np.int32),
                 np.stack([x for x, _ in te]),
                 np.stack([y for _, y in te]).astype(np.int32),
                 source, num_classes, class_mask=mask)
