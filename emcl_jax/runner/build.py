"""What a run trains with, built from its config: the tasks, the model and
the method (`setup`)."""

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from emcl_jax import configs
from emcl_jax import data as data_lib
from emcl_jax import losses
from emcl_jax import models
from emcl_jax.base import Batch
from emcl_jax.data import tasks as tasks_lib
from emcl_jax.methods import RECORDS


class Setup(NamedTuple):
  """Everything one seed of a run trains with (see `setup`).

  Attributes:
    config: the resolved run config.
    tasks: the benchmark (its validation sets held out, merged into one
      stream for `joint`, repeated for several epochs).
    apply_fn: the model, apply_fn(params, x) -> logits.
    params: the model's initial parameters.
    method: the method's init/update pair, its loss bound.
    key: PRNG key of the training run (the model's was split off it).
    model: the model's label ('custom' when built by a model_fn):
      `configs.model_label`.
  """
  config: configs.RunConfig
  tasks: tasks_lib.TaskSet
  apply_fn: Callable[..., Any]
  params: Any
  method: Any
  key: Any
  model: str = 'mlp'


def load_tasks(config: configs.RunConfig, seed: int) -> tasks_lib.TaskSet:
  """The benchmark of `config` (its `data` section) for one seed.

  Raises:
    DataError: the data cannot be read or is not what the config says.
  """
  d = config.data
  return data_lib.load(d.name, num_tasks=d.num_tasks,
                       samples_per_task=d.samples_per_task, seed=seed,
                       data_source=d.source, data_dir=d.dir,
                       class_order=d.class_order)


def setup(config: configs.RunConfig, seed: int, *,
          tasks: Optional[tasks_lib.TaskSet] = None,
          model_fn: Optional[Callable[[int], Any]] = None) -> Setup:
  """Loads the data and builds the model and the method of one seed.

  Args:
    config: a resolved run config (`configs.resolve`).
    seed: the seed (data draws, initialisation, the run's PRNG key).
    tasks: your own benchmark (`emcl_jax.data.from_arrays`) instead of
      loading the config's; the config's other settings still apply.
    model_fn: model_fn(num_classes) -> flax module; default: the config's
      model (`models.make`).

  Raises:
    ValueError: a setting that does not fit the data. DataError: bad data.
  """
  params_cfg = config.method.params
  if tasks is None:
    tasks = load_tasks(config, seed)
  tasks = tasks_lib.task_ordered_labels(tasks_lib.hold_out(
      tasks, config.data.validation, seed, config.protocol.batch_size))
  max_tasks = getattr(params_cfg, 'max_tasks', None)
  if max_tasks is not None and max_tasks < tasks.num_test_tasks:
    raise configs.ConfigError(
        f'method.max_tasks={max_tasks} is less than the '
        f'{tasks.num_test_tasks} tasks of {config.dataset}: tasks would '
        f'share memory rows; set method.max_tasks={tasks.num_test_tasks}')
  if RECORDS[config.method.name].joint:
    tasks = tasks_lib.joint(tasks, seed)
  tasks = tasks_lib.repeat_epochs(tasks, config.protocol.epochs, seed)

  kwargs = {} if config.model.norm is None else {'norm': config.model.norm}
  module = (model_fn or (lambda n: models.make(config.model.name, n,
                                               **kwargs)))(tasks.num_classes)
  key_model, key_run = jax.random.split(jax.random.PRNGKey(seed))
  params = jax.jit(module.init)(
      key_model, jnp.zeros((1,) + tasks.train_x.shape[2:],
                           tasks.train_x.dtype))
  algo = make_method(config, tasks, module.apply)
  return Setup(config, tasks, module.apply, params, algo, key_run,
               'custom' if model_fn else configs.model_label(config.model))


def method_inputs(config: configs.RunConfig, tasks: tasks_lib.TaskSet,
                  apply_fn: Callable[..., Any]
                  ) -> tuple[Callable[..., Any], Any, Batch]:
  """(factory, loss_fn, example): what the config's method is built from
  for `tasks` and the model `apply_fn`: its module's `method` factory, the
  cross-entropy (multi-head through the tasks' class masks) and an example
  batch. `factory(loss_fn, example, config.method.params)` is the method
  (`make_method`); a grid builds it from traced values
  (`training.grid.builder`)."""
  batch_size = config.protocol.batch_size
  example = Batch(jnp.asarray(tasks.train_x[0, :batch_size]),
                  jnp.asarray(tasks.train_y[0, :batch_size]),
                  jnp.zeros((batch_size,), jnp.int32))
  return (RECORDS[config.method.name].factory,
          losses.cross_entropy(apply_fn, tasks.class_mask), example)


def make_method(config: configs.RunConfig, tasks: tasks_lib.TaskSet,
                apply_fn: Callable[..., Any]) -> Any:
  """The config's method (`Method`) for `tasks` and the model `apply_fn`
  (`method_inputs`)."""
  factory, loss_fn, example = method_inputs(config, tasks, apply_fn)
  return factory(loss_fn, example, config.method.params)
