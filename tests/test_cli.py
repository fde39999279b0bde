"""experiments/run.py: the results file, and one clear line for bad input."""

import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from unittest import mock

from absl.testing import absltest
import pytest
from absl.testing import parameterized
import numpy as np

import fixtures
from emcl_jax.errors import DataError
from emcl_jax.errors import NonFiniteLossError
from emcl_jax.launch import cli

pytestmark = pytest.mark.slow  # subprocess and whole-protocol runs

ROOT = fixtures.ROOT
RUN = os.path.join(ROOT, 'experiments', 'run.py')
SMALL = ['--config.data.num_tasks=2', '--config.data.samples_per_task=50']


_tmp = fixtures.tmp_dir


def run(args, out):
  """run.py with `args` and --workdir=`out`, in this process (the tests
  below that need a process of its own start one)."""
  return fixtures.call('run', f'--workdir={out}', *args)


def results_path(out, name, seed, dataset='mnist_permutations'):
  """The one results.json of (dataset, name, seed) under the work directory
  `out` ({out}/{dataset}/{name}/{config_hash}/seed{seed}/)."""
  found = glob.glob(os.path.join(out, dataset, name, '*', f'seed{seed}',
                                 'results.json'))
  assert len(found) == 1, found
  return found[0]


def write_mnist_dir(folder, corrupt=None):
  """An IDX folder (60 train, 20 test images); `corrupt`: the train
  images' magic number ('magic') or its end ('truncated')."""
  fixtures.write_mnist(folder, n_train=60, n_test=20, gz=False)
  path = os.path.join(folder, 'train-images-idx3-ubyte')
  if corrupt == 'magic':
    with open(path, 'r+b') as f:
      f.write(b'\x00\x00\x08\x01')
  if corrupt == 'truncated':
    with open(path, 'r+b') as f:
      f.truncate(1000)


# Bad inputs: (name, flags, the regex the one printed line must match
# after 'error: '). Tags stand for files the test writes: EMPTY, MAGIC,
# TRUNC (IDX folders: empty, wrong magic, truncated), TFDS (an empty TFDS
# folder), CFGRAISE, CFGTYPE, CFGFIELD (--config files that fail), CFGOK
# (one that works).
BAD_INPUTS = (
    # Flags absl cannot parse: one line too, exit 2.
    ('type_int', ['--seeds=abc'], r"flag --seeds=abc: invalid "
     r"literal for int\(\) with base 10: 'abc'; pass --help to list "
     'the flags$'),
    ('type_float', ['--config.method.beta=fast'],
     r"method.beta='fast' is not a float; give a float$"),
    ('type_int_path', ['--config.data.num_tasks=three'],
     r"data.num_tasks='three' is not an int; give an int$"),
    ('enum', ['--config.protocol.eval=all'], r"protocol.eval='all' is not one of task, "
     'class, both$'),
    ('unknown_flag', ['--betta=0.1'], "Unknown command line flag 'betta'"),
    ('old_method_flag', ['--beta=0.1'], "Unknown command line flag 'beta'; "
     r'settings are --config.PATH=VALUE: --config.method.beta=VALUE '
     r'\(--print_config lists them\)$'),
    ('old_setting_flag', ['--num_tasks=3'], "Unknown command line flag "
     r"'num_tasks'; settings are --config.PATH=VALUE: "
     r'--config.data.num_tasks=VALUE \(--print_config lists them\)$'),
    ('other_scripts_flag', ['--grid=beta=0.1'], 'run.py takes no --grid; '
     'pass --help to list the flags$'),
    ('twice', ['--config.output.workdir=elsewhere'],
     '--workdir and --config.output.workdir both set output.workdir; give '
     'one$'),
    ('file_and_dataset', ['--config=CFGOK', '--dataset=split_mnist'],
     r'--config=\S+ chooses the dataset and method; drop --dataset$'),
    ('unknown_path', ['--config.method.betta=0.1'],
     r"unknown setting 'method.betta' for method emcl; did you mean "
     r'method.beta\? --print_config lists every setting$'),
    ('unknown_section', ['--config.dat.num_tasks=3'],
     r'did you mean data.num_tasks\?'),
    ('other_methods_field', ['--method=mer', '--config.method.lam=1'],
     r"unknown setting 'method.lam' for method mer"),
    ('no_value', ['--config.method.beta'], r'--config.method.beta has no '
     'value; write --config.method.beta=VALUE$'),
    ('positional', ['emcl'], r"unexpected arguments \['emcl'\]; flags take "
     'the form --name=value$'),
    # Ranges: negative, zero, NaN, infinities.
    ('seed', ['--seed=-1'], '--seed must be >= 0, got -1$'),
    ('num_tasks', ['--config.data.num_tasks=0'],
     'data.num_tasks must be a positive integer, got 0$'),
    ('samples', ['--config.data.samples_per_task=-5'],
     'data.samples_per_task must be a positive integer, got -5$'),
    ('batch_size', ['--config.protocol.batch_size=0'],
     'protocol.batch_size must be a positive integer, got 0$'),
    ('epochs', ['--config.protocol.epochs=0'],
     'protocol.epochs must be a positive integer, got 0$'),
    ('memory', ['--config.method.memory_size=-1'],
     'method.memory_size and replay_size must be >= 0$'),
    ('glances', ['--config.method.glances=0'],
     'method.glances must be >= 1, got 0$'),
    ('beta_nan', ['--config.method.beta=nan'],
     'method.beta must be a finite number, got nan$'),
    ('beta_inf', ['--config.method.beta=inf'],
     'method.beta must be a finite number, got inf$'),
    ('lam_neg_inf', ['--config.method.lam=-inf'],
     'method.lam must be a finite number, got -inf$'),
    ('lr_inf', ['--method=finetune', '--config.method.lr=inf'],
     'method.lr must be a finite number, got inf$'),
    ('gamma_zero', ['--config.method.gamma=0'],
     'method.gamma must be > 0, got 0.0$'),
    # --config files that fail.
    ('config_raises', ['--config=CFGRAISE'],
     r'--config \S+ failed: get_config\(\) raised '
     'ZeroDivisionError: division by zero$'),
    ('config_type', ['--config=CFGTYPE'],
     r'--config \S+: get_config\(\) returned a list, not a RunConfig; '),
    ('config_field', ['--config=CFGFIELD'],
     r"unknown setting 'method.betta' for method emcl; did you mean "
     r'method.beta\?'),
    ('config_missing', ['--config=/no/such/config.py'],
     '/no/such/config.py is not a file'),
    ('dataset', ['--dataset=cifar10'], "unknown dataset 'cifar10'"),
    ('method', ['--method=sgd'], "unknown method 'sgd'"),
    ('no_dir', ['--data_dir=/no/such/dir'], 'not a directory'),
    ('missing', ['--data_dir=EMPTY'], 'train-images-idx3-ubyte.*not found'),
    ('magic', ['--data_dir=MAGIC'], 'magic number 2049'),
    ('truncated', ['--data_dir=TRUNC'], 'truncated'),
    ('multiple', ['--config.data.samples_per_task=15'], 'multiple of batch_size'),
    ('beta', ['--config.method.beta=-0.1'], 'method.beta must be > 0'),
    ('alpha', ['--config.method.alpha0=0'], 'method.alpha0 must be > 0'),
    ('lr', ['--method=finetune', '--config.method.lr=0'],
     'method.lr must be > 0'),
    ('incompatible', ['--method=emcl', '--config.method.lr=0.1'],
     "unknown setting 'method.lr' for method emcl"),
    ('meta_lr', ['--config.method.meta_lr=cosine'],
     'method.meta_lr must be one of'),
    ('seeds', ['--seeds=0'], '--seeds must be >= 1'),
    ('seeds_overlap', ['--seeds=2', '--config.output.overlap_eval=true'],
     '--config.output.overlap_eval applies to one seed; drop it or '
     '--seeds$'),
    ('max_tasks', ['--method=gem', '--config.data.num_tasks=3',
                   '--config.method.max_tasks=2'],
     'method.max_tasks=2 is less than the 3 tasks.*set method.max_tasks=3'),
    # Offline, the cause is the network check (not whatever else TFDS
    # might raise), and the fix names the offline reader.
    # Unprepared TFDS data without TensorFlow: what to install, before any
    # download (tests/test_tfds_source.py covers the offline message).
    ('tfds_offline', ['--config.data.source=tfds', '--data_dir=TFDS'],
     r"TFDS needs TensorFlow to prepare mnist \(No module named "
     r"'tensorflow'\): pip install 'emcl_jax\[tfds\]' \(tensorflow-cpu\), "
     r'or use data_dir with the IDX files$'),
    ('class_order', ['--dataset=split_mnist', '--config.data.class_order=sorted'],
     "data.class_order='sorted' is not one of natural, random"),
    ('class_order_single_head', ['--config.data.class_order=random'],
     'data.class_order applies to the class-split benchmarks'),
    ('eval_single_head', ['--config.protocol.eval=class'],
     'protocol.eval=class applies to the class-split benchmarks'),
    ('norm_mlp', ['--config.model.norm=batch'],
     'model.norm applies to resnet18_reduced, not mlp'),
    ('norm_unknown', ['--dataset=split_mnist', '--config.model.name=resnet18_reduced',
                      '--config.model.norm=bn'], "unknown norm 'bn'"),
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
    # the loop over tasks, within the whole run, within the wall time
    # measured here, around the run.
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

  def test_ablations_are_methods_and_names_label_folders(self):
    out = _tmp(self)
    proc = run(['--method=emcl_gd', *SMALL], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    proc = run(['--method=emcl', '--config.method.inner=lr_modulation',
                '--config.output.name=mine', *SMALL], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertCountEqual(os.listdir(os.path.join(out, 'mnist_permutations')),
                          ['emcl_gd', 'mine'])
    with open(results_path(out, 'emcl_gd', 0)) as f:
      res = json.load(f)
    self.assertEqual((res['method'], res['name']), ('emcl_gd', 'emcl_gd'))
    self.assertEqual(res['config']['inner'], 'gd')
    with open(results_path(out, 'mine', 0)) as f:
      res = json.load(f)
    self.assertEqual((res['method'], res['name']), ('emcl', 'mine'))
    self.assertEqual(res['config']['inner'], 'lr_modulation')

  def test_class_order_reaches_the_split(self):
    # Split MNIST under the natural order (tasks {0,1}, {2,3}) and a
    # random one: two settings, two folders, and other tasks learned, so
    # other accuracy matrices.
    out = _tmp(self)
    matrices = {}
    for order in ('natural', 'random'):
      proc = run(['--dataset=split_mnist', '--method=finetune',
                  '--config.data.num_tasks=2', '--config.data.samples_per_task=20',
                  f'--config.data.class_order={order}'], out)
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
    proc = run([f'--data_dir={data}', '--method=finetune', '--config.data.num_tasks=2',
                '--config.data.samples_per_task=20'], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    with open(results_path(out, 'finetune', 0)) as f:
      self.assertEqual(json.load(f)['data_source'], f'dir:{data}')

  def test_print_config(self):
    out = _tmp(self)
    proc = run(['--dataset=mnist_permutations', '--method=emcl',
                '--print_config'], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    lines = {l.split()[0]: l.split(None, 2)[1:] for l in
             proc.stdout.splitlines()}
    # MNIST Permutations' EMCL (emcl_jax/configs/mnist_permutations.py).
    self.assertEqual(lines['method.glances'][0], '5')
    self.assertEqual(lines['method.beta'][0], '0.1')
    self.assertEqual(lines['method.meta_lr'][0], "'task'")
    self.assertIn('inner learning rate', lines['method.beta'][1])
    self.assertRegex(lines['config_hash'][0], '^[0-9a-f]{10}$')
    self.assertFalse(os.path.exists(out) and os.listdir(out))  # no training
    # MER's own fields and meanings, no EMCL text.
    proc = run(['--dataset=many_permutations', '--method=mer',
                '--print_config', '--config.method.beta=0.3'], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn('Reptile', proc.stdout)
    # (the cache's environment variable, $EMCL_JAX_DATA, is not EMCL text)
    self.assertNotRegex(proc.stdout, r'(?i)\bemcl\b(?!_jax)')
    self.assertNotIn('Eq ', proc.stdout)
    self.assertRegex(proc.stdout, r'method.beta +0.3 ')
    # A CNN on an MNIST benchmark brings the CNNs' values, and says so.
    proc = run(['--dataset=split_mnist', '--method=emcl', '--print_config',
                '--config.model.name=pc_cnn'], out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertRegex(proc.stdout, r"method_values +'cifar100' ")
    self.assertRegex(proc.stdout, r'method.beta +0.075 ')

  def test_help_lists_the_flags_and_settings(self):
    # run.py's file in a process of its own; the others' mains (the code
    # behind their files) in this process.
    env = fixtures.ENV
    for script in ('run', 'sweep', 'reproduce', 'bench', 'summarize'):
      if script == 'run':
        proc = subprocess.run([sys.executable, RUN, '--help'],
                              capture_output=True, text=True, env=env,
                              timeout=120)
      else:
        proc = fixtures.call(script, '--help')
      self.assertEqual(proc.returncode, 0, (script, proc.stderr))
      if script != 'bench':  # it writes --output only
        self.assertIn('--workdir', proc.stdout, script)
      if script != 'summarize':
        for flag in ('--seed:', '--data_dir:', '--config:',
                     'method.glances = ', '--config.PATH=VALUE'):
          self.assertIn(flag, proc.stdout, (script, flag))
        if script != 'bench':  # it times one seed
          self.assertIn('--seeds:', proc.stdout, script)
      # One spelling per setting: no flag mirrors a setting.
      for gone in ('--num_tasks', '--samples_per_task', '--model:',
                   '--overwrite', '--output_dir', '--tensorboard:'):
        self.assertNotIn(gone, proc.stdout, (script, gone))
      if script in ('sweep', 'reproduce'):
        for flag in ('--launcher:', '--jobs:', '--slurm_partition:'):
          self.assertIn(flag, proc.stdout, (script, flag))
      if script in ('run', 'sweep'):
        self.assertIn('--dataset:', proc.stdout)
        self.assertIn('--method:', proc.stdout)
    proc = fixtures.call('run', '--method=mer', '--help')
    self.assertIn('method.batches_per_example = 10', proc.stdout)

  def test_nan_loss_exit_1_no_results(self):
    out = _tmp(self)
    proc = run(['--method=finetune', '--config.method.lr=1e30', *SMALL],
               out)
    self.assertEqual(proc.returncode, 1, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1, proc.stderr)
    self.assertRegex(lines[0], '^error: loss became (nan|inf)')
    self.assertEqual(os.listdir(out) if os.path.exists(out) else [], [])



def _materialize(root, name, args):
  """`args` with its tags replaced by files written under `root`."""
  texts = {'CFGRAISE': 'def get_config():\n  return 1 / 0\n',
           'CFGTYPE': 'def get_config():\n  return [1]\n',
           'CFGFIELD': 'from emcl_jax import configs\n'
                       'def get_config():\n'
                       "  return configs.get_config('mnist_permutations', "
                       "'emcl', {'method.betta': 1.0})\n",
           'CFGOK': 'from emcl_jax import configs\n'
                    'def get_config():\n'
                    '  return configs.get_config()\n'}
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
  return [f'--workdir={os.path.join(root, name, "out")}', *SMALL, *out]


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
        env=fixtures.ENV, timeout=600, check=False)
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
    env = fixtures.ENV
    proc = subprocess.run([sys.executable, RUN, *argv], capture_output=True,
                          text=True, env=env, timeout=300)
    self._check(proc.returncode, proc.stderr, message,
                os.path.join(root, name, 'out'))


class FailingTest(parameterized.TestCase):
  """`cli.failing`, which every launch script wraps its work in: which
  error becomes which exit code and line."""

  @parameterized.named_parameters(
      ('bad_input', ValueError('--seeds must be >= 1'), 2,
       'error: --seeds must be >= 1\n'),
      ('bad_data', DataError('MNIST is corrupt; delete it'), 2,
       'error: MNIST is corrupt; delete it\n'),
      ('diverged', NonFiniteLossError('loss is nan at task 2'), 1,
       'error: loss is nan at task 2\n'),
      ('unwritable', PermissionError(13, 'Permission denied'), 2,
       'error: cannot write under --workdir=/ro: Permission denied; choose '
       'a writable --workdir\n'))
  def test_exit_code_and_line(self, error, code, line):
    stderr = io.StringIO()
    with mock.patch.object(sys, 'stderr', stderr):
      with self.assertRaises(SystemExit) as raised:
        with cli.failing(workdir='/ro'):
          raise error
    self.assertEqual(raised.exception.code, code)
    self.assertEqual(stderr.getvalue(), line)

  def test_os_error_without_a_workdir_is_not_called_a_write(self):
    with self.assertRaises(FileNotFoundError):
      with cli.failing():
        raise FileNotFoundError(2, 'No such file')

  def test_other_errors_pass(self):
    with self.assertRaises(KeyError):
      with cli.failing(workdir='/ro'):
        raise KeyError('x')


if __name__ == '__main__':
  absltest.main()
