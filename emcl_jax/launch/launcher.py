"""Where the programs of sweep.py (its grid programs) and reproduce.py
(its dataset x method runs) run: here (`--launcher=local`), or as submitit
jobs on this machine (`submitit_local`) or on a SLURM cluster (`slurm`).

Job j of N calls `runner.sweep` on the pickled run configs with
shard (j, N), in the shared run folders; the folder lock keeps two jobs
off one run. A job that SLURM preempts or times out is requeued by
submitit (`sweep_job.SweepJob` is checkpointable) and runs its share
again: finished runs are skipped, solo runs resume from their per-task
checkpoints, and a grid program (which keeps none) starts again. A job's
failure comes back as the exception it raised (its one-line message). The
launching process waits for every job and then writes the table, or with
`--nowait` returns once they are submitted.

submitit is an optional extra (`pip install 'emcl_jax[cluster]'`), imported
only when a job is submitted.
"""

import os
import sys
import time
from typing import Any, Optional, Sequence

from absl import flags

from emcl_jax.errors import JobError, first_line
from emcl_jax.launch import cli
from emcl_jax.launch import options

FLAGS = flags.FLAGS

def is_launcher_flag(arg: str) -> bool:
  """Whether a command-line argument is one of the flags that choose where
  programs run, not what is run (`options.LAUNCHER`): the table's command
  line leaves them out."""
  name = cli.flag_name(arg) or ''
  return name in options.LAUNCHER or name.removeprefix('no') in (
      options.LAUNCHER)


def shard(value: Optional[str]) -> tuple[int, int]:
  """(i, n) of a `--shard=i/n` value; (0, 1) when it is unset."""
  if not value:
    return 0, 1
  try:
    i, n = (int(x) for x in value.split('/'))
    assert 0 <= i < n
  except (ValueError, AssertionError):
    raise ValueError(f'--shard={value} is not i/n with 0 <= i < n'
                     ) from None
  return i, n


def job_count(programs: int, jobs: int) -> int:
  """Number of jobs for `programs` grid programs: `jobs` (0: one per
  program), never more than there are programs."""
  return max(1, min(programs, jobs or programs))


def parameters(launcher: str) -> dict[str, Any]:
  """The submitit executor parameters of the flags for `launcher`."""
  gpus = FLAGS.gpus_per_job
  out = {'timeout_min': FLAGS.job_minutes, 'nodes': 1, 'tasks_per_node': 1,
         'gpus_per_node': gpus if gpus is not None else int(
             launcher == 'slurm')}
  if launcher == 'slurm':
    out['name'] = 'emcl-sweep'
    out['slurm_array_parallelism'] = FLAGS.slurm_array_parallelism
    if FLAGS.cpus_per_job:
      out['cpus_per_task'] = FLAGS.cpus_per_job
    for key in ('slurm_partition', 'slurm_account', 'slurm_qos'):
      if FLAGS[key].value:
        out[key] = FLAGS[key].value
  return out


def _submitit(launcher: str):
  try:
    import submitit  # pylint: disable=g-import-not-at-top
  except ImportError:
    cli.fail(f'--launcher={launcher} needs submitit, which is not '
             "installed; pip install 'emcl_jax[cluster]'")
  return submitit


def submit(launcher: str, run_configs: Sequence[Any], root: str,
           kwargs: dict[str, Any], count: int, log_dir: str) -> list[Any]:
  """Submits `count` jobs, job j running `runner.sweep(run_configs,
  root, shard=(j, count), **kwargs)`; returns submitit's jobs. Exits with
  one line and exit code 2 when submitit is missing or the jobs cannot be
  submitted (no SLURM here, a partition it refuses)."""
  submitit = _submitit(launcher)
  from emcl_jax.launch import sweep_job  # pylint: disable=g-import-not-at-top
  try:
    executor = submitit.AutoExecutor(
        folder=log_dir,
        cluster='local' if launcher == 'submitit_local' else launcher)
    executor.update_parameters(**parameters(launcher))
    return executor.submit_array([
        sweep_job.SweepJob(list(run_configs), root, kwargs, (j, count))
        for j in range(count)])
  except Exception as e:  # pylint: disable=broad-except
    cli.fail(f'cannot submit the jobs with --launcher={launcher} '
             f'({first_line(e)[:200]}); check the --slurm_* flags, or run '
             'where sbatch works')


def _outcome(job: Any) -> Optional[BaseException]:
  """The exception a finished job raised (the library's own error, as it
  was raised), a `JobError` when it ended without a result, or None."""
  try:
    return job.result()
  except Exception as e:  # pylint: disable=broad-except
    return JobError(f'job {job.job_id} ended without finishing '
                    f'({first_line(e)[:160]}); its log: {job.paths.stderr}; '
                    'the same command resumes it')


def wait(jobs: Sequence[Any]) -> None:
  """Waits for every job; prints a line as each ends. When some failed,
  prints where their logs are and raises the first failed job's error.

  Raises:
    The first failed job's exception (ValueError, DataError,
    NonFiniteLossError, ... as the job raised it), or JobError.
  """
  pending, failed = dict(enumerate(jobs)), []
  while pending:
    for j, job in list(pending.items()):
      if not job.done():
        continue
      del pending[j]
      error = _outcome(job)
      if error is not None:
        failed.append(error)
        sys.stderr.write(f'job {j + 1} of {len(jobs)} failed; its log: '
                         f'{job.paths.stderr}\n')
      else:
        sys.stderr.write(f'job {j + 1} of {len(jobs)} finished\n')
    if pending:
      time.sleep(0.5)
  if failed:
    raise failed[0]


def launch(run_configs: Sequence[Any], root: str, programs: int,
           kwargs: dict[str, Any]) -> Optional[bool]:
  """Runs the programs of `run_configs` as jobs of --launcher (submitted
  and, with --wait, waited for) unless they run in this process
  (--launcher=local, or --run=false). Returns False when the script runs
  them itself, True when the jobs ran them, None when --nowait left the
  jobs running.

  Raises:
    ValueError: --shard with a job launcher (which shards itself).
    A failed job's error (`wait`).
  """
  launcher = FLAGS.launcher
  if not FLAGS.run or launcher == 'local':
    return False
  if FLAGS.shard:
    raise ValueError(f'--launcher={launcher} shards the programs itself; '
                     'drop --shard')
  count = job_count(programs, FLAGS.jobs)
  log_dir = os.path.abspath(FLAGS.job_log_dir or os.path.join(root,
                                                          'submitit'))
  jobs = submit(launcher, run_configs, os.path.abspath(root), kwargs, count,
                log_dir)
  sys.stderr.write(f'submitted {count} jobs ({launcher}, ids '
                   f"{', '.join(j.job_id for j in jobs)}) for {programs} "
                   f'programs; logs under {log_dir}\n')
  if not FLAGS.wait:
    sys.stderr.write('not waiting: when the jobs are done, the same command '
                     'with --run=false writes the table\n')
    return None
  wait(jobs)
  return True
