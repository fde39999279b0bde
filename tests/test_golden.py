"""No number changes: every method's 3-task run (tests/golden.py) gives the
accuracy matrix and task losses recorded in tests/data/golden_3tasks.json,
and its update is traced once for the whole stream (one compilation, reused
for every task).

The comparison allows for a CPU's rounding (`golden.ROUNDING`,
`golden.AMPLIFIED`: measured across two CPU generations), not for a
change: a changed sign or a dropped term moves the numbers by far more."""

import json
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import pytest

from emcl_jax import configs
from emcl_jax import runner
from emcl_jax.base import Method
from emcl_jax.runner import build
import golden

pytestmark = pytest.mark.slow  # 16 runs of 3 tasks

with open(golden.GOLDEN) as _f:
  WANT = json.load(_f)


class GoldenTest(parameterized.TestCase):

  def test_every_method_is_recorded(self):
    self.assertEqual(sorted(WANT), sorted(runner.METHODS))

  @parameterized.named_parameters((m, m) for m in sorted(WANT))
  def test_the_run_gives_the_recorded_numbers(self, method):
    config = configs.get_config('mnist_permutations', method,
                                golden.OVERRIDES)
    traces = []
    make_method = build.make_method

    def counting(*args, **kwargs):
      inner = make_method(*args, **kwargs)

      def update(state, batch, key):
        traces.append(batch.x.shape)
        return inner.update(state, batch, key)

      return Method(inner.init, update, inner.params_of)

    with mock.patch.object(build, 'make_method', counting):
      (got,) = runner.run(config)
    self.assertEqual(traces, [(10, 784)])
    atol, rtol = golden.AMPLIFIED.get(method, golden.ROUNDING)
    np.testing.assert_allclose(got['accuracy_matrix'],
                               WANT[method]['accuracy_matrix'], rtol=0,
                               atol=atol)
    np.testing.assert_allclose(got['task_losses'],
                               WANT[method]['task_losses'], rtol=rtol)


if __name__ == '__main__':
  absltest.main()
