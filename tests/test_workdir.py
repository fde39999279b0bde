"""The work directory: one folder per run keyed by its config hash, resume
after a real SIGKILL, no overwrite of a finished run, only process 0
writes, and the tree (with old flat results files) read back as a table."""

import glob
import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
import pytest
import jax
import numpy as np

import fixtures
from emcl_jax import configs
from emcl_jax import runner
from emcl_jax.configs import schema
from emcl_jax.runner import folders
from emcl_jax.reporting import tables
from emcl_jax.training import workdir

RUN = os.path.join(fixtures.ROOT, 'experiments', 'run.py')
SMALL = ['--config.data.num_tasks=2', '--config.data.samples_per_task=50', '--config.output.progress=false']


def start(out, *args):
  """run.py started in a process of its own (one to kill, or one holding
  its run's lock)."""
  return subprocess.Popen([sys.executable, RUN, f'--workdir={out}', *args],
                          env=fixtures.ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def run_here(out, *args):
  """run.py in this process."""
  return fixtures.call('run', f'--workdir={out}', *args)


def summarize(out):
  """summarize.py on the work directory `out`, in this process."""
  return fixtures.call('summarize', f'--workdir={out}')


def results_files(out):
  return sorted(glob.glob(os.path.join(out, '*', '*', '*', 'seed*',
                                       'results.json')))


def _config(out, **values):
  """A small EMCL run on MNIST Permutations in the work directory `out`."""
  return configs.get_config('mnist_permutations', 'emcl', {
      'data.num_tasks': 2, 'data.samples_per_task': 50,
      'output.progress': False, 'output.workdir': out, **values})


class WorkdirTest(absltest.TestCase):

  @pytest.mark.slow
  def test_settings_get_their_own_folders_and_finished_runs_are_kept(self):
    out = fixtures.tmp_dir(self)
    for beta in ('0.1', '0.05'):
      proc = run_here(out, f'--config.method.beta={beta}', *SMALL)
      self.assertEqual(proc.returncode, 0, proc.stderr)
    paths = results_files(out)
    self.assertLen(paths, 2)  # two results, neither overwritten
    betas = []
    for path in paths:
      with open(path) as f:
        res = json.load(f)
      betas.append(res['config']['beta'])
      # The folder is named by the hash of the config the file records.
      self.assertEqual(path.split(os.sep)[-3], workdir.config_hash(
          res['dataset'], res['method'], res['config']))
      self.assertEqual(res['config_hash'], path.split(os.sep)[-3])
    self.assertCountEqual(betas, [0.1, 0.05])
    # The same command again: refused in one line, the results untouched.
    before = {p: os.path.getmtime(p) for p in paths}
    proc = run_here(out, '--config.method.beta=0.05', *SMALL)
    self.assertEqual(proc.returncode, 2, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1)
    self.assertRegex(lines[0], r'^error: .*results.json exists: '
                     r'mnist_permutations emcl seed 0 is finished; pass '
                     r'--config.output.overwrite=true')
    self.assertEqual(before, {p: os.path.getmtime(p) for p in paths})
    # --config.output.overwrite=true runs it again, in the same folder.
    proc = run_here(out, '--config.method.beta=0.05',
                    '--config.output.overwrite=true', *SMALL)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertEqual(results_files(out), paths)
    changed = [p for p in paths if os.path.getmtime(p) != before[p]]
    self.assertLen(changed, 1)

  @pytest.mark.slow
  def test_sigkill_then_the_same_command_resumes_bitwise(self):
    out, ref = fixtures.tmp_dir(self), fixtures.tmp_dir(self)
    args = ['--config.data.num_tasks=5', '--config.data.samples_per_task=400', '--config.output.progress=false']
    self.assertEqual(run_here(ref, *args).returncode, 0)
    proc = start(out, *args)
    deadline = time.time() + 240
    metrics = os.path.join(out, 'mnist_permutations', 'emcl', '*', 'seed0',
                           'metrics.jsonl')
    steps = 0
    while steps < 2 and time.time() < deadline and proc.poll() is None:
      time.sleep(0.05)
      for path in glob.glob(metrics):
        with open(path) as f:
          steps = sum('"step"' in line for line in f)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    self.assertEqual(proc.returncode, -signal.SIGKILL)
    self.assertEqual(results_files(out), [])
    folder = os.path.dirname(glob.glob(metrics)[0])
    saved = workdir.latest_checkpoint(os.path.join(folder, 'checkpoints'))
    self.assertIsNotNone(saved)  # at least task 1 was saved
    resumed = run_here(out, *args)
    self.assertEqual(resumed.returncode, 0, resumed.stderr)
    with open(results_files(out)[0]) as f, open(results_files(ref)[0]) as g:
      a, b = json.load(f), json.load(g)
    self.assertEqual(a['accuracy_matrix'], b['accuracy_matrix'])
    self.assertEqual(a['task_losses'], b['task_losses'])
    # One metrics record per task: the resumed tasks replaced the lost ones.
    with open(os.path.join(folder, 'metrics.jsonl')) as f:
      records = [json.loads(line) for line in f]
    self.assertEqual([r['step'] for r in records if 'loss' in r],
                     [1, 2, 3, 4, 5])
    self.assertFalse(os.path.exists(os.path.join(folder, 'checkpoints')))

  @pytest.mark.slow
  def test_sigkill_during_evaluation_and_during_a_save_then_resume(self):
    # tests/kill_during.py runs run.py's command line and SIGKILLs itself
    # inside the third evaluation call (the random-initialisation row, then
    # after tasks 1 and 2: killed while evaluating task 2) or inside the
    # third checkpoint save (task 3's, once orbax has made its temporary
    # folder). The same command, run again, resumes; the results equal an
    # uninterrupted run's bit for bit.
    args = ['--config.data.num_tasks=4', '--config.data.samples_per_task=100', '--config.output.progress=false']
    ref = fixtures.tmp_dir(self)
    self.assertEqual(run_here(ref, *args).returncode, 0)
    with open(results_files(ref)[0]) as f:
      expected = json.load(f)
    killer = os.path.join(fixtures.ROOT, 'tests', 'kill_during.py')
    for where, saved, leftover in (('eval', ['0'], []),
                                   ('save', ['0', '1'], ['2'])):
      out = fixtures.tmp_dir(self)
      proc = subprocess.run(
          [sys.executable, killer, where, '3', f'--workdir={out}', *args],
          capture_output=True, text=True, env=fixtures.ENV, timeout=300)
      self.assertEqual(proc.returncode, -signal.SIGKILL, proc.stderr)
      self.assertEqual(results_files(out), [])
      folder, = glob.glob(os.path.join(out, '*', '*', '*', 'seed0'))
      # Complete steps, and the temporary folder of the step being saved
      # ('2.orbax-checkpoint-tmp', with a numeric suffix in older orbax).
      names = os.listdir(os.path.join(folder, 'checkpoints'))
      self.assertCountEqual([n for n in names if n.isdigit()], saved, where)
      self.assertCountEqual(
          [n.split('.')[0] for n in names if '.orbax-checkpoint-tmp' in n],
          leftover, where)
      self.assertLen(names, len(saved) + len(leftover))
      resumed = run_here(out, *args)
      self.assertEqual(resumed.returncode, 0, resumed.stderr)
      with open(results_files(out)[0]) as f:
        got = json.load(f)
      for key in ('accuracy_matrix', 'task_losses', 'init_accuracy'):
        self.assertEqual(got[key], expected[key], (where, key))
      self.assertFalse(os.path.exists(os.path.join(folder, 'checkpoints')))

  @pytest.mark.slow
  def test_a_second_process_on_a_running_run_is_refused(self):
    out = fixtures.tmp_dir(self)
    args = ['--config.data.num_tasks=5', '--config.data.samples_per_task=400', '--config.output.progress=false']
    first = start(out, *args)
    deadline = time.time() + 240
    while (not glob.glob(os.path.join(out, '*', '*', '*', 'seed0', '.lock'))
           and time.time() < deadline and first.poll() is None):
      time.sleep(0.05)
    second = run_here(out, *args)  # this process: another than the first
    self.assertEqual(second.returncode, 2, second.stderr)
    lines = second.stderr.strip().splitlines()
    self.assertLen(lines, 1)
    self.assertRegex(lines[0], r'^error: .*/seed0 is being run by another '
                     r'process \(it holds .*\.lock\); wait for it')
    first.communicate(timeout=300)
    self.assertEqual(first.returncode, 0)
    self.assertLen(results_files(out), 1)
    self.assertEmpty(glob.glob(os.path.join(out, '**', '.lock'),
                               recursive=True))

  @pytest.mark.slow
  def test_a_full_disk_leaves_no_results_file_and_says_so(self):
    # The file-size limit stands in for a full disk: the results file
    # (about 1.7 kB here) cannot be written, the smaller files can.
    out = fixtures.tmp_dir(self)
    # The child sets the limit on itself (no preexec_fn: forking a process
    # that runs JAX's threads to run Python code in the child can deadlock).
    limited = ('import resource, runpy, signal, sys; '
               'resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500)); '
               'signal.signal(signal.SIGXFSZ, signal.SIG_IGN); '  # EFBIG
               'sys.argv = sys.argv[1:]; '
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    # Without the tests' compilation cache, whose files the limit would cut.
    env = {k: v for k, v in fixtures.ENV.items()
           if k != 'JAX_COMPILATION_CACHE_DIR'}
    proc = subprocess.run(
        [sys.executable, '-c', limited, RUN, f'--workdir={out}', *SMALL,
         '--config.output.checkpoint=false'], capture_output=True, text=True, env=env,
        timeout=300)
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertEqual(proc.stderr, f'error: cannot write under --workdir={out}'
                     ': File too large; choose a writable --workdir\n')
    files = sorted(f for _, _, fs in os.walk(out) for f in fs)
    self.assertEqual(files, ['config.json', 'metrics.csv', 'metrics.jsonl'])

  @pytest.mark.slow
  def test_a_workdir_that_cannot_be_made_is_one_line(self):
    blocker = os.path.join(fixtures.tmp_dir(self), 'a-file')
    with open(blocker, 'w') as f:
      f.write('x')
    proc = run_here(os.path.join(blocker, 'runs'), *SMALL)
    self.assertEqual(proc.returncode, 2)
    self.assertEqual(proc.stderr, f'error: cannot write under --workdir='
                     f'{blocker}/runs: Not a directory; choose a writable '
                     '--workdir\n')

  def test_lock_in_process(self):
    folder = os.path.join(fixtures.tmp_dir(self), 'run')
    lock = workdir.RunLock(folder).acquire()
    with self.assertRaises(workdir.RunLockedError):
      workdir.RunLock(folder).acquire()
    lock.release()
    self.assertEqual(os.listdir(folder), [])
    workdir.RunLock(folder).acquire().release()  # free again

  @pytest.mark.slow
  def test_only_process_0_writes(self):
    out = fixtures.tmp_dir(self)
    config = _config(out, **{'output.checkpoint': False})
    with mock.patch.object(jax, 'process_index', return_value=1):
      res = runner.train_and_evaluate(schema.replace(
          config, 'output.tensorboard', True))
    self.assertLen(res, 1)
    self.assertEqual([f for _, _, fs in os.walk(out) for f in fs], [])
    res0 = runner.train_and_evaluate(config)
    self.assertEqual(res0[0]['accuracy_matrix'], res[0]['accuracy_matrix'])
    self.assertLen(results_files(out), 1)

  @pytest.mark.slow
  def test_overwrite_starts_a_vmapped_group_over(self):
    out = fixtures.tmp_dir(self)
    config = _config(out, seeds=2)
    first = runner.train_and_evaluate(config)
    # A save of the group left behind (as by a kill), unreadable: with
    # --config.output.overwrite=true the group starts over instead of resuming from it.
    chash = first[0]['config_hash']
    stale = os.path.join(workdir.checkpoint_dir(
        out, 'mnist_permutations', 'emcl', chash, (0, 1)), '0')
    os.makedirs(stale)
    with self.assertRaises(runner.RunExistsError):
      runner.train_and_evaluate(config)
    again = runner.train_and_evaluate(schema.replace(
        config, 'output.overwrite', True))
    self.assertEqual([r['accuracy_matrix'] for r in again],
                     [r['accuracy_matrix'] for r in first])
    self.assertFalse(os.path.exists(os.path.dirname(stale)))

  @pytest.mark.slow
  def test_tree_and_flat_files_read_back_without_mixing_settings(self):
    out = fixtures.tmp_dir(self)
    config = _config(out, **{'output.checkpoint': False})
    a = runner.train_and_evaluate(schema.replace(config, 'seeds', 2))
    b = runner.train_and_evaluate(schema.replace(config, 'method.beta',
                                                     0.05))
    # An old flat results file (schema 1: no config_hash) beside the tree.
    old = dict(b[0], name='old', schema_version=1)
    del old['config_hash']
    with open(os.path.join(out, 'mnist_permutations_old_seed0.json'),
              'w') as f:
      json.dump(old, f)
    rows = {r.name: r for r in tables.aggregate(tables.load(out))}
    ha, hb = a[0]['config_hash'], b[0]['config_hash']
    self.assertNotEqual(ha, hb)
    self.assertEqual(set(rows), {f'emcl [{ha}]', f'emcl [{hb}]', 'old'})
    self.assertEqual(rows[f'emcl [{ha}]'].seeds, (0, 1))
    self.assertAlmostEqual(rows[f'emcl [{ha}]'].acc,
                           np.mean([r['acc'] for r in a]))
    self.assertEqual(rows[f'emcl [{hb}]'].acc, b[0]['acc'])
    self.assertEqual(rows['old'].acc, b[0]['acc'])
    # summarize.py prints the same rows.
    proc = summarize(out)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn(f'emcl [{hb}]', proc.stdout)
    self.assertIn(f"{b[0]['acc']:.2f}", proc.stdout)
    # A broken results file is one line and exit 2.
    with open(os.path.join(out, 'mnist_permutations_bad_seed0.json'),
              'w') as f:
      f.write('{"acc": ')
    proc = summarize(out)
    self.assertEqual(proc.returncode, 2)
    self.assertRegex(proc.stderr, r'^error: .*bad_seed0.json is not a '
                     r'readable results file .*\n$')


  def test_consecutive_groups(self):
    self.assertEqual(folders.consecutive([0, 2, 3, 5]),
                     [[0], [2, 3], [5]])
    self.assertEqual(folders.consecutive([]), [])

  @pytest.mark.slow
  def test_a_gap_in_the_seeds_reruns_the_missing_seed_only(self):
    out = fixtures.tmp_dir(self)
    config = _config(out, seeds=3, **{'output.checkpoint': False})
    first = runner.train_and_evaluate(config)
    os.remove(results_files(out)[1])  # seed 1's
    again = runner.train_and_evaluate(config, skip_finished=True)
    self.assertEqual([r['seed'] for r in again], [1])
    np.testing.assert_allclose(again[0]['accuracy_matrix'],
                               first[1]['accuracy_matrix'], atol=2e-3)
    self.assertLen(results_files(out), 3)

  def test_runs_made_before_the_config_change_still_summarise(self):
    # tests/data/old_runs: two seeds written by emcl_jax 0.2.0 before run
    # configs were typed (`run.py --config.data.num_tasks=2 --config.data.samples_per_task=100
    # --seeds=2`), their folders and hash as that version made them.
    old = os.path.join(os.path.dirname(__file__), 'data', 'old_runs')
    runs = tables.load(old)
    self.assertEqual([(r['seed'], r['config_hash']) for r in runs],
                     [(0, 'ff68df5036'), (1, 'ff68df5036')])
    [row] = tables.aggregate(runs)
    self.assertEqual((row.dataset, row.name, row.seeds),
                     ('mnist_permutations', 'emcl', (0, 1)))
    # The files' own numbers (ACC 49.60 and 52.25, as that run printed).
    self.assertAlmostEqual(row.acc, (49.60000067949295 + 52.25) / 2, 4)
    proc = summarize(old)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn('| mnist_permutations | emcl (shrunk: 2 tasks x 100) | '
                  '50.93 ± 1.33 |', proc.stdout)

  def test_foreign_results_file_is_named_in_one_line(self):
    out = fixtures.tmp_dir(self)
    folder = os.path.join(out, 'mnist_permutations', 'emcl', 'abc', 'seed0')
    os.makedirs(folder)
    with open(os.path.join(folder, 'results.json'), 'w') as f:
      json.dump({'dataset': 'mnist_permutations', 'loss': 1.0}, f)
    proc = summarize(out)
    self.assertEqual(proc.returncode, 2)
    self.assertRegex(proc.stderr, r'^error: \S+seed0/results.json is not a '
                     r'results file \(no method\); .*\n$')


if __name__ == '__main__':
  absltest.main()
