"""A benchmark as a set of tasks: arrays with a leading task axis."""

from typing import NamedTuple

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
  """
  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  source: str
  num_classes: int

  @property
  def num_tasks(self) -> int:
    return self.train_y.shape[0]
