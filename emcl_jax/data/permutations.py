"""MNIST Permutations and Many Permutations (Section V, Table I).

Task t applies a fixed random pixel permutation p_t to every image. Its
training stream is `samples_per_task` images drawn at random, without
replacement, from the training split (a fresh draw per task, as in GEM's and
La-MAML's loaders); its test set is the whole test split under p_t.
"""

import numpy as np

from emcl_jax.data import mnist
from emcl_jax.data.tasks import TaskSet
from emcl_jax.errors import DataError


def permuted_tasks(split: mnist.Split, num_tasks: int, samples_per_task: int,
                   seed: int) -> TaskSet:
  """Builds the permuted tasks from an MNIST split.

  Args:
    split: images [N, 28, 28] and labels.
    num_tasks: T.
    samples_per_task: training samples per task (<= N).
    seed: fixes the permutations and the draws.

  Returns:
    A TaskSet with flattened [784] uint8 inputs.

  Raises:
    DataError: more samples per task than the split holds.
  """
  n_train = split.train_x.shape[0]
  if samples_per_task > n_train:
    raise DataError(f'samples_per_task={samples_per_task} exceeds the '
                    f'{n_train} training images of {split.source}; lower '
                    '--samples_per_task or use the full data via --data_dir')
  rng = np.random.default_rng(seed)
  train_flat = split.train_x.reshape(n_train, -1)
  test_flat = split.test_x.reshape(split.test_x.shape[0], -1)
  dims = train_flat.shape[1]
  tx, ty, sx = [], [], []
  for _ in range(num_tasks):
    perm = rng.permutation(dims)
    pick = rng.choice(n_train, samples_per_task, replace=False)
    tx.append(train_flat[pick][:, perm])
    ty.append(split.train_y[pick])
    sx.append(test_flat[:, perm])
  test_y = np.broadcast_to(split.test_y, (num_tasks,) + split.test_y.shape)
  return TaskSet(np.stack(tx), np.stack(ty).astype(np.int32), np.stack(sx),
                 np.array(test_y, np.int32), split.source, 10)
