"""One job run by submitit (`launcher.submit`): the sweep.py or reproduce.py
command of one shard, run in the job's process. It imports submitit, so only the
launcher imports it, when it submits.

A job preempted or timed out on SLURM is requeued by submitit with the same
command (`submitit.helpers.Checkpointable`): finished runs are skipped,
unfinished solo runs resume from their per-task checkpoints, and a grid
program starts again.
"""

import importlib
import os
import sys
from typing import Any, Optional, Sequence

import submitit


class _ErrorLines:
  """A stream that writes through to `stream` and keeps the last
  `error: ...` line written (a launch script's one-line failure)."""

  def __init__(self, stream):
    self.stream, self.last, self._line = stream, None, ''

  def write(self, text: str) -> int:
    """Writes `text` through, noting complete `error:` lines."""
    self._line += text
    *lines, self._line = self._line.split('\n')
    for line in lines:
      if line.startswith('error: '):
        self.last = line
    return self.stream.write(text)

  def __getattr__(self, name: str) -> Any:
    return getattr(self.stream, name)


class ScriptJob(submitit.helpers.Checkpointable):
  """Runs `python experiments/{script}.py *argv` (script: 'sweep' or
  'reproduce') in `cwd` within the job's process; returns {'code': exit
  code, 'error': its `error:` line or None}. Requeued as it is (the base
  class's `checkpoint`)."""

  def __init__(self, script: str, argv: Sequence[str], cwd: str):
    if script not in ('sweep', 'reproduce'):
      raise ValueError(f'no job for script {script!r}')
    self.script, self.argv, self.cwd = script, list(argv), cwd

  def __call__(self) -> dict[str, Optional[Any]]:
    from emcl_jax.launch import cli  # pylint: disable=g-import-not-at-top
    module = importlib.import_module(f'emcl_jax.launch.{self.script}')
    os.chdir(self.cwd)
    errors = _ErrorLines(sys.stderr)
    sys.stderr = errors
    try:
      cli.parse_flags([f'{self.script}.py', *self.argv])
      module.main([])
    except SystemExit as e:
      # cli.fail's exit, not submitit's own (requeue) exit
      if e.code and errors.last is not None:
        return {'code': e.code, 'error': errors.last}
      raise
    finally:
      sys.stderr = errors.stream
    return {'code': 0, 'error': None}
