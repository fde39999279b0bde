"""experiments/sweep.py: grid parsing, one folder per setting, skip on rerun,
the table sorted by mean ACC, one clear line for bad input."""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
import pytest
import numpy as np

from emcl_jax import sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(ROOT, 'experiments', 'sweep.py')
SMALL = ['--num_tasks=2', '--samples_per_task=30', '--seeds=2']


def sweep(args):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, SWEEP, *args], capture_output=True,
                        text=True, env=env, timeout=600)


class GridTest(absltest.TestCase):

  sweep = sweeps

  def test_parse_grid_products_and_alternatives(self):
    grid = self.sweep.parse_grid(
        'beta=0.03,0.1; glances=1,5 | method=lamaml;learn_lr=false')
    self.assertEqual(grid, [
        {'beta': 0.03, 'glances': 1}, {'beta': 0.03, 'glances': 5},
        {'beta': 0.1, 'glances': 1}, {'beta': 0.1, 'glances': 5},
        {'method': 'lamaml', 'learn_lr': False}])
    self.assertIsInstance(grid[0]['glances'], int)
    self.assertIsInstance(grid[0]['beta'], float)

  def test_setting_names_are_distinct_and_method_first(self):
    names = [self.sweep.setting_name(s) for s in self.sweep.expand(
        self.sweep.parse_grid('r=0.1,0.2;meta_lr=task'), {'glances': 5},
        'emcl', 'mnist_permutations')]
    self.assertEqual(names, ['emcl,glances=5,meta_lr=task,r=0.1',
                             'emcl,glances=5,meta_lr=task,r=0.2'])

  def test_grid_file(self):
    folder = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, folder, True)
    path = os.path.join(folder, 'grid.py')
    with open(path, 'w') as f:
      f.write('def get_grid():\n'
              '  return [{"beta": b} for b in (0.1, 0.2)]\n')
    self.assertEqual(self.sweep.load_grid_file(path),
                     [{'beta': 0.1}, {'beta': 0.2}])
    with open(path, 'w') as f:
      f.write('def get_grid():\n  return "beta=0.1 | method=er"\n')
    self.assertEqual(self.sweep.load_grid_file(path),
                     [{'beta': 0.1}, {'method': 'er'}])
    with open(path, 'w') as f:
      f.write('def get_grid():\n  return {"beta": 0.1}\n')
    with self.assertRaisesRegex(ValueError, 'must return a list of dicts'):
      self.sweep.load_grid_file(path)

  def test_bad_grids_raise_one_clear_error(self):
    for text, message in (('beta', 'is not name=v1,v2'),
                          ('betta=0.1', "unknown hyper-parameter 'betta'"),
                          ('glances=two', "glances='two' is not a int"),
                          ('method=nope', "unknown method 'nope'"),
                          ('r=0.1 |', 'empty alternative')):
      with self.assertRaisesRegex(ValueError, message):
        self.sweep.parse_grid(text)


class SweepScriptTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.out = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.out, True)

  @pytest.mark.slow
  def test_runs_skips_and_tabulates(self):
    args = [f'--output_dir={self.out}', *SMALL,
            '--grid=glances=1,2;r=0.1 | method=finetune']
    proc = sweep(args)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    root = os.path.join(self.out, 'mnist_permutations')
    folders = sorted(os.listdir(root))
    self.assertEqual(folders, ['emcl,glances=1,r=0.1', 'emcl,glances=2,r=0.1',
                               'finetune', 'table-size=2x30.md'])
    means = {}
    for folder in folders[:3]:
      files = sorted(glob.glob(os.path.join(root, folder, '*', 'seed*',
                                            'results.json')))
      self.assertLen(files, 2)
      runs = [json.load(open(f)) for f in files]
      self.assertEqual([r['seed'] for r in runs], [0, 1])
      means[folder] = np.mean([r['acc'] for r in runs])
    table = open(os.path.join(root, 'table-size=2x30.md')).read()
    self.assertIn(proc.stdout.strip(), table)
    rows = [l for l in table.splitlines() if l.startswith('| ') and
            not l.startswith('| setting') and not l.startswith('| ---')]
    names = [r.split('|')[1].strip() for r in rows]
    self.assertEqual(names, sorted(means, key=lambda k: -means[k]))
    for row in rows:
      name, acc = row.split('|')[1].strip(), row.split('|')[3]
      self.assertAlmostEqual(float(acc.split('+-')[0]), means[name], places=2)
    # The command is written above the table, quoted for a shell.
    self.assertIn("'--grid=glances=1,2;r=0.1 | method=finetune'", table)

    # A rerun runs nothing: the results files are left as they were.
    pattern = f'{root}/*/*/seed*/results.json'
    stamps = {f: os.path.getmtime(f) for f in glob.glob(pattern)}
    self.assertLen(stamps, 6)
    again = sweep(args)
    self.assertEqual(again.returncode, 0, again.stderr)
    self.assertEqual(again.stdout, proc.stdout)
    self.assertEqual(stamps,
                     {f: os.path.getmtime(f) for f in glob.glob(pattern)})

    # A run folder whose config is not its setting's is refused, not mixed
    # into a table.
    path = glob.glob(f'{root}/finetune/*/seed0/config.json')[0]
    os.remove(glob.glob(f'{root}/finetune/*/seed0/results.json')[0])
    saved = json.load(open(path))
    saved['config']['lr'] = 0.5
    json.dump(saved, open(path, 'w'))
    mixed = sweep(args)
    self.assertEqual(mixed.returncode, 2)
    self.assertRegex(mixed.stderr.strip().splitlines()[-1],
                     r'^error: .*finetune/\w+/seed0/config.json holds another '
                     r'config; delete the folder or pass --overwrite$')

  @pytest.mark.slow
  def test_bad_input_is_one_line_and_exit_2(self):
    for args, message in (
        (['--grid=betta=0.1'], "unknown hyper-parameter 'betta'"),
        ([], 'give exactly one of --grid and --grid_file'),
        (['--grid=r=0.1', '--seeds=0'], '--seeds must be >= 1'),
        (['--grid=r=0.1', '--shard=3/2'], 'is not i/n'),
        (['--grid=lr=0.1'], '--lr does not apply to --method=emcl'),
        (['--grid=method=lamaml', '--set=r=0.1'],
         '--r does not apply to --method=lamaml'),
        (['--grid=r=0.1', '--set=beta=0.1,0.2'], '--set beta takes one value'),
        (['--grid_file=/nonexistent.py'], 'is not a file')):
      proc = sweep([f'--output_dir={self.out}', *args])
      self.assertEqual(proc.returncode, 2, (args, proc.stderr))
      lines = proc.stderr.strip().splitlines()
      self.assertLen(lines, 1, proc.stderr)
      self.assertIn(message, lines[0])
    self.assertFalse(os.listdir(self.out))  # nothing half-written


if __name__ == '__main__':
  absltest.main()
