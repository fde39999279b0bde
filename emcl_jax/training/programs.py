"""A run's two compiled programs and the placement of their inputs.

`make_train_task` is the whole task's batch stream as one `lax.scan` of
`method.update`; `make_evaluate` scores every task's test set. For S seeds
at once both are vmapped over a leading seed axis (the evaluation maps over
the seeds one after the other), and with a mesh each device runs its share
of the seeds (`shard_map`). `compile_programs` compiles the two, ahead of
time, for the benchmark's shapes; the engine reuses them for every task.
"""

from typing import Any, Callable, NamedTuple, Optional, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax import losses
from emcl_jax.base import Batch, Method
from emcl_jax.methods import memory as memory_lib


def keep_memory(new_state: Any, old_state: Any, fresh: chex.Array) -> Any:
  """`new_state` with every replay memory (`memory.MemoryState`) in it
  taken from `old_state` unless `fresh`: a batch seen again in a later epoch
  trains the model but does not enter the memory (La-MAML's code fills its
  memory in the first epoch only)."""
  is_memory = lambda x: isinstance(x, memory_lib.MemoryState)  # noqa: E731

  def pick(new, old):
    if is_memory(new):
      return jax.tree.map(lambda a, b: jnp.where(fresh, a, b), new, old)
    return new
  return jax.tree.map(pick, new_state, old_state, is_leaf=is_memory)


def make_train_task(method: Method,
                    batch_fn: Optional[Callable[[Any, Any], None]] = None,
                    every: int = 1,
                    fresh_batches: Optional[int] = None,
                    ordered: bool = False) -> Callable[..., Any]:
  """train_task(state, x, y, t, key) -> (state, losses [num_batches]): the
  whole task's batch stream as one `lax.scan` of `method.update`.

  With `batch_fn`, the scan calls `batch_fn(batches_done, loss)` on the host
  (`jax.debug.callback`) after every `every`-th batch and after the last:
  in-task progress at the cost of a few host calls per task. Without it
  the compiled program has no callback at all. With `ordered`, the calls
  are an ordered effect and reach the host in batch order; `jax.vmap`
  (several seeds) cannot batch an ordered effect, so a vmapped `train_task`
  must leave it off and its calls may arrive out of order. With
  `fresh_batches` (a stream of several epochs), batches from that index on
  leave the replay memories as they were (`keep_memory`).
  """

  def train_task(state, x, y, t, key):
    n = y.shape[0]
    keys = jax.random.split(key, n)

    def body(state, inputs):
      i, xb, yb, tb, k = inputs
      new_state, metrics = method.update(state, Batch(xb, yb, tb), k)
      state = (new_state if fresh_batches is None else
               keep_memory(new_state, state, i < fresh_batches))
      if batch_fn is not None:
        jax.lax.cond(((i + 1) % every == 0) | (i + 1 == n),
                     lambda: jax.debug.callback(batch_fn, i + 1,
                                                metrics['loss'],
                                                ordered=ordered),
                     lambda: None)
      return state, metrics['loss']

    return jax.lax.scan(body, state, (jnp.arange(n), x, y, t, keys))

  return train_task


def make_evaluate(apply_fn: Callable[[chex.ArrayTree, chex.Array], chex.Array]
                 ) -> Callable[..., chex.Array]:
  """evaluate(params, test_x [T, m, ...], test_y [T, m], masks [T, C] or
  None) -> accuracies [T]; with masks, task j's predictions are restricted
  to the classes of masks[j] (multi-head, the task identity is known)."""

  def evaluate(params, test_x, test_y, masks=None):

    def one(xym):
      x, y, mask = xym
      logits = losses.mask_logits(apply_fn(params, x), mask)
      return jnp.mean(jnp.argmax(logits, -1) == y)

    if masks is None:
      return jax.lax.map(lambda xy: one((*xy, None)), (test_x, test_y))
    return jax.lax.map(one, (test_x, test_y, masks))

  return evaluate


def seed_mesh(num_seeds: int,
              devices: Optional[Sequence[Any]] = None,
              axis: str = 'seed') -> jax.sharding.Mesh:
  """A one-axis mesh (named `axis`: 'seed', or 'setting' for a grid) over
  k devices of each of the P processes the devices belong to (P = 1 unless
  `jax.distributed.initialize` joined several), process by process, with
  the largest k that makes k * P divide num_seeds: with one process, the
  most devices that divide num_seeds evenly (all of them when they do);
  with several, every process holds a share of the seeds, as it must to
  take part in the run.

  Raises:
    ValueError: several processes whose devices cannot split num_seeds
      evenly.
  """
  devices = list(jax.devices() if devices is None else devices)
  by_process: dict[int, list[Any]] = {}
  for d in devices:
    by_process.setdefault(d.process_index, []).append(d)
  count = len(by_process)
  per = min(len(v) for v in by_process.values())
  fits = [k for k in range(1, per + 1) if num_seeds % (k * count) == 0]
  if not fits:
    raise ValueError(f'{num_seeds} seeds cannot be split evenly over the '
                     f'{count} processes; give --seeds a multiple of '
                     f'{count}')
  k = max(fits)
  chosen = [d for p in sorted(by_process) for d in by_process[p][:k]]
  return jax.sharding.Mesh(np.array(chosen), (axis,))


def placer(mesh: Optional[jax.sharding.Mesh]) -> Callable[[Any], Any]:
  """put(a): an array on the run's devices, its leading (seed or setting)
  axis sharded over `mesh` (`NamedSharding(mesh, P(axis))`); without a
  mesh, `jnp.asarray` on the default device."""
  if mesh is None:
    return jnp.asarray
  sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(mesh.axis_names[0]))
  return lambda a: jax.device_put(a, sharding)


class Programs(NamedTuple):
  """A run's compiled programs.

  Attributes:
    train_task: (state, x, y, t, key) -> (state, losses [(S,) num_batches])
      for one task's stream (`make_train_task`); donates `state`.
    evaluate: (params, test_x, test_y, masks) -> accuracies [(S,) T'].
    params_of: the method's `params_of`, vmapped over the seeds if any.
    evaluate_val: `evaluate` compiled for the validation sets' shapes, or
      None without validation sets.
  """
  train_task: Callable[..., Any]
  evaluate: Callable[..., chex.Array]
  params_of: Callable[[Any], chex.ArrayTree]
  evaluate_val: Optional[Callable[..., chex.Array]] = None


def _seed_by_seed(evaluate: Callable[..., chex.Array]
                 ) -> Callable[..., chex.Array]:
  """`evaluate` over a leading seed axis, one seed after the other
  (`lax.map`): a vmapped evaluation's batched matrix products were 2x
  slower on the CPU (measured)."""

  def evaluate_seeds(params, test_x, test_y, masks):
    return jax.lax.map(lambda a: evaluate(*a),
                       (params, test_x, test_y, masks))

  return evaluate_seeds


def _setting_by_setting(evaluate: Callable[..., chex.Array]
                       ) -> Callable[..., chex.Array]:
  """`evaluate` over a leading settings axis of the parameters, one setting
  after the other, on the same test sets."""

  def evaluate_settings(params, test_x, test_y, masks):
    return jax.lax.map(lambda p: evaluate(p, test_x, test_y, masks), params)

  return evaluate_settings


def compile_programs(method: Method,
                     apply_fn: Callable[[chex.ArrayTree, chex.Array],
                                        chex.Array],
                     state: Any, task_inputs: tuple[Any, ...],
                     test: tuple[Any, ...], *, seeds: bool,
                     settings: bool = False,
                     mesh: Optional[jax.sharding.Mesh] = None,
                     on_batch: Optional[Callable[[Any, Any], None]] = None,
                     every: int = 1,
                     fresh_batches: Optional[int] = None,
                     val: Optional[tuple[Any, ...]] = None) -> Programs:
  """Compiles the training and evaluation calls, ahead of time.

  Args:
    method: the method (init/update/params_of).
    apply_fn: apply_fn(params, x) -> logits.
    state: the method's state (placed), which fixes the shapes.
    task_inputs: (x, y, t, key) of one task, placed, as `train_task` takes
      them.
    test: (test_x, test_y, masks or None), placed.
    seeds: every array has a leading seed axis; both calls are vmapped.
    settings: the state has a further leading axis of settings (a grid,
      `training.grid`), before the seeds; the data and keys do not (every
      setting trains on the same seeds' data).
    mesh: each device runs its own seeds (an explicit per-device program:
      XLA's automatic partitioning of the `lax.map` replicated the
      evaluation); with `settings`, its own settings.
    on_batch, every, fresh_batches: see `make_train_task`.
    val: (val_x, val_y, masks or None), placed, or None: the validation
      sets the evaluation is also compiled for.

  Returns:
    The compiled `Programs`.
  """
  lift = jax.vmap if seeds else (lambda f: f)
  train_fn = lift(make_train_task(method, on_batch, every, fresh_batches,
                                  ordered=not (seeds or settings)))
  eval_fn = make_evaluate(apply_fn)
  if seeds:
    eval_fn = _seed_by_seed(eval_fn)
  params_of = lift(method.params_of)
  if settings:
    train_fn = jax.vmap(train_fn, in_axes=(0, None, None, None, None))
    eval_fn = _setting_by_setting(eval_fn)
    params_of = jax.vmap(params_of)
  if mesh is not None:
    P = jax.sharding.PartitionSpec  # noqa: N806
    spec = P(mesh.axis_names[0])
    data = P() if settings else spec
    train_fn = jax.shard_map(train_fn, mesh=mesh,
                             in_specs=(spec, data, data, data, data),
                             out_specs=spec, check_vma=False)
    eval_fn = jax.shard_map(eval_fn, mesh=mesh,
                            in_specs=(spec, data, data, data),
                            out_specs=spec, check_vma=False)
  train_task = jax.jit(train_fn, donate_argnums=0).lower(
      state, *task_inputs).compile()
  evaluate, evaluate_val = (
      None if inputs is None else
      jax.jit(eval_fn).lower(params_of(state), *inputs).compile()
      for inputs in (test, val))
  return Programs(train_task, evaluate, params_of, evaluate_val)
