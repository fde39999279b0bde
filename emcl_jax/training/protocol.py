"""The host side of the protocol: the loop over tasks and the matrices it
fills.

For each task t the loop runs the compiled training call on the task's
stream, checks its losses, and evaluates every task's test set into row t
of the accuracy matrix R (and of the class-incremental matrix with
eval_mode 'both'); then it reports the row and checkpoints the run. With
`overlap_eval` the evaluation after task t runs on a second host thread
while task t+1 trains, on a copy of the parameters.
"""

import concurrent.futures
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax.errors import NonFiniteLossError
from emcl_jax.training import multihost

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


def check_options(eval_mode: str, multi_head: bool, epochs: int,
                  num_batches: int) -> None:
  """Raises ValueError for an evaluation mode or epoch count the run
  cannot take (`engine.train_and_evaluate`'s arguments)."""
  if eval_mode not in EVAL_MODES:
    raise ValueError(f'eval_mode must be one of {EVAL_MODES}, got '
                     f'{eval_mode!r}')
  if eval_mode != 'task' and not multi_head:
    raise ValueError(f'eval_mode={eval_mode!r} applies to the class-split '
                     'benchmarks (a single-head benchmark has no task '
                     "identity to drop); use eval_mode='task'")
  if epochs < 1 or num_batches % epochs:
    raise ValueError(f'a stream of {num_batches} batches cannot hold '
                     f'{epochs} epochs')


class Matrices(NamedTuple):
  """The run's numbers on the host, filled task by task (in place).

  Attributes:
    r: the accuracy matrix R, float [(S,) T, T'].
    r_class: the class-incremental matrix like r (eval_mode 'both'), or
      None.
    task_losses: mean training loss of each task's stream, [(S,) T].
    train_seconds: each task's training call, [T].
    eval_seconds: each task's evaluation, [T].
    r_val: the accuracies on the validation sets, like r (scored as r is),
      or None without validation sets.
  """
  r: np.ndarray
  r_class: Optional[np.ndarray]
  task_losses: np.ndarray
  train_seconds: np.ndarray
  eval_seconds: np.ndarray
  r_val: Optional[np.ndarray] = None

  def extra(self) -> dict[str, np.ndarray]:
    """The matrices beside r that a checkpoint keeps, by name."""
    return {k: v for k, v in (('r_class', self.r_class),
                              ('r_val', self.r_val)) if v is not None}


def new_matrices(lead: tuple[int, ...], num_tasks: int, num_test: int,
                 with_class: bool, with_val: bool = False) -> Matrices:
  """Zero `Matrices` for T = num_tasks, T' = num_test, (S,) = lead."""
  r = np.zeros(lead + (num_tasks, num_test))
  return Matrices(r, np.zeros_like(r) if with_class else None,
                  np.zeros(lead + (num_tasks,)), np.zeros(num_tasks),
                  np.zeros(num_tasks), np.zeros_like(r) if with_val else None)


def resume(checkpointer: Optional[Any], state: Any, m: Matrices,
           put_state: Callable[[Any], Any]) -> tuple[int, Any]:
  """(first task to train, state): the checkpointer's latest save copied
  into `m`, its state placed by `put_state`; (0, state) with nothing to
  restore."""
  restored = (None if checkpointer is None else checkpointer.restore(
      state, m.r.shape, extra=tuple(m.extra())))
  if restored is None:
    return 0, state
  m.r[...] = restored.accuracy_matrix
  m.task_losses[...] = restored.task_losses
  m.train_seconds[:] = restored.task_train_seconds
  for name, matrix in m.extra().items():
    matrix[...] = restored.extra[name]
  return restored.first_task, put_state(restored.state)


class Evaluation(NamedTuple):
  """What the evaluation after each task needs.

  Attributes:
    evaluate: the compiled (params, test_x, test_y, masks) -> accuracies.
    test_x, test_y, masks: the placed test sets and class masks (or None).
    host_masks: the class masks on the host (class-incremental rows).
    put: places an array like the test sets.
    mode: one of EVAL_MODES.
    evaluate_val: `evaluate` compiled for the validation sets, or None.
    val: the placed validation sets (val_x, val_y), or None.
  """
  evaluate: Callable[..., Any]
  test_x: Any
  test_y: Any
  masks: Any
  host_masks: Optional[np.ndarray]
  put: Callable[[Any], Any]
  mode: str
  evaluate_val: Optional[Callable[..., Any]] = None
  val: Optional[tuple[Any, Any]] = None


def evaluate_row(ev: Evaluation, m: Matrices, task: int, params: Any) -> int:
  """Fills row `task` of the matrices (the accuracies on every task's test
  set after training `task`, and on its validation set as r is scored) and
  its evaluation seconds; returns `task`."""
  t0 = time.perf_counter()
  seen = (None if ev.mode == 'task' else
          ev.put(class_incremental_masks(ev.host_masks, task)))
  if ev.mode != 'class':
    m.r[..., task, :] = multihost.to_host(
        ev.evaluate(params, ev.test_x, ev.test_y, ev.masks))
  if ev.mode != 'task':
    row = multihost.to_host(ev.evaluate(params, ev.test_x, ev.test_y, seen))
    (m.r if ev.mode == 'class' else m.r_class)[..., task, :] = row
  if ev.val is not None:
    m.r_val[..., task, :] = multihost.to_host(ev.evaluate_val(
        params, *ev.val, seen if ev.mode == 'class' else ev.masks))
  m.eval_seconds[task] = time.perf_counter() - t0
  return task


def check_finite(losses: np.ndarray, task: int, seeds: bool) -> None:
  """Raises NonFiniteLossError naming the first NaN or infinite loss of
  the task's stream, [(S,) num_batches]."""
  if np.all(np.isfinite(losses)):
    return
  bad = np.argwhere(~np.isfinite(losses))[0]
  where = (f'seed index {bad[0]}, ' if seeds else '') + (
      f'batch {bad[-1]} of task {task}')
  raise NonFiniteLossError(
      f'loss became {losses[tuple(bad)]} at {where}; lower the '
      "method's learning rates (or its regularisation strength)")


def train_task(train: Callable[[Any, int], tuple[Any, Any]], state: Any,
               task: int, m: Matrices, seeds: bool,
               strict: bool = True) -> Any:
  """Trains `task` (train(state, task) -> (state, losses)), times it to
  `m.train_seconds`, checks (unless not `strict`: a grid keeps training the
  settings that did not diverge) and stores its mean loss; returns the
  state."""
  t0 = time.perf_counter()
  state, losses = train(state, task)
  jax.block_until_ready((state, losses))
  m.train_seconds[task] = time.perf_counter() - t0
  losses = multihost.to_host(losses)
  if strict:
    check_finite(losses, task, seeds)
  m.task_losses[..., task] = losses.mean(-1)
  return state


def run_tasks(train: Callable[[Any, int], tuple[Any, Any]],
              evaluate: Callable[[int, Any], int],
              params_of: Callable[[Any], Any], state: Any, m: Matrices, *,
              first: int, seeds: bool,
              on_row: Callable[[int], None],
              checkpointer: Optional[Any] = None,
              overlap_eval: bool = False, strict: bool = True) -> Any:
  """The loop over tasks first..T-1; returns the final state.

  Args:
    train: train(state, task) -> (state, losses), the compiled call on the
      task's placed inputs; it donates `state`.
    evaluate: evaluate(task, params) -> task, fills row `task` of `m`
      (`evaluate_row`).
    params_of: the model's parameters in a state.
    state: the state to train from.
    m: the host matrices, filled in place.
    first: the first task to train (0, or after a restored checkpoint).
    seeds: arrays have a leading seed axis.
    on_row: called with each task once its row is filled, in task order.
    checkpointer: saves the run after every task (rows reported first).
    overlap_eval: evaluate on a second thread while the next task trains.
    strict: raise NonFiniteLossError on a NaN or infinite loss (a grid
      does not: its diverged settings show in `m.task_losses`).
  """
  pool = (concurrent.futures.ThreadPoolExecutor(1) if overlap_eval
          else None)
  pending = []
  try:
    for task in range(first, m.train_seconds.shape[0]):
      state = train_task(train, state, task, m, seeds, strict)
      if pool is None:
        on_row(evaluate(task, params_of(state)))
      else:
        # The next training call donates `state`: evaluate a copy.
        params = jax.block_until_ready(
            jax.tree.map(jnp.copy, params_of(state)))
        pending.append(pool.submit(evaluate, task, params))
        while pending and pending[0].done():
          on_row(pending.pop(0).result())
      if checkpointer is not None:
        for future in pending:
          on_row(future.result())
        pending = []
        checkpointer.save(task, state, m.r, m.task_losses, m.train_seconds,
                          extra=m.extra())
    for future in pending:
      on_row(future.result())
  finally:
    if pool is not None:
      pool.shutdown(wait=True, cancel_futures=True)
  return state
