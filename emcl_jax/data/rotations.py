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
from emcl_jax.data.tasks import TaskSet
from emcl_jax.errors import DataError


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
                  seed: int) -> TaskSet:
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
  n_train = split.train_x.shape[0]
  if samples_per_task > n_train:
    raise DataError(f'samples_per_task={samples_per_task} exceeds the '
                    f'{n_train} training images of {split.source}; lower '
                    '--samples_per_task or use the full data via --data_dir')
  rng = np.random.default_rng(seed)
  tx, ty, sx = [], [], []
  for angle in angles(num_tasks, seed):
    pick = rng.choice(n_train, samples_per_task, replace=False)
    tx.append(rotate(split.train_x[pick], angle).reshape(samples_per_task,
                                                         -1))
    ty.append(split.train_y[pick])
    sx.append(rotate(split.test_x, angle).reshape(len(split.test_x), -1))
  test_y = np.broadcast_to(split.test_y, (num_tasks,) + split.test_y.shape)
  return TaskSet(np.stack(tx), np.stack(ty).astype(np.int32), np.stack(sx),
                 np.array(test_y, np.int32), split.source, 10)
