"""The paper's metrics over the accuracy matrix R (Section V), and two that
continual-learning codebases add.

R[i, j] is the test accuracy (a fraction) on task j after training task i,
for i, j in 0..T-1. ACC, BWT and LA (the paper's), FWT (GEM's forward
transfer, which needs b[j], the accuracy on task j of the model before any
training) and average forgetting (Chaudhry et al. 2018, as Avalanche and
Mammoth report it) are returned in percent.
"""

import numpy as np


def acc(r: np.ndarray) -> float:
  """Eq 22: mean accuracy over all T tasks after the last task, in percent."""
  r = np.asarray(r)
  return float(100.0 * r[-1].mean())


def bwt(r: np.ndarray) -> float:
  """Eq 23: mean of R[T-1, t] - R[t, t] over t < T-1, in percent (0 if T=1).

  Sign: negative when tasks lost accuracy after they were learned,
  positive when later tasks improved them. Divisor: T-1, the tasks that
  have a later task (the paper's Eq 23). GEM's and La-MAML's code average
  over all T tasks with the last one's term 0 (its R[T-1, T-1] minus
  itself), which is this value times (T-1)/T: -10.0 here reads -9.5 there
  for T = 20.
  """
  r = np.asarray(r)
  t = r.shape[0]
  if t < 2:
    return 0.0
  return float(100.0 * np.mean(r[-1, :-1] - np.diag(r)[:-1]))


def learning_accuracy(r: np.ndarray) -> float:
  """LA: mean of R[t, t], accuracy on each task just after learning it (%)."""
  return float(100.0 * np.mean(np.diag(np.asarray(r))))


def fwt(r: np.ndarray, b: np.ndarray) -> float:
  """Forward transfer (GEM, Lopez-Paz & Ranzato 2017): mean over tasks
  t = 1..T-1 of R[t-1, t] - b[t], the accuracy on task t just before
  training it minus that of the untrained model, in percent (0 if T=1)."""
  r, b = np.asarray(r), np.asarray(b)
  t = r.shape[0]
  if t < 2:
    return 0.0
  return float(100.0 * np.mean([r[i - 1, i] - b[i] for i in range(1, t)]))


def forgetting(r: np.ndarray) -> float:
  """Average forgetting: mean over tasks t = 0..T-2 of
  max_{l < T-1} R[l, t] - R[T-1, t], the drop from each task's best
  accuracy before the last task to its final one, in percent (0 if T=1).

  Sign: positive is accuracy lost (the opposite of BWT's sign); negative
  means every task ended above its best earlier accuracy on average
  (backward transfer without loss), which happens on the rotation and
  class-split benchmarks. Divisor: T-1, as BWT's. Unlike BWT it measures
  from each task's best accuracy, not the one just after learning it.
  """
  r = np.asarray(r)
  t = r.shape[0]
  if t < 2:
    return 0.0
  return float(100.0 * np.mean(r[:-1, :-1].max(axis=0) - r[-1, :-1]))


def summary(r: np.ndarray, b: np.ndarray | None = None) -> dict[str, float]:
  """{'acc', 'bwt', 'la', 'forgetting'} of an accuracy matrix, and 'fwt'
  when `b` (the untrained model's accuracy on every task) is given.

  A [1, T] matrix (the joint baseline: one training stream of all tasks)
  has no sequence to forget or transfer along: its BWT, forgetting and FWT
  are 0 and its LA equals its ACC.
  """
  r = np.asarray(r)
  sequence = r.shape[0] == r.shape[1]
  out = {'acc': acc(r), 'bwt': bwt(r) if sequence else 0.0,
         'la': learning_accuracy(r) if sequence else acc(r),
         'forgetting': forgetting(r) if sequence else 0.0}
  if b is not None:
    out['fwt'] = fwt(r, b) if sequence else 0.0
  return out
