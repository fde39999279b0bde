"""Seeds in parallel: vmapped seeds equal single-seed runs; sharded equals
unsharded on 4 fake CPU devices (a subprocess, since the device count is
fixed when JAX starts)."""

import json
import subprocess
import sys

from absl.testing import absltest
import pytest
from absl.testing import parameterized
import numpy as np

import fixtures
import runs
from emcl_jax import configs
from emcl_jax import runner

pytestmark = pytest.mark.slow  # subprocess and whole-protocol runs

SMALL = {'data.num_tasks': 3, 'data.samples_per_task': 60}

SHARDED_SCRIPT = r'''
import json, jax
from emcl_jax import configs
from emcl_jax import runner
from emcl_jax.training import engine
assert len(jax.devices()) == 4, jax.devices()
assert engine.seed_mesh(4).devices.size == 4
assert engine.seed_mesh(6).devices.size == 3  # the most devices dividing 6
out = {}
for shard in (True, False):
  # The single-pass setting: under the 5-glance default the first task's
  # large meta steps (alpha0 lam hn up to 3) amplify float reassociation
  # (sums in another order) to a few test images, beyond atol.
  config = configs.get_config('mnist_permutations', 'emcl', {
      'seed': 0, 'seeds': 4, 'data.num_tasks': 3,
      'data.samples_per_task': 60, 'method.glances': 1,
      'method.meta_lr': 'inverse', 'method.meta_h_norm': 'same',
      'method.beta': 0.03, 'method.r': 0.2})
  results = runner.run(config, shard=shard)
  out[str(shard)] = [r['accuracy_matrix'] for r in results]
print(json.dumps(out))
'''


class SeedsTest(parameterized.TestCase):

  @parameterized.parameters('emcl', 'finetune', 'lamaml')
  def test_vmapped_seeds_equal_single_seed_runs(self, method):
    seeds = (2, 3)
    together = runs.run_seeds('mnist_permutations', method, seeds, SMALL)
    for seed, res in zip(seeds, together):
      alone = runs.run('mnist_permutations', method, seed, SMALL)
      self.assertEqual(res['seed'], seed)
      self.assertEqual(res['parallel_seeds'], 2)
      np.testing.assert_allclose(res['accuracy_matrix'],
                                 alone['accuracy_matrix'], atol=2e-3)
      np.testing.assert_allclose(res['task_losses'], alone['task_losses'],
                                 rtol=1e-4)
    # The seeds really differ (own data, initialisation and replay draws).
    self.assertNotEqual(together[0]['accuracy_matrix'],
                        together[1]['accuracy_matrix'])

  def test_sharded_equals_unsharded_on_four_cpu_devices(self):
    env = dict(fixtures.ENV,
               XLA_FLAGS='--xla_force_host_platform_device_count=4')
    proc = subprocess.run([sys.executable, '-c', SHARDED_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=600,
                          check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out['True'], out['False'], atol=2e-3)
    self.assertEqual(np.array(out['True']).shape, (4, 3, 3))

  def test_no_seed_is_an_error(self):
    with self.assertRaisesRegex(ValueError,
                                'seeds must be a positive integer, got 0'):
      runner.run(configs.get_config('mnist_permutations', 'emcl',
                                        {'seeds': 0}))


if __name__ == '__main__':
  absltest.main()
