"""experiments/sweep.py: grid parsing, one folder per setting, skip on rerun,
the table sorted by mean ACC, one clear line for bad input."""

import glob
import json
import os
import re
import shutil
import tempfile

from absl.testing import absltest
import pytest
import numpy as np

import fixtures
from emcl_jax import configs
from emcl_jax.launch import grids as sweeps
from emcl_jax import runner

SMALL = ['--config.data.num_tasks=2', '--config.data.samples_per_task=30', '--seeds=2']


def sweep(args):
  """sweep.py with `args`, in this process."""
  return fixtures.call('sweep', *args)


def _build(method, values):
  return configs.resolve(configs.get_config('mnist_permutations', method,
                                            values))


class GridTest(absltest.TestCase):

  sweep = sweeps

  def test_parse_grid_products_and_alternatives(self):
    grid = self.sweep.parse_grid(
        'beta=0.03,0.1; glances=1,5 | method=lamaml;method.learn_lr=false')
    self.assertEqual(grid, [
        {'method.beta': '0.03', 'method.glances': '1'},
        {'method.beta': '0.03', 'method.glances': '5'},
        {'method.beta': '0.1', 'method.glances': '1'},
        {'method.beta': '0.1', 'method.glances': '5'},
        {'method': 'lamaml', 'method.learn_lr': 'false'}])
    # Typed as their settings are, checked against each setting's method.
    typed = [s for s, _ in self.sweep.expand(grid, {}, 'emcl', _build)]
    self.assertEqual(typed[0], {'method': 'emcl', 'method.beta': 0.03,
                                'method.glances': 1})
    self.assertIsInstance(typed[0]['method.glances'], int)
    self.assertIsInstance(typed[0]['method.beta'], float)
    self.assertEqual(typed[-1], {'method': 'lamaml',
                                 'method.learn_lr': False})

  def test_setting_names_are_distinct_and_method_first(self):
    settings = self.sweep.expand(
        self.sweep.parse_grid('r=0.1,0.2;meta_lr=task | method.r=0.1;'
                              'meta_lr=task;data.num_tasks=3'),
        {'glances': '5'}, 'emcl', _build)
    names = [self.sweep.setting_name(s) for s, _ in settings]
    self.assertEqual(names, ['emcl,glances=5,meta_lr=task,r=0.1',
                             'emcl,glances=5,meta_lr=task,r=0.2',
                             'emcl,data.num_tasks=3,glances=5,meta_lr=task,'
                             'r=0.1'])
    self.assertEqual(settings[2][1].data.num_tasks, 3)
    # r=1 and method.r=1.0 are one setting.
    self.assertLen(self.sweep.expand(
        self.sweep.parse_grid('r=1 | method.r=1.0'), {}, 'emcl', _build), 1)

  def test_settings_that_differ_in_numbers_share_a_program(self):
    settings = self.sweep.expand(self.sweep.parse_grid(
        'beta=0.03,0.1;r=0.1 | glances=1 | method=lamaml;opt_lr=0.1,0.3 | '
        'method=cmaml;opt_lr=0.1,0.3 | method=finetune;lr=0.01,0.03,0.1'),
                                 {}, 'emcl', _build)
    run_configs = [c for _, c in settings]
    # Every method joins a grid (C-MAML too); glances=1 changes the program.
    self.assertEqual(runner.programs(run_configs),
                     [[0, 1], [2], [3, 4], [5, 6], [7, 8, 9]])
    self.assertEqual(runner.programs(run_configs, group_size=2),
                     [[0, 1], [2], [3, 4], [5, 6], [7, 8], [9]])

  def test_grid_file(self):
    folder = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, folder, True)
    path = os.path.join(folder, 'grid.py')
    with open(path, 'w') as f:
      f.write('def get_grid():\n'
              '  return [{"beta": b} for b in (0.1, 0.2)]\n')
    self.assertEqual(self.sweep.load_grid_file(path),
                     [{'method.beta': 0.1}, {'method.beta': 0.2}])
    # A list of dicts only: a --grid string, a dict or nothing is refused.
    for returned in ('"beta=0.1 | method=er"', '{"beta": 0.1}', '[]'):
      with open(path, 'w') as f:
        f.write(f'def get_grid():\n  return {returned}\n')
      with self.assertRaisesRegex(ValueError,
                                  'must return a non-empty list of dicts'):
        self.sweep.load_grid_file(path)

  def test_bad_grids_raise_one_clear_error(self):
    for text, message in (
        ('beta', 'is not path=v1,v2'),
        ('betta=0.1', "unknown setting 'method.betta' for method emcl; did "
         'you mean method.beta'),
        ('glances=two', "method.glances='two' is not an int"),
        ('method=nope', "unknown method 'nope'"),
        ('method=lamaml;beta=0.1', "unknown setting 'method.beta' for "
         'method lamaml'),
        ('r=0.1 |', 'empty alternative'),
        ('beta=0.1;beta=0.2', 'method.beta is given twice')):
      with self.assertRaisesRegex(ValueError, message):
        self.sweep.expand(self.sweep.parse_grid(text), {}, 'emcl', _build)


class SweepScriptTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.out = fixtures.tmp_dir(self)

  @pytest.mark.slow
  def test_runs_skips_and_tabulates(self):
    args = [f'--workdir={self.out}', *SMALL,
            '--grid=glances=1;r=0.1,0.2 | method=finetune']
    proc = sweep(args)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    # The two EMCL settings differ in a numeric setting: one program.
    self.assertIn('group 1 of 2: emcl,glances=1,r=0.1, emcl,glances=1,r=0.2\n',
                  proc.stderr)
    self.assertIn('settings done: 3 of 3\n', proc.stderr)
    root = os.path.join(self.out, 'mnist_permutations')
    folders = sorted(os.listdir(root))
    self.assertEqual(folders, ['emcl,glances=1,r=0.1', 'emcl,glances=1,r=0.2',
                               'finetune', 'table-size=2x30.md'])
    means = {}
    for folder in folders[:3]:
      files = sorted(glob.glob(os.path.join(root, folder, '*', 'seed*',
                                            'results.json')))
      self.assertLen(files, 2)
      runs = [json.load(open(f)) for f in files]
      self.assertEqual([r['seed'] for r in runs], [0, 1])
      means[folder] = np.mean([r['acc'] for r in runs])
    table_path = os.path.join(root, 'table-size=2x30.md')
    table = open(table_path).read()
    printed, wrote = proc.stdout.rstrip('\n').rsplit('\n', 1)
    self.assertIn(printed, table)
    self.assertEqual(wrote, f'wrote {table_path}')
    rows = [l for l in table.splitlines() if l.startswith('| ') and
            not l.startswith('| setting') and not l.startswith('| ---')]
    names = [r.split('|')[1].strip() for r in rows]
    self.assertEqual(names, sorted(means, key=lambda k: -means[k]))
    for row in rows:
      name, acc = row.split('|')[1].strip(), row.split('|')[3]
      self.assertAlmostEqual(float(acc.split('+-')[0]), means[name], places=2)
    # The command is written above the table, quoted for a shell.
    self.assertIn("'--grid=glances=1;r=0.1,0.2 | method=finetune'", table)

    # A rerun runs nothing: the results files are left as they were.
    pattern = f'{root}/*/*/seed*/results.json'
    stamps = {f: os.path.getmtime(f) for f in glob.glob(pattern)}
    self.assertLen(stamps, 6)
    again = sweep(args)
    self.assertEqual(again.returncode, 0, again.stderr)
    self.assertEqual(again.stdout, proc.stdout)
    self.assertEqual(stamps,
                     {f: os.path.getmtime(f) for f in glob.glob(pattern)})

    # Another set of settings at the same size keeps the table there and
    # writes its own beside it.
    fewer = sweep([*args[:-1], '--grid=method=finetune'])
    self.assertEqual(fewer.returncode, 0, fewer.stderr)
    self.assertEqual(open(table_path).read(), table)
    beside, = glob.glob(os.path.join(root, 'table-size=2x30-*.md'))
    self.assertTrue(fewer.stdout.endswith(f'wrote {beside}\n'))
    self.assertNotIn('| emcl', open(beside).read())

    # A corrupt results file is named in one line, and nothing is rerun.
    victim = glob.glob(f'{root}/emcl,glances=1,r=0.2/*/seed1/results.json')[0]
    kept = open(victim).read()
    with open(victim, 'w') as f:
      f.write('{"acc": ')
    bad = sweep(args)
    self.assertEqual(bad.returncode, 2)
    self.assertRegex(bad.stderr.strip().splitlines()[-1],
                     f'^error: {re.escape(victim)} is not a readable results '
                     'file')
    with open(victim, 'w') as f:
      f.write(kept)

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
                     r'config; delete the folder or pass --config.output.overwrite=true$')

  @pytest.mark.slow
  def test_bad_input_is_one_line_and_exit_2(self):
    for args, message in (
        (['--grid=betta=0.1'], "unknown setting 'method.betta'"),
        ([], 'give exactly one of --grid and --grid_file'),
        (['--grid=r=0.1', '--seeds=0'], '--seeds must be >= 1'),
        (['--grid=r=0.1', '--shard=3/2'], 'is not i/n'),
        (['--grid=lr=0.1'], "unknown setting 'method.lr' for method emcl"),
        (['--grid=method=lamaml', '--set=r=0.1'],
         "unknown setting 'method.r' for method lamaml"),
        (['--grid=r=0.1', '--set=beta=0.1,0.2'],
         '--set method.beta takes one value'),
        (['--grid=r=0.1', '--config.method.betta=1'],
         'did you mean method.beta'),
        (['--grid_file=/nonexistent.py'], 'is not a file')):
      proc = sweep([f'--workdir={self.out}', *args])
      self.assertEqual(proc.returncode, 2, (args, proc.stderr))
      lines = proc.stderr.strip().splitlines()
      self.assertLen(lines, 1, proc.stderr)
      self.assertIn(message, lines[0])
    self.assertFalse(os.listdir(self.out))  # nothing half-written

  def test_a_workdir_that_cannot_be_made_is_one_line(self):
    blocker = os.path.join(self.out, 'a-file')
    with open(blocker, 'w') as f:
      f.write('x')
    proc = sweep([f'--workdir={blocker}/sweeps', '--grid=r=0.1', *SMALL])
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertEqual(proc.stderr, f'error: cannot write under --workdir='
                     f'{blocker}/sweeps: Not a directory; choose a writable '
                     '--workdir\n')
    os.remove(blocker)


  @pytest.mark.slow
  def test_same_setting_same_run_in_every_script(self):
    # One override, given the way each script takes it: the same config
    # hash (the run's folder) and the same accuracy matrix.
    common = ['--config.data.num_tasks=2', '--config.data.samples_per_task=30', '--seeds=1',
              '--config.output.progress=false']

    def script(name, *args):
      proc = fixtures.call(name, *args, *common)
      self.assertEqual(proc.returncode, 0, proc.stderr)
      return proc.stdout

    shown = script('run', '--config.method.beta=0.05', '--print_config')
    chash = shown.strip().splitlines()[-1].split()[-1]
    script('run', f'--workdir={self.out}/run', '--config.method.beta=0.05')
    script('sweep', f'--workdir={self.out}/sweep', '--grid=method.beta=0.05')
    script('reproduce', f'--workdir={self.out}/rep', '--methods=emcl',
           '--config.method.beta=0.05')
    found = {}
    for where, pattern in (('run', 'run/mnist_permutations/emcl'),
                           ('sweep', 'sweep/mnist_permutations/emcl,beta=0.05'),
                           ('reproduce', 'rep/runs/mnist_permutations/emcl')):
      [path] = glob.glob(os.path.join(self.out, pattern, '*', 'seed0',
                                      'results.json'))
      found[where] = json.load(open(path))
      self.assertEqual(path.split(os.sep)[-3], chash, where)
      self.assertEqual(found[where]['config']['beta'], 0.05)
    self.assertEqual(found['run']['accuracy_matrix'],
                     found['sweep']['accuracy_matrix'])
    self.assertEqual(found['run']['accuracy_matrix'],
                     found['reproduce']['accuracy_matrix'])


if __name__ == '__main__':
  absltest.main()
