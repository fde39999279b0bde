"""MNIST Permutations and Many Permutations (Section V, Table I).

Task t applies a fixed random pixel permutation p_t to every image. Its
training stream is `samples_per_task` images drawn at random, without
replacement, from the training split (a fresh draw per task, as in GEM's and
La-MAML's loaders); its test set is the whole test split under p_t.
"""

from emcl_jax.data import mnist
from emcl_jax.data import tasks as tasks_lib


def permuted_tasks(split: mnist.Split, num_tasks: int, samples_per_task: int,
                   seed: int) -> tasks_lib.TaskSet:
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
  def permute(t, rng):
    del t
    perm = rng.permutation(split.train_x[0].size)
    return lambda images: images.reshape(len(images), -1)[:, perm]

  return tasks_lib.transformed_tasks(split, num_tasks, samples_per_task,
                                     seed, permute)
