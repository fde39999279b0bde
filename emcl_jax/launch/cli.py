"""What every launch script shares: a bad input is one line on stderr,
`error: ...`, and exit code 2 (a flag absl cannot parse included), never a
traceback."""

import sys
from typing import Callable, NoReturn

from absl import app
from absl import flags


def fail(message: str, code: int = 2) -> NoReturn:
  """Prints `error: {message}` on stderr and exits with `code`."""
  sys.stderr.write(f'error: {message}\n')
  sys.exit(code)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a value it cannot parse (`--num_tasks=abc`,
  an unknown flag, an enum outside its choices) or an argument that is not
  a flag reported by `fail`; returns [program name]."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    fail(f'{e}; pass --helpshort to list the flags')
  if len(rest) > 1:
    fail(f'unexpected arguments {rest[1:]}; flags take the form --name=value')
  return rest


def start(main: Callable[[list[str]], None], doc: str) -> None:
  """Runs `main` under absl (`doc` is the --help text) with `parse_flags`."""
  sys.modules['__main__'].__doc__ = doc
  app.run(main, flags_parser=parse_flags)
