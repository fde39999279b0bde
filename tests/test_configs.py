"""Configs as code: every benchmark's get_config() builds valid method
configs, carries Table II's values, and a user's file merges over it."""

import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

from emcl_jax import configs
from emcl_jax import experiment
from emcl_jax.methods import METHODS


class ConfigsTest(parameterized.TestCase):

  @parameterized.parameters(*configs.BENCHMARKS)
  def test_every_entry_is_a_valid_config(self, dataset):
    config = configs.get_config(dataset)
    self.assertIn(config['model'], ('mlp', 'resnet18_reduced'))
    self.assertEmpty(set(config['methods']) - set(METHODS))
    for method in METHODS:
      built = experiment.method_config(dataset, method, {})
      for field, value in configs.defaults(config, method).items():
        self.assertEqual(getattr(built, field), value, (method, field))

  @parameterized.parameters(
      # Table II's EMCL rows: alpha0, beta, lambda, gamma, memory; Many
      # Permutations' alpha0 and beta are the study's (docs/algorithm.md #9;
      # Table II: 0.15, 0.03).
      ('many_permutations', 0.2, 0.1, 10.0, 0.1, 500),
      ('cifar100', 0.1, 0.075, 50.0, 0.1, 200),
      ('miniimagenet', 0.1, 0.075, 50.0, 0.1, 200))
  def test_table_ii_emcl(self, dataset, alpha0, beta, lam, gamma, memory):
    c = experiment.method_config(dataset, 'emcl', {})
    self.assertEqual((c.alpha0, c.beta, c.lam, c.gamma, c.memory_size),
                     (alpha0, beta, lam, gamma, memory))
    # EMCL-SI shares EMCL's row.
    self.assertEqual(experiment.method_config(dataset, 'emcl_si', {}).beta,
                     beta)

  def test_table_ii_vision_baselines(self):
    for dataset in ('cifar100', 'miniimagenet'):
      self.assertEqual(experiment.method_config(dataset, 'ewc', {}).lam,
                       100.0)
      for method in ('ewc', 'gem', 'agem'):
        self.assertEqual(experiment.method_config(dataset, method, {}).lr,
                         0.03)
      lamaml = experiment.method_config(dataset, 'lamaml', {})
      self.assertEqual((lamaml.alpha_init, lamaml.opt_lr), (0.1, 0.3))

  def _write(self, text):
    folder = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, folder, True)
    path = os.path.join(folder, 'my_config.py')
    with open(path, 'w') as f:
      f.write(text)
    return path

  def test_user_file_merges_and_flags_win(self):
    path = self._write("def get_config():\n"
                       "  return {'methods': {'emcl': {'beta': 0.05}}}\n")
    c = experiment.method_config('mnist_permutations', 'emcl', {},
                                 config_file=path)
    self.assertEqual((c.beta, c.alpha0, c.lam), (0.05, 0.3, 10.0))
    c = experiment.method_config('mnist_permutations', 'emcl',
                                 {'beta': 0.07}, config_file=path)
    self.assertEqual(c.beta, 0.07)

  @parameterized.parameters(
      ('x = 1\n', 'defines no get_config'),
      ('def get_config():\n  return 3\n', 'must return a dict'),
      ('def get_config(:\n', 'failed to load: SyntaxError'))
  def test_bad_user_files(self, text, message):
    with self.assertRaisesRegex(ValueError, message):
      configs.get_config('mnist_permutations', self._write(text))
    with self.assertRaisesRegex(ValueError, 'is not a file'):
      configs.get_config('mnist_permutations', '/no/such/config.py')

  def test_unknown_dataset(self):
    with self.assertRaisesRegex(ValueError, "unknown dataset 'cifar10'"):
      configs.get_config('cifar10')


if __name__ == '__main__':
  absltest.main()
