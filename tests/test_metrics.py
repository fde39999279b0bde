"""ACC (Eq 22), BWT (Eq 23) and LA against a hand-written accuracy matrix."""

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

  def test_single_task(self):
    self.assertEqual(metrics.bwt(np.array([[0.5]])), 0.0)
    self.assertEqual(metrics.summary(np.array([[0.5]])),
                     {'acc': 50.0, 'bwt': 0.0, 'la': 50.0})

  def test_joint_row(self):
    # One training stream, three test tasks: ACC is the row's mean.
    out = metrics.summary(np.array([[0.9, 0.6, 0.3]]))
    self.assertAlmostEqual(out['acc'], 60.0, places=5)
    self.assertEqual(out['bwt'], 0.0)
    self.assertAlmostEqual(out['la'], 60.0, places=5)


if __name__ == '__main__':
  absltest.main()
