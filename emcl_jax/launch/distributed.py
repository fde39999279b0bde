"""Several JAX processes, one run: joining them (the flags
--coordinator_address, --num_processes, --process_id of `options`) and
the start of a launch script that uses them.

Each process is started with the same command plus its own
`--process_id`; `jax.distributed.initialize` then makes `jax.devices()`
list every process's devices, and a `--seeds` run is sharded over all of
them (only process 0 writes files). Under SLURM (`srun` with several
tasks) JAX reads the coordinator, the process count and the process id
from SLURM's variables, so the flags can be left out.

The waits are bounded: a process that cannot reach the others gives up
after `INIT_TIMEOUT_S`, and a process that stops sending heartbeats is
taken for lost after `HEARTBEAT_TIMEOUT_S`. A process that finds another
one gone ends with one line on stderr and exit code 1
(`errors.ProcessLostError`); the same command on every process resumes
the run from its last finished task.
"""

import logging
import os
from typing import Callable, Optional

from absl import flags
import jax

from emcl_jax.errors import ProcessLostError, first_line
from emcl_jax.launch import cli
from emcl_jax.launch import options

FLAGS = flags.FLAGS
INIT_TIMEOUT_S = 120
HEARTBEAT_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 30

def slurm_tasks() -> int:
  """The number of tasks of the SLURM job step this process belongs to (1
  outside `srun`)."""
  if 'SLURM_PROCID' not in os.environ:
    return 1
  return int(os.environ.get('SLURM_STEP_NUM_TASKS')
             or os.environ.get('SLURM_NTASKS') or 1)


def settings() -> Optional[dict[str, object]]:
  """The arguments of `jax.distributed.initialize` that the flags ask
  for, or None for a run of one process.

  Raises:
    ValueError: the flags are given in part, or --process_id is out of
      range.
  """
  given = {'coordinator_address': FLAGS.coordinator_address,
           'num_processes': FLAGS.num_processes,
           'process_id': FLAGS.process_id}
  if all(v is None for v in given.values()):
    return {} if slurm_tasks() > 1 else None
  missing = [k for k, v in given.items() if v is None]
  if missing:
    raise ValueError(f'several processes need --coordinator_address, '
                     f'--num_processes and --process_id; add --{missing[0]}')
  if not 0 <= FLAGS.process_id < FLAGS.num_processes:
    raise ValueError(f'--process_id={FLAGS.process_id} is outside 0 .. '
                     f'{FLAGS.num_processes - 1}; number the processes from 0')
  return given


def initialize() -> None:
  """Joins the run's processes (`jax.distributed.initialize`, with CPU
  collectives over gloo) when the flags or SLURM ask for it; call it before
  any JAX computation. Exits with one line on failure (`cli.fail`)."""
  try:
    kwargs = settings()
  except ValueError as e:
    cli.fail(str(e))
  if kwargs is None:
    return
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  logging.getLogger('jax._src.distributed').setLevel(logging.WARNING)
  try:
    jax.distributed.initialize(
        **kwargs, initialization_timeout=INIT_TIMEOUT_S,
        heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
        shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S)
  except Exception as e:  # pylint: disable=broad-except
    cli.fail(f'cannot join the other processes ({first_line(e)[:160]}); '
             'start every process with the same --coordinator_address and '
             '--num_processes within '
             f'{INIT_TIMEOUT_S} s', code=1)


def is_process_flag(arg: str) -> bool:
  """Whether a command-line argument is one of the flags that join the
  processes (`options.PROCESSES`: how a command was started, not what it
  computes)."""
  return cli.flag_name(arg) in options.PROCESSES


def start(main: Callable[[list[str]], None], doc: str, script: str) -> None:
  """`cli.start` for a script that can run as several processes: parses the
  flags, joins the processes (`initialize`), runs `main` and reports a lost
  process as one line with exit code 1."""

  def joined(argv):
    initialize()
    try:
      main(argv)
    except ProcessLostError as e:
      cli.fail(str(e), code=1)

  cli.start(joined, doc, script)
