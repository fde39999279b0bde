"""One run of the protocol, end to end, and its results file.

`run(dataset, method, seed, ...)` loads the benchmark, builds the model and
the method from Table II's defaults plus overrides, trains through the
engine and returns the results dictionary. `run_in_workdir` does the same
in each run's own folder (`training.workdir`): it resumes an unfinished run,
refuses to redo a finished one unless asked, feeds the metric writers and
stores the dictionary as `results.json`. Schema (all keys always present):

  schema_version  int, 2 (1: no config_hash, stream_length, fwt,
                  forgetting, init_accuracy, and config without
                  data_source, data_dir, eval, epochs)
  dataset, method str;  seed int
  name            str: the run's label, the method's name unless given
                  (ablations of one method get their own names)
  config          dict: `run_config`: every hyper-parameter used, plus
                  num_tasks, samples_per_task (None: all), batch_size,
                  model, class_order, data_source, data_dir, eval
                  ('task', 'class' or 'both'), epochs
  config_hash     str: `workdir.config_hash(dataset, method, config)`
  stream_length   int: training samples per task (one epoch)
  versions        dict: emcl_jax, jax, jaxlib, flax, optax, numpy, python
  data_source     str: 'bundled:mnist-5k', 'dir:/abs/path' or 'tfds:mnist'
  device          str: the JAX backend the run used
  accuracy_matrix list of T lists of T floats, fractions in [0, 1];
                  [i][j] = accuracy on task j after training task i
                  (one list for `joint`, trained on one shuffled stream)
  acc, bwt, la    float, percent (Eq 22, Eq 23, mean of the diagonal;
                  for `joint` bwt is 0 and la equals acc)
  fwt, forgetting float, percent: GEM's forward transfer and average
                  forgetting (`reporting.metrics`; 0 for `joint`)
  init_accuracy   list of T floats: the untrained model's accuracy on
                  every task (FWT's b)
  accuracy_matrix_class, acc_class, bwt_class, la_class,
  forgetting_class   only with config eval 'both': the class-incremental
                  matrix and its metrics (the unsuffixed keys are then the
                  task-incremental ones; with eval 'class' they are the
                  class-incremental ones)
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
import math
import os
import platform
import re
import resource
import shutil
import sys
from typing import Any, Callable, NamedTuple, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax

from emcl_jax import version
from emcl_jax import configs
from emcl_jax import data as data_lib
from emcl_jax import losses
from emcl_jax import models
from emcl_jax.base import Batch
from emcl_jax.data import tasks as tasks_lib
from emcl_jax.methods import JOINT, METHODS, VARIANTS
from emcl_jax.reporting import metrics
from emcl_jax.reporting import writers
from emcl_jax.training import checkpoint as checkpoint_lib
from emcl_jax.training import engine
from emcl_jax.training import workdir

SCHEMA_VERSION = 2


def method_config(dataset: str, method: str, overrides: dict[str, Any],
                  config_file: Optional[str] = None):
  """The method's config: class defaults < variant < the benchmark's
  `get_config()` (Table II; merged with `config_file`'s) < overrides.

  Raises:
    ValueError: unknown method, an override the method does not take, or an
      invalid value (NaN and infinities included).
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
  unknown = sorted(set(table) - set(config_cls._fields))
  if unknown:
    raise ValueError(f'the config sets {unknown[0]!r}, which --method='
                     f'{method} does not take (it takes '
                     f'{", ".join(config_cls._fields)}); fix the config')
  values = {**VARIANTS.get(method, {}), **table, **overrides}
  for name, value in values.items():
    if isinstance(value, float) and not math.isfinite(value):
      raise ValueError(f'{name} must be a finite number, got {value}')
  return config_cls(**values).validate()


def run_config(dataset: str = 'mnist_permutations', method: str = 'emcl',
               *, overrides: Optional[dict[str, Any]] = None,
               num_tasks: Optional[int] = None,
               samples_per_task: Optional[int] = None, batch_size: int = 10,
               data_source: str = 'auto', data_dir: Optional[str] = None,
               config_file: Optional[str] = None,
               model: Optional[str] = None, class_order: str = 'natural',
               norm: Optional[str] = None, eval_mode: str = 'task',
               epochs: int = 1) -> dict[str, Any]:
  """The `config` entry of a run's results, known before any data loads:
  every hyper-parameter (`method_config`), the benchmark's size (Table I's
  when not given; samples_per_task None: all of a task's images), batch
  size, model, class order, data source, evaluation mode and epochs. Its hash
  (`workdir.config_hash`) names the run's folder.

  Raises:
    ValueError: bad configuration. DataError: unknown dataset.
  """
  config = method_config(dataset, method, overrides or {}, config_file)
  if dataset not in data_lib.BENCHMARKS:
    raise data_lib.DataError(f'unknown dataset {dataset!r}; use one of '
                             f'{", ".join(data_lib.BENCHMARKS)}')
  default_tasks, default_samples = data_lib.BENCHMARKS[dataset]
  label = model or configs.get_config(dataset, config_file)['model']
  if norm not in (None, 'group'):
    label += f'(norm={norm})'
  return {**config._asdict(),
          'num_tasks': default_tasks if num_tasks is None else num_tasks,
          'samples_per_task': (default_samples if samples_per_task is None
                               else samples_per_task),
          'batch_size': batch_size, 'model': label,
          'class_order': class_order, 'data_source': data_source,
          'data_dir': None if data_dir is None else os.path.abspath(data_dir),
          'eval': eval_mode, 'epochs': epochs}


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
          class_order: str = 'natural', norm: Optional[str] = None,
          epochs: int = 1,
          tasks: Optional[tasks_lib.TaskSet] = None) -> Setup:
  """Loads the data and builds the model and the method of one run.

  Args:
    dataset: the benchmark (its config gives the defaults).
    epochs: passes over each task's stream (`tasks.repeat_epochs`).
    tasks: your own benchmark (`emcl_jax.data.from_arrays`) instead of
      loading `dataset`'s; `dataset` still names the config whose defaults
      apply.
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
                      ('batch_size', batch_size), ('epochs', epochs)):
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
  if tasks is None:
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
  tasks = tasks_lib.repeat_epochs(tasks, epochs, seed)

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
        record_fn: Optional[Callable[[engine.TaskRecord], None]] = None,
        batch_fn: Optional[Callable[..., None]] = None,
        name: Optional[str] = None,
        overlap_eval: bool = False,
        checkpoint_dir: Optional[str] = None,
        resume: bool = False,
        config_file: Optional[str] = None, model: Optional[str] = None,
        class_order: str = 'natural',
        norm: Optional[str] = None,
        eval_mode: str = 'task', epochs: int = 1,
        tasks: Optional[tasks_lib.TaskSet] = None) -> dict[str, Any]:
  """Runs one (dataset, method, seed) and returns the results dictionary.

  With `checkpoint_dir` the run is saved after every task; `resume`
  continues it from the latest save (`training.checkpoint`). `record_fn`
  and `batch_fn` are the engine's (`engine.train_and_evaluate`).
  `run_in_workdir` does all this in a run's own folder. `eval_mode` and
  `epochs` are the engine's; `tasks` replaces the benchmark's data (see
  `setup`).

  Raises:
    ValueError: bad configuration. DataError: bad data.
    NonFiniteLossError: the loss diverged.
  """
  spec = dict(overrides=overrides, num_tasks=num_tasks,
              samples_per_task=samples_per_task, batch_size=batch_size,
              data_source=data_source, data_dir=data_dir,
              config_file=config_file, model=model, class_order=class_order,
              norm=norm)
  s = setup(dataset, method, seed, epochs=epochs, tasks=tasks, **spec)
  config = _config_of(dataset, method, spec, eval_mode, epochs, tasks)
  ckpt = _checkpointer(checkpoint_dir, resume, dataset, method, name,
                       (seed,), s.config, [s.tasks], batch_size, s.model)
  try:
    result = engine.train_and_evaluate(
        s.method, s.apply_fn, s.params, s.tasks, batch_size=batch_size,
        key=s.key, record_fn=record_fn, overlap_eval=overlap_eval,
        checkpointer=ckpt, batch_fn=batch_fn, eval_mode=eval_mode,
        epochs=epochs)
  finally:
    if ckpt is not None:
      ckpt.close()
  return _results(dataset, method, seed, name, s, config, result)


def run_seeds(dataset: str = 'mnist_permutations', method: str = 'emcl',
              seeds: Sequence[int] = (0, 1, 2, 3, 4), *,
              overrides: Optional[dict[str, Any]] = None,
              num_tasks: Optional[int] = None,
              samples_per_task: Optional[int] = None, batch_size: int = 10,
              data_source: str = 'auto', data_dir: Optional[str] = None,
              record_fn: Optional[Callable[[engine.TaskRecord], None]] = None,
              batch_fn: Optional[Callable[..., None]] = None,
              name: Optional[str] = None, shard: bool = True,
              checkpoint_dir: Optional[str] = None,
              resume: bool = False,
              config_file: Optional[str] = None, model: Optional[str] = None,
              class_order: str = 'natural',
              norm: Optional[str] = None,
              eval_mode: str = 'task', epochs: int = 1,
              tasks: Optional[tasks_lib.TaskSet] = None) -> list[dict[str, Any]]:
  """Runs several seeds as one vmapped program (sharded over the devices
  when `shard`); returns one results dictionary per seed, as `run` would.

  Every seed keeps its own initialisation, data and PRNG stream. The
  timings are those of the whole program (all seeds together) and the
  results record `parallel_seeds`.
  """
  if not seeds:
    raise ValueError('--seeds must name at least one seed')
  spec = dict(overrides=overrides, num_tasks=num_tasks,
              samples_per_task=samples_per_task, batch_size=batch_size,
              data_source=data_source, data_dir=data_dir,
              config_file=config_file, model=model, class_order=class_order,
              norm=norm)
  setups = [setup(dataset, method, seed, epochs=epochs, tasks=tasks, **spec)
            for seed in seeds]
  config = _config_of(dataset, method, spec, eval_mode, epochs, tasks)
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
        batch_size=batch_size, keys=keys, mesh=mesh, record_fn=record_fn,
        checkpointer=ckpt, batch_fn=batch_fn, eval_mode=eval_mode,
        epochs=epochs)
  finally:
    if ckpt is not None:
      ckpt.close()
  return [
      {**_results(dataset, method, seed, name, s, config, result, i),
       'parallel_seeds': len(seeds)}
      for i, (seed, s) in enumerate(zip(seeds, setups))]


def _checkpointer(checkpoint_dir, resume, dataset, method, name, seeds,
                  config, tasks, batch_size, model):
  """The run's `Checkpointer`, or None without a checkpoint_dir."""
  if checkpoint_dir is None:
    if resume:
      raise ValueError('resume=True needs checkpoint_dir (the folder of the '
                       'run to continue)')
    return None
  fingerprint = {
      'dataset': dataset, 'method': method, 'name': name or method,
      'seeds': list(seeds), 'config': config._asdict(),
      'batch_size': batch_size, 'model': model,
      'shapes': [list(t.train_x.shape) for t in tasks][:1],
      'data': checkpoint_lib.data_checksum(
          *(a for t in tasks for a in (t.train_x, t.train_y, t.test_y))),
      'emcl_jax': version.__version__}
  return checkpoint_lib.Checkpointer(checkpoint_dir, fingerprint,
                                     resume=resume)


def _config_of(dataset, method, spec, eval_mode, epochs, tasks):
  """`run_config`, with the size and source of user `tasks` when given."""
  config = run_config(dataset, method, eval_mode=eval_mode, epochs=epochs,
                      **spec)
  if tasks is not None:
    config.update(num_tasks=tasks.num_test_tasks,
                  samples_per_task=int(tasks.train_y.shape[1]),
                  data_source=tasks.source, data_dir=None)
  return config


def _results(dataset, method, seed, name, s, config, result,
             index=None) -> dict[str, Any]:
  """The results dictionary (module docstring) of one seed (`index`: its
  position on the seed axis of a vmapped `result`)."""
  pick = lambda a: None if a is None else (  # noqa: E731
      np.asarray(a) if index is None else np.asarray(a)[index])
  r, task_losses = pick(result.accuracy_matrix), pick(result.task_losses)
  b, r_class = pick(result.init_accuracy), pick(result.accuracy_matrix_class)
  extra = {}
  if r_class is not None:
    extra['accuracy_matrix_class'] = r_class.tolist()
    extra.update({f'{k}_class': v for k, v in metrics.summary(r_class).items()})
  return {
      'schema_version': SCHEMA_VERSION,
      'dataset': dataset,
      'method': method,
      'name': name or method,
      'seed': seed,
      'config': config,
      'config_hash': workdir.config_hash(dataset, method, config),
      'stream_length': int(s.tasks.train_y.size // s.tasks.num_test_tasks
                           // config['epochs']),
      'versions': versions(),
      'data_source': s.tasks.source,
      'device': jax.default_backend(),
      'accuracy_matrix': r.tolist(),
      **metrics.summary(r, b),
      'init_accuracy': None if b is None else b.tolist(),
      **extra,
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
  return {'emcl_jax': version.__version__, 'jax': jax.__version__,
          'jaxlib': jaxlib.__version__, 'flax': flax.__version__,
          'optax': optax.__version__, 'numpy': np.__version__,
          'python': platform.python_version()}


def run_in_workdir(workdir_root: str, dataset: str = 'mnist_permutations',
                   method: str = 'emcl', seeds: Sequence[int] = (0,), *,
                   name: Optional[str] = None, overwrite: bool = False,
                   skip_finished: bool = False, together: bool = False,
                   shard: bool = True, checkpoint: bool = True,
                   tensorboard: bool = False, csv: bool = True,
                   progress: bool = True,
                   echo: Optional[Callable[[str], None]] = None,
                   overlap_eval: bool = False,
                   on_results: Optional[Callable[[dict[str, Any], str],
                                                 None]] = None,
                   **spec: Any) -> list[dict[str, Any]]:
  """Runs `seeds` of one setting, each in its own folder of the work
  directory (`training.workdir`), and returns their results dictionaries.

  A run whose folder holds `results.json` is finished: it is refused with
  one line (`RunExistsError`) unless `overwrite` (start it over) or
  `skip_finished` (leave it; its results are not returned). A run with
  checkpoints but no results resumes from the latest task (its metrics
  files keep the tasks before it). Every task's record goes to the run's
  writers (`reporting.writers`: JSON lines, CSV, TensorBoard with
  `tensorboard`, the progress display, `echo`); at the end the final ACC,
  BWT, LA and, with `tensorboard`, the accuracy matrix as an image.

  Args:
    workdir_root: the work directory.
    name: the run's label (the folder under the dataset; default: method).
    together: train the seeds as one vmapped program (`run_seeds`, sharded
      over the devices when `shard`), else one after another.
    checkpoint: save after every task (and resume from it).
    on_results: called with (results, path) after each results.json.
    spec: the run's other arguments (`run_config`'s).

  Raises:
    RunExistsError: a finished run, without overwrite or skip_finished.
    workdir.RunLockedError: another process is running one of the runs.
    ValueError: bad configuration. DataError: bad data.
    NonFiniteLossError: the loss diverged (no results file then).
  """
  name = name or method
  config = run_config(dataset, method, **spec)
  chash = workdir.config_hash(dataset, method, config)
  folder = lambda seed: workdir.run_dir(  # noqa: E731
      workdir_root, dataset, name, chash, seed)
  locks = ([workdir.RunLock(folder(s)) for s in seeds]
           if workdir.is_primary() else [])
  try:
    for lock in locks:
      lock.acquire()
    # Looked for under the locks: a run that finished meanwhile counts.
    finished = [s for s in seeds
                if os.path.exists(os.path.join(folder(s), workdir.RESULTS))]
    if finished and not (overwrite or skip_finished):
      raise RunExistsError(
          f'{os.path.join(folder(finished[0]), workdir.RESULTS)} exists: '
          f'{dataset} {name} seed {finished[0]} is finished; pass '
          '--overwrite to run it again')
    todo = list(seeds) if overwrite else [s for s in seeds
                                          if s not in finished]
    return _run_seeds_in(workdir_root, dataset, method, name, chash, config,
                         todo, folder, overwrite=overwrite, together=together,
                         shard=shard, checkpoint=checkpoint,
                         tensorboard=tensorboard, csv=csv, progress=progress,
                         echo=echo, overlap_eval=overlap_eval,
                         on_results=on_results, spec=spec)
  finally:
    for lock in locks:
      lock.release()
    for s in seeds:
      _prune_empty(folder(s), workdir_root)


def _run_seeds_in(workdir_root, dataset, method, name, chash, config, todo,
                  folder, *, overwrite, together, **kwargs):
  """`run_in_workdir` once its runs' folders are locked."""
  for seed in todo:
    config_path = os.path.join(folder(seed), workdir.CONFIG)
    if os.path.exists(config_path) and not overwrite:
      saved = workdir.read_json(config_path, 'run config')
      if saved.get('config') != json.loads(json.dumps(config)):
        raise RunExistsError(f'{config_path} holds another config; delete '
                             'the folder or pass --overwrite')
    if overwrite and workdir.is_primary():
      workdir.remove_progress(folder(seed))
  groups = [todo] if together and len(todo) > 1 else [[s] for s in todo]
  out = []
  for group in groups:
    out += _run_group(workdir_root, dataset, method, name, chash, config,
                      group, folder, together=together, overwrite=overwrite,
                      **kwargs)
  return out


class RunExistsError(ValueError):
  """A finished run asked again without overwrite, or a run folder that
  holds another config."""


def _run_group(root, dataset, method, name, chash, config, group, folder, *,
               together, overwrite, shard, checkpoint, tensorboard, csv,
               progress, echo, overlap_eval, on_results, spec):
  """Trains the seeds of `group` (one program when several) in their
  folders; returns their results (see `run_in_workdir`). The folders' files
  are made when the first task is reported, so a run refused before it
  (bad data, a loss that diverged at once) leaves none."""
  primary = workdir.is_primary()
  ckpt_dir = (workdir.checkpoint_dir(root, dataset, name, chash, group)
              if checkpoint else None)
  if overwrite and primary and ckpt_dir and os.path.isdir(ckpt_dir):
    shutil.rmtree(ckpt_dir)  # started over: no resume
  latest = None if ckpt_dir is None else workdir.latest_checkpoint(ckpt_dir)
  keep = None if latest is None else latest + 1
  per_seed: list[writers.MultiWriter] = []

  def open_writers():
    for seed in group:
      ws = []
      if primary:
        workdir.write_json(os.path.join(folder(seed), workdir.CONFIG), {
            'dataset': dataset, 'method': method, 'name': name, 'seed': seed,
            'config': config, 'config_hash': chash})
        ws.append(writers.JsonLinesWriter(
            os.path.join(folder(seed), workdir.METRICS), keep_steps=keep))
        if csv:
          ws.append(writers.CsvWriter(
              os.path.join(folder(seed), workdir.METRICS_CSV),
              keep_steps=keep))
        if tensorboard:
          ws.append(writers.TensorBoardWriter(folder(seed)))
      if echo is not None:
        ws.append(writers.ConsoleWriter(echo,
                                        f'{dataset} {name} seed {seed} '))
      per_seed.append(writers.MultiWriter(ws))
      per_seed[-1].write_hparams({'dataset': dataset, 'method': method,
                                  'name': name, 'seed': seed, **config})

  label = f'{dataset} {name} ' + (f'seed {group[0]}' if len(group) == 1 else
                                  f'seeds {group[0]}-{group[-1]}')
  shown = writers.ProgressWriter(label) if progress else None

  def record_fn(record):
    if not per_seed:
      open_writers()
    for i, w in enumerate(per_seed):
      w.write_scalars(record.task + 1, writers.task_scalars(
          record, i if len(group) > 1 else None))
    if shown is not None:
      shown.write_scalars(record.task + 1, writers.task_scalars(record))

  kwargs = dict(spec, name=name, record_fn=record_fn,
                batch_fn=None if shown is None else shown.batch,
                checkpoint_dir=ckpt_dir, resume=latest is not None)
  try:
    if len(group) > 1 or together:
      runs = run_seeds(dataset, method, group, shard=shard, **kwargs)
    else:
      runs = [run(dataset, method, group[0], overlap_eval=overlap_eval,
                  **kwargs)]
    if not per_seed:  # every task was restored from the checkpoint
      open_writers()
    for seed, w, res in zip(group, per_seed, runs):
      t = len(res['accuracy_matrix'])
      w.write_scalars(t, {'final/acc': res['acc'], 'final/bwt': res['bwt'],
                          'final/la': res['la']})
      if tensorboard and primary:
        from emcl_jax.reporting import figures  # matplotlib only here
        w.write_images(t, {'accuracy_matrix': figures.heatmap_image(
            res['accuracy_matrix'], f'{dataset} {name} seed {seed}')})
  finally:
    for w in per_seed:
      w.close()
    if shown is not None:
      shown.close()
  for seed, res in zip(group, runs):
    path = os.path.join(folder(seed), workdir.RESULTS)
    if primary:
      workdir.write_json(path, res)
    if on_results is not None:
      on_results(res, path)
  if primary and ckpt_dir is not None and os.path.isdir(ckpt_dir):
    shutil.rmtree(ckpt_dir)  # finished: its results are written
    _prune_empty(os.path.dirname(ckpt_dir), root)
  return runs


def _prune_empty(path: str, root: str) -> None:
  """Removes `path` and then its parents while they are empty folders, up to
  (not including) `root`."""
  root = os.path.abspath(root)
  path = os.path.abspath(path)
  while path.startswith(root + os.sep) and os.path.isdir(path):
    if os.listdir(path):
      break
    os.rmdir(path)
    path = os.path.dirname(path)
