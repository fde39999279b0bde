"""Runs experiments/run.py's command line in this process and kills it with
SIGKILL at a chosen point: no `finally`, no `close()`, no flush runs after.

  python tests/kill_during.py eval N  <run.py flags>   # in the N-th (1..)
                                                       # evaluation call
  python tests/kill_during.py save N  <run.py flags>   # in the N-th
                                                       # checkpoint save,
                                                       # after orbax began it

The evaluation kill fires from a host callback inside the compiled
evaluation call; the save kill fires when orbax hands the save's metadata
to its JSON handler, with the step's temporary folder already made.
"""

import os
import signal
import sys

import jax
import orbax.checkpoint as ocp

from emcl_jax.launch import run
from emcl_jax.training import programs


def _counter(n):
  calls = [0]

  def tick(*unused):
    calls[0] += 1
    if calls[0] == n:
      sys.stdout.flush()
      os.kill(os.getpid(), signal.SIGKILL)

  return tick


def main():
  where, n = sys.argv[1], int(sys.argv[2])
  tick = _counter(n)
  if where == 'eval':
    make_evaluate = programs.make_evaluate

    def patched(apply_fn):
      evaluate = make_evaluate(apply_fn)

      def killing_evaluate(*args):
        out = evaluate(*args)
        jax.debug.callback(tick, out)
        return out

      return killing_evaluate

    programs.make_evaluate = patched
  elif where == 'save':
    for handler in (ocp.JsonCheckpointHandler,):
      for name in ('save', 'async_save'):
        original = getattr(handler, name)

        def wrapped(self, *args, _original=original, **kwargs):
          tick()
          return _original(self, *args, **kwargs)

        setattr(handler, name, wrapped)
  else:
    raise SystemExit(f'unknown kill point {where!r}')
  sys.argv = ['run.py', *sys.argv[3:]]
  run.entry()


if __name__ == '__main__':
  main()
