"""The training engine: one jitted `lax.scan` per task, batched evaluation.

For each task t: the task's stream, reshaped to [num_batches, batch_size, ...],
is consumed by a single compiled call that scans `method.update` over the
batches; then one compiled call evaluates every task's test set and fills
row t of the accuracy matrix R. Both functions are compiled once, ahead of
time, for the benchmark's shapes, and reused for every task.

With `overlap_eval=True` the evaluation after task t runs on a second host
thread while task t+1 trains (on a copy of the parameters), so on a
multi-core CPU it hides most of the evaluation's time; the accuracy matrix
is the same, and `train_seconds` then includes whatever the two calls cost
each other in shared cores.
"""

import concurrent.futures
import functools
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax import losses
from emcl_jax.base import Batch, Method
from emcl_jax.data.tasks import TaskSet
from emcl_jax.errors import NonFiniteLossError
from emcl_jax.training import memory as memory_lib


class TaskRecord(NamedTuple):
  """What the engine reports after each task, as data (`record_fn`).

  Attributes:
    task: the task just trained, counting from 0.
    num_tasks: T.
    loss: the mean training loss of the task's stream; [] or [S] (seeds).
    accuracy: row `task` of the accuracy matrix R (fractions): the accuracy
      on every task's test set after training it; [T'] or [S, T'].
    train_seconds: the task's compiled training call.
    eval_seconds: its evaluation call.
    accuracy_class: with eval_mode 'both', the class-incremental row
      (`accuracy` is then the task-incremental one); else None.
  """
  task: int
  num_tasks: int
  loss: np.ndarray
  accuracy: np.ndarray
  train_seconds: float
  eval_seconds: float
  accuracy_class: Optional[np.ndarray] = None


class RunResult(NamedTuple):
  """Outcome of `train_and_evaluate`.

  Attributes:
    accuracy_matrix: R, [T, T] float fractions; R[i, j] is the test accuracy
      on task j after training task i ([1, T] for the joint baseline, which
      has one training stream).
    train_seconds: time in the compiled training calls (after
      block_until_ready), compilation and evaluation excluded.
    compile_seconds: ahead-of-time compilation of the train and eval calls.
    eval_seconds: time in the evaluation calls.
    total_seconds: wall time of the whole function.
    loop_seconds: wall time of the loop over tasks (training and evaluation;
      no compilation, no data transfer).
    task_losses: mean training loss of each task's stream, [T].
    state: the method's final state.
    task_train_seconds: the training seconds of each task, [T]
      (`train_seconds` is their sum).
    init_accuracy: [T'] accuracy of the untrained model on every task (the
      b of FWT), evaluated before the first task.
    accuracy_matrix_class: with eval_mode 'both', the class-incremental
      matrix ([T, T']); else None.
  """
  accuracy_matrix: np.ndarray
  train_seconds: float
  compile_seconds: float
  eval_seconds: float
  total_seconds: float
  loop_seconds: float
  task_losses: np.ndarray
  state: Any
  task_train_seconds: np.ndarray
  init_accuracy: Optional[np.ndarray] = None
  accuracy_matrix_class: Optional[np.ndarray] = None


EVAL_MODES = ('task', 'class', 'both')


def class_incremental_masks(masks: np.ndarray, task: int) -> np.ndarray:
  """The evaluation masks after training `task` in the class-incremental
  setting: every test task is scored over all the classes seen so far (the
  union of masks[0..task]), so no task identity is given at test time.

  Args:
    masks: [..., T', C] bool, each task's classes (`TaskSet.class_mask`).
    task: the task just trained (from 0).
  """
  seen = np.any(masks[..., :task + 1, :], axis=-2, keepdims=True)
  return np.broadcast_to(seen, masks.shape)


def batched(tasks: TaskSet, batch_size: int) -> tuple[chex.Array, ...]:
  """Stream arrays reshaped to [T, num_batches, batch_size, ...].

  Raises:
    ValueError: samples per task not a multiple of batch_size.
  """
  n = tasks.train_y.shape[1]
  if batch_size <= 0 or n % batch_size:
    raise ValueError(f'samples per task ({n}) must be a positive multiple of '
                     f'batch_size ({batch_size})')
  shape = (tasks.num_tasks, n // batch_size, batch_size)
  x = tasks.train_x.reshape(shape + tasks.train_x.shape[2:])
  y = tasks.train_y.reshape(shape)
  if tasks.train_t is not None:
    t = tasks.train_t.astype(np.int32).reshape(shape)
  else:
    t = np.broadcast_to(
        np.arange(tasks.num_tasks, dtype=np.int32)[:, None, None], shape)
  return x, y, np.ascontiguousarray(t)


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


def train_and_evaluate(
    method: Method,
    apply_fn: Callable[[chex.ArrayTree, chex.Array], chex.Array],
    params: chex.ArrayTree,
    tasks: TaskSet,
    *,
    batch_size: int,
    key: chex.PRNGKey,
    record_fn: Optional[Callable[[TaskRecord], None]] = None,
    overlap_eval: bool = False,
    checkpointer: Optional[Any] = None,
    batch_fn: Optional[Callable[[int, int, int, int, float], None]] = None,
    eval_mode: str = 'task',
    epochs: int = 1,
) -> RunResult:
  """Runs the continual-learning protocol (one pass over each task's stream,
  or `epochs` passes).

  Args:
    method: the method (init/update/params_of).
    apply_fn: apply_fn(params, x) -> logits, for evaluation.
    params: initial model parameters.
    tasks: the benchmark.
    batch_size: samples per incoming batch (10 in the paper).
    key: PRNG key of the run.
    record_fn: called with a `TaskRecord` after each task, if given.
    overlap_eval: evaluate task t while task t+1 trains (module docstring).
    checkpointer: saves the run at every task boundary and restores it (see
      `emcl_jax.training.checkpoint.Checkpointer`); None: no checkpoints.
    batch_fn: in-task progress, called on the host as
      batch_fn(task, num_tasks, batches_done, num_batches, loss) about 50
      times per task (`make_train_task`; task counts from 0); None: no
      callback is compiled in.
    eval_mode: for multi-head benchmarks (a `class_mask`): 'task' scores
      each task over its own classes (task-incremental), 'class' over all
      the classes seen so far (class-incremental,
      `class_incremental_masks`), 'both' fills the task-incremental matrix
      and `accuracy_matrix_class`. Single-head benchmarks take 'task' only.
    epochs: the number of epochs `tasks`' streams hold
      (`tasks.repeat_epochs`): each task's stream is still one scan, and
      only its first epoch enters the replay memories (`keep_memory`).

  Returns:
    A `RunResult`.

  Raises:
    NonFiniteLossError: a task's training loss became NaN or infinite.
  """
  xs, ys, ts = batched(tasks, batch_size)
  return _protocol(method, apply_fn, params, (xs, ys, ts),
                   (tasks.test_x, tasks.test_y, tasks.class_mask), key,
                   seeds=False,
                   record_fn=record_fn, overlap_eval=overlap_eval,
                   checkpointer=checkpointer, batch_fn=batch_fn,
                   eval_mode=eval_mode, epochs=epochs)


def train_and_evaluate_seeds(
    method: Method,
    apply_fn: Callable[[chex.ArrayTree, chex.Array], chex.Array],
    params: chex.ArrayTree,
    tasks: Sequence[TaskSet],
    *,
    batch_size: int,
    keys: chex.PRNGKey,
    mesh: Optional[jax.sharding.Mesh] = None,
    record_fn: Optional[Callable[[TaskRecord], None]] = None,
    checkpointer: Optional[Any] = None,
    batch_fn: Optional[Callable[[int, int, int, int, float], None]] = None,
    eval_mode: str = 'task',
    epochs: int = 1,
) -> RunResult:
  """The protocol for S seeds at once: one vmapped program per task.

  Every seed has its own initial parameters, data (order, permutations) and
  PRNG key; `method.update` and the evaluation are vmapped over the seed
  axis, so the S runs are one compiled call per task. With a `mesh` (one
  axis, named 'seed'), the seed axis is sharded over its devices
  (`NamedSharding(mesh, P('seed'))`): each device trains its share of the
  seeds; S must be a multiple of the mesh size.

  Args:
    params: initial parameters of every seed, leaves [S, ...].
    tasks: one `TaskSet` per seed (same shapes).
    keys: [S] PRNG keys, one per seed (as `key` of `train_and_evaluate`).
    mesh: optional device mesh for the seed axis.
    batch_fn: as in `train_and_evaluate`; called once per seed (its loss).
    (others as in `train_and_evaluate`)

  Returns:
    A `RunResult` whose accuracy_matrix is [S, T, T'], task_losses [S, T]
    and state has leaves [S, ...]; seed s's numbers equal a run of
    `train_and_evaluate` on seed s's inputs up to float reassociation.
  """
  stack = lambda arrays: np.stack(list(arrays))  # noqa: E731
  streams = [batched(t, batch_size) for t in tasks]
  xs, ys, ts = (stack(s[i] for s in streams) for i in range(3))
  test = (stack(t.test_x for t in tasks), stack(t.test_y for t in tasks),
          None if tasks[0].class_mask is None
          else stack(t.class_mask for t in tasks))
  return _protocol(method, apply_fn, params, (xs, ys, ts), test, keys,
                   seeds=True, mesh=mesh, record_fn=record_fn,
                   checkpointer=checkpointer, batch_fn=batch_fn,
                   eval_mode=eval_mode, epochs=epochs)


def seed_mesh(num_seeds: int,
              devices: Optional[Sequence[Any]] = None) -> jax.sharding.Mesh:
  """A one-axis ('seed') mesh over the most devices that divide num_seeds
  evenly (all of them when they do)."""
  devices = list(jax.devices() if devices is None else devices)
  n = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
  return jax.sharding.Mesh(np.array(devices[:n]), ('seed',))


def _protocol(method, apply_fn, params, stream, test, key, *, seeds,
              record_fn, checkpointer, overlap_eval=False, mesh=None,
              batch_fn=None, eval_mode='task', epochs=1) -> RunResult:
  """The loop over tasks shared by one seed and vmapped seeds (seeds=True:
  every array has a leading seed axis and the task axis comes second)."""
  start = time.perf_counter()
  if eval_mode not in EVAL_MODES:
    raise ValueError(f'eval_mode must be one of {EVAL_MODES}, got '
                     f'{eval_mode!r}')
  if eval_mode != 'task' and test[2] is None:
    raise ValueError(f'--eval={eval_mode} applies to the class-split '
                     'benchmarks (a single-head benchmark has no task '
                     'identity to drop); use --eval=task')
  if mesh is not None:
    put = lambda a: jax.device_put(  # noqa: E731
        a, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
            'seed')))
  else:
    put = jnp.asarray
  xs, ys, ts = (put(a) for a in stream)
  test_x, test_y = (put(a) for a in test[:2])
  masks = None if test[2] is None else put(test[2])
  params, key = put(params) if mesh else params, put(key)
  lift = jax.vmap if seeds else (lambda f: f)
  split = lift(jax.random.split)
  key_init, key_run = jnp.moveaxis(split(key), -2, 0)
  num_tasks = ys.shape[1 if seeds else 0]
  task_keys = lift(lambda k: jax.random.split(k, num_tasks))(key_run)
  at = (lambda a, t: a[:, t]) if seeds else (lambda a, t: a[t])
  # The training call donates its state: copy, so that the caller's
  # `params` (which init may hold as they are) stay valid.
  state = jax.tree.map(jnp.copy, lift(method.init)(params, key_init))

  t0 = time.perf_counter()
  current_task = [0]
  on_batch, every = None, 1
  num_batches = int(ys.shape[-2])
  if batch_fn is not None:
    every = max(1, num_batches // 50)

    def on_batch(done, loss):
      batch_fn(current_task[0], num_tasks, int(done), num_batches,
               float(np.mean(loss)))
  if epochs < 1 or num_batches % epochs:
    raise ValueError(f'a stream of {num_batches} batches cannot hold '
                     f'{epochs} epochs')
  fresh = None if epochs == 1 else num_batches // epochs
  train_fn = lift(make_train_task(method, on_batch, every, fresh,
                                  ordered=not seeds))
  # Seeds evaluate one after the other (lax.map): a vmapped evaluation's
  # batched matrix products were 2x slower on the CPU (measured).
  eval_fn = make_evaluate(apply_fn)
  if seeds:
    eval_fn = functools.partial(
        lambda f, p, x, y, m: jax.lax.map(lambda a: f(*a), (p, x, y, m)),
        eval_fn)
  if mesh is not None:
    # Each device runs its own seeds (an explicit per-device program: XLA's
    # automatic partitioning of the lax.map replicated the evaluation).
    spec = jax.sharding.PartitionSpec('seed')
    train_fn, eval_fn = (jax.shard_map(f, mesh=mesh, in_specs=spec,
                                       out_specs=spec, check_vma=False)
                         for f in (train_fn, eval_fn))
  train_task = jax.jit(train_fn, donate_argnums=0).lower(
      state, at(xs, 0), at(ys, 0), at(ts, 0), at(task_keys, 0)).compile()
  evaluate = jax.jit(eval_fn).lower(
      lift(method.params_of)(state), test_x, test_y, masks).compile()
  compile_seconds = time.perf_counter() - t0

  lead = (ys.shape[0],) if seeds else ()
  r = np.zeros(lead + (num_tasks, test_y.shape[1 if seeds else 0]))
  r_class = np.zeros_like(r) if eval_mode == 'both' else None
  host_masks = None if test[2] is None else np.asarray(test[2])
  # b of FWT: the untrained model, scored as each task is after training it.
  init_accuracy = np.asarray(evaluate(lift(method.params_of)(state), test_x,
                                      test_y, masks))
  task_losses = np.zeros(lead + (num_tasks,))
  train_times = np.zeros(num_tasks)
  eval_times = np.zeros(num_tasks)
  first = 0
  if checkpointer is not None:
    restored = checkpointer.restore(state, r.shape,
                                    with_class=r_class is not None)
    if restored is not None:
      first, state, r[...], task_losses[...], train_times[:] = restored[:5]
      if r_class is not None:
        r_class[...] = restored[5]
      state = jax.tree.map(put, state) if mesh else state

  def evaluate_row(task, params):
    t0 = time.perf_counter()
    if eval_mode != 'class':
      r[..., task, :] = np.asarray(evaluate(params, test_x, test_y, masks))
    if eval_mode != 'task':
      seen = put(class_incremental_masks(host_masks, task))
      row = np.asarray(evaluate(params, test_x, test_y, seen))
      (r if eval_mode == 'class' else r_class)[..., task, :] = row
    eval_times[task] = time.perf_counter() - t0
    return task

  def log(task):
    if record_fn is not None:
      record_fn(TaskRecord(
          task, num_tasks, task_losses[..., task].copy(),
          r[..., task, :].copy(), float(train_times[task]),
          float(eval_times[task]),
          None if r_class is None else r_class[..., task, :].copy()))

  pool = (concurrent.futures.ThreadPoolExecutor(1) if overlap_eval
          else None)
  loop_start = time.perf_counter()
  pending = []
  try:
    for task in range(first, num_tasks):
      current_task[0] = task
      t0 = time.perf_counter()
      state, losses = train_task(state, at(xs, task), at(ys, task),
                                 at(ts, task), at(task_keys, task))
      jax.block_until_ready((state, losses))
      train_times[task] = time.perf_counter() - t0
      losses = np.asarray(losses)
      if not np.all(np.isfinite(losses)):
        bad = np.argwhere(~np.isfinite(losses))[0]
        where = (f'seed index {bad[0]}, ' if seeds else '') + (
            f'batch {bad[-1]} of task {task}')
        raise NonFiniteLossError(
            f'loss became {losses[tuple(bad)]} at {where}; lower the '
            "method's learning rates (or its regularisation strength)")
      task_losses[..., task] = losses.mean(-1)
      if pool is None:
        log(evaluate_row(task, lift(method.params_of)(state)))
      else:
        # The next training call donates `state`: evaluate a copy.
        params = jax.block_until_ready(
            jax.tree.map(jnp.copy, lift(method.params_of)(state)))
        pending.append(pool.submit(evaluate_row, task, params))
        while pending and pending[0].done():
          log(pending.pop(0).result())
      if checkpointer is not None:
        for future in pending:
          log(future.result())
        pending = []
        checkpointer.save(task, state, r, task_losses, train_times,
                          r_class=r_class)
    for future in pending:
      log(future.result())
  finally:
    if pool is not None:
      pool.shutdown(wait=True, cancel_futures=True)
  end = time.perf_counter()
  return RunResult(r, float(train_times.sum()), compile_seconds,
                   float(eval_times.sum()), end - start, end - loop_start,
                   task_losses, state, train_times, init_accuracy, r_class)
