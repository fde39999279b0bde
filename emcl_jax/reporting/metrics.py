"""The paper's metrics over the accuracy matrix R (Section V).

R[i, j] is the test accuracy (a fraction) on task j after training task i,
for i, j in 0..T-1. ACC, BWT and LA are returned in percent.
"""

import numpy as np


def acc(r: np.ndarray) -> float:
  """Eq 22: mean accuracy over all T tasks after the last task, in percent."""
  r = np.asarray(r)
  return float(100.0 * r[-1].mean())


def bwt(r: np.ndarray) -> float:
  """Eq 23: mean of R[T-1, t] - R[t, t] over t < T-1, in percent (0 if T=1)."""
  r = np.asarray(r)
  t = r.shape[0]
  if t < 2:
    return 0.0
  return float(100.0 * np.mean(r[-1, :-1] - np.diag(r)[:-1]))


def learning_accuracy(r: np.ndarray) -> float:
  """LA: mean of R[t, t], accuracy on each task just after learning it (%)."""
  return float(100.0 * np.mean(np.diag(np.asarray(r))))


def summary(r: np.ndarray) -> dict[str, float]:
  """{'acc', 'bwt', 'la'} of an accuracy matrix.

  A [1, T] matrix (the joint baseline: one training stream of all tasks)
  has no sequence to forget along: its BWT is 0 and its LA equals its ACC.
  """
  r = np.asarray(r)
  if r.shape[0] != r.shape[1]:
    return {'acc': acc(r), 'bwt': 0.0, 'la': acc(r)}
  return {'acc': acc(r), 'bwt': bwt(r), 'la': learning_accuracy(r)}
