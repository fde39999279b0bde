"""Configs as code: a run is one typed `RunConfig` (`schema`).

`get_config(dataset, method)` is the whole run of `method` on `dataset`,
from the benchmark's module (`mnist_permutations.py`, `many_permutations.py`,
`mnist_rotations.py`, `split_mnist.py`, `cifar100.py`, `miniimagenet.py`,
`tinyimagenet.py`):
its size (Table I), model, and every hyper-parameter of the method. Each
value has one home:

  a method's library default        its config class (emcl_jax/methods/)
  what makes a variant (emcl_si,    its `methods.RECORDS` entry (a variant
    cmaml, emcl_gd, ...)              takes its base method's benchmark
                                      values, its switches over them,
                                      unless the benchmark lists it: then
                                      its own values over its switches)
  a benchmark's values (Table II)   the benchmark's module, `METHODS`
  your change                       `overrides`: {'method.beta': 0.05}, or
                                      --config.method.beta=0.05

`resolve` fills in what a run derives (the data source `auto` stands for,
absolute folders) and refuses settings that cannot change the benchmark;
`flat` is the `config` entry of a run's results, and `config_hash` names its
folder, so equal resolved configs share a folder.
"""

import dataclasses
import importlib
import importlib.util
import os
import re
from typing import Any, Optional

from emcl_jax import data as data_lib
from emcl_jax import files
from emcl_jax import models
from emcl_jax.configs import schema
from emcl_jax.configs.schema import ConfigError, RunConfig
from emcl_jax import methods as methods_lib

BENCHMARKS = tuple(data_lib.BENCHMARKS)

# A benchmark's method values follow its network. The MNIST benchmarks'
# tables hold the MLP's values; a CNN there diverges at them (EMCL's beta
# and gamma on pc_cnn, Split MNIST). A CNN on a benchmark whose own model is
# the MLP takes the method values of `VISION_TABLE` instead, the benchmark
# whose CNN settings they are (Table II's CIFAR-100 column, the official
# La-MAML vision algorithm); `max_tasks` stays the benchmark's own.
CNNS = ('resnet18_reduced', 'pc_cnn')
VISION_TABLE = 'cifar100'
_BENCHMARK_FIELDS = ('max_tasks',)


def method_config(method: str, table: dict[str, dict[str, Any]]
                  ) -> schema.MethodConfig:
  """`method` with the values of a benchmark's `table` over its library
  defaults and its variant's switches (the module docstring).

  Raises:
    ConfigError: unknown method, or a table value the method does not take.
  """
  if method not in methods_lib.RECORDS:
    raise ConfigError(f'unknown method {method!r}; use one of '
                      f'{", ".join(methods_lib.RECORDS)}')
  record = methods_lib.RECORDS[method]
  config_cls = record.config
  values = ({**record.switches, **table[method]} if method in table else
            {**table.get(record.base or method, {}), **record.switches})
  unknown = sorted(set(values) - set(config_cls._fields))
  if unknown:
    raise ConfigError(f'the config sets {unknown[0]!r}, which method '
                      f'{method} does not take (it takes '
                      f'{", ".join(config_cls._fields)}); fix the config')
  return schema.MethodConfig(method, config_cls(**values))


def benchmark_config(dataset: str, method: str, model: str,
                     table: dict[str, dict[str, Any]],
                     **data: Any) -> RunConfig:
  """The run of `method` on `dataset` with Table I's size, `model`, the
  method's values from `table` and other `data` settings (`DataConfig`'s):
  what each benchmark's `get_config` gives."""
  bench = data_lib.RECORDS[dataset]
  return RunConfig(
      method=method_config(method, table),
      data=schema.DataConfig(name=dataset, num_tasks=bench.num_tasks,
                             samples_per_task=bench.samples_per_task, **data),
      model=schema.ModelConfig(name=model))


def table_source(dataset: str, model: str) -> str:
  """The benchmark whose method values a run of `model` on `dataset`
  starts from: `dataset`, or `VISION_TABLE` for a CNN on a benchmark whose
  own model is the MLP (`CNNS`)."""
  module = importlib.import_module(f'emcl_jax.configs.{dataset}')
  if model in CNNS and module.MODEL not in CNNS:
    return VISION_TABLE
  return dataset


def get_config(dataset: str = 'mnist_permutations', method: str = 'emcl',
               overrides: Optional[dict[str, Any]] = None) -> RunConfig:
  """The whole run of `method` on `dataset`, with `overrides` ({dotted
  path: value}) over it. A `model.name` among them that is a CNN on an MLP
  benchmark brings the CNNs' method values with it (`table_source`).

  Raises:
    ConfigError: unknown benchmark, method or setting, or a bad value.
  """
  if dataset not in BENCHMARKS:
    raise ConfigError(f'unknown dataset {dataset!r}; use one of '
                      f'{", ".join(BENCHMARKS)}')
  module = importlib.import_module(f'emcl_jax.configs.{dataset}')
  config = module.get_config(method)
  overrides = overrides or {}
  source = table_source(dataset,
                        overrides.get('model.name', config.model.name))
  if source != dataset:
    table = importlib.import_module(f'emcl_jax.configs.{source}').TABLE
    params = method_config(method, table).params
    own = config.method.params
    params = params._replace(**{f: getattr(own, f) for f in _BENCHMARK_FIELDS
                                if f in params._fields})
    config = dataclasses.replace(
        config, method=schema.MethodConfig(method, params))
  return schema.override(config, overrides)


def resolve(config: RunConfig) -> RunConfig:
  """`config` as a run uses it: the data source 'auto' made explicit (the
  folder when `data.dir` is given, else the bundled MNIST subset), the
  folder absolute (`flat` leaves out the cache folder of a download: the
  official archive, checked by its MD5, is the same data wherever it is
  kept); checked whole.

  Raises:
    ConfigError: a setting that cannot apply to this benchmark or model,
      or an invalid value.
  """
  data, model, protocol = config.data, config.model, config.protocol
  dataset = data.name
  if dataset not in BENCHMARKS:
    raise ConfigError(f'unknown dataset {dataset!r}; use one of '
                      f'{", ".join(BENCHMARKS)}')
  for path in ('seeds', 'data.num_tasks', 'data.samples_per_task',
               'protocol.batch_size', 'protocol.epochs'):
    value = schema.get(config, path)
    if value is not None and value <= 0:
      raise ConfigError(f'{path} must be a positive integer, got {value}')
  if config.seed < 0:
    raise ConfigError(f'seed must be >= 0, got {config.seed}')
  if not 0 <= data.validation < 1:
    raise ConfigError(f'data.validation={data.validation} must be in [0, '
                      '1): the fraction of each task held out, e.g. 0.1')
  name = config.output.name
  if name is not None and not (files.inside(name) and name.strip('. ')
                               and not re.search(r'[/\\]', name)):
    raise ConfigError(f'output.name={name!r} is not a folder name inside '
                      '--workdir; give one name without / or .. (letters, '
                      'digits, - _ .)')
  split = dataset in data_lib.CLASS_SPLITS
  if data.class_order not in data_lib.CLASS_ORDERS:
    raise ConfigError(f'data.class_order={data.class_order!r} is not one of '
                      f'{", ".join(data_lib.CLASS_ORDERS)}')
  if not split and data.class_order != 'natural':
    raise ConfigError(f'data.class_order applies to the class-split '
                      f'benchmarks ({", ".join(data_lib.CLASS_SPLITS)}), '
                      f'not {dataset}; drop it')
  if protocol.eval not in ('task', 'class', 'both'):
    raise ConfigError(f'protocol.eval={protocol.eval!r} is not one of task, '
                      'class, both')
  if not split and protocol.eval != 'task':
    raise ConfigError(f'protocol.eval={protocol.eval} applies to the '
                      'class-split benchmarks (a single-head benchmark has '
                      'no task identity to drop); use task')
  if model.name not in models.MODELS:
    raise ConfigError(f'unknown model {model.name!r}; use one of '
                      f'{", ".join(models.MODELS)}')
  if model.norm is not None:
    if model.name != 'resnet18_reduced':
      raise ConfigError(f'model.norm applies to resnet18_reduced, not '
                        f'{model.name}; drop it')
    try:
      models.norm_layer(model.norm)
    except ValueError as e:
      raise ConfigError(f'model.norm: {e}') from None
  try:
    config.method.params.validate()
  except ValueError as e:
    raise ConfigError(f'method.{e}') from None
  source = data.source
  if source == 'auto' and dataset in data_lib.DOWNLOADS:
    # The folder's files when it holds them, else the official archive
    # fetched there: 'download' without a folder.
    source = 'auto' if data.dir is not None else 'download'
  elif source == 'auto' and data.dir is not None:
    source = 'dir'
  elif source == 'auto' and dataset in data_lib.BUNDLED:
    source = 'bundled'
  return dataclasses.replace(config, data=dataclasses.replace(
      data, source=source,
      dir=None if data.dir is None else os.path.abspath(data.dir)))


def model_label(model: schema.ModelConfig) -> str:
  """The model's name, with its normalisation when not the default:
  'resnet18_reduced(norm=batch)'."""
  if model.norm in (None, 'group'):
    return model.name
  return f'{model.name}(norm={model.norm})'


# Method fields added after runs were made with their method, with the value
# that gives the earlier behaviour: `flat` leaves a field out at that value,
# so the earlier runs keep their config hash (and resume, and summarise).
ADDED_LATER = {'inner_batches': None, 'inner_relu': True,
               'inner_clamp': False}


def flat(config: RunConfig) -> dict[str, Any]:
  """The `config` entry of a run's results (and of its hash): every
  hyper-parameter of the method, then the benchmark's size, batch size,
  model, class order, data source and folder, evaluation mode and epochs,
  and the validation fraction when one is held out. The validation at 0 and
  the fields of `ADDED_LATER` at their values are left out, so runs made
  before they existed keep their hash."""
  held_out = config.data.validation
  params = {k: v for k, v in config.method.params._asdict().items()
            if k not in ADDED_LATER or v != ADDED_LATER[k]}
  return {**params,
          'num_tasks': config.data.num_tasks,
          'samples_per_task': config.data.samples_per_task,
          'batch_size': config.protocol.batch_size,
          'model': model_label(config.model),
          'class_order': config.data.class_order,
          'data_source': config.data.source,
          'data_dir': (None if config.data.source == 'download'
                       else config.data.dir),
          'eval': config.protocol.eval, 'epochs': config.protocol.epochs,
          **({'validation': held_out} if held_out else {})}


def load_module(path: str, function: str = 'get_config',
                flag: str = '--config'):
  """The Python file at `path` as a module that defines `function`.

  Raises:
    ConfigError: missing file, a file that fails to load, or no `function`.
  """
  if not os.path.isfile(path):
    raise ConfigError(f'{flag} {path} is not a file; give a Python file '
                      f'defining {function}()')
  spec = importlib.util.spec_from_file_location('user_config', path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f'{flag} {path} failed to load: '
                      f'{type(e).__name__}: {e}') from None
  if not callable(getattr(module, function, None)):
    raise ConfigError(f'{flag} {path} defines no {function}()')
  return module


def load_config(spec: str) -> RunConfig:
  """The run config of a config file, as flax's examples and big_vision
  read one: `spec` is FILE or FILE:ARG, and the file's `get_config(ARG)`
  (`get_config()` without ARG) returns a `RunConfig` (a benchmark's module
  of this folder is such a file: `emcl_jax/configs/cifar100.py:lamaml`).

  Raises:
    ConfigError: missing file, no get_config, it raises, or it returns
      something else than a RunConfig.
  """
  path, sep, arg = spec.partition(':')
  module = load_module(path)
  try:
    config = module.get_config(arg) if sep else module.get_config()
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f'--config {spec} failed: get_config() raised '
                      f'{type(e).__name__}: {e}') from None
  if not isinstance(config, RunConfig):
    raise ConfigError(
        f'--config {spec}: get_config() returned a {type(config).__name__}, '
        'not a RunConfig; return emcl_jax.configs.get_config(dataset, '
        "method, {'method.beta': 0.05}) or a change of one")
  return config


__all__ = ['BENCHMARKS', 'ConfigError', 'RunConfig', 'benchmark_config',
           'flat', 'get_config', 'load_config', 'load_module', 'method_config',
           'model_label', 'resolve', 'schema']
