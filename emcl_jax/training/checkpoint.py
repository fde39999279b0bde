"""Checkpoint and resume at task boundaries, with orbax-checkpoint.

After every task the engine hands the run's progress to a `Checkpointer`:
the method's whole state (parameters, importance, optimiser state, replay
memory, step counters; each method's RNG is the key the engine passes to
every batch), the accuracy matrix and task losses so far, and the training
seconds so far. Step n of the orbax `CheckpointManager` is "tasks 0..n
done". The data order and the per-task PRNG keys are not stored: both are
functions of the seed, which the run's fingerprint pins together with a
checksum of the data in stream order.

Writes are atomic: orbax writes each step into a temporary folder and
renames it when complete, and ignores (and cleans up) temporary folders, so
a run killed during a save resumes from the previous task. Restoring checks
the fingerprint (dataset, method, seeds, config, sizes, data checksum) and
refuses a checkpoint of another run, or one it cannot read, with a
one-line `CheckpointError`.
"""

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import sys
import warnings
from typing import Any, Iterator, NamedTuple, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp

from emcl_jax.errors import first_line
from emcl_jax.training import multihost
from emcl_jax.training import workdir


class CheckpointError(ValueError):
  """A checkpoint that does not belong to this run, or cannot be read."""


class Restored(NamedTuple):
  """A run's progress read back from its latest checkpoint.

  Attributes:
    first_task: the first task still to train (the saved task + 1).
    state: the method's state, restored like the `state` given.
    accuracy_matrix: R so far, float [..., T, T'] (rows not trained yet 0).
    task_losses: mean training loss of each task so far, [..., T].
    task_train_seconds: training seconds of each task, float [T], zero for
      those not trained yet.
    extra: the matrices beside R asked for by name (`restore`'s `extra`:
      'r_class' the class-incremental matrix, 'r_val' the validation
      accuracies), each like accuracy_matrix.
  """
  first_task: int
  state: Any
  accuracy_matrix: np.ndarray
  task_losses: np.ndarray
  task_train_seconds: np.ndarray
  extra: dict[str, np.ndarray] = {}


def data_checksum(*arrays: np.ndarray) -> str:
  """A short SHA-256 of the arrays' bytes (the run's data and its order)."""
  h = hashlib.sha256()
  for a in arrays:
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()[:16]


class Checkpointer:
  """Saves a run after every task under `directory`; restores the latest.

  Args:
    directory: the run's checkpoint folder (created if missing).
    fingerprint: JSON-able description of the run; a checkpoint written
      with another fingerprint is refused.
    resume: continue from the latest checkpoint in `directory`. Without it
      a folder that already holds checkpoints is refused (no silent
      overwrite of another run's progress).
    max_to_keep: checkpoints kept (the latest ones).
  """

  def __init__(self, directory: str, fingerprint: dict[str, Any], *,
               resume: bool, max_to_keep: int = 2):
    self.directory = os.path.abspath(directory)
    self.fingerprint = json.loads(json.dumps(fingerprint))
    self.resume = resume
    self.restored_task: Optional[int] = None
    self._max_to_keep = max_to_keep
    # The folder is made at the first save, so a run that fails before it
    # leaves none.
    self._manager = (self._open() if os.path.isdir(self.directory)
                     else None)
    if (not resume and self._manager is not None
        and self._manager.latest_step() is not None):
      raise CheckpointError(
          f'{directory} already holds a checkpoint (task '
          f'{self._manager.latest_step() + 1}); resume it (resume=True), or '
          'use an empty folder')

  def _open(self) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=self._max_to_keep, create=True,
        enable_async_checkpointing=False, cleanup_tmp_directories=True)
    if multihost.several():
      options = _alone(options, self.directory)
    try:
      return ocp.CheckpointManager(self.directory, options=options)
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'cannot use the checkpoint folder '
                            f'{self.directory}: {_first_line(e)}') from None

  def restore(self, state: Any, r_shape: tuple[int, ...],
              extra: tuple[str, ...] = ()) -> Optional[Restored]:
    """The latest checkpoint, restored like `state`, or None (no resume or
    nothing saved yet).

    Args:
      state: a state like the saved one (its shapes, dtypes, shardings).
      r_shape: the accuracy matrix's shape, [..., T, T'].
      extra: the names of the matrices saved beside R to restore too
      (`save`'s `extra`), each of R's shape.

    Returns:
      A `Restored`, or None.

    Raises:
      CheckpointError: another run's checkpoint, or an unreadable one.
    """
    step = (self._manager.latest_step()
            if self.resume and self._manager is not None else None)
    if step is None:
      return None
    try:
      with _quiet_if_failing():
        meta = self._manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))['meta']
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(_unreadable(self.directory, step, e)) from None
    if meta.get('fingerprint') != self.fingerprint:
      diff = _first_difference(meta.get('fingerprint'), self.fingerprint)
      raise CheckpointError(
          f'the checkpoint in {self.directory} belongs to another run '
          f'({diff}); resume with the same configuration, or delete the '
          "folder (a run's overwrite=True does) to start afresh")
    if 'task_train_seconds' not in meta:
      raise CheckpointError(
          f'the checkpoint in {self.directory} was written by an older '
          "emcl_jax (no per-task seconds); delete the folder (a run's "
          'overwrite=True does) to start afresh')
    # Several processes: every one reads the whole state as NumPy arrays
    # (the engine places them); one process cannot restore onto devices
    # that are not its own.
    abstract = jax.tree.map(
        (lambda a: np.zeros(a.shape, a.dtype)) if multihost.several()
        else ocp.utils.to_shape_dtype_struct, state)
    arrays = {'state': abstract,
              'r': np.zeros(r_shape),
              'task_losses': np.zeros(r_shape[:-1])}
    arrays.update({name: np.zeros(r_shape) for name in extra})
    try:
      with _quiet_if_failing():
        restored = self._manager.restore(step, args=ocp.args.Composite(
            arrays=ocp.args.StandardRestore(arrays)))['arrays']
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(_unreadable(self.directory, step, e)) from None
    self.restored_task = step
    return Restored(
        step + 1, restored['state'], np.asarray(restored['r']),
        np.asarray(restored['task_losses']),
        np.asarray(meta['task_train_seconds'], float),
        {name: np.asarray(restored[name]) for name in extra})

  def save(self, task: int, state: Any, r: np.ndarray,
           task_losses: np.ndarray, task_train_seconds: np.ndarray,
           extra: Optional[dict[str, np.ndarray]] = None) -> None:
    """Saves the run after `task` (0-based) finished; blocks until written
    (`extra`: the matrices beside R by name, `protocol.Matrices.extra`). With
    several processes every one calls it (the state is gathered to the
    host, a collective) and process 0 alone writes."""
    if multihost.several():
      state = multihost.tree_to_host(state)
      if not workdir.is_primary():
        return
    if self._manager is None:
      self._manager = self._open()
    self._manager.save(task, args=ocp.args.Composite(
        arrays=ocp.args.StandardSave({
            'state': state, 'r': r, 'task_losses': task_losses,
            **(extra or {})}),
        meta=ocp.args.JsonSave({'fingerprint': self.fingerprint,
                                'task': task,
                                'task_train_seconds':
                                    np.asarray(task_train_seconds).tolist()
                                })))
    self._manager.wait_until_finished()

  def close(self) -> None:
    if self._manager is not None:
      self._manager.close()


def _alone(options: ocp.CheckpointManagerOptions,
           directory: str) -> ocp.CheckpointManagerOptions:
  """`options` for one process of several, which uses its manager without
  the others (no cross-process barriers): process 0 makes the folder and
  writes, the others only read."""
  me = jax.process_index()
  alone = ocp.options.MultiprocessingOptions(primary_host=me,
                                             active_processes={me})
  if me == 0:
    os.makedirs(directory, exist_ok=True)  # orbax refuses create=True here
    return dataclasses.replace(options, create=False,
                               multiprocessing_options=alone)
  return dataclasses.replace(options, create=False, read_only=True,
                             cleanup_tmp_directories=False,
                             multiprocessing_options=alone)


def _first_line(e: Exception) -> str:
  """The reason quoted in a checkpoint error, without orbax's pointer to
  its full traceback."""
  return first_line(e).split('. See full', 1)[0][:200]


def _unreadable(directory: str, step: int, e: Exception) -> str:
  return (f'cannot read the checkpoint of task {step + 1} in {directory} '
          f'({_first_line(e)}); delete that step folder to resume from the '
          "one before, or delete the folder (a run's overwrite=True does) to "
          'start afresh')


@contextlib.contextmanager
def _quiet_if_failing() -> Iterator[None]:
  """Keeps a failed restore's error one line: orbax leaves the reads of the
  other arrays running, and their failures would reach stderr, during the
  restore and after it (asyncio's 'Task exception was never retrieved' log
  records, and 'Event loop is closed' from the callbacks that complete
  them), and the reads left unawaited are collected at exit with a
  'coroutine ... was never awaited' warning. A restore that succeeds puts
  the logger and the hook back as they were."""
  log, level, previous = (logging.getLogger('asyncio'),
                          logging.getLogger('asyncio').level,
                          sys.unraisablehook)

  def hook(unraisable):
    if not (isinstance(unraisable.exc_value, RuntimeError)
            and str(unraisable.exc_value) == 'Event loop is closed'):
      previous(unraisable)

  log.setLevel(logging.CRITICAL)
  sys.unraisablehook = hook
  try:
    yield
  except BaseException:  # leaves both in place, and quiets the leftovers
    warnings.filterwarnings('ignore', category=RuntimeWarning,
                            message=r"coroutine '.*' was never awaited")
    raise
  log.setLevel(level)
  sys.unraisablehook = previous


def _first_difference(saved: Any, current: Any, path: str = '') -> str:
  """'key: saved -> current' for the first field that differs, in the
  current fingerprint's order (its most telling fields first)."""
  if isinstance(saved, dict) and isinstance(current, dict):
    for k in [*current, *(k for k in saved if k not in current)]:
      if saved.get(k) != current.get(k):
        return _first_difference(saved.get(k), current.get(k),
                                 f'{path}{k}.')
  return f'{path.rstrip(".") or "fingerprint"}: {saved!r} -> {current!r}'
