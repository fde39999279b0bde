"""Several JAX processes, one run: two processes of experiments/run.py on
127.0.0.1 (one CPU device each) give the one-process run's results, only
process 0 writes, and a process killed mid-run ends the other with one
line; the same command then resumes from the checkpoints. A sweep's grid
program over two processes gives the one-process grid's results."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import pytest

import fixtures

pytestmark = pytest.mark.slow  # subprocess and whole-protocol runs

RUN = os.path.join(fixtures.ROOT, 'experiments', 'run.py')
SWEEP = os.path.join(fixtures.ROOT, 'experiments', 'sweep.py')
GRID = ['--grid=beta=0.1,0.2', '--seeds=2', '--config.data.num_tasks=2',
        '--config.data.samples_per_task=50', '--config.output.progress=false']
AUDIT = os.path.join(fixtures.ROOT, 'tests', 'write_audit.py')
KILL = os.path.join(fixtures.ROOT, 'tests', 'kill_during.py')
ARGS = ['--method=finetune', '--seeds=4', '--config.data.num_tasks=2',
        '--config.data.samples_per_task=50', '--config.output.progress=false']
LOST_WITHIN_S = 60


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(prefix, workdir, extra=()):
  return subprocess.Popen(
      [sys.executable, *prefix, *ARGS, f'--workdir={workdir}', *extra],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fixtures.ENV)


def run_pair(workdir, second=(RUN,)):
  """Runs process 0 (run.py) and process 1 (`second`: run.py, or a driver
  with its arguments) of one run; returns [(returncode, stderr, end time)]
  for both."""
  port = _free_port()
  common = [f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2']
  procs = [_start([RUN], workdir, [*common, '--process_id=0']),
           _start(list(second), workdir, [*common, '--process_id=1'])]
  ends = [None, None]
  deadline = time.time() + 600
  while None in ends and time.time() < deadline:
    for i, p in enumerate(procs):
      if ends[i] is None and p.poll() is not None:
        ends[i] = time.time()
    time.sleep(0.1)
  out = []
  for p, end in zip(procs, ends):
    if end is None:
      p.kill()
    _, err = p.communicate()
    out.append((p.returncode, err, end))
  return out


def files(workdir):
  """The paths under `workdir`, relative to it."""
  return sorted(os.path.relpath(os.path.join(d, f), workdir)
                for d, dirs, fs in os.walk(workdir) for f in dirs + fs)


def matrices(workdir):
  """{seed: (accuracy matrix, task losses)} of the results under
  `workdir`."""
  out = {}
  for path in files(workdir):
    if path.endswith('results.json'):
      with open(os.path.join(workdir, path)) as f:
        res = json.load(f)
      out[res['seed']] = (res['accuracy_matrix'], res['task_losses'])
  return out


class MultiProcessTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.one = os.path.join(cls.tmp, 'one')
    # One process with two devices: the same per-device program as two
    # processes of one device.
    env = dict(fixtures.ENV,
               XLA_FLAGS='--xla_force_host_platform_device_count=2')
    proc = fixtures.run_script('run', *ARGS, f'--workdir={cls.one}', env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def check_like_one_process(self, workdir, runs):
    """Both processes succeeded, the results equal the one-process run's
    exactly, the folder holds the same files, and process 1 wrote none."""
    for i, (code, err, _) in enumerate(runs):
      self.assertEqual(code, 0, f'process {i}: {err[:3000]}')
    self.assertNotIn('wrote: ', runs[1][1])
    self.assertEqual(files(workdir), files(self.one))
    self.assertEqual(matrices(workdir), matrices(self.one))
    self.assertLen(matrices(workdir), 4)

  def test_two_processes_equal_one_and_only_process_0_writes(self):
    workdir = os.path.join(self.tmp, 'two')
    runs = run_pair(workdir, second=(AUDIT, workdir))
    self.check_like_one_process(workdir, runs)

  def test_a_lost_process_ends_the_run_and_it_resumes(self):
    workdir = os.path.join(self.tmp, 'lost')
    # Process 1 kills itself (SIGKILL) in its third evaluation call (5th
    # seed evaluated: two per call), after task 1 trained.
    (code, err, end), (code1, _, end1) = run_pair(
        workdir, second=(KILL, 'eval', '5'))
    self.assertEqual(code1, -9)
    self.assertEqual(code, 1, err[-2000:])
    self.assertLess(end - end1, LOST_WITHIN_S)
    lines = err.strip().splitlines()
    self.assertLen(lines, 1, err[-2000:])
    self.assertRegex(lines[0], r'^error: another process of this '
                     r'2-process run stopped .*resume')
    saved = [p for p in files(workdir) if p.endswith('commit_success.txt')]
    self.assertTrue(saved, files(workdir))
    self.assertFalse([p for p in files(workdir) if 'results' in p])
    # The same command resumes (process 1 reading the checkpoints, writing
    # nothing) and finishes as the one-process run.
    runs = run_pair(workdir, second=(AUDIT, workdir))
    self.check_like_one_process(workdir, runs)
    with open(os.path.join(workdir, [p for p in files(workdir) if p.endswith(
        'seed0/metrics.jsonl')][0])) as f:
      steps = [json.loads(line).get('step') for line in f]
    self.assertEqual(steps, [None, 1, 2, 2])  # hparams, tasks, final


class GridOverProcessesTest(absltest.TestCase):

  def test_a_grid_program_over_two_processes_equals_one_process(self):
    with tempfile.TemporaryDirectory() as tmp:
      one, two = os.path.join(tmp, 'one'), os.path.join(tmp, 'two')
      env = dict(fixtures.ENV,
                 XLA_FLAGS='--xla_force_host_platform_device_count=2')
      proc = fixtures.run_script('sweep', *GRID, f'--workdir={one}', env=env)
      self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
      port = _free_port()
      common = [*GRID, f'--workdir={two}', '--num_processes=2',
                f'--coordinator_address=127.0.0.1:{port}']
      procs = [subprocess.Popen(
          [sys.executable, *prefix, *common, f'--process_id={i}'],
          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
          env=fixtures.ENV) for i, prefix in enumerate([(SWEEP,), (AUDIT, two,
                                                      '--script=sweep')])]
      outs = [p.communicate(timeout=600) for p in procs]
      for p, (_, err) in zip(procs, outs):
        self.assertEqual(p.returncode, 0, err[-3000:])
      self.assertIn('group 1 of 1: emcl,beta=0.1, emcl,beta=0.2', outs[0][1])
      self.assertNotIn('wrote: ', outs[1][1])  # process 1 wrote nothing
      self.assertIn('| setting |', outs[0][0])
      self.assertNotIn('| setting |', outs[1][0])  # nor printed the table
      self.assertEqual(files(two), files(one))
      self.assertEqual(matrices_by_setting(two), matrices_by_setting(one))
      self.assertLen(matrices_by_setting(two), 4)
      with open(os.path.join(two, 'mnist_permutations',
                             'table-size=2x50.md')) as f:
        self.assertNotIn('process', f.read())  # the command as one process


def matrices_by_setting(workdir):
  """{(setting, seed): (accuracy matrix, task losses)} under `workdir`."""
  out = {}
  for path in files(workdir):
    if path.endswith('results.json'):
      with open(os.path.join(workdir, path)) as f:
        res = json.load(f)
      out[path.split(os.sep)[1], res['seed']] = (res['accuracy_matrix'],
                                                 res['task_losses'])
  return out


if __name__ == '__main__':
  absltest.main()
