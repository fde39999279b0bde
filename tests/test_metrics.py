"""ACC (Eq 22), BWT (Eq 23), LA, FWT and forgetting against a hand-written
accuracy matrix."""

from absl.testing import absltest
import numpy as np

from emcl_jax.reporting import metrics

# R[i, j]: accuracy on task j after training task i.
R = np.array([[0.90, 0.10, 0.12],
              [0.70, 0.80, 0.11],
              [0.60, 0.50, 0.95]])


class MetricsTest(absltest.TestCase):

  def test_acc(self):
    # (0.60 + 0.50 + 0.95) / 3 = 0.68333
    self.assertAlmostEqual(metrics.acc(R), 68.333333, places=4)

  def test_bwt(self):
    # ((0.60 - 0.90) + (0.50 - 0.80)) / 2 = -0.30
    self.assertAlmostEqual(metrics.bwt(R), -30.0, places=6)

  def test_learning_accuracy(self):
    # (0.90 + 0.80 + 0.95) / 3
    self.assertAlmostEqual(metrics.learning_accuracy(R), 88.333333, places=4)

  def test_fwt(self):
    # b: the untrained model's accuracy on each task. Task 1 before its
    # training: 0.10 - 0.09; task 2: 0.11 - 0.13; mean of 0.01 and -0.02.
    b = np.array([0.08, 0.09, 0.13])
    self.assertAlmostEqual(metrics.fwt(R, b), -0.5, places=6)

  def test_forgetting(self):
    # Task 0: best of R[0..1, 0] is 0.90, final 0.60: 0.30. Task 1: best of
    # R[0..1, 1] is 0.80, final 0.50: 0.30. The last task is not counted.
    self.assertAlmostEqual(metrics.forgetting(R), 30.0, places=6)
    # Task 0's best came after task 1 (backward transfer, then forgetting):
    # 0.7 - 0.4; task 1: 0.9 - 0.8; mean 0.2.
    r = np.array([[0.5, 0.1, 0.0], [0.7, 0.9, 0.1], [0.4, 0.8, 0.9]])
    self.assertAlmostEqual(metrics.forgetting(r), 20.0, places=6)

  def test_single_task(self):
    self.assertEqual(metrics.bwt(np.array([[0.5]])), 0.0)
    self.assertEqual(metrics.summary(np.array([[0.5]]), np.array([0.1])),
                     {'acc': 50.0, 'bwt': 0.0, 'la': 50.0, 'fwt': 0.0,
                      'forgetting': 0.0})

  def test_joint_row(self):
    # One training stream, three test tasks: ACC is the row's mean.
    out = metrics.summary(np.array([[0.9, 0.6, 0.3]]))
    self.assertAlmostEqual(out['acc'], 60.0, places=5)
    self.assertEqual(out['bwt'], 0.0)
    self.assertAlmostEqual(out['la'], 60.0, places=5)
    self.assertEqual(out['forgetting'], 0.0)


if __name__ == '__main__':
  absltest.main()
