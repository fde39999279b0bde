"""Configs as code: one `get_config()` module per benchmark.

Each module (`mnist_permutations.py`, `many_permutations.py`,
`split_mnist.py`, `cifar100.py`, `miniimagenet.py`) returns a dict

  {'model': the benchmark's model name (see emcl_jax.models),
   'methods': {method name: {hyper-parameter: value}}}

holding Table II's values (and, where the table is silent, those of each
method's paper or official code, as noted in the module). Every value can be
overridden from the command line (`--lr=0.05`), or by a config file of your
own: `--config=my_config.py` loads its `get_config()` and merges its
'methods' entries over the benchmark's (fields given override, others keep
the benchmark's values).
"""

import importlib
import importlib.util
import os
from typing import Any, Optional

BENCHMARKS = ('mnist_permutations', 'many_permutations', 'mnist_rotations',
              'split_mnist', 'cifar100', 'miniimagenet')


def get_config(dataset: str, path: Optional[str] = None) -> dict[str, Any]:
  """The benchmark's config, with `path`'s `get_config()` merged over it.

  Raises:
    ValueError: unknown benchmark, or a config file that cannot be used.
  """
  if dataset not in BENCHMARKS:
    raise ValueError(f'unknown dataset {dataset!r}; use one of '
                     f'{", ".join(BENCHMARKS)}')
  config = importlib.import_module(f'emcl_jax.configs.{dataset}').get_config()
  if path is not None:
    config = merge(config, load_file(path))
  return config


def load_module(path: str, function: str = 'get_config',
                flag: str = '--config'):
  """The Python file at `path` as a module that defines `function`.

  Raises:
    ValueError: missing file, a file that fails to load, or no `function`.
  """
  if not os.path.isfile(path):
    raise ValueError(f'{flag} {path} is not a file; give a Python file '
                     f'defining {function}()')
  spec = importlib.util.spec_from_file_location('user_config', path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{flag} {path} failed to load: '
                     f'{type(e).__name__}: {e}') from None
  if not callable(getattr(module, function, None)):
    raise ValueError(f'{flag} {path} defines no {function}()')
  return module


def load_file(path: str) -> dict[str, Any]:
  """`get_config()` of the Python file at `path`.

  Raises:
    ValueError: missing file, no get_config, or not the expected shape.
  """
  try:
    config = load_module(path).get_config()
  except ValueError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'--config {path} failed to load: get_config() raised '
                     f'{type(e).__name__}: {e}') from None
  if not isinstance(config, dict) or not isinstance(
      config.get('methods', {}), dict) or not all(
          isinstance(v, dict) for v in config.get('methods', {}).values()):
    raise ValueError(f'--config {path}: get_config() must return a dict '
                     "like {'methods': {'emcl': {'beta': 0.05}}}")
  return config


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
  """`extra` over `base`: method entries merged field by field."""
  methods = {m: dict(v) for m, v in base.get('methods', {}).items()}
  for m, values in extra.get('methods', {}).items():
    methods[m] = {**methods.get(m, {}), **values}
  return {**base, **{k: v for k, v in extra.items() if k != 'methods'},
          'methods': methods}


def defaults(config: dict[str, Any], method: str) -> dict[str, Any]:
  """The method's entry of `config`; EMCL's variants (emcl_si) share EMCL's
  entry when they have none of their own; {} where the config is silent."""
  methods = config.get('methods', {})
  if method not in methods and method.startswith('emcl'):
    method = 'emcl'
  return dict(methods.get(method, {}))
