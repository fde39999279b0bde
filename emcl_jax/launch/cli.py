"""What every launch script shares.

- Bad input is one line on stderr, `error: ...`, and exit code 2 (a flag
  absl cannot parse included), never a traceback (`fail`, `parse_flags`).
- `--help` lists the script's own flags with their defaults and meanings,
  then every setting of the run (`--config.PATH=VALUE`) for the `--dataset`
  and `--method` given, and exits 0.
- `--config.PATH=VALUE` sets any setting of the run config
  (`emcl_jax.configs.schema`): `--config.method.beta=0.05`,
  `--config.data.num_tasks=3`. They are taken out of the command line before
  absl parses it (`overrides` returns them) and applied by `run_config`.
"""

import contextlib
import os
import sys
from typing import Any, Callable, Iterator, NoReturn, Optional, Sequence

from absl import app
from absl import flags

from emcl_jax import configs
from emcl_jax.configs import schema
from emcl_jax.errors import DataError
from emcl_jax.errors import NonFiniteLossError
from emcl_jax.launch import run_flags

PREFIX = '--config.'
_OVERRIDES: dict[str, str] = {}
_SCRIPT: list[str] = []  # the modules whose flags --help lists


def fail(message: str, code: int = 2) -> NoReturn:
  """Prints `error: {message}` on stderr and exits with `code`. A process of
  a several-process run exits at once: JAX's exit-time shutdown would wait
  for the other processes, which may be gone."""
  sys.stderr.write(f'error: {message}\n')
  jax = sys.modules.get('jax')
  if jax is not None and jax.distributed.is_initialized():
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pylint: disable=protected-access
  sys.exit(code)


@contextlib.contextmanager
def failing(workdir: Optional[str] = None) -> Iterator[None]:
  """Turns the library's errors inside the block into `fail`: bad input
  (ValueError, DataError) exits 2, a loss that became NaN or infinite
  (NonFiniteLossError) exits 1, and with `workdir` (the --workdir the
  script writes under) an OSError exits 2 naming it."""
  try:
    yield
  except (ValueError, DataError) as e:
    fail(str(e))
  except NonFiniteLossError as e:
    fail(str(e), code=1)
  except OSError as e:
    if workdir is None:
      raise
    fail(f'cannot write under --workdir={workdir}: {e.strerror or e}; '
         'choose a writable --workdir')


def split_overrides(argv: list[str]) -> tuple[list[str], dict[str, str]]:
  """(argv without the --config.PATH=VALUE arguments, {PATH: VALUE});
  `--config.PATH VALUE` is taken too."""
  rest, found = [], {}
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith(PREFIX):
      path, sep, value = arg[len(PREFIX):].partition('=')
      if not sep:
        if i + 1 >= len(argv):
          fail(f'{arg} has no value; write {arg}=VALUE')
        value, i = argv[i + 1], i + 1
      found[path] = value
    else:
      rest.append(arg)
    i += 1
  return rest, found


def overrides() -> dict[str, str]:
  """The --config.PATH=VALUE settings of the command line, as given."""
  return dict(_OVERRIDES)


def flag_name(arg: str) -> Optional[str]:
  """The name of a `--name` or `--name=value` argument (None for one that
  is not a flag)."""
  return arg[2:].split('=', 1)[0] if arg.startswith('--') else None


def _flag_value(argv: list[str], name: str) -> Optional[str]:
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      return arg.split('=', 1)[1]
    if arg == f'--{name}' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _method_field_hint(message: str) -> str:
  """For an unknown flag that is a method's setting (`--beta`), the form
  that sets it now."""
  from emcl_jax.methods import METHODS  # pylint: disable=g-import-not-at-top
  for _, cls in METHODS.values():
    for field in cls._fields:
      if message.startswith(f"Unknown command line flag '{field}'"):
        return (f'; method settings are --config.method.{field}=VALUE '
                f'(--print_config lists them)')
  return '; pass --help to list the flags'


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, after taking out the --config.PATH=VALUE
  overrides; `--help` prints `help_text` and exits 0; a value absl cannot
  parse (`--num_tasks=abc`, an unknown flag, an enum outside its choices) or
  an argument that is not a flag is reported by `fail`; returns [program
  name]."""
  argv, found = split_overrides(list(argv))
  _OVERRIDES.clear()
  _OVERRIDES.update(found)
  if any(a in ('--help', '-h', '--helpshort', '-?') for a in argv[1:]):
    print(help_text(argv))
    sys.exit(0)
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    fail(f'{e}{_method_field_hint(str(e))}')
  if len(rest) > 1:
    fail(f'unexpected arguments {rest[1:]}; flags take the form --name=value')
  return rest


def _flag_lines(module: str) -> list[str]:
  lines = []
  for flag in flags.FLAGS.get_flags_for_module(module):
    default = flag.default
    if isinstance(default, list):
      default = ','.join(default)
    lines.append(f'  --{flag.name}: {flag.help}')
    shared = module == run_flags.__name__ and flag.name in run_flags.SHORT
    lines.append("      (default: the run config's)" if shared
                 else f'      (default: {default!r})')
  return lines


def help_text(argv: list[str]) -> str:
  """The --help page: the script's docstring, its flags, the shared run
  flags, and the settings of the run the command line names."""
  main = sys.modules['__main__']
  lines = [(main.__doc__ or '').strip(), '', 'Flags:']
  for module in _SCRIPT:
    lines += _flag_lines(module)
  if run_flags.__name__ not in _SCRIPT:
    return '\n'.join(lines)
  dataset = _flag_value(argv, 'dataset') or (
      (_flag_value(argv, 'datasets') or 'mnist_permutations').split(',')[0])
  method = _flag_value(argv, 'method') or (
      (_flag_value(argv, 'methods') or 'emcl').split(',')[0])
  lines += ['', f'Settings of --dataset={dataset} --method={method}, each '
            'set with --config.PATH=VALUE (--method=M --help shows M\'s):']
  try:
    config = configs.get_config(dataset, method)
    lines += [f'  {s.path} = {s.value!r}: {s.help}'
              for s in schema.settings(config)]
  except ValueError as e:
    lines.append(f'  ({e})')
  return '\n'.join(lines)


def run_config(dataset: str, method: str,
               extra: Optional[dict[str, Any]] = None) -> configs.RunConfig:
  """The run config of the command line for (dataset, method): the
  benchmark's, then --config FILE, then the short flags
  (`run_flags.overrides`), then `extra` (a script's own values, e.g. a
  sweep setting), then the --config.PATH=VALUE overrides; resolved.

  Raises:
    ConfigError: an unknown setting, a bad value, or a setting that cannot
      apply.
  """
  config = configs.get_config(dataset, method,
                              config_file=flags.FLAGS.config)
  config = schema.override(config, run_flags.overrides())
  config = schema.override(config, extra or {})
  config = schema.override(config, overrides())
  return configs.resolve(config)


def given(values: dict[str, Any]) -> dict[str, Any]:
  """{config path: flag value} for the flags of `values` ({flag name:
  config path}) given on the command line."""
  return {path: flags.FLAGS[name].value for name, path in values.items()
          if flags.FLAGS[name].present}


def print_config(config: configs.RunConfig) -> None:
  """Every setting of `config` with its value and meaning, and its hash."""
  from emcl_jax.training import workdir  # pylint: disable=g-import-not-at-top
  width = max(len(s.path) for s in schema.settings(config))
  for s in schema.settings(config):
    print(f'{s.path:<{width}}  {s.value!r:<14} {s.help}')
  chash = workdir.config_hash(config.dataset, config.method.name,
                              configs.flat(config))
  print(f"{'config_hash':<{width}}  {chash}")


def start(main: Callable[[list[str]], None], doc: str,
          module: Optional[str] = None, shared: bool = True,
          extra: Sequence[str] = ()) -> None:
  """Runs `main` under absl with `parse_flags`: `doc` is the --help text,
  which lists the flags of `module`, of the `extra` modules and, with
  `shared`, the run flags every script shares (`run_flags`) and the run's
  settings."""
  sys.modules['__main__'].__doc__ = doc
  _SCRIPT[:] = [module or sys.modules['__main__'].__name__, *extra] + (
      [run_flags.__name__] if shared else [])
  app.run(main, flags_parser=parse_flags)
