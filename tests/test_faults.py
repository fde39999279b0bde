"""Faults past the happy path, in a run's folders: a run name that would
leave --workdir, a run refused before it writes (no empty --workdir left),
an unreadable results.json, a corrupt metrics log of a resumed run, and a
truncated checkpoint (one line, orbax's leftovers kept off stderr). The
downloads' faults are in test_download.py and test_cifar_download_run.py,
the several processes' in test_multiprocess.py."""

import glob
import os
import subprocess
import sys

from absl.testing import absltest
import pytest

import fixtures
import runs
from emcl_jax import configs
from emcl_jax import files
from emcl_jax.reporting import writers

TINY = ('--config.data.num_tasks=1', '--config.data.samples_per_task=20')


class RunNameTest(absltest.TestCase):

  def test_names_that_leave_the_workdir_are_refused(self):
    for name in ('../../etc', '/abs/path', 'a/b', '..', '.', '', 'a\\b'):
      config = configs.get_config('mnist_permutations', 'emcl',
                                  {'output.name': name})
      with self.assertRaisesRegex(configs.ConfigError,
                                  'not a folder name inside --workdir'):
        configs.resolve(config)
    for name in ('ablation-1', 'emcl_beta.0.1', 'a..b'):
      configs.resolve(configs.get_config('mnist_permutations', 'emcl',
                                         {'output.name': name}))

  def test_inside(self):
    for name in ('a', 'a/b', 'a..b/c', 'x.tar'):
      self.assertTrue(files.inside(name), name)
    for name in ('/etc', '../a', 'a/../../b', '\\x', 'C:x', 'a\\..\\b'):
      self.assertFalse(files.inside(name), name)

  def test_run_py_writes_nothing_anywhere(self):
    tmp = fixtures.tmp_dir(self)
    got = fixtures.call('run', f'--workdir={tmp}/w/runs',
                        '--config.output.name=../../esc', *TINY)
    self.assertEqual(got.returncode, 2)
    self.assertEqual(got.stderr.count('\n'), 1, got.stderr)
    self.assertIn("output.name='../../esc'", got.stderr)
    self.assertEqual(os.listdir(tmp), [])


class SweepSettingsTest(absltest.TestCase):

  def test_a_method_axis_with_a_config_file_is_refused(self):
    # The file chooses the method: a method= axis would be dropped silently.
    tmp = fixtures.tmp_dir(self)
    config = os.path.join(fixtures.ROOT, 'emcl_jax', 'configs',
                          'cifar100.py')
    got = fixtures.call('sweep', f'--workdir={tmp}', f'--config={config}',
                        '--grid=method=emcl,er', '--print_config')
    self.assertEqual(got.returncode, 2)
    self.assertRegex(got.stderr, r'^error: --config=\S+ chooses the method '
                     r'and the grid has a method= axis; drop one')
    got = fixtures.call('sweep', f'--workdir={tmp}', f'--config={config}',
                        '--grid=method.glances=1,2', '--print_config')
    self.assertEqual(got.returncode, 0, got.stderr)
    self.assertEqual(got.stdout.count('## '), 2)
    self.assertEqual(os.listdir(tmp), [])


class NothingCreatedTest(absltest.TestCase):

  def test_a_run_refused_after_the_config_stage_leaves_no_workdir(self):
    tmp = fixtures.tmp_dir(self)
    os.mkdir(os.path.join(tmp, 'empty'))  # no MNIST files in it
    got = fixtures.call('run', f'--workdir={tmp}/w/runs',
                        '--dataset=split_mnist', f'--data_dir={tmp}/empty',
                        *TINY)
    self.assertEqual(got.returncode, 2, got.stderr)
    self.assertIn('not found in', got.stderr)
    self.assertEqual(os.listdir(tmp), ['empty'])

  def test_an_existing_workdir_is_kept(self):
    tmp = fixtures.tmp_dir(self)
    with files.kept_only_if_used(tmp):
      pass
    self.assertTrue(os.path.isdir(tmp))
    with self.assertRaises(RuntimeError):
      with files.kept_only_if_used(os.path.join(tmp, 'a', 'b')):
        os.makedirs(os.path.join(tmp, 'a', 'b'))
        raise RuntimeError('failed before writing')
    self.assertEqual(os.listdir(tmp), [])
    with files.kept_only_if_used(os.path.join(tmp, 'a', 'b')):
      files.write_file(os.path.join(tmp, 'a', 'b', 'kept.txt'), 'x')
    self.assertEqual(os.listdir(os.path.join(tmp, 'a', 'b')), ['kept.txt'])


class UnreadableFilesTest(absltest.TestCase):

  def test_an_unreadable_results_file_is_not_called_finished(self):
    tmp = fixtures.tmp_dir(self)
    args = (f'--workdir={tmp}', *TINY)
    self.assertEqual(fixtures.call('run', *args).returncode, 0)
    (path,) = glob.glob(os.path.join(tmp, '**', 'results.json'),
                        recursive=True)
    with open(path, 'w') as f:
      f.write('{"acc": 1')
    got = fixtures.call('run', *args)
    self.assertEqual(got.returncode, 2)
    self.assertEqual(got.stderr.count('\n'), 1, got.stderr)
    self.assertIn(f'{path} is not a readable results file', got.stderr)
    self.assertNotIn('finished', got.stderr)
    self.assertIn('--config.output.overwrite=true', got.stderr)

  def test_a_corrupt_metrics_line_names_the_file_and_line(self):
    path = os.path.join(fixtures.tmp_dir(self), 'metrics.jsonl')
    with open(path, 'w') as f:
      f.write('{"step": 1, "loss": 1.0}\n{"step": 2, "lo\n'
              '{"step": 3, "loss": 1.0}\n')
    w = writers.JsonLinesWriter(path, keep_steps=1)
    with self.assertRaisesRegex(ValueError, f'{path} line 2 is not a record'):
      w.write_scalars(2, {'loss': 0.5})

  def test_a_killed_runs_half_written_last_line_is_redone(self):
    path = os.path.join(fixtures.tmp_dir(self), 'metrics.jsonl')
    with open(path, 'w') as f:
      f.write('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    w = writers.JsonLinesWriter(path, keep_steps=1)
    w.write_scalars(2, {'loss': 0.5})
    w.close()
    self.assertEqual([r['step'] for r in writers.read_json_lines(path)],
                     [1, 2])


_RESUME = """
import sys
sys.path.insert(0, {tests!r})
import runs
from emcl_jax.training.checkpoint import CheckpointError
try:
  runs.run('mnist_permutations', 'emcl', 0, {size!r},
           checkpoint_dir={folder!r}, resume=True)
except CheckpointError as e:
  print('error:', e, file=sys.stderr)
"""


@pytest.mark.slow  # a process of its own: what reaches stderr at its end
class TruncatedCheckpointTest(absltest.TestCase):

  def test_one_line_and_nothing_else_on_stderr(self):
    folder = fixtures.tmp_dir(self)
    size = {'data.num_tasks': 2, 'data.samples_per_task': 20}
    runs.run('mnist_permutations', 'emcl', 0, size, checkpoint_dir=folder)
    for path in glob.glob(os.path.join(folder, '1', 'arrays', '**', 'd', '*'),
                          recursive=True):
      with open(path, 'r+b') as f:
        f.truncate(16)
    got = subprocess.run(
        [sys.executable, '-c', _RESUME.format(
            tests=os.path.dirname(__file__), size=size, folder=folder)],
        capture_output=True, text=True, env=fixtures.ENV, timeout=300,
        check=False)
    self.assertEqual(got.returncode, 0, got.stderr)
    self.assertRegex(got.stderr, r'^error: cannot read the checkpoint of '
                     r'task 2 in [^\n]*\n$')


if __name__ == '__main__':
  absltest.main()
