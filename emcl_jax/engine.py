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
import time
from typing import Any, Callable, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax.base import Batch, Method
from emcl_jax.data.tasks import TaskSet
from emcl_jax.errors import NonFiniteLossError


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
  """
  accuracy_matrix: np.ndarray
  train_seconds: float
  compile_seconds: float
  eval_seconds: float
  total_seconds: float
  loop_seconds: float
  task_losses: np.ndarray
  state: Any


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


def make_train_task(method: Method) -> Callable[..., Any]:
  """train_task(state, x, y, t, key) -> (state, losses [num_batches]): the
  whole task's batch stream as one `lax.scan` of `method.update`."""

  def train_task(state, x, y, t, key):
    keys = jax.random.split(key, y.shape[0])

    def body(state, inputs):
      xb, yb, tb, k = inputs
      state, metrics = method.update(state, Batch(xb, yb, tb), k)
      return state, metrics['loss']

    return jax.lax.scan(body, state, (x, y, t, keys))

  return train_task


def make_evaluate(apply_fn: Callable[[chex.ArrayTree, chex.Array], chex.Array]
                 ) -> Callable[..., chex.Array]:
  """evaluate(params, test_x [T, m, ...], test_y [T, m]) -> accuracies [T]."""

  def evaluate(params, test_x, test_y):

    def one(xy):
      x, y = xy
      return jnp.mean(jnp.argmax(apply_fn(params, x), -1) == y)

    return jax.lax.map(one, (test_x, test_y))

  return evaluate


def train_and_evaluate(
    method: Method,
    apply_fn: Callable[[chex.ArrayTree, chex.Array], chex.Array],
    params: chex.ArrayTree,
    tasks: TaskSet,
    *,
    batch_size: int,
    key: chex.PRNGKey,
    log_fn: Optional[Callable[[str], None]] = None,
    overlap_eval: bool = False,
) -> RunResult:
  """Runs the single-pass continual-learning protocol.

  Args:
    method: the method (init/update/params_of).
    apply_fn: apply_fn(params, x) -> logits, for evaluation.
    params: initial model parameters.
    tasks: the benchmark.
    batch_size: samples per incoming batch (10 in the paper).
    key: PRNG key of the run.
    log_fn: called with one line after each task, if given.
    overlap_eval: evaluate task t while task t+1 trains (module docstring).

  Returns:
    A `RunResult`.

  Raises:
    NonFiniteLossError: a task's training loss became NaN or infinite.
  """
  start = time.perf_counter()
  xs, ys, ts = batched(tasks, batch_size)
  xs, ys, ts = jnp.asarray(xs), jnp.asarray(ys), jnp.asarray(ts)
  test_x, test_y = jnp.asarray(tasks.test_x), jnp.asarray(tasks.test_y)
  key_init, key_run = jax.random.split(key)
  # The training call donates its state: copy, so that the caller's
  # `params` (which init may hold as they are) stay valid.
  state = jax.tree.map(jnp.copy, method.init(params, key_init))
  task_keys = jax.random.split(key_run, tasks.num_tasks)

  t0 = time.perf_counter()
  train_task = jax.jit(make_train_task(method), donate_argnums=0).lower(
      state, xs[0], ys[0], ts[0], task_keys[0]).compile()
  evaluate = jax.jit(make_evaluate(apply_fn)).lower(
      method.params_of(state), test_x, test_y).compile()
  compile_seconds = time.perf_counter() - t0

  num_tasks = tasks.num_tasks
  r = np.zeros((num_tasks, tasks.num_test_tasks))
  task_losses = np.zeros(num_tasks)
  train_seconds = 0.0
  eval_times = np.zeros(num_tasks)

  def evaluate_row(task, params):
    t0 = time.perf_counter()
    r[task] = np.asarray(evaluate(params, test_x, test_y))
    eval_times[task] = time.perf_counter() - t0
    return task

  def log(task):
    if log_fn is not None:
      log_fn(f'task {task + 1}/{num_tasks}  loss {task_losses[task]:.4f}  '
             f'acc(this) {100 * r[task, task]:.2f}  '
             f'acc(seen) {100 * r[task, :task + 1].mean():.2f}')

  pool = (concurrent.futures.ThreadPoolExecutor(1) if overlap_eval
          else None)
  loop_start = time.perf_counter()
  pending = []
  try:
    for task in range(num_tasks):
      t0 = time.perf_counter()
      state, losses = train_task(state, xs[task], ys[task], ts[task],
                                 task_keys[task])
      jax.block_until_ready((state, losses))
      train_seconds += time.perf_counter() - t0
      losses = np.asarray(losses)
      if not np.all(np.isfinite(losses)):
        bad = int(np.argmin(np.isfinite(losses)))
        raise NonFiniteLossError(
            f'loss became {losses[bad]} at batch {bad} of task {task}; lower '
            "the method's learning rates (or its regularisation strength)")
      task_losses[task] = losses.mean()
      if pool is None:
        log(evaluate_row(task, method.params_of(state)))
        continue
      # The next training call donates `state`: evaluate a copy.
      params = jax.block_until_ready(
          jax.tree.map(jnp.copy, method.params_of(state)))
      pending.append(pool.submit(evaluate_row, task, params))
      while pending and pending[0].done():
        log(pending.pop(0).result())
    for future in pending:
      log(future.result())
  finally:
    if pool is not None:
      pool.shutdown(wait=True, cancel_futures=True)
  end = time.perf_counter()
  return RunResult(r, train_seconds, compile_seconds,
                   float(eval_times.sum()), end - start, end - loop_start,
                   task_losses, state)
