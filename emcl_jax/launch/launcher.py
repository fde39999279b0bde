"""Where the programs of sweep.py (its grid programs) and reproduce.py
(its dataset x method runs) run: here (`--launcher=local`), or as submitit
jobs on this machine (`submitit_local`) or on a SLURM cluster (`slurm`).

Job j of N runs programs j, j+N, ... (the command's own `--shard=j/N`) in
the shared run folders; the folder lock keeps two jobs off one run. A job
that SLURM preempts or times out is requeued by submitit
(`sweep_job.ScriptJob` is checkpointable) and runs its share again:
finished runs are skipped, solo runs resume from their per-task
checkpoints, and a grid program (which keeps none) starts again. The
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

from emcl_jax.errors import first_line
from emcl_jax.launch import cli

FLAGS = flags.FLAGS
LAUNCHERS = ('local', 'submitit_local', 'slurm')

flags.DEFINE_enum('launcher', 'local', LAUNCHERS, 'local: the programs run '
                  'in this process | submitit_local: as --jobs submitit '
                  'jobs on this machine | slurm: as a SLURM job array '
                  "(submitit; pip install 'emcl_jax[cluster]').")
flags.DEFINE_integer('jobs', 0, 'Number of jobs (submitit launchers): job j '
                     'runs programs j, j+N, ...; 0: one job per program.',
                     lower_bound=0)
flags.DEFINE_bool('wait', True, 'Wait for the jobs, then write the table; '
                  'false: return once they are submitted (a later '
                  '--run=false sweep writes the table).')
flags.DEFINE_string('job_log_dir', None, "Folder of submitit's job files and "
                    'logs (default {workdir}/submitit).')
flags.DEFINE_integer('job_minutes', 24 * 60, 'Time limit of each job in '
                     'minutes (SLURM: --time; after it the job is '
                     'requeued and runs again).', lower_bound=1)
flags.DEFINE_integer('gpus_per_job', None, 'GPUs of each job (default: 1 '
                     'on slurm; 0 with submitit_local, whose jobs then '
                     'run on the CPU).', lower_bound=0)
flags.DEFINE_integer('cpus_per_job', None, 'CPUs of each job (SLURM '
                     "--cpus-per-task; default: the cluster's).",
                     lower_bound=1)
flags.DEFINE_string('slurm_partition', None, 'SLURM partition of the jobs.')
flags.DEFINE_string('slurm_account', None, 'SLURM account to charge.')
flags.DEFINE_string('slurm_qos', None, 'SLURM quality of service.')
flags.DEFINE_integer('slurm_array_parallelism', 256, 'At most this many '
                     'jobs of the array run at once.', lower_bound=1)

# The flags that choose where programs run, not what is run: a job's
# command and the table's command line leave them out.
FLAG_NAMES = ('launcher', 'jobs', 'wait', 'nowait', 'job_log_dir',
              'job_minutes', 'gpus_per_job', 'cpus_per_job', 'slurm_partition',
              'slurm_account', 'slurm_qos', 'slurm_array_parallelism')


def is_launcher_flag(arg: str) -> bool:
  """Whether a command-line argument is one of the launcher's flags."""
  return cli.flag_name(arg) in FLAG_NAMES


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


def job_argv(argv: Sequence[str], shard: int, count: int) -> list[str]:
  """The sweep command of job `shard` of `count`: `argv` (the flags, no
  program name) without the launcher's flags and any --shard, plus
  `--shard=shard/count`."""
  rest = [a for a in argv
          if not is_launcher_flag(a) and not a.startswith('--shard')]
  return [*rest, f'--shard={shard}/{count}']


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


def submit(launcher: str, script: str, argv: Sequence[str], count: int,
           log_dir: str) -> list[Any]:
  """Submits `count` jobs, job j running `script` ('sweep' or 'reproduce')
  with `job_argv(argv, j, count)` in this directory; returns submitit's
  jobs. Exits with one line and exit code 2 when submitit is missing or
  the jobs cannot be submitted (no SLURM here, a partition it refuses)."""
  submitit = _submitit(launcher)
  from emcl_jax.launch import sweep_job  # pylint: disable=g-import-not-at-top
  try:
    executor = submitit.AutoExecutor(
        folder=log_dir,
        cluster='local' if launcher == 'submitit_local' else launcher)
    executor.update_parameters(**parameters(launcher))
    return executor.submit_array([
        sweep_job.ScriptJob(script, job_argv(argv, j, count), os.getcwd())
        for j in range(count)])
  except Exception as e:  # pylint: disable=broad-except
    cli.fail(f'cannot submit the jobs with --launcher={launcher} '
             f'({first_line(e)[:200]}); check the --slurm_* flags, or run '
             'where sbatch works')


def _outcome(job: Any) -> tuple[int, Optional[str]]:
  """(exit code, error line) of a finished job: its own when it ran, 1 and
  a line saying so when it ended without a result (killed, cancelled)."""
  try:
    result = job.result()
  except Exception as e:  # pylint: disable=broad-except
    return 1, (f'job {job.job_id} ended without finishing '
               f'({first_line(e)[:160]}); its log: {job.paths.stderr}; '
               'the same command resumes it')
  return result['code'], result['error']


def wait(jobs: Sequence[Any]) -> None:
  """Waits for every job; prints a line as each ends. When some failed,
  prints where their logs are and exits with the first failed job's
  `error:` line and exit code."""
  pending, failed = dict(enumerate(jobs)), []
  while pending:
    for j, job in list(pending.items()):
      if not job.done():
        continue
      del pending[j]
      code, error = _outcome(job)
      if code:
        failed.append((code, error))
        sys.stderr.write(f'job {j + 1} of {len(jobs)} failed; its log: '
                         f'{job.paths.stderr}\n')
      else:
        sys.stderr.write(f'job {j + 1} of {len(jobs)} finished\n')
    if pending:
      time.sleep(0.5)
  if failed:
    code, error = failed[0]
    cli.fail((error or 'a job failed').removeprefix('error: '), code=code)


def launch(script: str, programs: int, workdir: str) -> bool:
  """Where `script` ('sweep' or 'reproduce') runs its `programs` programs:
  in its own process (--launcher=local, or --run=false), or as jobs of
  --launcher with this command's flags, submitted and, with --wait, waited
  for; the script's --run is then set false, so that it only writes its
  tables. Returns whether the script goes on (false: --nowait left the
  jobs running).

  Raises:
    ValueError: --shard with a job launcher (which shards itself).
  """
  launcher = FLAGS.launcher
  if not FLAGS.run or launcher == 'local':
    return True
  if FLAGS.shard:
    raise ValueError(f'--launcher={launcher} shards the programs itself; '
                     'drop --shard')
  count = job_count(programs, FLAGS.jobs)
  log_dir = os.path.abspath(FLAGS.job_log_dir or os.path.join(workdir,
                                                          'submitit'))
  jobs = submit(launcher, script, sys.argv[1:], count, log_dir)
  sys.stderr.write(f'submitted {count} jobs ({launcher}, ids '
                   f"{', '.join(j.job_id for j in jobs)}) for {programs} "
                   f'programs; logs under {log_dir}\n')
  if not FLAGS.wait:
    sys.stderr.write('not waiting: when the jobs are done, the same command '
                     'with --run=false writes the table\n')
    return False
  wait(jobs)
  FLAGS.run = False  # the jobs ran everything
  return True
