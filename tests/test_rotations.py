"""MNIST Rotations: the rotation against np.rot90 and a hand-computed
bilinear pixel, the angles' slices, and the tasks built from them."""

from absl.testing import absltest
import numpy as np

from emcl_jax import data
from emcl_jax.data import mnist
from emcl_jax.data import rotations


class RotateTest(absltest.TestCase):

  def test_quarter_turns_equal_rot90(self):
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28),
                                               dtype=np.uint8)
    np.testing.assert_array_equal(rotations.rotate(images, 90),
                                  np.rot90(images, 1, axes=(1, 2)))
    np.testing.assert_array_equal(rotations.rotate(images, 180),
                                  np.rot90(images, 2, axes=(1, 2)))
    np.testing.assert_array_equal(rotations.rotate(images, 0), images)

  def test_bilinear_pixel_by_hand(self):
    # A 3x3 image, 45 degrees about the centre (1, 1). Output pixel (0, 1)
    # (dy = -1, dx = 0) samples the input at (1 - cos 45, 1 + sin 45 * 1)
    # = (0.2929, 1.7071): between rows 0, 1 and columns 1, 2.
    image = np.array([[[0, 10, 20], [30, 40, 50], [60, 70, 80]]], np.uint8)
    r, c = 1 - np.cos(np.pi / 4), 1 + np.sin(np.pi / 4)
    fr, fc = r - 0, c - 1
    expected = ((1 - fr) * (1 - fc) * 10 + (1 - fr) * fc * 20
                + fr * (1 - fc) * 40 + fr * fc * 50)
    self.assertEqual(rotations.rotate(image, 45)[0, 0, 1],
                     int(np.rint(expected)))
    # Pixel (0, 0) samples (1 - 2 cos 45, 1) = (-0.414, 1): row -1 is
    # outside (zero), row 0 gets the weight 0.586 of its pixel 10.
    self.assertEqual(rotations.rotate(image, 45)[0, 0, 0],
                     int(np.rint((2 - 2 * np.cos(np.pi / 4)) * 10)))

  def test_angles_one_per_slice(self):
    angles = rotations.angles(20, seed=3)
    self.assertLen(angles, 20)
    for t, a in enumerate(angles):
      self.assertBetween(a, 9.0 * t, 9.0 * (t + 1))
    np.testing.assert_array_equal(angles, rotations.angles(20, seed=3))
    self.assertFalse(np.array_equal(angles, rotations.angles(20, seed=4)))


class RotatedTasksTest(absltest.TestCase):

  def test_tasks_are_the_rotated_split(self):
    tasks = data.load('mnist_rotations', num_tasks=3, samples_per_task=50,
                      seed=1)
    self.assertEqual(tasks.train_x.shape, (3, 50, 784))
    self.assertIsNone(tasks.class_mask)
    split = mnist.load('bundled', None)
    angles = rotations.angles(3, 1)
    for t in range(3):
      # The test set of task t is the whole test split at angle t.
      np.testing.assert_array_equal(
          tasks.test_x[t],
          rotations.rotate(split.test_x, angles[t]).reshape(-1, 784))
      # Each training image is some training image at that angle.
      first = tasks.train_x[t, 0].reshape(28, 28)
      rotated = rotations.rotate(split.train_x, angles[t])
      matches = np.flatnonzero((rotated == first).all(axis=(1, 2)))
      self.assertNotEmpty(matches)
      self.assertIn(tasks.train_y[t, 0], split.train_y[matches])

  def test_too_many_samples_is_a_data_error(self):
    with self.assertRaisesRegex(data.DataError, 'exceeds the'):
      data.load('mnist_rotations', num_tasks=1, samples_per_task=10**6)


if __name__ == '__main__':
  absltest.main()
