"""One run of the protocol, end to end, and its results file.

`run(dataset, method, seed, ...)` loads the benchmark, builds the model and
the method from Table II's defaults plus overrides, trains through the
engine and returns the results dictionary that `write_results` stores as
`{dataset}_{name}_seed{seed}.json`. Schema (all keys always present):

  schema_version  int, 1
  dataset, method str;  seed int
  name            str: the run's label, the method's name unless given
                  (ablations of one method get their own names)
  config          dict: every hyper-parameter used, plus num_tasks,
                  samples_per_task, batch_size
  versions        dict: emcl_jax, jax, jaxlib, flax, optax, numpy, python
  data_source     str: 'bundled:mnist-5k', 'dir:/abs/path' or 'tfds:mnist'
  device          str: the JAX backend the run used
  accuracy_matrix list of T lists of T floats, fractions in [0, 1];
                  [i][j] = accuracy on task j after training task i
                  (one list for `joint`, trained on one shuffled stream)
  acc, bwt, la    float, percent (Eq 22, Eq 23, mean of the diagonal;
                  for `joint` bwt is 0 and la equals acc)
  train_seconds   float: compiled training calls only
  compile_seconds, eval_seconds, total_seconds   float
  loop_seconds    float: wall time of the loop over tasks (training and
                  evaluation, which may overlap with --overlap_eval)
  task_losses     list of T floats: mean training loss per task
  task_train_seconds  list of T floats: each task's training seconds
  peak_rss_bytes  int: the process's peak resident memory so far (host;
                  data loading included)
  device_peak_bytes  int or None: peak bytes the JAX allocator held on the
                  device (GPU); None where the backend does not say (CPU)
  parallel_seeds  int, only for seeds run together by `run_seeds`: how many
                  (the timings are then the whole program's)
"""

import json
import os
import platform
import re
import resource
import sys
import tempfile
from typing import Any, Callable, NamedTuple, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax

import emcl_jax
from emcl_jax.training import checkpoint as checkpoint_lib
from emcl_jax import data as data_lib
from emcl_jax.training import engine
from emcl_jax import configs
from emcl_jax.reporting import writers
from emcl_jax import losses
from emcl_jax.reporting import metrics
from emcl_jax import models
from emcl_jax.base import Batch
from emcl_jax.data import tasks as tasks_lib
from emcl_jax.methods import JOINT, METHODS, VARIANTS

SCHEMA_VERSION = 1


def method_config(dataset: str, method: str, overrides: dict[str, Any],
                  config_file: Optional[str] = None):
  """The method's config: class defaults < variant < the benchmark's
  `get_config()` (Table II; merged with `config_file`'s) < overrides.

  Raises:
    ValueError: unknown method, an override the method does not take, or an
      invalid value.
  """
  if method not in METHODS:
    raise ValueError(f'unknown method {method!r}; use one of '
                     f'{", ".join(METHODS)}')
  _, config_cls = METHODS[method]
  unknown = sorted(set(overrides) - set(config_cls._fields))
  if unknown:
    raise ValueError(f'--{unknown[0]} does not apply to --method={method} '
                     f'(it takes {", ".join(config_cls._fields)}); drop it')
  table = configs.defaults(configs.get_config(dataset, config_file), method)
  values = {**VARIANTS.get(method, {}), **table, **overrides}
  return config_cls(**values).validate()


class Hyperparameter(NamedTuple):
  """A config field of one or more methods: its type, the methods that take
  it, and the one-line description from the config's docstring."""
  type: type
  methods: tuple[str, ...]
  help: str


def hyperparameters() -> dict[str, Hyperparameter]:
  """Every config field of every method in `METHODS`, for the launch flags.

  Raises:
    TypeError: two methods give one field name defaults of different types.
  """
  fields: dict[str, Hyperparameter] = {}
  for name, (_, config_cls) in METHODS.items():
    docs = dict(re.findall(r'^\s+(\w+): (.+)$', config_cls.__doc__ or '',
                           re.MULTILINE))
    for field in config_cls._fields:
      kind = type(config_cls._field_defaults[field])
      if field in fields:
        if fields[field].type is not kind:
          raise TypeError(f'{field} is a {fields[field].type.__name__} in '
                          f'{fields[field].methods} but a {kind.__name__} in '
                          f'{name}')
        fields[field] = fields[field]._replace(
            methods=fields[field].methods + (name,))
      else:
        fields[field] = Hyperparameter(kind, (name,), docs.get(field, ''))
  return fields


class Setup(NamedTuple):
  """Everything a run trains with, built from its flags (see `setup`).

  Attributes:
    config: the method's hyper-parameters.
    tasks: the benchmark (merged into one stream for `joint`).
    apply_fn: the model, apply_fn(params, x) -> logits.
    params: the model's initial parameters.
    method: the method's init/update pair, its loss bound.
    key: PRNG key of the training run (the model's was split off it).
    model: the model's name ('custom' when built by a model_fn), with the
      normalisation when one was chosen: 'resnet18_reduced(norm=batch)'.
  """
  config: Any
  tasks: tasks_lib.TaskSet
  apply_fn: Callable[..., Any]
  params: Any
  method: Any
  key: Any
  model: str = 'mlp'


def setup(dataset: str = 'mnist_permutations', method: str = 'emcl',
          seed: int = 0, *, overrides: Optional[dict[str, Any]] = None,
          num_tasks: Optional[int] = None,
          samples_per_task: Optional[int] = None, batch_size: int = 10,
          data_source: str = 'auto', data_dir: Optional[str] = None,
          model_fn: Optional[Callable[[int], Any]] = None,
          config_file: Optional[str] = None, model: Optional[str] = None,
          class_order: str = 'natural', norm: Optional[str] = None) -> Setup:
  """Loads the data and builds the model and the method of one run.

  Args:
    model_fn: model_fn(num_classes) -> flax module; default: `model`.
    model: a name of `models.MODELS`; default: the benchmark config's.
    class_order: 'natural' or 'random' (class-split benchmarks).
    norm: the ResNet's normalisation (`models.ResNet18Reduced`; default
      'group'); an error for the MLP.
    config_file: a Python file whose get_config() is merged over the
      benchmark's (emcl_jax.configs).

  Raises:
    ValueError: bad configuration. DataError: bad data.
  """
  for flag, value in (('num_tasks', num_tasks),
                      ('samples_per_task', samples_per_task),
                      ('batch_size', batch_size)):
    if value is not None and value <= 0:
      raise ValueError(f'--{flag} must be a positive integer, got {value}')
  config = method_config(dataset, method, overrides or {}, config_file)
  model = model or configs.get_config(dataset, config_file)['model']
  if model not in models.MODELS:
    raise ValueError(f'unknown model {model!r}; use one of '
                     f'{", ".join(models.MODELS)}')
  model_kwargs = {}
  if norm is not None:
    if model != 'resnet18_reduced':
      raise ValueError(f'--norm applies to --model=resnet18_reduced, not '
                       f'{model}; drop it')
    models.norm_layer(norm)  # an unknown norm fails before the data loads
    model_kwargs['norm'] = norm
  tasks = data_lib.load(dataset, num_tasks=num_tasks,
                        samples_per_task=samples_per_task, seed=seed,
                        data_source=data_source, data_dir=data_dir,
                        class_order=class_order)
  tasks = tasks_lib.task_ordered_labels(tasks)
  max_tasks = getattr(config, 'max_tasks', None)
  if max_tasks is not None and max_tasks < tasks.num_test_tasks:
    raise ValueError(f'--max_tasks={max_tasks} is less than the '
                     f'{tasks.num_test_tasks} tasks of {dataset}: tasks would '
                     f'share memory rows; set --max_tasks='
                     f'{tasks.num_test_tasks}')
  if method in JOINT:
    tasks = tasks_lib.joint(tasks, seed)

  module = (model_fn or (lambda n: models.make(model, n, **model_kwargs)))(
      tasks.num_classes)
  key_model, key_run = jax.random.split(jax.random.PRNGKey(seed))
  params = jax.jit(module.init)(
      key_model, jnp.zeros((1,) + tasks.train_x.shape[2:],
                           tasks.train_x.dtype))
  example = Batch(jnp.asarray(tasks.train_x[0, :batch_size]),
                  jnp.asarray(tasks.train_y[0, :batch_size]),
                  jnp.zeros((batch_size,), jnp.int32))
  factory, _ = METHODS[method]
  algo = factory(losses.cross_entropy(module.apply, tasks.class_mask),
                 example, config)
  label = 'custom' if model_fn else model
  if norm is not None and norm != 'group':
    label += f'(norm={norm})'
  return Setup(config, tasks, module.apply, params, algo, key_run, label)


def run(dataset: str = 'mnist_permutations', method: str = 'emcl',
        seed: int = 0, *, overrides: Optional[dict[str, Any]] = None,
        num_tasks: Optional[int] = None,
        samples_per_task: Optional[int] = None, batch_size: int = 10,
        data_source: str = 'auto', data_dir: Optional[str] = None,
        log_fn: Optional[Callable[[str], None]] = None,
        batch_fn: Optional[Callable[..., None]] = None,
        name: Optional[str] = None,
        overlap_eval: bool = False,
        checkpoint_dir: Optional[str] = None,
        resume: bool = False,
        config_file: Optional[str] = None, model: Optional[str] = None,
        class_order: str = 'natural',
        norm: Optional[str] = None) -> dict[str, Any]:
  """Runs one (dataset, method, seed) and returns the results dictionary.

  With `checkpoint_dir` the run is saved after every task; `resume`
  continues it from the latest save (`emcl_jax.checkpoint`). `log_fn` and
  `batch_fn` are the engine's (`engine.train_and_evaluate`), e.g. a
  `writers.RunLog` and its `batch`.

  Raises:
    ValueError: bad configuration. DataError: bad data.
    NonFiniteLossError: the loss diverged.
  """
  s = setup(dataset, method, seed, overrides=overrides, num_tasks=num_tasks,
            samples_per_task=samples_per_task, batch_size=batch_size,
            data_source=data_source, data_dir=data_dir,
            config_file=config_file, model=model, class_order=class_order,
            norm=norm)
  ckpt = _checkpointer(checkpoint_dir, resume, dataset, method, name,
                       (seed,), s.config, [s.tasks], batch_size, s.model)
  try:
    result = engine.train_and_evaluate(
        s.method, s.apply_fn, s.params, s.tasks, batch_size=batch_size,
        key=s.key, log_fn=log_fn, overlap_eval=overlap_eval,
        checkpointer=ckpt, batch_fn=batch_fn)
  finally:
    if ckpt is not None:
      ckpt.close()
  return _results(dataset, method, seed, name, s, batch_size, class_order,
                  result.accuracy_matrix, result.task_losses, result)


def run_seeds(dataset: str = 'mnist_permutations', method: str = 'emcl',
              seeds: Sequence[int] = (0, 1, 2, 3, 4), *,
              overrides: Optional[dict[str, Any]] = None,
              num_tasks: Optional[int] = None,
              samples_per_task: Optional[int] = None, batch_size: int = 10,
              data_source: str = 'auto', data_dir: Optional[str] = None,
              log_fn: Optional[Callable[[str], None]] = None,
              batch_fn: Optional[Callable[..., None]] = None,
              name: Optional[str] = None, shard: bool = True,
              checkpoint_dir: Optional[str] = None,
              resume: bool = False,
              config_file: Optional[str] = None, model: Optional[str] = None,
              class_order: str = 'natural',
              norm: Optional[str] = None) -> list[dict[str, Any]]:
  """Runs several seeds as one vmapped program (sharded over the devices
  when `shard`); returns one results dictionary per seed, as `run` would.

  Every seed keeps its own initialisation, data and PRNG stream. The
  timings are those of the whole program (all seeds together) and the
  results record `parallel_seeds`.
  """
  if not seeds:
    raise ValueError('--seeds must name at least one seed')
  setups = [setup(dataset, method, seed, overrides=overrides,
                  num_tasks=num_tasks, samples_per_task=samples_per_task,
                  batch_size=batch_size, data_source=data_source,
                  data_dir=data_dir, config_file=config_file, model=model,
                  class_order=class_order, norm=norm)
            for seed in seeds]
  first = setups[0]
  params = jax.tree.map(lambda *a: jnp.stack(a), *(s.params for s in setups))
  keys = jnp.stack([s.key for s in setups])
  mesh = engine.seed_mesh(len(seeds)) if shard else None
  ckpt = _checkpointer(checkpoint_dir, resume, dataset, method, name,
                       tuple(seeds), first.config, [s.tasks for s in setups],
                       batch_size, first.model)
  try:
    result = engine.train_and_evaluate_seeds(
        first.method, first.apply_fn, params, [s.tasks for s in setups],
        batch_size=batch_size, keys=keys, mesh=mesh, log_fn=log_fn,
        checkpointer=ckpt, batch_fn=batch_fn)
  finally:
    if ckpt is not None:
      ckpt.close()
  return [
      {**_results(dataset, method, seed, name, s, batch_size, class_order,
                  result.accuracy_matrix[i], result.task_losses[i], result),
       'parallel_seeds': len(seeds)}
      for i, (seed, s) in enumerate(zip(seeds, setups))]


def _checkpointer(checkpoint_dir, resume, dataset, method, name, seeds,
                  config, tasks, batch_size, model):
  """The run's `Checkpointer`, or None without a checkpoint_dir."""
  if checkpoint_dir is None:
    if resume:
      raise ValueError('--resume needs --checkpoint_dir (the folder of the '
                       'run to continue)')
    return None
  fingerprint = {
      'dataset': dataset, 'method': method, 'name': name or method,
      'seeds': list(seeds), 'config': config._asdict(),
      'batch_size': batch_size, 'model': model,
      'shapes': [list(t.train_x.shape) for t in tasks][:1],
      'data': checkpoint_lib.data_checksum(
          *(a for t in tasks for a in (t.train_x, t.train_y, t.test_y))),
      'emcl_jax': emcl_jax.__version__}
  return checkpoint_lib.Checkpointer(checkpoint_dir, fingerprint,
                                     resume=resume)


def _results(dataset, method, seed, name, s, batch_size, class_order,
             r, task_losses, result) -> dict[str, Any]:
  """The results dictionary (module docstring) of one seed."""
  config, tasks = s.config, s.tasks
  return {
      'schema_version': SCHEMA_VERSION,
      'dataset': dataset,
      'method': method,
      'name': name or method,
      'seed': seed,
      'config': {**config._asdict(), 'num_tasks': tasks.num_test_tasks,
                 'samples_per_task': int(tasks.train_y.size
                                         // tasks.num_test_tasks),
                 'batch_size': batch_size, 'model': s.model,
                 'class_order': class_order},
      'versions': versions(),
      'data_source': tasks.source,
      'device': jax.default_backend(),
      'accuracy_matrix': np.asarray(r).tolist(),
      **metrics.summary(np.asarray(r)),
      'train_seconds': result.train_seconds,
      'compile_seconds': result.compile_seconds,
      'eval_seconds': result.eval_seconds,
      'total_seconds': result.total_seconds,
      'loop_seconds': result.loop_seconds,
      'task_losses': np.asarray(task_losses).tolist(),
      'task_train_seconds': np.asarray(result.task_train_seconds).tolist(),
      **peak_memory(),
  }


def peak_rss_bytes() -> int:
  """Peak resident memory of this process so far (getrusage), in bytes."""
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return int(rss) * (1 if sys.platform == 'darwin' else 1024)  # Linux: KiB


def peak_memory() -> dict[str, Optional[int]]:
  """`peak_rss_bytes` (this process) and `device_peak_bytes` (the default
  device's allocator; None on CPU)."""
  try:
    stats = jax.devices()[0].memory_stats() or {}
  except Exception:  # pylint: disable=broad-except
    stats = {}
  peak = stats.get('peak_bytes_in_use')
  return {'peak_rss_bytes': peak_rss_bytes(),
          'device_peak_bytes': None if peak is None else int(peak)}


def versions() -> dict[str, str]:
  return {'emcl_jax': emcl_jax.__version__, 'jax': jax.__version__,
          'jaxlib': jaxlib.__version__, 'flax': flax.__version__,
          'optax': optax.__version__, 'numpy': np.__version__,
          'python': platform.python_version()}


def results_path(output_dir: str, dataset: str, name: str, seed: int) -> str:
  return os.path.join(output_dir, f'{dataset}_{name}_seed{seed}.json')


def run_log(output_dir: str, dataset: str, name: str, seeds: Sequence[int],
            *, tensorboard: bool = False, resume: bool = False,
            echo: Optional[Callable[[str], None]] = None,
            progress: bool = True) -> writers.RunLog:
  """The `writers.RunLog` of a run (one seed, or seeds run together):
  `{output_dir}/logs/{stem}.jsonl` and, with `tensorboard`,
  `{output_dir}/tensorboard/{stem}/`, where stem is
  `{dataset}_{name}_seed{s}` or `{dataset}_{name}_seeds{first}-{last}`."""
  seeds = list(seeds)
  stem = (f'{dataset}_{name}_seed{seeds[0]}' if len(seeds) == 1 else
          f'{dataset}_{name}_seeds{seeds[0]}-{seeds[-1]}')
  label = f'{dataset} {name} ' + (f'seed {seeds[0]}' if len(seeds) == 1
                                  else f'seeds {seeds[0]}-{seeds[-1]}')
  return writers.RunLog(
      label, os.path.join(output_dir, 'logs', stem + '.jsonl'),
      os.path.join(output_dir, 'tensorboard', stem) if tensorboard else None,
      append=resume, echo=echo, progress=progress)


def write_results(results: dict[str, Any], output_dir: str) -> str:
  """Writes the results JSON atomically (temp file, then rename)."""
  os.makedirs(output_dir, exist_ok=True)
  path = results_path(output_dir, results['dataset'], results['name'],
                      results['seed'])
  fd, tmp = tempfile.mkstemp(dir=output_dir, prefix='.tmp-', suffix='.json')
  try:
    with os.fdopen(fd, 'w') as f:
      json.dump(results, f, indent=1)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path
