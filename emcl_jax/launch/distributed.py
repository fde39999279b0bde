"""Several JAX processes, one run: joining them (the flags
--coordinator_address, --num_processes, --process_id and --join_timeout of
`options`) and the start of a launch script that uses them.

Each process is started with the same command plus its own
`--process_id`; `jax.distributed.initialize` then makes `jax.devices()`
list every process's devices, and a `--seeds` run is sharded over all of
them (only process 0 writes files). Under SLURM (`srun` with several
tasks) JAX reads the coordinator, the process count and the process id
from SLURM's variables, so the flags can be left out.

The waits are bounded. Joining ends after --join_timeout seconds
(`join`): a process still waiting then (process 0 for processes that
never started, another process for a process 0 that is not there) prints
one line on stderr, `error: cannot join the other processes (...)`, and
exits with code 1. After the join, a process that stops sending
heartbeats is taken for lost after `HEARTBEAT_TIMEOUT_S`, and a process
that finds another one gone ends with one line on stderr and exit code 1
(`errors.ProcessLostError`); the same command on every process resumes
the run from its last finished task. Bad process flags (a
--coordinator_address that is not a HOST:PORT this host can resolve, a
--num_processes below 1, a --process_id outside 0 .. --num_processes - 1,
a --join_timeout below 1) are bad input: one line naming the flag and exit
code 2.
"""

import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Callable, Optional

from absl import flags
import jax

from emcl_jax.errors import ProcessLostError, first_line
from emcl_jax.launch import cli
from emcl_jax.launch import options

FLAGS = flags.FLAGS
HEARTBEAT_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 30
# JAX's own deadline for the join lies past --join_timeout: on its deadline
# the coordination client aborts the process (a C++ stack, SIGABRT), so
# `join`'s watchdog always ends the wait first, with one line.
JAX_GRACE_S = 60
EXAMPLE_ADDRESS = '10.0.0.1:12345'


def slurm_tasks() -> int:
  """The number of tasks of the SLURM job step this process belongs to (1
  outside `srun`)."""
  if 'SLURM_PROCID' not in os.environ:
    return 1
  return int(os.environ.get('SLURM_STEP_NUM_TASKS')
             or os.environ.get('SLURM_NTASKS') or 1)


def check_address(address: str) -> None:
  """Checks that `address` (--coordinator_address) is HOST:PORT with a
  port in 1 .. 65535 and a host this machine can resolve (an IPv6 address
  in brackets: [::1]:12345).

  Raises:
    ValueError: it is not, naming the flag and the form it takes.
  """
  form = ("; give process 0's HOST:PORT, the same on every process (e.g. "
          f'--coordinator_address={EXAMPLE_ADDRESS})')
  host, sep, port = address.rpartition(':')
  if host.startswith('[') and host.endswith(']'):
    host = host[1:-1]
  elif ':' in host:
    raise ValueError(f'--coordinator_address={address} is not HOST:PORT '
                     '(an IPv6 address goes in brackets: [::1]:12345)'
                     + form)
  if not sep or not host or not port.isdigit() or not (
      1 <= int(port) <= 65535):
    raise ValueError(f'--coordinator_address={address} is not HOST:PORT '
                     '(a host name or IP address, a colon and a port in 1 .. '
                     '65535)' + form)
  try:
    socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
  except (socket.gaierror, UnicodeError):
    raise ValueError(f'--coordinator_address={address}: cannot resolve the '
                     f'host {host}' + form) from None


def settings() -> Optional[dict[str, object]]:
  """The arguments of `jax.distributed.initialize` that the flags ask
  for, or None for a run of one process.

  Raises:
    ValueError: the flags are given in part, --process_id is not below
      --num_processes, or --coordinator_address is not a HOST:PORT this
      host can resolve (`check_address`).
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
                     f'{FLAGS.num_processes - 1} (--num_processes='
                     f'{FLAGS.num_processes}); number the processes from 0')
  check_address(FLAGS.coordinator_address)
  return given


def _answers(address: str) -> bool:
  """Whether something accepts TCP connections at `address` (HOST:PORT)."""
  host, _, port = address.rpartition(':')
  try:
    with socket.create_connection((host.strip('[]'), int(port)), timeout=2):
      return True
  except OSError:
    return False


def join_failure(kwargs: dict[str, object], timeout: int) -> str:
  """The one line (less `error: `) of a join that did not complete within
  `timeout` seconds."""
  fix = ('start every process with the same --coordinator_address and '
         '--num_processes and its own --process_id, or raise --join_timeout')
  if not kwargs:  # SLURM's variables
    return (f'cannot join the other processes (not all {slurm_tasks()} '
            f'tasks of this SLURM job step joined within --join_timeout='
            f'{timeout} s); {fix}')
  address, n = kwargs['coordinator_address'], kwargs['num_processes']
  if kwargs['process_id'] == 0:
    why = (f'processes 1 .. {n - 1} did not all connect to {address}'
           if n > 2 else f'process 1 did not connect to {address}')
  elif _answers(address):
    why = f'process 0 at {address} was not joined by all {n} processes'
  else:
    why = f'no process 0 answers at {address}'
  return (f'cannot join the other processes ({why} within --join_timeout='
          f'{timeout} s); {fix}')


def _exit_now(message: str, code: int = 1) -> None:
  """Prints `error: {message}` on stderr and ends the process with `code`
  at once (no exit-time handlers: JAX's shutdown would wait for the
  processes that did not come)."""
  try:
    sys.stdout.flush()
  except (OSError, ValueError):
    pass
  sys.stderr.write(f'error: {message}\n')
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def join(kwargs: dict[str, object], timeout: float) -> None:
  """`jax.distributed.initialize(**kwargs)`, given `timeout` seconds.

  JAX's join holds the main thread (Python's Ctrl-C handler cannot run)
  and ends a failed join with a C++ abort, so a watchdog thread ends the
  process instead, with one line on stderr: exit code 1 if the join has
  not completed after `timeout` seconds (`join_failure`), 130 on Ctrl-C
  (SIGINT, seen through `signal.set_wakeup_fd` while joining in the main
  thread). A join that fails earlier with an exception ends the process
  the same way (exit code 1). A process that joined is never ended by the
  watchdog: the join's end and the watchdog's decision take one lock.
  """
  lock = threading.Lock()
  done = threading.Event()
  wake_r, wake_w = socket.socketpair()  # signals, and the join's end
  wake_r.setblocking(False)
  wake_w.setblocking(False)
  in_main = threading.current_thread() is threading.main_thread()
  old_fd = (signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
            if in_main else None)

  def watch():
    deadline = time.monotonic() + timeout
    interrupted = False
    while not done.is_set() and not interrupted:
      left = deadline - time.monotonic()
      if left <= 0:
        break
      if select.select([wake_r], [], [], left)[0]:
        try:
          interrupted = signal.SIGINT in wake_r.recv(512)
        except BlockingIOError:
          pass
    with lock:
      if done.is_set():
        return
      if interrupted:
        _exit_now('interrupted (Ctrl-C) while waiting for the other '
                  'processes to join', code=130)
      _exit_now(join_failure(kwargs, timeout))

  watchdog = threading.Thread(target=watch, name='join_watchdog',
                              daemon=True)
  watchdog.start()
  try:
    jax.distributed.initialize(
        **kwargs, initialization_timeout=int(timeout) + JAX_GRACE_S,
        heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
        shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S)
  except Exception as e:  # pylint: disable=broad-except
    with lock:
      done.set()
      _exit_now(f'cannot join the other processes ({first_line(e)[:160]}); '
                'start every process with the same --coordinator_address '
                'and --num_processes and its own --process_id')
  with lock:
    done.set()
  wake_w.send(b'\0')  # the watchdog returns now
  watchdog.join()
  if in_main:
    signal.set_wakeup_fd(old_fd)
  wake_r.close()
  wake_w.close()


def initialize() -> None:
  """Joins the run's processes (`join`, with CPU collectives over gloo)
  when the flags or SLURM ask for it; call it before any JAX computation.
  Exits with one line on failure: bad flags with code 2 (`cli.fail`), a
  join that did not complete within --join_timeout with code 1."""
  try:
    kwargs = settings()
  except ValueError as e:
    cli.fail(str(e))
  if kwargs is None:
    return
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  logging.getLogger('jax._src.distributed').setLevel(logging.WARNING)
  join(kwargs, FLAGS.join_timeout)


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
