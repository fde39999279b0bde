"""MNIST Rotations (GEM, Lopez-Paz & Ranzato 2017; MER; La-MAML): 20 tasks,
each the MNIST images rotated by one fixed angle.

As in GEM's data script, task t's angle is drawn uniformly from its own
slice [180 t / T, 180 (t + 1) / T) of [0, 180) degrees (seeded), so the
tasks' angles increase. Its training stream is `samples_per_task` images
drawn without replacement from the training split (a fresh draw per task,
as for the permutations) and its test set is the whole test split, both
rotated once at load time (`rotate`: bilinear, about the image centre,
counter-clockwise as `np.rot90`, zeros outside).
"""

import numpy as np

from emcl_jax.data import mnist
from emcl_jax.data import tasks as tasks_lib


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
  """Rotates [N, H, W] images counter-clockwise by `degrees` about their
  centre (bilinear interpolation, zero outside), as uint8.

  Output pixel (i, j) samples the input at the centre plus the rotation of
  (i, j) minus the centre by -degrees; at 90 degrees this is
  `np.rot90(image)` exactly.
  """
  images = np.asarray(images, np.float64)
  _, h, w = images.shape
  theta = np.deg2rad(degrees)
  cos, sin = np.cos(theta), np.sin(theta)
  cy, cx = (h - 1) / 2, (w - 1) / 2
  i, j = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
  dy, dx = i - cy, j - cx
  r = cy + dy * cos + dx * sin
  c = cx - dy * sin + dx * cos
  r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
  fr, fc = r - r0, c - c0
  out = np.zeros_like(images)
  for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                         (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
    rr, cc = r0 + dr, c0 + dc
    inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    rr, cc = np.where(inside, rr, 0), np.where(inside, cc, 0)
    out += np.where(inside, weight, 0.0) * images[:, rr, cc]
  return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def angles(num_tasks: int, seed: int) -> np.ndarray:
  """Task t's angle, uniform in [180 t / T, 180 (t + 1) / T) degrees."""
  rng = np.random.default_rng([seed, 0x0A7E])
  width = 180.0 / num_tasks
  return width * (np.arange(num_tasks) + rng.random(num_tasks))


def rotated_tasks(split: mnist.Split, num_tasks: int, samples_per_task: int,
                  seed: int) -> tasks_lib.TaskSet:
  """Builds the rotated tasks from an MNIST split.

  Args:
    split: images [N, 28, 28] and labels.
    num_tasks: T.
    samples_per_task: training samples per task (<= N).
    seed: fixes the angles and the draws.

  Returns:
    A TaskSet with flattened [784] uint8 inputs (single head).

  Raises:
    DataError: more samples per task than the split holds.
  """
  angle = angles(num_tasks, seed)

  def rotate_task(t, rng):
    del rng
    return lambda images: rotate(images, angle[t]).reshape(len(images), -1)

  return tasks_lib.transformed_tasks(split, num_tasks, samples_per_task,
                                     seed, rotate_task)
