"""experiments/run.py: the results file, and one clear line for bad input."""

import glob
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import pytest
from absl.testing import parameterized
import numpy as np

from emcl_jax.data import idx
from emcl_jax.methods import METHODS

pytestmark = pytest.mark.slow  # subprocess and whole-protocol runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, 'experiments', 'run.py')
SMALL = ['--num_tasks=2', '--samples_per_task=50']


def _tmp(test):
  folder = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, folder, True)
  return folder


def run(args, out):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
  proc = subprocess.run([sys.executable, RUN, f'--output_dir={out}', *args],
                        capture_output=True, text=True, env=env, timeout=300)
  return proc


def results_path(out, name, seed, dataset='mnist_permutations'):
  """The one results.json of (dataset, name, seed) under the work directory
  `out` ({out}/{dataset}/{name}/{config_hash}/seed{seed}/)."""
  found = glob.glob(os.path.join(out, dataset, name, '*', f'seed{seed}',
                                 'results.json'))
  assert len(found) == 1, found
  return found[0]


def write_mnist_dir(folder, corrupt=None):
  rng = np.random.default_rng(0)
  files = {'train-images-idx3-ubyte': rng.integers(0, 256, (60, 28, 28)),
           'train-labels-idx1-ubyte': rng.integers(0, 10, 60),
           't10k-images-idx3-ubyte': rng.integers(0, 256, (20, 28, 28)),
           't10k-labels-idx1-ubyte': rng.integers(0, 10, 20)}
  for name, arr in files.items():
    path = os.path.join(folder, name)
    idx.write_idx(path, arr)
    if name == 'train-images-idx3-ubyte' and corrupt == 'magic':
      with open(path, 'r+b') as f:
        f.write(b'\x00\x00\x08\x01')
    if name == 'train-images-idx3-ubyte' and corrupt == 'truncated':
      with open(path, 'r+b') as f:
        f.truncate(1000)


# Bad inputs: (name, flags, the regex the one printed line must match
# after 'error: '). Tags stand for files the test writes: EMPTY, MAGIC,
# TRUNC (IDX folders: empty, wrong magic, truncated), TFDS (an empty TFDS
# folder), CFGRAISE, CFGTYPE, CFGFIELD (--config files that fail).
BAD_INPUTS = (
    # Flags absl cannot parse: one line too, exit 2.
    ('type_int', ['--num_tasks=abc'], r"flag --num_tasks=abc: invalid "
     r"literal for int\(\) with base 10: 'abc'; pass --helpshort to list "
     'the flags$'),
    ('type_float', ['--beta=fast'], r'flag --beta=fast: could not convert '
     "string to float: 'fast'; pass --helpshort"),
    ('enum', ['--eval=all'], r'flag --eval=all: value should be one of '
     r'<task\|class\|both>; pass --helpshort'),
    ('unknown_flag', ['--betta=0.1'], "Unknown command line flag 'betta'"),
    ('positional', ['emcl'], r"unexpected arguments \['emcl'\]; flags take "
     'the form --name=value$'),
    # Ranges: negative, zero, NaN, infinities.
    ('seed', ['--seed=-1'], '--seed must be >= 0, got -1$'),
    ('num_tasks', ['--num_tasks=0'],
     '--num_tasks must be a positive integer, got 0$'),
    ('samples', ['--samples_per_task=-5'],
     '--samples_per_task must be a positive integer, got -5$'),
    ('batch_size', ['--batch_size=0'],
     '--batch_size must be a positive integer, got 0$'),
    ('epochs', ['--epochs=0'], '--epochs must be a positive integer, got 0$'),
    ('memory', ['--memory_size=-1'],
     'memory_size and replay_size must be >= 0$'),
    ('glances', ['--glances=0'], 'glances must be >= 1, got 0$'),
    ('beta_nan', ['--beta=nan'], 'beta must be a finite number, got nan$'),
    ('beta_inf', ['--beta=inf'], 'beta must be a finite number, got inf$'),
    ('lam_neg_inf', ['--lam=-inf'],
     'lam must be a finite number, got -inf$'),
    ('lr_inf', ['--method=finetune', '--lr=inf'],
     'lr must be a finite number, got inf$'),
    ('gamma_zero', ['--gamma=0'], 'gamma must be > 0, got 0.0$'),
    # --config files that fail.
    ('config_raises', ['--config=CFGRAISE'],
     r'--config \S+ failed to load: get_config\(\) raised '
     'ZeroDivisionError: division by zero$'),
    ('config_type', ['--config=CFGTYPE'],
     r'--config \S+: get_config\(\) must return a dict like '),
    ('config_field', ['--config=CFGFIELD'],
     r"the config sets 'betta', which --method=emcl does not take "),
    ('config_missing', ['--config=/no/such/config.py'],
     '/no/such/config.py is not a file'),
    ('dataset', ['--dataset=cifar10'], "unknown dataset 'cifar10'"),
    ('method', ['--method=sgd'], "unknown method 'sgd'"),
    ('no_dir', ['--data_dir=/no/such/dir'], 'not a directory'),
    ('missing', ['--data_dir=EMPTY'], 'train-images-idx3-ubyte.*not found'),
    ('magic', ['--data_dir=MAGIC'], 'magic number 2049'),
    ('truncated', ['--data_dir=TRUNC'], 'truncated'),
    ('multiple', ['--samples_per_task=15'], 'multiple of batch_size'),
    ('beta', ['--beta=-0.1'], 'beta must be > 0'),
    ('alpha', ['--alpha0=0'], 'alpha0 must be > 0'),
    ('lr', ['--method=finetune', '--lr=0'], 'lr must be > 0'),
    ('incompatible', ['--method=emcl', '--lr=0.1'],
     '--lr does not apply to --method=emcl'),
    ('meta_lr', ['--meta_lr=cosine'], 'meta_lr must be one of'),
    ('seeds', ['--seeds=0'], '--seeds must be >= 1'),
    ('seeds_overlap', ['--seeds=2', '--overlap_eval'],
     '--overlap_eval applies to one seed'),
    ('max_tasks', ['--method=gem', '--num_tasks=3', '--max_tasks=2'],
     'max_tasks=2 is less than the 3 tasks.*set --max_tasks=3'),
    # Offline, the cause is the network check (not whatever else TFDS
    # might raise), and the fix names the offline reader.
    ('tfds_offline', ['--data_source=tfds', '--data_dir=TFDS'],
     r'TFDS could not provide mnist \(cannot reach '
     r'storage\.googleapis\.com: [^)]*\); it needs network access on '
     r'first use, or use --data_dir with the IDX files$'),
    ('class_order', ['--dataset=split_mnist', '--class_order=sorted'],
     "unknown class order 'sorted'"),
    ('norm_mlp', ['--norm=batch'],
     '--norm applies to --model=resnet18_reduced, not mlp'),
    ('norm_unknown', ['--dataset=split_mnist', '--model=resnet18_reduced',
                      '--norm=bn'], "unknown norm 'bn'"),
)


class RunScriptTest(parameterized.TestCase):

  def test_writes_results_with_schema(self):
    out = _tmp(self)
    t0 = time.perf_counter()
    proc = run(['--method=emcl', '--seed=3', *SMALL], out)
    wall = time.perf_counter() - t0
    self.assertEqual(proc.returncode, 0, proc.stderr)
    summary = [l for l in proc.stdout.splitlines() if l.strip()]
    self.assertLen(summary, 1)
    self.assertRegex(summary[0], r'mnist_permutations emcl seed=3 ACC=\d')
    path = results_path(out, 'emcl', 3)
    with open(path) as f:
      res = json.load(f)
    for key in ('dataset', 'method', 'name', 'seed', 'config', 'versions',
                'data_source', 'accuracy_matrix', 'acc', 'bwt', 'la',
                'train_seconds', 'compile_seconds', 'total_seconds',
                'loop_seconds', 'eval_seconds', 'task_losses',
                'task_train_seconds', 'peak_rss_bytes', 'device_peak_bytes'):
      self.assertIn(key, res)
    # Times nest: each task's training within the run's training, within
    # the loop over tasks, within the whole run, within this process's
    # wall time (measured here, around the subprocess).
    self.assertLen(res['task_train_seconds'], 2)
    self.assertTrue(all(t > 0 for t in res['task_train_seconds']))
    self.assertLessEqual(max(res['task_train_seconds']),
                         res['train_seconds'])
    self.assertLessEqual(res['train_seconds'] + res['eval_seconds'],
                         res['loop_seconds'] + 1e-6)
    self.assertLessEqual(res['loop_seconds'], res['total_seconds'])
    self.assertLessEqual(res['total_seconds'], wall)
    self.assertGreater(res['peak_rss_bytes'], 50 * 2**20)  # JAX alone
    self.assertIsNone(res['device_peak_bytes'])  # CPU says nothing
    self.assertEqual(res['data_source'], 'bundled:mnist-5k')
    r = np.array(res['accuracy_matrix'])
    self.assertEqual(r.shape, (2, 2))
    self.assertTrue(((r >= 0) & (r <= 1)).all())
    self.assertAlmostEqual(res['acc'], 100 * r[-1].mean(), places=6)
    self.assertAlmostEqual(res['bwt'], 100 * (r[1, 0] - r[0, 0]), places=6)
    self.assertEqual(res['config']['samples_per_task'], 50)
    self.assertEqual(res['config']['lam'], 10.0)  # Table II default
    self.assertGreater(res['train_seconds'], 0)
    folder = os.path.dirname(path)
    self.assertEqual(sorted(os.listdir(folder)),
                     ['config.json', 'metrics.csv', 'metrics.jsonl',
                      'results.json'])  # checkpoints removed when finished
    with open(os.path.join(folder, 'config.json')) as f:
      self.assertEqual(json.load(f)['config'], res['config'])
    with open(os.path.join(folder, 'metrics.jsonl')) as f:
      records = [json.loads(line) for line in f]
    self.assertEqual(records[0]['hparams']['lam'], 10.0)
    self.assertEqual(records[-1]['final/acc'], res['acc'])
    records = [x for x in records if 'loss' in x]
    self.assertEqual([x['step'] for x in records], [1, 2])
    np.testing.assert_allclose([x['loss'] for x in records],
                               res['task_losses'], atol=1e-4)
    np.testing.assert_allclose(records[-1]['acc_seen'], res['acc'],
                               atol=0.006)
    np.testing.assert_allclose([x['train_s'] for x in records],
                               res['task_train_seconds'], atol=0.0006)

  def test_seeds_in_one_program(self):
    out = _tmp(self)
    proc = run(['--method=finetune', '--seeds=2', '--seed=4', *SMALL], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    accs = []
    for seed in (4, 5):
      with open(results_path(out, 'finetune', seed)) as f:
        res = json.load(f)
      self.assertEqual((res['seed'], res['parallel_seeds']), (seed, 2))
      accs.append(res['acc'])
    self.assertIn(f'2 seeds: ACC={np.mean(accs):.2f}+-{np.std(accs):.2f}',
                  proc.stdout)

  def test_named_ablation_gets_its_own_file(self):
    out = _tmp(self)
    proc = run(['--method=emcl', '--inner=gd', '--name=emcl_gd', *SMALL], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertEqual(os.listdir(os.path.join(out, 'mnist_permutations')),
                     ['emcl_gd'])
    with open(results_path(out, 'emcl_gd', 0)) as f:
      res = json.load(f)
    self.assertEqual((res['method'], res['name']), ('emcl', 'emcl_gd'))
    self.assertEqual(res['config']['inner'], 'gd')

  def test_class_order_reaches_the_split(self):
    # Split MNIST under the natural order (tasks {0,1}, {2,3}) and a
    # random one: two settings, two folders, and other tasks learned, so
    # other accuracy matrices.
    out = _tmp(self)
    matrices = {}
    for order in ('natural', 'random'):
      proc = run(['--dataset=split_mnist', '--method=finetune',
                  '--num_tasks=2', '--samples_per_task=20',
                  f'--class_order={order}'], out)
      self.assertEqual(proc.returncode, 0, proc.stderr)
    paths = glob.glob(os.path.join(out, 'split_mnist', 'finetune', '*',
                                   'seed0', 'results.json'))
    self.assertLen(paths, 2)
    for path in paths:
      with open(path) as f:
        res = json.load(f)
      matrices[res['config']['class_order']] = res['accuracy_matrix']
    self.assertCountEqual(matrices, ['natural', 'random'])
    self.assertNotEqual(matrices['natural'], matrices['random'])

  def test_data_dir_source_is_recorded(self):
    data = _tmp(self)
    write_mnist_dir(data)
    out = _tmp(self)
    proc = run([f'--data_dir={data}', '--method=finetune', '--num_tasks=2',
                '--samples_per_task=20'], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    with open(results_path(out, 'finetune', 0)) as f:
      self.assertEqual(json.load(f)['data_source'], f'dir:{data}')

  def test_every_config_field_has_a_typed_flag(self):
    module = importlib.import_module('emcl_jax.launch.run')
    for name, (_, config_cls) in METHODS.items():
      for field in config_cls._fields:
        self.assertIn(field, module.FLAGS)
        self.assertIn(name, module.FLAGS[field].help)
    module.FLAGS(['run.py', '--second_order', '--glances=3', '--lr=0.5'])
    self.assertIs(module.FLAGS.second_order, True)
    self.assertEqual(module.FLAGS.glances, 3)
    self.assertEqual(module.FLAGS.lr, 0.5)

  def test_conflicting_field_types_are_refused(self):
    from typing import NamedTuple  # pylint: disable=g-import-not-at-top
    from emcl_jax import experiment  # pylint: disable=g-import-not-at-top

    class Odd(NamedTuple):
      """Attributes:
        lr: an integer learning rate, which clashes with finetune's float.
      """
      lr: int = 1

    with absltest.mock.patch.dict(METHODS, {'odd': (None, Odd)}):
      with self.assertRaisesRegex(TypeError, 'lr is a float .* but a int'):
        experiment.hyperparameters()
    self.assertIs(experiment.hyperparameters()['lr'].type, float)

  def test_nan_loss_exit_1_no_results(self):
    out = _tmp(self)
    proc = run(['--method=finetune', '--lr=1e30', *SMALL], out)
    self.assertEqual(proc.returncode, 1, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1, proc.stderr)
    self.assertRegex(lines[0], '^error: loss became (nan|inf)')
    self.assertEqual(os.listdir(out) if os.path.exists(out) else [], [])



def _materialize(root, name, args):
  """`args` with its tags replaced by files written under `root`."""
  texts = {'CFGRAISE': 'def get_config():\n  return 1 / 0\n',
           'CFGTYPE': 'def get_config():\n  return [1]\n',
           'CFGFIELD': "def get_config():\n  return {'methods': {'emcl': "
                       "{'betta': 1.0}}}\n"}
  out = []
  for a in args:
    tag = a.rsplit('=', 1)[-1]
    if tag in ('EMPTY', 'MAGIC', 'TRUNC', 'TFDS'):
      folder = os.path.join(root, name, 'data')
      os.makedirs(folder)
      if tag in ('MAGIC', 'TRUNC'):
        write_mnist_dir(folder, {'MAGIC': 'magic', 'TRUNC': 'truncated'}[tag])
      a = a[:-len(tag)] + folder
    elif tag in texts:
      path = os.path.join(root, name, 'config.py')
      os.makedirs(os.path.dirname(path))
      with open(path, 'w') as f:
        f.write(texts[tag])
      a = a[:-len(tag)] + path
    out.append(a)
  return [f'--output_dir={os.path.join(root, name, "out")}', *SMALL, *out]


class BadInputTest(parameterized.TestCase):
  """Every bad input: exactly one line, `error: ...`, exit code 2, and no
  output written. The table goes through run.py's parsing and main in one
  process (tests/cli_driver.py); a few inputs also as a process of their
  own, to see the real exit code."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cases = {name: _materialize(cls.root, name, args)
             for name, args, _ in BAD_INPUTS}
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tests', 'cli_driver.py')],
        input=json.dumps(cases), capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu'),
        timeout=600, check=False)
    if proc.returncode:
      raise RuntimeError(proc.stderr[-3000:])
    cls.results = json.loads(proc.stdout)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, True)
    super().tearDownClass()

  def _check(self, code, stderr, message, out):
    self.assertEqual(code, 2, stderr)
    lines = stderr.strip().splitlines()
    self.assertLen(lines, 1, stderr)
    self.assertRegex(lines[0], '^error: .*' + message)
    self.assertEqual(os.listdir(out) if os.path.exists(out) else [], [])

  @parameterized.named_parameters(
      *((name, name, message) for name, _, message in BAD_INPUTS))
  def test_one_line_exit_2(self, name, message):
    r = self.results[name]
    self._check(r['code'], r['stderr'], message,
                os.path.join(self.root, name, 'out'))

  @parameterized.parameters('type_int', 'beta_inf', 'config_raises',
                            'tfds_offline')
  def test_in_a_process_of_its_own(self, name):
    args, message = {n: (a, m) for n, a, m in BAD_INPUTS}[name]
    root = _tmp(self)
    argv = _materialize(root, name, args)
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
    proc = subprocess.run([sys.executable, RUN, *argv], capture_output=True,
                          text=True, env=env, timeout=300)
    self._check(proc.returncode, proc.stderr, message,
                os.path.join(root, name, 'out'))


if __name__ == '__main__':
  absltest.main()
