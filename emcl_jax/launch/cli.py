"""What every launch script shares: parsing, --help, the run config of the
command line, and the one mapping of errors to exit codes.

- A setting of the run has one spelling, `--config.PATH=VALUE`
  (`--config.method.beta=0.05`, `--config.data.num_tasks=3`); the flags
  (`options`) only choose the run. `--config=FILE[:ARG]` is a file whose
  `get_config(ARG)` returns the run config, as in flax's examples.
- Bad input is one line on stderr, `error: ...`, and exit code 2 (a flag
  absl cannot parse, a flag the script does not take and two flags that
  say the same thing included), never a traceback (`fail`, `failing`).
- `--help` lists the script's flags with their defaults and meanings, then
  every setting of the run (`--config.PATH=VALUE`) for the `--dataset` and
  `--method` given, and exits 0.
"""

import contextlib
import dataclasses
import os
import sys
from typing import Any, Callable, Iterator, NoReturn, Optional, Sequence

from absl import app
from absl import flags

from emcl_jax import configs
from emcl_jax.configs import schema
from emcl_jax.errors import DataError
from emcl_jax.errors import JobError
from emcl_jax.errors import NonFiniteLossError
from emcl_jax.launch import options

FLAGS = flags.FLAGS
PREFIX = '--config.'
# The flags that also name a setting: given both ways, the command is
# ambiguous (`run_config` refuses it).
FLAG_PATHS = {'seed': 'seed', 'seeds': 'seeds', 'workdir': 'output.workdir',
              'data_dir': 'data.dir'}
_STATE: dict[str, Any] = {'script': 'run', 'overrides': {}}
# {flag name: its default as defined}, for every flag whose default a
# script's `options.DEFAULTS` changed.
_AS_DEFINED: dict[str, Any] = {}


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
  (NonFiniteLossError) and a job that ended without a result (JobError)
  exit 1, Ctrl-C (KeyboardInterrupt) exits 130 (128 + SIGINT) with its
  message (a download's says what it kept), and with `workdir` (the
  --workdir the script writes under) an OSError exits 2 naming it."""
  try:
    yield
  except KeyboardInterrupt as e:
    fail(str(e) or 'interrupted (Ctrl-C); run the same command again to go '
         'on', code=130)
  except (ValueError, DataError) as e:
    fail(str(e))
  except (NonFiniteLossError, JobError) as e:
    fail(str(e), code=1)
  except BrokenPipeError:  # stdout's reader left (`| head`): done
    os._exit(0)  # pylint: disable=protected-access
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
  return dict(_STATE['overrides'])


def flag_name(arg: str) -> Optional[str]:
  """The name of a `--name` or `--name=value` argument (None for one that
  is not a flag)."""
  return arg[2:].split('=', 1)[0] if arg.startswith('--') else None


def _setting_hint(name: str) -> str:
  """For a flag that is not a flag but a setting (`--num_tasks`,
  `--beta`), the spelling that sets it."""
  from emcl_jax.methods import RECORDS  # pylint: disable=g-import-not-at-top
  paths = {'model': 'model.name', 'data_source': 'data.source'}
  for section in ('data', 'model', 'protocol', 'output'):
    for f in dataclasses.fields(getattr(schema, section.title() + 'Config')):
      paths.setdefault(f.name, f'{section}.{f.name}')
  for record in RECORDS.values():
    for field in record.config._fields:
      paths.setdefault(field, f'method.{field}')
  if name in paths:
    return (f'; settings are --config.PATH=VALUE: --config.{paths[name]}='
            'VALUE (--print_config lists them)')
  return '; pass --help to list the flags'


def _parse(argv: list[str]) -> list[str]:
  """absl's flag parsing for the script `_STATE['script']`, after taking
  out the --config.PATH=VALUE overrides; `--help` prints `help_text` and
  exits 0; an unparsable value, a flag the script does not take and an
  argument that is not a flag are reported by `fail`."""
  argv, found = split_overrides(list(argv))
  _STATE['overrides'] = found
  if any(a in ('--help', '-h', '--helpshort', '-?') for a in argv[1:]):
    print(help_text(argv))
    sys.exit(0)
  try:
    rest = FLAGS(argv)
  except flags.Error as e:
    name = str(e).split("'")[1] if "'" in str(e) else ''
    fail(f'{e}{_setting_hint(name)}')
  own = options.SCRIPTS[_STATE['script']]
  for arg in argv[1:]:
    name = flag_name(arg)
    base = name[2:] if name and name.startswith('no') else name
    if name and name not in own and base not in own:
      fail(f"{_STATE['script']}.py takes no --{name}{_setting_hint(name)}")
  if len(rest) > 1:
    fail(f'unexpected arguments {rest[1:]}; flags take the form --name=value')
  return rest


def _flag_value(argv: list[str], name: str) -> Optional[str]:
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      return arg.split('=', 1)[1]
    if arg == f'--{name}' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def help_text(argv: list[str]) -> str:
  """The --help page: the script's docstring, its flags, and the settings
  of the run the command line names."""
  main = sys.modules['__main__']
  lines = [(main.__doc__ or '').strip(), '', 'Flags:']
  for name in options.SCRIPTS[_STATE['script']]:
    flag = FLAGS[name]
    default = flag.default
    if isinstance(default, list):
      default = ','.join(default)
    lines += [f'  --{name}: {flag.help}', f'      (default: {default!r})']
  if 'dataset' not in options.SCRIPTS[_STATE['script']] and (
      'datasets' not in options.SCRIPTS[_STATE['script']]):
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
  benchmark's (or --config FILE's), then the run flags (--seed, --seeds,
  --workdir, --data_dir), then `extra` (a script's own values, e.g. a sweep
  setting), then the --config.PATH=VALUE overrides; resolved.

  Raises:
    ConfigError: an unknown setting, a bad value, a setting that cannot
      apply, or a setting given twice (a flag and its --config.PATH).
  """
  given = overrides()
  for name, path in FLAG_PATHS.items():
    if FLAGS[name].present and path in given:
      raise configs.ConfigError(
          f'--{name} and --config.{path} both set {path}; give one')
  if FLAGS.config is not None:
    for name in ('dataset', 'method', 'datasets', 'methods'):
      if FLAGS[name].present:
        raise configs.ConfigError(
            f'--config={FLAGS.config} chooses the dataset and method; drop '
            f'--{name}')
    config = configs.load_config(FLAGS.config)
  else:  # a model given brings its method values (configs.table_source)
    model = {**(extra or {}), **given}.get('model.name')
    config = configs.get_config(
        dataset, method, None if model is None else {'model.name': model})
  values = {'seed': FLAGS.seed, 'seeds': FLAGS.seeds,
            'output.workdir': FLAGS.workdir}
  if FLAGS.data_dir is not None:
    values['data.dir'] = FLAGS.data_dir
  if FLAGS.config is not None:  # the file's values unless a flag is given
    values = {FLAG_PATHS[n]: FLAGS[n].value for n in FLAG_PATHS
              if FLAGS[n].present}
  config = schema.override(config, {**values, **(extra or {})})
  return configs.resolve(schema.override(config, given))


def print_config(config: configs.RunConfig) -> None:
  """Every setting of `config` with its value and meaning, and its hash."""
  from emcl_jax.training import workdir  # pylint: disable=g-import-not-at-top
  width = max(len(s.path) for s in schema.settings(config))
  for s in schema.settings(config):
    print(f'{s.path:<{width}}  {s.value!r:<14} {s.help}')
  source = configs.table_source(config.dataset, config.model.name)
  print(f"{'method_values':<{width}}  {source!r:<14} the benchmark whose "
        'method values this run starts from (emcl_jax/configs/'
        f'{source}.py; a CNN on an MNIST benchmark takes '
        f'{configs.VISION_TABLE}\'s)')
  chash = workdir.config_hash(config.dataset, config.method.name,
                              configs.flat(config))
  print(f"{'config_hash':<{width}}  {chash}")


def parse(script: str, argv: list[str]) -> list[str]:
  """Parses the command line `argv` (program name first) of `script` (a key
  of `options.SCRIPTS`) as its main sees it: every flag back at the
  script's defaults (`options.DEFAULTS`) first, then `_parse`. In-process
  callers (tests, a notebook) call it before the script's `main`."""
  _STATE['script'] = script
  for flag in [*FLAGS.get_key_flags_for_module(options),
               *(FLAGS[n] for n in options.SCRIPTS[script])]:
    flag.unparse()
  own = options.DEFAULTS[script]
  for name in own:  # each flag's default as defined, before any script's
    _AS_DEFINED.setdefault(name, FLAGS[name].default)
  # Another script's defaults, from an earlier parse in this process, go
  # back to the flags' own first.
  for name, value in {**_AS_DEFINED, **own}.items():
    FLAGS.set_default(name, value)
  return _parse(argv)


def register(script: str, *, own: Sequence[str] = (),
             shared: Optional[Sequence[str]] = None,
             defaults: Optional[dict[str, Any]] = None) -> str:
  """Makes a script outside the package (a study in experiments/) known to
  `parse` and `start`: `own` are the flags it defines, `shared` those of
  `options` it takes (default: the run's, `options.RUN`) and `defaults`
  its own defaults of them. Returns `script`."""
  options.SCRIPTS[script] = (
      tuple(options.RUN if shared is None else shared) + tuple(own))
  options.DEFAULTS[script] = dict(defaults or {})
  return script


def start(main: Callable[[list[str]], None], doc: str, script: str) -> None:
  """Runs `main` under absl for `script` (a key of `options.SCRIPTS`); `doc`
  is the --help text."""
  sys.modules['__main__'].__doc__ = doc
  app.run(main, flags_parser=lambda argv: parse(script, argv))
