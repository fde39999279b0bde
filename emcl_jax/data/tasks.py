"""A benchmark as a set of tasks: arrays with a leading task axis."""

from typing import NamedTuple, Optional

import numpy as np


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
  """
  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  source: str
  num_classes: int
  train_t: Optional[np.ndarray] = None

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
  stream, shuffled together (each sample keeps its task identity); the test
  sets are unchanged."""
  t, n = tasks.train_y.shape
  order = np.random.default_rng(seed).permutation(t * n)
  task_ids = np.repeat(np.arange(t, dtype=np.int32), n)
  flat = lambda a: a.reshape((t * n,) + a.shape[2:])[order][None]
  return tasks._replace(train_x=flat(tasks.train_x),
                        train_y=flat(tasks.train_y),
                        train_t=task_ids[order][None])
