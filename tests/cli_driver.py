"""Runs experiments/run.py's command line on many inputs in one process:
reads {name: [flag, ...]} as JSON on stdin and writes {name: {'code',
'stderr'}} as JSON on stdout, where `code` is the exit code the command
would have ended with and `stderr` what it printed there. Each command goes
through the launcher's own flag parsing (`cli.parse`) and `main`,
with the flags reset to their defaults in between; one process instead of
one per input (the JAX import is the cost of each)."""

import contextlib
import io
import json
import sys
import traceback

from absl import flags

from emcl_jax.launch import cli
from emcl_jax.launch import run


def one(argv):
  flags.FLAGS.unparse_flags()
  err = io.StringIO()
  code = 0
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(
      io.StringIO()):
    try:
      run.main(cli.parse('run', ['run.py', *argv]))
    except SystemExit as e:
      code = e.code
    except Exception:  # pylint: disable=broad-except
      code = 'an exception'  # a traceback: the case fails on its own
      err.write(traceback.format_exc())
  return {'code': code, 'stderr': err.getvalue()}


def main():
  cases = json.load(sys.stdin)
  json.dump({name: one(argv) for name, argv in cases.items()}, sys.stdout)


if __name__ == '__main__':
  main()
