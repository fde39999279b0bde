"""Trains the seeds of one run config through the engine and returns their
results dictionaries (`run`)."""

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax import configs
from emcl_jax import version
from emcl_jax.data import tasks as tasks_lib
from emcl_jax.runner import build
from emcl_jax.runner import results as results_lib
from emcl_jax.training import checkpoint as checkpoint_lib
from emcl_jax.training import engine
from emcl_jax.training import grid as grid_lib


def run(config: configs.RunConfig, *,
        tasks: Optional[tasks_lib.TaskSet] = None,
        model_fn: Optional[Callable[[int], Any]] = None,
        record_fn: Optional[Callable[[engine.TaskRecord], None]] = None,
        batch_fn: Optional[Callable[..., None]] = None,
        checkpoint_dir: Optional[str] = None, resume: bool = False,
        together: Optional[bool] = None,
        shard: bool = True) -> list[dict[str, Any]]:
  """Runs the seeds of `config` (`config.seed_list`) and returns one
  results dictionary per seed (`runner.results`).

  Several seeds run as one vmapped program sharded over the devices
  (`engine.train_and_evaluate_seeds`; every seed keeps its own
  initialisation, data and PRNG stream, and the timings are the whole
  program's), one seed through `engine.train_and_evaluate`. With
  `together=False` the seeds run one after another, each timed alone.

  Args:
    config: the run (`configs.get_config`); resolved here.
    tasks: your own benchmark (`emcl_jax.data.from_arrays`) instead of the
      config's data.
    model_fn: model_fn(num_classes) -> flax module instead of the config's.
    record_fn, batch_fn: the engine's per-task and in-task callbacks.
    checkpoint_dir: save after every task there; with `resume`, continue
      from its latest save (`training.checkpoint`).
    together: run several seeds as one program (default: when there are
      several).
    shard: split the seeds of one program over the devices
      (`engine.seed_mesh`); False keeps them on the default device.

  Raises:
    ValueError (ConfigError): bad configuration. DataError: bad data.
    NonFiniteLossError: the loss diverged.
  """
  config = configs.resolve(config)
  seeds = config.seed_list
  if together is None:
    together = len(seeds) > 1
  if not together and len(seeds) > 1:
    if checkpoint_dir is not None:
      raise ValueError('checkpoint_dir takes one seed, or seeds run '
                       'together; give each seed its own run')
    return [r for s in seeds for r in run(
        configs.schema.override(config, {'seed': s, 'seeds': 1}),
        tasks=tasks, model_fn=model_fn, record_fn=record_fn,
        batch_fn=batch_fn)]
  setups = [build.setup(config, s, tasks=tasks, model_fn=model_fn)
            for s in seeds]
  flat = configs.flat(config)
  if tasks is not None:
    flat.update(num_tasks=tasks.num_test_tasks,
                samples_per_task=int(tasks.train_y.shape[1]),
                data_source=tasks.source, data_dir=None)
  ckpt = _checkpointer(checkpoint_dir, resume, config, setups)
  protocol = config.protocol
  common = dict(batch_size=protocol.batch_size, record_fn=record_fn,
                checkpointer=ckpt, batch_fn=batch_fn, eval_mode=protocol.eval,
                epochs=protocol.epochs)
  first = setups[0]
  try:
    if together:
      result = engine.train_and_evaluate_seeds(
          first.method, first.apply_fn,
          jax.tree.map(lambda *a: jnp.stack(a), *(s.params for s in setups)),
          [s.tasks for s in setups], keys=jnp.stack([s.key for s in setups]),
          mesh=engine.seed_mesh(len(seeds)) if shard else None, **common)
    else:
      result = engine.train_and_evaluate(
          first.method, first.apply_fn, first.params, first.tasks,
          key=first.key, overlap_eval=config.output.overlap_eval, **common)
  finally:
    if ckpt is not None:
      ckpt.close()
  return _results(config, flat, setups, result, together)


def static_part(config: configs.RunConfig) -> configs.RunConfig:
  """`config` with its traceable method fields (`training.grid.traceable`)
  and its output settings blanked: configs whose static parts are equal
  share a grid program (the one test of it, `run_grid`'s and
  `runner.programs`')."""
  params = config.method.params
  blank = {k: None for k in grid_lib.traceable(params)}
  return dataclasses.replace(
      config, output=configs.schema.OutputConfig(),
      method=config.method._replace(params=params._replace(**blank)))


def grid_fields(configs_list: list[configs.RunConfig]) -> tuple[str, ...]:
  """The method fields in which `configs_list` differ, if they can run as
  one grid program (`run_grid`: their `static_part`s are equal).

  Raises:
    ValueError (ConfigError): the configs differ elsewhere.
  """
  first = configs_list[0]
  if any(static_part(c) != static_part(first) for c in configs_list):
    raise configs.ConfigError(
        'a grid program takes settings that differ only in numeric method '
        f'fields ({", ".join(grid_lib.traceable(first.method.params))}); '
        'run the others apart')
  base = first.method.params._asdict()
  return tuple(sorted({k for c in configs_list
                       for k, v in c.method.params._asdict().items()
                       if v != base[k]}))


def run_grid(configs_list: list[configs.RunConfig], *,
             record_fn: Optional[Callable[[engine.TaskRecord], None]] = None,
             batch_fn: Optional[Callable[..., None]] = None,
             shard: bool = True) -> list[Optional[list[dict[str, Any]]]]:
  """Runs G settings x their seeds as one program (hyper-parameters traced,
  `engine.train_and_evaluate_grid`) and returns, per setting, one results
  dictionary per seed (as `run` gives for that config alone), or None for
  a setting whose loss became NaN or infinite. Any method runs so: its
  float fields are traced (`training.grid`).

  Args:
    configs_list: the settings' configs, alike but for numeric
      method fields (`grid_fields`); the seeds are the first's.
    record_fn, batch_fn: the engine's callbacks (records hold [G, S] rows).
    shard: split the settings over the devices (`engine.seed_mesh` with a
      'setting' axis).

  Raises:
    ValueError (ConfigError): configs that cannot share a program.
    DataError: bad data.
  """
  configs_list = [configs.resolve(c) for c in configs_list]
  varied = grid_fields(configs_list)
  config = configs_list[0]
  setups = [build.setup(config, s) for s in config.seed_list]
  first = setups[0]
  make = grid_lib.builder(
      *build.method_inputs(config, first.tasks, first.apply_fn),
      config.method.params)
  hparams = grid_lib.stack([{k: getattr(c.method.params, k) for k in varied}
                            for c in configs_list])
  num = len(configs_list)
  protocol = config.protocol
  result = engine.train_and_evaluate_grid(
      make, hparams, first.apply_fn,
      jax.tree.map(lambda *a: jnp.stack(a), *(s.params for s in setups)),
      [s.tasks for s in setups], keys=jnp.stack([s.key for s in setups]),
      mesh=(engine.seed_mesh(num, axis='setting') if shard and num > 1
            else None),
      batch_size=protocol.batch_size, record_fn=record_fn,
      batch_fn=batch_fn, eval_mode=protocol.eval, epochs=protocol.epochs)
  out = []
  for g, c in enumerate(configs_list):
    if not np.all(np.isfinite(result.task_losses[g])):
      out.append(None)
      continue
    pick = lambda a: None if a is None else np.asarray(a)[g]  # noqa: E731
    one = result._replace(
        accuracy_matrix=pick(result.accuracy_matrix),
        task_losses=pick(result.task_losses), state=None,
        init_accuracy=pick(result.init_accuracy),
        accuracy_matrix_class=pick(result.accuracy_matrix_class),
        val_accuracy_matrix=pick(result.val_accuracy_matrix))
    res = _results(c, configs.flat(c), setups, one, True)
    for r in res:
      r['grid_settings'] = num
    out.append(res)
  return out


def _results(config, flat, setups, result, together):
  """One results dictionary per seed of `result` (`runner.results`)."""
  name = config.output.name or config.method.name
  out = []
  for i, (seed, s) in enumerate(zip(config.seed_list, setups)):
    stream = int(s.tasks.train_y.size // s.tasks.num_test_tasks
                 // config.protocol.epochs)
    res = results_lib.results(config.dataset, config.method.name, seed, name,
                              flat, stream, s.tasks.source, result,
                              i if together else None)
    if s.tasks.val_y is not None:
      res['val_samples'] = int(s.tasks.val_y.shape[1])
    if together:
      res['parallel_seeds'] = len(setups)
    out.append(res)
  return out


def _checkpointer(checkpoint_dir, resume, config, setups):
  """The run's `Checkpointer`, or None without a checkpoint_dir. Its
  fingerprint (what a resumed run must share) is the method, its
  hyper-parameters, the seeds, the model and a checksum of the data."""
  if checkpoint_dir is None:
    if resume:
      raise ValueError('resume=True needs checkpoint_dir (the folder of the '
                       'run to continue)')
    return None
  tasks = [s.tasks for s in setups]
  fingerprint = {
      'dataset': config.dataset, 'method': config.method.name,
      'name': config.output.name or config.method.name,
      'seeds': list(config.seed_list),
      'config': config.method.params._asdict(),
      'batch_size': config.protocol.batch_size, 'model': setups[0].model,
      'shapes': [list(t.train_x.shape) for t in tasks][:1],
      'data': checkpoint_lib.data_checksum(
          *(a for t in tasks for a in (t.train_x, t.train_y, t.test_y))),
      'emcl_jax': version.__version__}
  return checkpoint_lib.Checkpointer(checkpoint_dir, fingerprint,
                                     resume=resume)
