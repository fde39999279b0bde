"""experiments/eq8_readings.py: each Eq 8 reading's meta-step factor
s = alpha * lambda * hn, against values worked by hand."""

from absl.testing import absltest
import numpy as np

from emcl_jax import configs
import fixtures

eq8 = fixtures.study('eq8_readings')


class Eq8ReadingsTest(absltest.TestCase):

  def test_normalisations_floor_at_h_min(self):
    hn, hm = eq8.normalised(np.array([0.0, 1.0, 3.0, 4.0]), 0.01)
    np.testing.assert_allclose(hn, [0.01, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(hm, [0.01, 0.5, 1.5, 2.0])

  def test_step_factors_by_hand(self):
    p = configs.get_config('mnist_permutations', 'emcl').method.params
    # alpha0 0.3, lambda 10, alpha in [0, 1]. An important parameter
    # (hn 1, hm 4): inverse 0.3 * 0.1 * 10 = 0.3; constant 0.3 * 10 = 3;
    # task from task 2: 0.3 / 4 * 10 = 0.75; bounded: hm > 1, alpha -> 0.
    s = eq8.steps(1.0, 4.0, p)
    self.assertEqual(s['inverse'], (0.3, 0.3))
    self.assertAlmostEqual(s['constant'][0], 3.0)
    self.assertAlmostEqual(s['task'][0], 3.0)
    self.assertAlmostEqual(s['task'][1], 0.75)
    self.assertEqual(s['bounded (emcl_paper)'], (0.0, 0.0))
    # An unimportant one (hn 0.01, hm 0.02): task's alpha 0.3 / 0.02 = 15
    # is clipped to 1, s = 1 * 10 * 0.01 = 0.1; bounded likewise at the
    # ceiling.
    s = eq8.steps(0.01, 0.02, p)
    self.assertAlmostEqual(s['task'][1], 0.1)
    self.assertAlmostEqual(s['bounded (emcl_paper)'][0], 0.1)
    self.assertAlmostEqual(s['constant'][0], 0.03)


if __name__ == '__main__':
  absltest.main()
