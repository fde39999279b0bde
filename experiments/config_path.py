r"""Follows the run config from a launch script's main to results.json.

  python experiments/config_path.py                      # run.py's path
  python experiments/config_path.py --trace_script=sweep \
      --trace_args='--grid=method.beta=0.03,0.1 --config.data.num_tasks=2'

Runs the script's main in this process (its flags parsed as the script
parses them; a small offline run in a temporary work directory) under a
profiler hook, and prints:

- the modules of `emcl_jax` whose functions take, hold or return the run
  config (an argument, a local variable or the return value that is a
  `configs.RunConfig` or a list of them), in the order in which their
  first such function returned;
- the returns to an upper layer: the distinct calls from a module into one
  of a higher layer of the package (`LAYERS`, as its imports go) that
  belongs to the run apparatus (configs and above): callbacks, with or
  without the config.

docs/api.md, "The run config's path", lists the result;
tests/test_launch.py keeps it within its bounds.
"""

import importlib
import shlex
import sys
import tempfile
from typing import Any, NamedTuple

from absl import flags

from emcl_jax import configs
from emcl_jax.launch import cli

# The package's layers, lowest first: a module imports only from its own
# layer or those before it (tests/test_packaging.py), and a call from a
# module into a later layer is a return to an upper layer (a callback).
LAYERS = ('base', 'errors', 'files', 'version', 'trees', 'clipping', 'losses',
          'patch_conv', 'models', 'data', 'equations', 'methods', 'training',
          'configs', 'reporting', 'runner', 'launch')

flags.DEFINE_string('trace_script', 'run',
                    'the launch script: run or sweep')
flags.DEFINE_string('trace_args', '--config.data.num_tasks=2 '
                    '--config.data.samples_per_task=50',
                    "the script's arguments (one string)")

SCRIPT = cli.register('config_path', own=('trace_script', 'trace_args'),
                      shared=())


class Path(NamedTuple):
  """What `trace` saw.

  Attributes:
    modules: the modules that take, hold or return the run config, in
      order.
    upward: the distinct returns to an upper layer, 'caller -> callee'
      (module.function).
  """
  modules: list[str]
  upward: list[str]


# The run apparatus: configs and the layers after it. Calls into a method's
# functions (the engine calling `method.update`) are the functional style's
# arguments, not returns.
APPARATUS = LAYERS.index('configs')


def layer(module: str) -> int:
  """The index in LAYERS of an `emcl_jax` module's layer."""
  parts = module.split('.')
  return LAYERS.index(parts[1]) if len(parts) > 1 else len(LAYERS)


def _is_config(value: Any, config_type: type) -> bool:
  if isinstance(value, (list, tuple)) and value:
    return all(isinstance(v, config_type) for v in value)
  return isinstance(value, config_type)


def _holds_config(frame: Any, config_type: type, value: Any) -> bool:
  """Whether the returning function took, held or returns the config."""
  return _is_config(value, config_type) or any(
      _is_config(v, config_type) for v in frame.f_locals.values())


def trace(script: str, argv: list[str]) -> Path:
  """Runs `python experiments/{script}.py *argv`'s main in this process under
  a profiler hook (`Path`)."""
  main = importlib.import_module(f'emcl_jax.launch.{script}').main
  command = [f'experiments/{script}.py', *argv]
  parsed = cli.parse(script, command)
  modules: dict[str, None] = {}
  upward: dict[str, None] = {}

  def hook(frame, event, arg):
    module = frame.f_globals.get('__name__', '')
    if not module.startswith('emcl_jax.'):
      return
    if event == 'return':
      if _holds_config(frame, configs.RunConfig, arg):
        modules.setdefault(module)
      return
    if event != 'call':
      return
    caller = frame.f_back
    while caller is not None and not caller.f_globals.get(
        '__name__', '').startswith('emcl_jax.'):
      caller = caller.f_back
    if caller is None:
      return
    source = caller.f_globals['__name__']
    if layer(module) > layer(source) and layer(module) >= APPARATUS:
      upward.setdefault(f'{source}.{caller.f_code.co_name} -> '
                        f'{module}.{frame.f_code.co_name}')

  old_argv = sys.argv
  sys.argv = command
  sys.setprofile(hook)
  try:
    main(parsed)
  finally:
    sys.setprofile(None)
    sys.argv = old_argv
  return Path(list(modules), list(upward))


def main(argv):
  del argv
  with cli.failing(), tempfile.TemporaryDirectory() as tmp:
    args = shlex.split(flags.FLAGS.trace_args) + [f'--workdir={tmp}']
    path = trace(flags.FLAGS.trace_script, args)
  print(f'{len(path.modules)} modules take the run config:')
  for m in path.modules:
    print(f'  {m}')
  print(f'{len(path.upward)} returns to an upper layer:')
  for u in path.upward:
    print(f'  {u}')


if __name__ == '__main__':
  cli.start(main, __doc__, SCRIPT)
