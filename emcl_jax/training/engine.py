"""The training engine: one jitted `lax.scan` per task, batched evaluation.

For each task t: the task's stream, reshaped to [num_batches, batch_size, ...],
is consumed by a single compiled call that scans `method.update` over the
batches; then one compiled call evaluates every task's test set and fills
row t of the accuracy matrix R. Both functions are compiled once, ahead of
time, for the benchmark's shapes, and reused for every task.

The parts: `programs` builds, compiles and places the two calls' inputs;
`protocol` is the host loop over tasks that fills the accuracy matrices;
this module runs them in order and holds the entry points and records.

With `overlap_eval=True` the evaluation after task t runs on a second host
thread while task t+1 trains (on a copy of the parameters), so on a
multi-core CPU it hides most of the evaluation's time; the accuracy matrix
is the same, and `train_seconds` then includes whatever the two calls cost
each other in shared cores.
"""

import time
from typing import Any, Callable, NamedTuple, Optional, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax.base import Method
from emcl_jax.data.tasks import TaskSet
from emcl_jax.training import grid as grid_lib
from emcl_jax.training import multihost
from emcl_jax.training import programs
from emcl_jax.training import protocol
from emcl_jax.training.programs import (  # noqa: F401  (re-exported)
    keep_memory, make_evaluate, make_train_task, seed_mesh)
from emcl_jax.training.protocol import (  # noqa: F401
    EVAL_MODES, class_incremental_masks)


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
    val_accuracy: the row on the validation sets (`TaskSet.val_x`), like
      `accuracy`; None without them.
  """
  task: int
  num_tasks: int
  loss: np.ndarray
  accuracy: np.ndarray
  train_seconds: float
  eval_seconds: float
  accuracy_class: Optional[np.ndarray] = None
  val_accuracy: Optional[np.ndarray] = None


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
    val_accuracy_matrix: the accuracies on the validation sets, like
      accuracy_matrix (scored as it is); None without validation sets.
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
  val_accuracy_matrix: Optional[np.ndarray] = None


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
  return _run(method, apply_fn, params, (xs, ys, ts),
              (tasks.test_x, tasks.test_y, tasks.class_mask), key,
              val=(None if tasks.val_y is None
                   else (tasks.val_x, tasks.val_y)),
              seeds=False, record_fn=record_fn, overlap_eval=overlap_eval,
              checkpointer=checkpointer, batch_fn=batch_fn,
              eval_mode=eval_mode, epochs=epochs)


def _stacked(tasks: Sequence[TaskSet], batch_size: int) -> dict[str, Any]:
  """The seeds' batched streams, test sets and validation sets (`_run`'s
  stream, test and val) on a leading seed axis."""
  stack = lambda arrays: np.stack(list(arrays))  # noqa: E731
  streams = [batched(t, batch_size) for t in tasks]
  stream = tuple(stack(s[i] for s in streams) for i in range(3))
  test = (stack(t.test_x for t in tasks), stack(t.test_y for t in tasks),
          None if tasks[0].class_mask is None
          else stack(t.class_mask for t in tasks))
  val = (None if tasks[0].val_y is None else
         (stack(t.val_x for t in tasks), stack(t.val_y for t in tasks)))
  return dict(stream=stream, test=test, val=val)


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
  return _run(method, apply_fn, params, key=keys, seeds=True, mesh=mesh,
              **_stacked(tasks, batch_size), record_fn=record_fn,
              checkpointer=checkpointer,
              batch_fn=batch_fn, eval_mode=eval_mode, epochs=epochs)


def train_and_evaluate_grid(
    build: Callable[[dict[str, chex.Array]], Method],
    hparams: dict[str, chex.Array],
    apply_fn: Callable[[chex.ArrayTree, chex.Array], chex.Array],
    params: chex.ArrayTree,
    tasks: Sequence[TaskSet],
    *,
    batch_size: int,
    keys: chex.PRNGKey,
    mesh: Optional[jax.sharding.Mesh] = None,
    record_fn: Optional[Callable[[TaskRecord], None]] = None,
    batch_fn: Optional[Callable[[int, int, int, int, float], None]] = None,
    eval_mode: str = 'task',
    epochs: int = 1,
) -> RunResult:
  """The protocol for G settings x S seeds at once: one program per task.

  The settings differ only in numeric hyper-parameters, traced
  (`training.grid`): `build(hparams)` makes the method from {field:
  scalar}, and `hparams` holds each field's G values. The state has leaves
  [G, S, ...]; `method.update` is vmapped over the seeds and then over the
  settings, which share the seeds' data, initial parameters and keys (each
  setting's numbers equal its solo `train_and_evaluate_seeds` run up to
  float reassociation). With a `mesh` (one axis, named 'setting'), the
  settings are sharded over its devices; G must be a multiple of its size.

  A setting whose loss becomes NaN or infinite does not stop the others:
  its `task_losses` show it (no NonFiniteLossError). No checkpoints.

  Args:
    build: build(hparams) -> Method, hparams scalars (traced).
    hparams: {field: [G] array}.
    (others as in `train_and_evaluate_seeds`)

  Returns:
    A `RunResult` whose accuracy_matrix is [G, S, T, T'], task_losses
    [G, S, T] and state has leaves [G, S, ...] (`grid.Tuned`).
  """
  return _run(grid_lib.tuned(build), apply_fn, params, key=keys,
              **_stacked(tasks, batch_size), seeds=True, mesh=mesh,
              record_fn=record_fn,
              checkpointer=None, batch_fn=batch_fn, eval_mode=eval_mode,
              epochs=epochs, hparams=hparams)


class _Placed(NamedTuple):
  """A run's inputs on its devices ((S,): the seed axis, if any)."""
  stream: tuple[Any, ...]  # (x, y, t), each [(S,) T, num_batches, b, ...].
  test: tuple[Any, ...]  # (test_x, test_y, class masks or None), [(S,) T'..].
  key_init: chex.PRNGKey  # [(S,)] key of method.init.
  task_keys: chex.PRNGKey  # [(S,) T] key of each task's training call.
  val: Optional[tuple[Any, ...]]  # (val_x, val_y, masks) or None.


def _place(stream, test, val, key, put, seeds) -> _Placed:
  """Places the run's arrays (`programs.placer`) and splits its key into
  the init key and one key per task."""
  lift = jax.vmap if seeds else (lambda f: f)
  stream = tuple(put(a) for a in stream)
  test = (*(put(a) for a in test[:2]),
          None if test[2] is None else put(test[2]))
  val = None if val is None else (put(val[0]), put(val[1]), test[2])
  keys = jnp.moveaxis(lift(jax.random.split)(put(key)), -2, 0)
  key_init, key_run = keys[0], keys[1]  # indexed: sharded over processes
  num_tasks = stream[1].shape[1 if seeds else 0]
  task_keys = lift(lambda k: jax.random.split(k, num_tasks))(key_run)
  return _Placed(stream, test, key_init, task_keys, val)


class _BatchReporter:
  """`batch_fn` as `make_train_task`'s host callback (about 50 calls per
  task), told the task now training (`task`, set before each task)."""

  def __init__(self, batch_fn, num_tasks: int, num_batches: int):
    self.batch_fn = batch_fn
    self.num_tasks, self.num_batches = num_tasks, num_batches
    self.every = max(1, num_batches // 50)
    self.task = 0

  def __call__(self, done, loss) -> None:
    self.batch_fn(self.task, self.num_tasks, int(done), self.num_batches,
                  float(np.mean(loss)))


def _task_record(m: protocol.Matrices, task: int) -> TaskRecord:
  """Row `task` of the matrices as a `TaskRecord` (copies)."""
  return TaskRecord(
      task, m.train_seconds.shape[0], m.task_losses[..., task].copy(),
      m.r[..., task, :].copy(), float(m.train_seconds[task]),
      float(m.eval_seconds[task]),
      None if m.r_class is None else m.r_class[..., task, :].copy(),
      None if m.r_val is None else m.r_val[..., task, :].copy())


def _run(method, apply_fn, params, stream, test, key, *, seeds, record_fn,
         checkpointer, overlap_eval=False, mesh=None, batch_fn=None,
         eval_mode='task', epochs=1, hparams=None, val=None) -> RunResult:
  """The protocol shared by one seed, vmapped seeds (seeds=True: every
  array has a leading seed axis and the task axis comes second) and a grid
  (`hparams` given: `method` is `grid.tuned`, the state has a settings axis
  before the seeds): check the options, place the arrays, compile,
  restore, loop over the tasks. `val`: the validation sets (val_x, val_y)
  like the test sets, or None."""
  start = time.perf_counter()
  num_batches = int(stream[1].shape[-2])
  protocol.check_options(eval_mode, test[2] is not None, epochs,
                         num_batches)
  settings = hparams is not None
  # A grid's mesh splits the settings; the data stay whole on each device.
  put = programs.placer(None if settings else mesh)
  run = _place(stream, test, val, key, put, seeds)
  params = put(params) if mesh and not settings else params
  lift = jax.vmap if seeds else (lambda f: f)
  # The training call donates its state: copy, so that the caller's
  # `params` (which init may hold as they are) stay valid.
  if settings:
    state = jax.tree.map(jnp.copy, grid_lib.init_states(
        method, hparams, params, run.key_init, stream[1].shape[0]))
    if mesh is not None:
      state = jax.tree.map(programs.placer(mesh), state)
  else:
    state = jax.tree.map(jnp.copy, lift(method.init)(params, run.key_init))

  t0 = time.perf_counter()
  data_lead = (stream[1].shape[0],) if seeds else ()
  lead = (len(next(iter(hparams.values()))),) if settings else ()
  lead += data_lead
  num_tasks = stream[1].shape[len(data_lead)]
  reporter = (None if batch_fn is None else
              _BatchReporter(batch_fn, num_tasks, num_batches))
  at = (lambda a, t: a[:, t]) if seeds else (lambda a, t: a[t])

  def task_inputs(task):
    return (*(at(a, task) for a in run.stream), at(run.task_keys, task))

  progs = programs.compile_programs(
      method, apply_fn, state, task_inputs(0), run.test, seeds=seeds,
      settings=settings, mesh=mesh, on_batch=reporter,
      every=reporter.every if reporter else 1,
      fresh_batches=None if epochs == 1 else num_batches // epochs,
      val=run.val)
  compile_seconds = time.perf_counter() - t0

  m = protocol.new_matrices(lead, num_tasks,
                            run.test[1].shape[len(data_lead)],
                            eval_mode == 'both', val is not None)
  # b of FWT: the untrained model, scored as each task is after training it.
  init_accuracy = multihost.to_host(progs.evaluate(progs.params_of(state),
                                                   *run.test))
  first, state = protocol.resume(
      checkpointer, state, m,
      (lambda s: jax.tree.map(put, s)) if mesh else (lambda s: s))
  ev = protocol.Evaluation(progs.evaluate, *run.test,
                           None if test[2] is None else np.asarray(test[2]),
                           put, eval_mode, progs.evaluate_val,
                           None if run.val is None else run.val[:2])

  def train(state, task):
    if reporter is not None:
      reporter.task = task
    return progs.train_task(state, *task_inputs(task))

  def report(task):
    if record_fn is not None:
      record_fn(_task_record(m, task))

  loop_start = time.perf_counter()
  state = protocol.run_tasks(
      train, lambda task, p: protocol.evaluate_row(ev, m, task, p),
      progs.params_of, state, m, first=first, seeds=seeds, on_row=report,
      checkpointer=checkpointer, overlap_eval=overlap_eval,
      strict=not settings)
  end = time.perf_counter()
  return RunResult(m.r, float(m.train_seconds.sum()), compile_seconds,
                   float(m.eval_seconds.sum()), end - start,
                   end - loop_start, m.task_losses, state, m.train_seconds,
                   init_accuracy, m.r_class, m.r_val)
