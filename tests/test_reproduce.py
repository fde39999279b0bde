"""experiments/reproduce.py end to end on a shrunk stream, in this process:
results files, tables whose numbers are the JSONs', decodable figures,
JSON-lines logs, skipping of completed runs, submitit jobs (launched from a
process of its own) and a one-line error for a foreign folder."""

import glob
import json
import os
import re
import shutil
import tempfile

from absl.testing import absltest
import pytest
from matplotlib import image
import numpy as np

import fixtures

pytestmark = pytest.mark.slow  # whole-protocol runs

SHRINK = ['--config.data.num_tasks=3', '--config.data.samples_per_task=20']


def reproduce(*args):
  return fixtures.call('reproduce', *SHRINK, *args)


class ReproduceTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.out = tempfile.mkdtemp()
    cls.proc = reproduce('--methods=emcl,finetune', '--seeds=2',
                         f'--workdir={cls.out}', '--config.output.tensorboard=true')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.out, True)
    super().tearDownClass()

  def folder(self, name, seed):
    found = glob.glob(os.path.join(self.out, 'runs', 'mnist_permutations',
                                   name, '*', f'seed{seed}'))
    self.assertLen(found, 1)
    return found[0]

  def results(self, name):
    out = []
    for seed in (0, 1):
      with open(os.path.join(self.folder(name, seed), 'results.json')) as f:
        out.append(json.load(f))
    return out

  def test_table_iii_holds_the_json_numbers(self):
    self.assertEqual(self.proc.returncode, 0, self.proc.stderr[-2000:])
    with open(os.path.join(self.out, 'table_iii.md')) as f:
      table = f.read()
    lines = [l for l in table.splitlines() if l.startswith('| emcl')
             or l.startswith('| finetune')]
    self.assertEqual([l.split('|')[1].strip() for l in lines],
                     ['emcl', 'finetune'])  # --methods order
    for line, name in zip(lines, ['emcl', 'finetune']):
      runs = self.results(name)
      acc = np.array([r['acc'] for r in runs])
      bwt = np.array([r['bwt'] for r in runs])
      secs = np.mean([r['train_seconds'] for r in runs])
      nums = [float(x) for x in re.findall(r'-?\d+\.\d+', line)]
      np.testing.assert_allclose(
          nums, [acc.mean(), acc.std(), bwt.mean(), bwt.std(), secs],
          atol=0.006)

  def test_table_iv_lists_emcl_and_the_missing_ablations(self):
    with open(os.path.join(self.out,
                           'table_iv_mnist_permutations.md')) as f:
      table = f.read()
    acc = np.mean([r['acc'] for r in self.results('emcl')])
    self.assertIn(f'| emcl | × | ✓ | ✓ | Taylor | {acc:.2f}', table)
    self.assertIn('Missing (no results on mnist_permutations): emcl_gd, '
                  'emcl_lr_modulation, emcl_si.', table)

  def test_figures_decode(self):
    figures = os.path.join(self.out, 'figures')
    names = ['fig1', 'fig2', 'fig3', 'heatmap']
    paths = [os.path.join(figures, f'{n}_mnist_permutations.png')
             for n in names[:3]]
    paths += [os.path.join(figures, f'heatmap_mnist_permutations_{m}.png')
              for m in ('emcl', 'finetune')]
    paths += [os.path.join(figures, 'runs',
                           f'heatmap_mnist_permutations_{m}_seed{s}.png')
              for m in ('emcl', 'finetune') for s in (0, 1)]
    for path in paths:
      self.assertGreater(os.path.getsize(path), 5000, path)
      pixels = image.imread(path)
      self.assertEqual(pixels.ndim, 3)
      self.assertGreater(pixels.std(), 0.01, path)  # not a blank canvas
    self.assertEmpty([f for f in os.listdir(figures) if f.endswith('.tmp')])

  def test_logs_have_one_record_per_task(self):
    path = os.path.join(self.folder('emcl', 1), 'metrics.jsonl')
    with open(path) as f:
      records = [json.loads(l) for l in f]
    records = [r for r in records if 'loss' in r]
    self.assertEqual([r['step'] for r in records], [1, 2, 3])
    run = self.results('emcl')[1]
    np.testing.assert_allclose(records[-1]['acc_seen'], run['acc'],
                               atol=0.006)
    np.testing.assert_allclose([r['loss'] for r in records],
                               run['task_losses'], atol=1e-4)
    tb = self.folder('emcl', 1)
    self.assertLen([f for f in os.listdir(tb) if 'tfevents' in f], 1)

  def test_rerun_skips_and_other_sizes_are_kept_apart(self):
    path = os.path.join(self.folder('emcl', 0), 'results.json')
    before = os.stat(path).st_mtime_ns
    again = reproduce('--methods=emcl,finetune', '--seeds=2',
                      '--config.output.progress=false', f'--workdir={self.out}')
    self.assertEqual(again.returncode, 0, again.stderr[-2000:])
    self.assertIn('mnist_permutations emcl: seeds [0, 1] done already, '
                  'skipped', again.stdout)
    self.assertNotIn('ACC=', again.stdout)
    self.assertEqual(os.stat(path).st_mtime_ns, before)

    # (In a copy of the folder: the other tests read its tables.)
    copy = os.path.join(fixtures.tmp_dir(self), 'copy')
    shutil.copytree(self.out, copy)
    path = path.replace(self.out, copy)
    with open(os.path.join(copy, 'table_iii.md')) as f:
      first_table = f.read()
    other = fixtures.call(
        'reproduce', '--config.data.num_tasks=4',
        '--config.data.samples_per_task=20', '--methods=emcl',
        f'--workdir={copy}')
    # Another benchmark size is another setting: its own folder, and a
    # table of its runs only (4 tasks) beside the first one, which is kept
    # as it was, as are the 3-task runs.
    self.assertEqual(other.returncode, 0, other.stderr[-2000:])
    self.assertLen(glob.glob(os.path.join(
        copy, 'runs', 'mnist_permutations', 'emcl', '*')), 2)
    with open(path) as f:
      self.assertEqual(json.load(f)['config']['num_tasks'], 3)
    with open(os.path.join(copy, 'table_iii.md')) as f:
      self.assertEqual(f.read(), first_table)
    second, = glob.glob(os.path.join(copy, 'table_iii-*.md'))
    self.assertIn(f'wrote {second}', other.stdout)
    with open(second) as f:
      table = f.read()
    self.assertNotIn('finetune', table)
    self.assertIn('| emcl', table)
    self.assertIn('(shrunk: 4 tasks x 20)', table)
    figures = glob.glob(os.path.join(copy, 'figures-*', 'fig1_*.png'))
    self.assertLen(figures, 1)
    # The same runs again: the same files, rewritten in place.
    again = fixtures.call(
        'reproduce', '--config.data.num_tasks=4',
        '--config.data.samples_per_task=20', '--methods=emcl',
        f'--workdir={copy}')
    self.assertIn(f'wrote {second}', again.stdout)
    self.assertLen(glob.glob(os.path.join(copy, 'table_iii*.md')), 2)

  def test_two_submitit_jobs_give_the_one_process_report(self):
    # The two (dataset, method) programs as two jobs of submitit's real
    # local executor, each a process of its own: the same runs, bit for
    # bit, and the same Table III but for the training seconds. The
    # launching script runs in a process of its own too: importing submitit
    # configures the logging of its process (and closes this one's
    # handlers).
    jobs = os.path.join(fixtures.tmp_dir(self), 'jobs')
    proc = fixtures.run_script(
        'reproduce', *SHRINK, '--methods=emcl,finetune', '--seeds=2',
        '--config.output.progress=false', f'--workdir={jobs}',
        '--launcher=submitit_local', '--jobs=2', timeout=900)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertRegex(proc.stderr, r'submitted 2 jobs \(submitit_local, ids '
                     r'\d+, \d+\) for 2 programs')
    for name in ('emcl', 'finetune'):
      for seed in (0, 1):
        with open(os.path.join(self.folder(name, seed), 'results.json')) as f:
          want = json.load(f)
        found = glob.glob(os.path.join(jobs, 'runs', 'mnist_permutations',
                                       name, '*', f'seed{seed}',
                                       'results.json'))
        self.assertLen(found, 1)
        with open(found[0]) as f:
          got = json.load(f)
        self.assertEqual((got['config_hash'], got['accuracy_matrix'],
                          got['task_losses']),
                         (want['config_hash'], want['accuracy_matrix'],
                          want['task_losses']), (name, seed))

    def rows(folder):
      with open(os.path.join(folder, 'table_iii.md')) as f:
        return [line.rsplit('|', 2)[0] for line in f
                if line.startswith(('| emcl', '| finetune'))]
    self.assertLen(rows(jobs), 2)
    self.assertEqual(rows(jobs), rows(self.out))

  def test_corrupt_results_file_is_one_line(self):
    copy = os.path.join(fixtures.tmp_dir(self), 'copy')
    shutil.copytree(self.out, copy)
    victim = os.path.join(self.folder('finetune', 1), 'results.json').replace(
        self.out, copy)
    with open(victim, 'w') as f:
      f.write('{"acc": ')
    proc = reproduce('--methods=emcl,finetune', '--seeds=2',
                     f'--workdir={copy}')
    self.assertEqual(proc.returncode, 2)
    lines = proc.stderr.strip().splitlines()
    self.assertRegex(lines[-1], f'^error: {victim} is not a readable '
                     'results file')
    self.assertNotIn('Traceback', proc.stderr)

  def test_unknown_method_is_one_line(self):
    proc = reproduce('--methods=emcl,emlc', f'--workdir={self.out}/x')
    self.assertEqual(proc.returncode, 2)
    self.assertLen(proc.stderr.strip().splitlines(), 1)
    self.assertIn("unknown method 'emlc'", proc.stderr)
    self.assertFalse(os.path.exists(f'{self.out}/x'))



class ReproduceFlagsTest(absltest.TestCase):

  def test_data_dir_model_norm_and_parallel_seeds_reach_every_run(self):
    # Split MNIST from an IDX folder, the reduced ResNet with instance norm,
    # two seeds as one vmapped program: each results file records them.
    root = fixtures.tmp_dir(self)
    data = os.path.join(root, 'mnist')
    os.makedirs(data)
    fixtures.write_mnist(data, n_train=400, n_test=60)
    out = os.path.join(root, 'out')
    proc = reproduce('--datasets=split_mnist', '--methods=finetune',
                     '--seeds=2', '--parallel_seeds', f'--data_dir={data}',
                     '--config.model.name=resnet18_reduced', '--config.model.norm=instance',
                     '--config.data.num_tasks=2', '--config.data.samples_per_task=20',
                     '--config.output.progress=false', f'--workdir={out}')
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    paths = sorted(glob.glob(os.path.join(out, 'runs', 'split_mnist',
                                          'finetune', '*', 'seed*',
                                          'results.json')))
    self.assertLen(paths, 2)
    for seed, path in enumerate(paths):
      with open(path) as f:
        res = json.load(f)
      self.assertEqual(res['seed'], seed)
      self.assertEqual(res['parallel_seeds'], 2)
      self.assertEqual(res['data_source'], f'dir:{data}')
      self.assertEqual(res['config']['model'],
                       'resnet18_reduced(norm=instance)')
      self.assertEqual(np.array(res['accuracy_matrix']).shape, (2, 2))

if __name__ == '__main__':
  absltest.main()
