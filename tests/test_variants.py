"""The registry's variants and the joint baseline, run end to end on the
bundled MNIST: each learns its tasks, and a variant's one switch changes
the run (a variant that silently ran its base method would not)."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import pytest

import runs

pytestmark = pytest.mark.slow  # whole-protocol runs

SMALL = {'data.num_tasks': 3, 'data.samples_per_task': 200}


def _run(method):
  return runs.run('mnist_permutations', method, 0, SMALL)


class VariantsTest(parameterized.TestCase):

  @parameterized.parameters(('ewc_online', 'ewc'), ('emcl_si', 'emcl'))
  def test_variant_learns_and_differs_from_its_base(self, variant, base):
    res, ref = _run(variant), _run(base)
    r = np.array(res['accuracy_matrix'])
    # Each task learned right after training on it: at least three times
    # the 10-class chance of 0.1 (from 200 samples of a permuted task).
    self.assertGreater(np.diag(r).min(), 0.3, r)
    self.assertNotEqual(res['accuracy_matrix'], ref['accuracy_matrix'])

  def test_joint_trains_once_on_every_task(self):
    res = _run('joint')
    r = np.array(res['accuracy_matrix'])
    # One training stream of all three tasks, then one evaluation row.
    self.assertEqual(r.shape, (1, 3))
    self.assertGreater(r.min(), 0.3, r)


if __name__ == '__main__':
  absltest.main()
