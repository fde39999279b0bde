"""The launch layer in one process: every launch module and study imports
beside every other, each script that trains prints its configs with
--print_config and writes nothing, the sweep is a library function
(`runner.sweep`) that skips, records divergence and raises on bad
input, and the run config's path from a script's main to results.json
stays short (docs/api.md)."""

import contextlib
import io
import os

from absl.testing import absltest
from absl.testing import parameterized
import pytest

from emcl_jax import configs
from emcl_jax import runner
from emcl_jax.errors import NonFiniteLossError
from emcl_jax.launch import reproduce
from emcl_jax.launch import run
from emcl_jax.launch import summarize
from emcl_jax.launch import sweep
import fixtures

STUDIES = ('bench', 'cost', 'grid_cost', 'front', 'selection',
           'eq8_readings', 'config_path')
SMALL = {'data.num_tasks': 2, 'data.samples_per_task': 30, 'seeds': 2,
         'output.progress': False}


class ImportTest(absltest.TestCase):

  def test_every_launch_module_and_study_imports_together(self):
    for name in STUDIES:
      fixtures.study(name)
    import emcl_jax.launch.distributed  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    import emcl_jax.launch.launcher  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    for module in (run, sweep, reproduce, summarize):
      self.assertTrue(callable(module.main))

  def test_a_script_s_defaults_end_with_its_parse(self):
    # Scripts parsed one after another in one process (a notebook, the
    # tests): bench's own --methods default ('all') must not become
    # reproduce's.
    from emcl_jax.launch import cli  # pylint: disable=g-import-not-at-top
    fixtures.study('bench')
    cli.parse('reproduce', ['reproduce.py'])
    want = list(cli.FLAGS.methods)
    self.assertNotEqual(want, ['all'])
    cli.parse('bench', ['bench.py'])
    self.assertEqual(cli.FLAGS.methods, ['all'])
    cli.parse('reproduce', ['reproduce.py'])
    self.assertEqual(cli.FLAGS.methods, want)


class PrintConfigTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.cwd = fixtures.tmp_dir(self)
    previous = os.getcwd()
    os.chdir(self.cwd)
    self.addCleanup(os.chdir, previous)

  @parameterized.named_parameters(
      ('run', []),
      ('sweep', ['--grid=method.beta=0.03,0.1 | method=lamaml']),
      ('reproduce', ['--methods=emcl,finetune']),
      ('bench', ['--methods=emcl']),
      ('cost', []),
      ('grid_cost', ['--betas=0.1', '--rs=0.1,0.2']),
  )
  def test_prints_every_config_and_writes_nothing(self, argv):
    script = self._testMethodName.rsplit('_nothing_', 1)[1]
    code, out, err = fixtures.call(script, *argv, '--print_config',
                                   '--config.data.num_tasks=3')
    self.assertEqual(code, 0, err)
    hashes = [line.split()[-1] for line in out.splitlines()
              if line.startswith('config_hash')]
    want = {'run': 1, 'sweep': 3, 'reproduce': 2, 'bench': 2, 'cost': 2,
            'grid_cost': 2}[script]
    self.assertLen(hashes, want, out)
    self.assertIn('data.num_tasks          3 ', out)
    self.assertEqual(os.listdir(self.cwd), [])  # no workdir, no file

  def test_the_sweep_shows_its_programs(self):
    _, out, _ = fixtures.call(
        'sweep', '--grid=method.beta=0.03,0.1 | method=lamaml',
        '--print_config')
    self.assertIn('# program 1 of 2: 2 setting(s)\n## emcl,beta=0.03\n', out)
    self.assertIn('# program 2 of 2: 1 setting(s)\n## lamaml\n', out)


class ConfigPathTest(parameterized.TestCase):
  """experiments/config_path.py's trace of a run and of a grid of settings:
  at most 12 modules take the run config, at most 2 calls climb back to an
  upper layer (docs/api.md, "The run config's path")."""

  @parameterized.named_parameters(
      ('run', 'run', []),
      ('grid', 'sweep', ['--grid=method.beta=0.03,0.1', '--seeds=1']))
  def test_the_path_stays_short(self, script, argv):
    path_lib = fixtures.study('config_path')
    tmp = fixtures.tmp_dir(self)
    with contextlib.redirect_stdout(io.StringIO()), \
        contextlib.redirect_stderr(io.StringIO()):
      path = path_lib.trace(script, [
          *argv, '--config.data.num_tasks=2',
          '--config.data.samples_per_task=20',
          '--config.output.progress=false', f'--workdir={tmp}'])
    self.assertIn('emcl_jax.runner.folders', path.modules)  # wrote results
    self.assertIn('emcl_jax.launch.cli', path.modules)
    self.assertLessEqual(len(path.modules), 12, path.modules)
    self.assertLessEqual(len(path.upward), 2, path.upward)
    self.assertIn('emcl_jax.training.engine.report -> '
                  'emcl_jax.runner.sweeper.record_fn', path.upward)


class SweepFunctionTest(absltest.TestCase):

  @pytest.mark.slow  # whole sweeps
  def test_runs_skips_and_records_divergence(self):
    root = fixtures.tmp_dir(self)
    named = lambda c, n: configs.schema.replace(c, 'output.name', n)  # noqa: E731
    good = [named(configs.get_config('mnist_permutations', 'emcl',
                                     {**SMALL, 'method.beta': b}), f'b{b}')
            for b in (0.03, 0.1)]
    bad = named(configs.get_config('mnist_permutations', 'finetune',
                                   {**SMALL, 'method.lr': 1e30}), 'diverges')
    run_configs = [configs.resolve(c) for c in (*good, bad)]
    self.assertEqual(runner.programs(run_configs), [[0, 1], [2]])
    outcomes = runner.sweep(run_configs, root)
    self.assertEqual([len(o.results) for o in outcomes], [2, 2, 0])
    self.assertEqual([o.error is None for o in outcomes], [True, True, False])
    self.assertRegex(outcomes[2].error, 'loss became (nan|inf)')
    # The grid program's results are each setting's, in its own folders.
    self.assertEqual(outcomes[0].results[0]['name'], 'b0.03')
    self.assertEqual(outcomes[0].results[0]['grid_settings'], 2)
    # Again: nothing runs; the same results, the divergence remembered.
    again = runner.sweep(run_configs, root)
    self.assertEqual([o.results for o in again],
                     [o.results for o in outcomes])
    self.assertEqual(again[2].error, outcomes[2].error.splitlines()[0])
    # Without keep_going the divergence is the caller's.
    with self.assertRaises(NonFiniteLossError):
      runner.sweep([configs.resolve(named(bad, 'again'))], root,
                       keep_going=False)

  @pytest.mark.slow  # whole sweeps
  def test_bad_input_raises(self):
    root = fixtures.tmp_dir(self)
    config = configs.resolve(configs.get_config('mnist_permutations', 'emcl',
                                                SMALL))
    runner.sweep([config], root)
    with self.assertRaisesRegex(ValueError, 'is finished; pass '
                                '--config.output.overwrite=true'):
      runner.sweep([config], root, skip_finished=False)


if __name__ == '__main__':
  absltest.main()
