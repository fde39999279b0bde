"""Several JAX processes, one run: two processes of experiments/run.py on
127.0.0.1 (one CPU device each) give the one-process run's results, only
process 0 writes, and a process killed mid-run ends the other with one
line; the same command then resumes from the checkpoints. A sweep's grid
program over two processes gives the one-process grid's results. A
process whose peers never come ends with one line and exit code 1 after
--join_timeout; bad process flags are one line naming the flag and exit
code 2."""

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from unittest import mock

from absl.testing import absltest
import pytest

import fixtures

RUN = os.path.join(fixtures.ROOT, 'experiments', 'run.py')
SWEEP = os.path.join(fixtures.ROOT, 'experiments', 'sweep.py')
GRID = ['--grid=beta=0.1,0.2', '--seeds=2', '--config.data.num_tasks=2',
        '--config.data.samples_per_task=50', '--config.output.progress=false']
AUDIT = os.path.join(fixtures.ROOT, 'tests', 'write_audit.py')
KILL = os.path.join(fixtures.ROOT, 'tests', 'kill_during.py')
ARGS = ['--method=finetune', '--seeds=4', '--config.data.num_tasks=2',
        '--config.data.samples_per_task=50', '--config.output.progress=false']
LOST_WITHIN_S = 60
JOIN_S = 5  # --join_timeout of the processes whose peers never come
# A process alone ends this long after its start at most: --join_timeout,
# then the start of Python and JAX on a loaded machine. (JAX's own deadline,
# the C++ abort, lies past --join_timeout + distributed.JAX_GRACE_S.)
JOIN_ENDS_WITHIN_S = JOIN_S + 45


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(prefix, workdir, extra=()):
  return subprocess.Popen(
      fixtures.default_sigint(
          [sys.executable, *prefix, *ARGS, f'--workdir={workdir}', *extra]),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
      env=fixtures.ENV)


def wait_all(procs, timeout=600):
  """Waits for the processes `procs` (`timeout` seconds at most); returns
  the time each ended (None: still running)."""
  ends = [None] * len(procs)
  deadline = time.time() + timeout
  while None in ends and time.time() < deadline:
    for i, p in enumerate(procs):
      if ends[i] is None and p.poll() is not None:
        ends[i] = time.time()
    time.sleep(0.1)
  return ends


def run_pair(workdir, second=(RUN,)):
  """Runs process 0 (run.py) and process 1 (`second`: run.py, or a driver
  with its arguments) of one run; returns [(returncode, stderr, end time)]
  for both."""
  port = _free_port()
  common = [f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2']
  procs = [_start([RUN], workdir, [*common, '--process_id=0']),
           _start(list(second), workdir, [*common, '--process_id=1'])]
  ends = wait_all(procs)
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


@pytest.mark.slow  # subprocess and whole-protocol runs
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


@pytest.mark.slow
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


@pytest.mark.slow
class JoinFailuresTest(absltest.TestCase):
  """Processes whose peers never come, and bad process flags, end in one
  line: never JAX's C++ abort, never a traceback."""

  def test_a_process_whose_peers_never_come_ends_in_one_line(self):
    # Process 1 with nobody at the coordinator's address, and process 0 of
    # two with no process 1: side by side, each on a port of its own.
    with tempfile.TemporaryDirectory() as tmp:
      ports = {pid: _free_port() for pid in (1, 0)}
      starts, procs = {}, {}
      for pid, port in ports.items():
        starts[pid] = time.time()
        procs[pid] = _start([RUN], os.path.join(tmp, f'w{pid}'), [
            f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
            f'--process_id={pid}', f'--join_timeout={JOIN_S}'])
      ends = dict(zip(procs, wait_all(list(procs.values()),
                                      timeout=JOIN_S + 200)))
      why = {1: f'no process 0 answers at 127.0.0.1:{ports[1]}',
             0: f'process 1 did not connect to 127.0.0.1:{ports[0]}'}
      for pid, p in procs.items():
        if ends[pid] is None:
          p.kill()
        _, err = p.communicate()
        self.assertEqual(p.returncode, 1, f'process {pid}: {err[-3000:]}')
        lines = err.strip().splitlines()
        self.assertLen(lines, 1, f'process {pid}: {err[-3000:]}')
        self.assertRegex(lines[0], '^error: cannot join the other processes '
                         rf'\({re.escape(why[pid])} within --join_timeout='
                         rf'{JOIN_S} s\); start every process with the same '
                         '--coordinator_address .*raise --join_timeout$')
        took = ends[pid] - starts[pid]
        self.assertGreaterEqual(took, JOIN_S, f'process {pid}')
        self.assertLess(took, JOIN_ENDS_WITHIN_S, f'process {pid}')
        self.assertFalse(os.path.exists(os.path.join(tmp, f'w{pid}')))

  def test_ctrl_c_while_joining_ends_in_one_line(self):
    # Process 0 of two, interrupted once its coordinator listens (it is
    # joining then): JAX's join holds the main thread, the watchdog sees
    # the signal.
    with tempfile.TemporaryDirectory() as tmp:
      port = _free_port()
      proc = _start([RUN], tmp, [f'--coordinator_address=127.0.0.1:{port}',
                                 '--num_processes=2', '--process_id=0',
                                 '--join_timeout=120'])
      self.addCleanup(proc.kill)
      deadline = time.time() + 100
      while time.time() < deadline and proc.poll() is None:
        try:
          socket.create_connection(('127.0.0.1', port), timeout=1).close()
          break
        except OSError:
          time.sleep(0.2)
      proc.send_signal(signal.SIGINT)
      _, err = proc.communicate(timeout=60)
      self.assertEqual((proc.returncode, err), (130, (
          'error: interrupted (Ctrl-C) while waiting for the other '
          'processes to join\n')))

  def test_an_address_that_cannot_resolve_is_bad_input(self):
    proc = fixtures.run_script('run', '--coordinator_address=notahost',
                               '--num_processes=2', '--process_id=1',
                               timeout=120)
    self.assertEqual(proc.returncode, 2, proc.stderr[-3000:])
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1, proc.stderr[-3000:])
    self.assertRegex(lines[0], r'^error: --coordinator_address=notahost is '
                     r'not HOST:PORT .*\(e\.g\. --coordinator_address='
                     r'10\.0\.0\.1:12345\)$')


def refusal(*argv):
  """The one line with which run.py refuses the process flags `argv`:
  absl's parse (`cli.parse`, exit code 2) or `distributed.settings`
  (ValueError, which `distributed.initialize` turns into exit code 2),
  here in this process (no join is tried)."""
  from emcl_jax.launch import cli  # pylint: disable=g-import-not-at-top
  from emcl_jax.launch import distributed  # pylint: disable=g-import-not-at-top
  err = io.StringIO()
  try:
    with contextlib.redirect_stderr(err):
      cli.parse('run', ['run.py', *argv])
  except SystemExit as e:
    assert e.code == 2, (e.code, err.getvalue())
    return err.getvalue().strip()
  try:
    distributed.settings()
  except ValueError as e:
    return f'error: {e}'
  raise AssertionError(f'{argv} accepted')


class ProcessFlagsTest(absltest.TestCase):
  """Each process flag's range error names that flag, and an address that
  is not HOST:PORT names --coordinator_address and the form (in this
  process: quick)."""

  def test_each_range_error_names_its_flag(self):
    address = '--coordinator_address=127.0.0.1:12345'
    cases = {
        ('--num_processes=0', '--process_id=0', address):
            r'^error: flag --num_processes=0: 0 is not a positive integer',
        ('--num_processes=-2', '--process_id=0', address):
            r'^error: flag --num_processes=-2: ',
        ('--num_processes=2', '--process_id=-1', address):
            r'^error: flag --process_id=-1: ',
        ('--num_processes=2', '--process_id=2', address):
            r'^error: --process_id=2 is outside 0 \.\. 1 ',
        ('--num_processes=2', '--process_id=0', address, '--join_timeout=0'):
            r'^error: flag --join_timeout=0: 0 is not a positive integer',
        ('--num_processes=2', '--process_id=0', '--join_timeout=-5', address):
            r'^error: flag --join_timeout=-5: ',
    }
    for argv, pattern in cases.items():
      line = refusal(*argv)
      self.assertRegex(line, pattern, argv)
      self.assertLen(line.splitlines(), 1, argv)
      if 'process_id' not in pattern:
        self.assertNotIn('--process_id', line, argv)

  def test_an_address_not_host_port_names_the_flag_and_the_form(self):
    for address in ('notahost', 'localhost:', ':12345', 'localhost:notaport',
                    'localhost:0', 'localhost:70000', '::1:12345',
                    'nohost.invalid:12345'):
      line = refusal('--num_processes=2', '--process_id=1',
                     f'--coordinator_address={address}')
      self.assertRegex(line, rf'^error: --coordinator_address='
                       rf'{re.escape(address)}[: ].*HOST:PORT', address)
      self.assertIn('--coordinator_address=10.0.0.1:12345', line)
    for address in ('127.0.0.1:12345', 'localhost:1', '[::1]:12345'):
      self.assertEqual(refusal_or_none(address), None, address)


class JoinWatchdogTest(absltest.TestCase):
  """`distributed.join`'s watchdog, with JAX's join replaced by a wait and
  `os._exit` by a mock (in this process: quick)."""

  def join(self, join_s, timeout, wait_s):
    """`distributed.join` with a JAX join that takes `join_s` seconds and
    a --join_timeout of `timeout`, then `wait_s` seconds; returns the
    `os._exit` mock and stderr."""
    import jax  # pylint: disable=g-import-not-at-top
    from emcl_jax.launch import distributed  # pylint: disable=g-import-not-at-top
    err = io.StringIO()
    with mock.patch.object(jax.distributed, 'initialize',
                           lambda **_: time.sleep(join_s)), \
        mock.patch.object(distributed.os, '_exit') as exit_, \
        contextlib.redirect_stderr(err):
      distributed.join({'coordinator_address': '127.0.0.1:1',
                        'num_processes': 2, 'process_id': 0}, timeout)
      time.sleep(wait_s)
    return exit_, err.getvalue()

  def test_a_process_that_joined_outlives_the_join_timeout(self):
    exit_, err = self.join(join_s=0.1, timeout=1.5, wait_s=2)
    exit_.assert_not_called()
    self.assertEqual(err, '')

  def test_a_join_past_the_timeout_ends_the_process_in_one_line(self):
    exit_, err = self.join(join_s=2.5, timeout=1, wait_s=0)
    exit_.assert_called_once_with(1)
    self.assertEqual(err, 'error: cannot join the other processes (process '
                     '1 did not connect to 127.0.0.1:1 within --join_timeout'
                     '=1 s); start every process with the same '
                     '--coordinator_address and --num_processes and its own '
                     '--process_id, or raise --join_timeout\n')


def refusal_or_none(address):
  """`distributed.check_address`'s message for `address`, or None."""
  from emcl_jax.launch import distributed  # pylint: disable=g-import-not-at-top
  try:
    distributed.check_address(address)
  except ValueError as e:
    return str(e)
  return None


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
