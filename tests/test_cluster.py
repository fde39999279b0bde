"""sweep.py --launcher=submitit_local: the grid programs as submitit jobs on
this machine (submitit's real local executor, processes of their own) give
the one-process sweep's runs and table; a job killed with SIGKILL mid-task
ends the launcher with one line and the same command finishes with the
same results; a job whose data cannot be read fails with the line the
sweep prints locally; without submitit the launchers name the extra."""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import pytest

import fixtures

pytestmark = pytest.mark.slow  # subprocesses and submitit jobs

SWEEP = os.path.join(fixtures.ROOT, 'experiments', 'sweep.py')
# 4 settings x 2 seeds in 2 grid programs (EMCL's two betas, finetune's two
# learning rates); four tasks, so that a job can be killed mid-run.
ARGS = ['--grid=beta=0.1,0.2 | method=finetune;lr=0.03,0.1', '--seeds=2',
        '--config.data.num_tasks=4', '--config.data.samples_per_task=300', '--config.output.progress=false']
JOBS = ['--launcher=submitit_local', '--jobs=2']


def sweep(workdir, *extra, env=None, timeout=600):
  return fixtures.run_script('sweep', *ARGS, f'--workdir={workdir}', *extra,
                             env=env, timeout=timeout)


def results(workdir):
  """{(setting, seed): (accuracy matrix, task losses)} under `workdir`."""
  out = {}
  for path in glob.glob(os.path.join(workdir, '*', '*', '*', 'seed*',
                                     'results.json')):
    with open(path) as f:
      res = json.load(f)
    setting = os.path.relpath(path, workdir).split(os.sep)[1]
    out[setting, res['seed']] = (res['accuracy_matrix'], res['task_losses'])
  return out


def run_folders(workdir):
  """The run folders (setting/hash/seed) under `workdir`, with their files
  but the lock, sorted."""
  out = []
  for seed_dir in sorted(glob.glob(os.path.join(workdir, '*', '*', '*',
                                                'seed*'))):
    out.append((os.path.relpath(seed_dir, workdir),
                sorted(f for f in os.listdir(seed_dir) if f != '.lock')))
  return out


def table_rows(workdir):
  """The table's rows without the training seconds (which differ)."""
  with open(glob.glob(os.path.join(workdir, '*', 'table*.md'))[0]) as f:
    lines = [line for line in f if line.startswith('| ')]
  return [line.rsplit('|', 2)[0] for line in lines]


def holder_of(path):
  """The pid of the process that has `path` open, or None."""
  for fd_dir in glob.glob('/proc/[0-9]*/fd'):
    try:
      for fd in os.listdir(fd_dir):
        if os.readlink(os.path.join(fd_dir, fd)) == path:
          return int(fd_dir.split('/')[2])
    except OSError:
      continue
  return None


class SubmititLocalTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.one = os.path.join(cls.tmp, 'one')
    # The one-process sweep: its main in this process.
    proc = fixtures.call('sweep', *ARGS, f'--workdir={cls.one}')
    assert proc.returncode == 0, proc.stderr[-3000:]

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def check_like_one_process(self, workdir):
    self.assertLen(results(self.one), 8)
    self.assertEqual(results(workdir), results(self.one))
    self.assertEqual(run_folders(workdir), run_folders(self.one))
    self.assertEqual(table_rows(workdir), table_rows(self.one))

  def test_two_jobs_give_the_one_process_sweep(self):
    workdir = os.path.join(self.tmp, 'jobs')
    proc = sweep(workdir, *JOBS)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertRegex(proc.stderr, r'submitted 2 jobs \(submitit_local, ids '
                     r'\d+, \d+\) for 2 programs')
    self.assertIn('job 1 of 2 finished', proc.stderr)
    self.assertIn('job 2 of 2 finished', proc.stderr)
    self.check_like_one_process(workdir)
    # Each job ran one program in a process of its own.
    logs = glob.glob(os.path.join(workdir, 'submitit', '*_log.err'))
    self.assertLen(logs, 2)
    groups = sorted(re.findall(r'^group (\d) of 2', open(log).read(), re.M)[0]
                    for log in logs)
    self.assertEqual(groups, ['1', '2'])

  def test_a_killed_job_is_rerun_to_the_same_results(self):
    workdir = os.path.join(self.tmp, 'killed')
    launcher = subprocess.Popen(
        [sys.executable, SWEEP, *ARGS, f'--workdir={workdir}', *JOBS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=fixtures.ENV)
    # When EMCL's grid program has written its first task, kill the job
    # process that holds the run's lock.
    pattern = os.path.join(workdir, '*', 'emcl,beta=0.1', '*', 'seed0',
                           'metrics.jsonl')
    killed, deadline = None, time.time() + 300
    while killed is None and time.time() < deadline:
      for path in glob.glob(pattern):
        with open(path) as f:
          if '"step": 1' in f.read():
            pid = holder_of(os.path.join(os.path.dirname(path), '.lock'))
            if pid is not None:
              os.kill(pid, signal.SIGKILL)
              killed = path
      time.sleep(0.01)
    _, err = launcher.communicate(timeout=300)
    self.assertIsNotNone(killed, err[-3000:])
    with open(killed) as f:
      steps = [json.loads(line).get('step') for line in f]
    self.assertLess(max(s for s in steps if s), 4)  # killed mid-run
    self.assertEqual(launcher.returncode, 1, err[-3000:])
    errors = [line for line in err.splitlines()
              if line.startswith('error: ')]
    self.assertLen(errors, 1, err[-3000:])
    self.assertRegex(errors[0], r'^error: job \d+ ended without finishing '
                     r'.*the same command resumes it')
    self.assertFalse(glob.glob(os.path.join(
        workdir, '*', 'emcl,beta=*', '*', 'seed*', 'results.json')))
    proc = sweep(workdir, *JOBS)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.check_like_one_process(workdir)
    with open(killed) as f:
      steps = [json.loads(line).get('step') for line in f]
    self.assertEqual(steps, [None, 1, 2, 3, 4, 4])  # hparams, tasks, final

  def test_a_job_whose_data_cannot_be_read_fails_with_the_local_line(self):
    bad = ['--dataset=cifar100', '--config.data.source=dir',
           f'--data_dir={self.tmp}/no_data', '--grid=beta=0.1',
           '--seeds=1']
    local = sweep(os.path.join(self.tmp, 'bad_local'), *bad)
    jobs = sweep(os.path.join(self.tmp, 'bad_jobs'), *bad, *JOBS)
    self.assertEqual(local.returncode, 2, local.stderr[-3000:])
    local_line = local.stderr.strip().splitlines()[-1]
    self.assertTrue(local_line.startswith('error: '), local.stderr)
    self.assertEqual(jobs.returncode, 2, jobs.stderr[-3000:])
    self.assertEqual(jobs.stderr.strip().splitlines()[-1], local_line)
    self.assertRegex(jobs.stderr, r'job 1 of 1 failed; its log: \S+')


class MissingExtraTest(absltest.TestCase):

  def test_the_launchers_name_the_extra_without_submitit(self):
    # submitit made unimportable, as in an environment without the extra.
    code = ("import sys; sys.modules['submitit'] = None; "
            'from emcl_jax.launch import sweep; sys.argv[0] = "sweep.py"; '
            'sweep.entry()')
    with tempfile.TemporaryDirectory() as tmp:
      for launcher in ('slurm', 'submitit_local'):
        proc = subprocess.run(
            [sys.executable, '-c', code, '--grid=beta=0.1',
             f'--launcher={launcher}', f'--workdir={tmp}'],
            capture_output=True, text=True, env=fixtures.ENV, timeout=300,
            check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(proc.stderr.strip().splitlines(), [
            f'error: --launcher={launcher} needs submitit, which is not '
            "installed; pip install 'emcl_jax[cluster]'"])
        self.assertEqual(os.listdir(tmp), [])


if __name__ == '__main__':
  absltest.main()
