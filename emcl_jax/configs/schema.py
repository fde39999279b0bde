"""A run as one typed config: a tree of frozen dataclasses.

  RunConfig
    seed, seeds        the first seed and how many (seed..seed+seeds-1)
    data               DataConfig: benchmark, size, source, class order
    model              ModelConfig: network and its normalisation
    protocol           ProtocolConfig: batch size, epochs, evaluation
    method             MethodConfig: the method's name and its own fields
                       (the `*Config` NamedTuple of emcl_jax/methods/)
    output             OutputConfig: work directory, writers, progress

Every setting has a dotted path (`data.num_tasks`, `method.beta`) and a
one-line meaning: the `help` metadata of a dataclass field, or the
`Attributes:` entry of the method config's docstring. `replace(config,
path, value)` gives a new config with one setting changed; `settings`
lists every (path, value, meaning). Building a config for a benchmark is
`emcl_jax.configs.get_config`.
"""

import dataclasses
import difflib
import inspect
import math
import typing
from typing import Any, Iterator, NamedTuple, Optional


def _field(default: Any, help_text: str) -> Any:
  return dataclasses.field(default=default, metadata={'help': help_text})


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The benchmark and how much of it a run reads."""
  name: str = _field('mnist_permutations', 'the benchmark '
                     '(emcl_jax.data.BENCHMARKS)')
  num_tasks: Optional[int] = _field(None, 'tasks T (None: Table I\'s)')
  samples_per_task: Optional[int] = _field(
      None, 'training samples per task (None: Table I\'s; all of a task\'s '
      'images for the class-split benchmarks)')
  source: str = _field('auto', "where the data comes from: 'auto' (data.dir's "
                       "files if given; else the bundled MNIST subset, or "
                       "CIFAR-100's and TinyImageNet's official archive "
                       "downloaded once), 'dir', 'download', 'tfds', "
                       "'bundled'")
  dir: Optional[str] = _field(None, 'the folder of the data files (MNIST '
                              'IDX, cifar-100-python, tiny-imagenet-200, '
                              '...), and the download cache (default: '
                              '$EMCL_JAX_DATA, else ~/.cache/emcl_jax)')
  class_order: str = _field('natural', "class-split benchmarks: 'natural' "
                            "or 'random' (drawn from the seed)")
  validation: float = _field(0.0, "fraction of each task's training samples "
                             'held out as its validation set, scored after '
                             'every task (val_* results); 0: none')


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The network (emcl_jax.models.MODELS)."""
  name: str = _field('mlp', "'mlp', 'resnet18_reduced' or 'pc_cnn' "
                     "(default: the benchmark's)")
  norm: Optional[str] = _field(None, "resnet18_reduced only: 'group' "
                               "(None: GroupNorm, 4 groups), 'instance', "
                               "'layer', 'batch' (frozen statistics), 'none'")


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
  """How the tasks are streamed and scored (the engine's arguments)."""
  batch_size: int = _field(10, 'incoming batch size (the paper: 10)')
  epochs: int = _field(1, "passes over each task's stream (the replay "
                       'memory takes the first only)')
  eval: str = _field('task', "class-split benchmarks: 'task' "
                     "(task-incremental), 'class' (class-incremental) or "
                     "'both' (class numbers under *_class keys)")


@dataclasses.dataclass(frozen=True)
class OutputConfig:
  """Where a run writes and what it shows; never part of the config hash."""
  workdir: str = _field('runs', 'root of the run folders '
                        '{workdir}/{dataset}/{name}/{config_hash}/seed{s}/')
  name: Optional[str] = _field(None, "the run's label, its folder under the "
                               'dataset (None: the method)')
  checkpoint: bool = _field(True, 'save after every task, so that the same '
                            'command resumes a stopped run')
  overwrite: bool = _field(False, 'run a finished run again (its folder is '
                           'started over)')
  tensorboard: bool = _field(False, 'also write TensorBoard events')
  csv: bool = _field(True, 'also write metrics.csv')
  progress: bool = _field(True, 'progress on stderr (a bar on a terminal, '
                          'a line every 10 s otherwise)')
  verbose: bool = _field(False, 'print a line after every task')
  overlap_eval: bool = _field(False, 'evaluate task t on a second thread '
                              'while task t+1 trains (one seed)')


class MethodConfig(NamedTuple):
  """A method: its name (emcl_jax.methods.METHODS) and its own
  hyper-parameters, `params`, an instance of the method's config class."""
  name: str
  params: Any

  def __getattr__(self, field: str) -> Any:
    # config.method.beta reads the method's own field.
    if field.startswith('_'):
      raise AttributeError(field)
    try:
      return getattr(self.params, field)
    except AttributeError:
      raise AttributeError(f'method {self.name} has no setting {field!r}'
                           ) from None


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One run, or one group of seeds of it, end to end."""
  method: MethodConfig
  seed: int = _field(0, 'the first seed (data draws, init, replay)')
  seeds: int = _field(1, 'number of seeds, seed..seed+seeds-1')
  data: DataConfig = DataConfig()
  model: ModelConfig = ModelConfig()
  protocol: ProtocolConfig = ProtocolConfig()
  output: OutputConfig = OutputConfig()

  @property
  def dataset(self) -> str:
    return self.data.name

  @property
  def seed_list(self) -> list[int]:
    return list(range(self.seed, self.seed + self.seeds))


SECTIONS = ('data', 'model', 'protocol', 'method', 'output')


class Setting(NamedTuple):
  """One setting of a config: its dotted path, value, type and meaning."""
  path: str
  value: Any
  type: type
  help: str


def field_docs(cls: type) -> dict[str, str]:
  """The `Attributes:` entries of a class docstring (Google style), each
  joined into one line: {field: meaning}."""
  docs, name, inside = {}, None, False
  for line in inspect.cleandoc(cls.__doc__ or '').splitlines():
    if line.strip() == 'Attributes:':
      inside = True
      continue
    if not inside:
      continue
    if line and not line.startswith(' '):
      break  # the next section
    text = line.strip()
    indent = len(line) - len(line.lstrip())
    head, sep, rest = text.partition(': ')
    if indent <= 2 and sep and head.isidentifier():
      name = head
      docs[name] = rest
    elif name is not None and text:
      docs[name] += ' ' + text
  return docs


def _type_of(annotation: Any, default: Any) -> type:
  """The value type of a field: bool, int, float or str (Optional
  unwrapped)."""
  args = [a for a in typing.get_args(annotation) if a is not type(None)]
  if args:
    annotation = args[0]
  if annotation in (bool, int, float, str):
    return annotation
  return type(default) if default is not None else str


def settings(config: RunConfig) -> Iterator[Setting]:
  """Every setting of `config`, section by section, with its meaning."""
  for f in dataclasses.fields(config):
    if f.name in ('seed', 'seeds'):
      yield Setting(f.name, getattr(config, f.name), int, f.metadata['help'])
  for section in SECTIONS:
    value = getattr(config, section)
    if section == 'method':
      yield Setting('method.name', value.name, str,
                    'the method (emcl_jax.methods.METHODS)')
      cls = type(value.params)
      docs = field_docs(cls)
      hints = typing.get_type_hints(cls)
      for name in cls._fields:
        default = getattr(value.params, name)
        yield Setting(f'method.{name}', default,
                      _type_of(hints.get(name), default), docs.get(name, ''))
      continue
    hints = typing.get_type_hints(type(value))
    for f in dataclasses.fields(value):
      yield Setting(f'{section}.{f.name}', getattr(value, f.name),
                    _type_of(hints[f.name], f.default), f.metadata['help'])


def get(config: RunConfig, path: str) -> Any:
  """The value at a dotted path."""
  value = config
  for part in path.split('.'):
    value = getattr(value, part)
  return value


class ConfigError(ValueError):
  """A setting that does not exist, or a value it cannot take."""


def closest(path: str, config: RunConfig) -> str:
  """`unknown setting X` with the closest valid path, as one line."""
  paths = [s.path for s in settings(config)]
  near = difflib.get_close_matches(path, paths, n=1, cutoff=0.5)
  if not near:  # a field name without its section: 'beta' -> 'method.beta'
    near = [p for p in paths if p.rsplit('.', 1)[-1] == path][:1]
  hint = f'did you mean {near[0]}? ' if near else ''
  return (f'unknown setting {path!r} for method {config.method.name}; '
          f'{hint}--print_config lists every setting')


def _a(kind: type) -> str:
  """'an int', 'a float', 'a bool', 'a str'."""
  return ('an ' if kind.__name__[0] in 'aeiou' else 'a ') + kind.__name__


def parse(kind: type, path: str, text: str) -> Any:
  """`text` as a value of type `kind` ('none' is None)."""
  if text.lower() in ('none', 'null'):
    return None
  try:
    if kind is bool:
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError
      return text.lower() in ('true', '1')
    value = kind(text)
  except ValueError:
    raise ConfigError(f'{path}={text!r} is not {_a(kind)}; give '
                      f'{_a(kind)}') from None
  if isinstance(value, float) and not math.isfinite(value):
    raise ConfigError(f'{path} must be a finite number, got {text}')
  return value


def replace(config: RunConfig, path: str, value: Any) -> RunConfig:
  """`config` with the setting at `path` set to `value` (a string is parsed
  as the setting's type).

  Raises:
    ConfigError: no such setting, or a value of the wrong type.
  """
  found = {s.path: s for s in settings(config)}
  if path not in found:
    raise ConfigError(closest(path, config))
  kind = found[path].type
  if isinstance(value, str) and kind is not str:
    value = parse(kind, path, value)
  elif value is not None and (
      not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)
  ) and not (kind is float and isinstance(value, int)
             and not isinstance(value, bool)):
    raise ConfigError(f'{path}={value!r} is not {_a(kind)}; give '
                      f'{_a(kind)}')
  if kind is float and value is not None:
    value = float(value)
    if not math.isfinite(value):
      raise ConfigError(f'{path} must be a finite number, got {value}')
  if path in ('seed', 'seeds'):
    return dataclasses.replace(config, **{path: value})
  section, name = path.split('.', 1)
  if section == 'method':
    method = config.method
    if name == 'name':
      raise ConfigError('the method is chosen with --method, not '
                        'method.name; its fields then take its defaults')
    return dataclasses.replace(config, method=method._replace(
        params=method.params._replace(**{name: value})))
  return dataclasses.replace(config, **{section: dataclasses.replace(
      getattr(config, section), **{name: value})})


def override(config: RunConfig, values: dict[str, Any]) -> RunConfig:
  """`replace` for every (path, value) of `values`, in order."""
  for path, value in values.items():
    config = replace(config, path, value)
  return config
