"""GEM: Gradient Episodic Memory (Lopez-Paz & Ranzato, NeurIPS 2017), as in
the official code that the EMCL paper ran (facebookresearch/
GradientEpisodicMemory, copied unchanged into montrealrobotics/La-MAML as
model/gem.py, with La-MAML's glances and gradient clipping added).

Episodic memory: `memory_per_task` slots for each of `max_tasks` tasks, a
[max_tasks, memory_per_task] array (Table II's memory of 200 over 20 tasks is
10 per task; 500 over 100 tasks is 5). Each task's slots are a ring buffer
of that task's samples: the memory of task t holds the last
`memory_per_task` samples of its stream (the official code writes batches
into the ring too, but with one counter shared by all tasks and dropping
the part of a batch that runs past the end of the ring; with batches of 10
and 10 slots per task both keep the task's last batch).

Task t's memory lives in row t mod max_tasks. With more than `max_tasks`
tasks a task reuses the row of the task `max_tasks` before it, whose memory
(and constraint) is then lost: set max_tasks to at least the stream's
number of tasks (20 for MNIST Permutations, 100 for Many Permutations;
`runner.run` refuses fewer rows than the stream has tasks). The
task of a batch is `batch.t[0]` (the engine's batches hold one task each).

One call of `update` is one incoming batch b (10 samples), seen `glances`
times (official default 1). First b is written to its task's memory; then
each glance takes one SGD step on the whole batch (not per-sample steps):
  1. G_k = grad of the mean loss on task k's whole memory, for every past
     task (a task seen before, other than b's), each clipped to norm
     `grad_clip_norm`. One vmap over all max_tasks rows (static shapes:
     rows of tasks not seen yet are computed and masked off, so the cost
     per step follows max_tasks); skipped during the first task.
  2. g = grad of the mean loss on b, clipped to norm `grad_clip_norm`.
  3. If <g, G_k> < 0 for some past k (Eq 6 fails), g~ = G^T v* + g with v*
     the solution of the dual QP (Eq 11-13) with the official code's
     variants: P = G G^T + qp_eps I and v >= memory_strength (its "margin");
     otherwise g~ = g, exactly. The QP is solved exactly in JAX by an
     active-set method (`gem_qp.gem_dual`; the official code calls
     quadprog on the host). The clipping of step 1 is applied to G G^T,
     G g and v inside `projection.gem_project`, never to a copy of G.
  4. theta <- theta - lr * g~  (plain SGD, no clipping after projection).
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from emcl_jax import clipping
from emcl_jax.methods import projection
from emcl_jax.base import Batch, LossFn, Method, bind


class GEMConfig(NamedTuple):
  """Hyper-parameters, named as the official code's flags where it has them.

  Attributes:
    lr: SGD learning rate.
    memory_per_task: episodic memory slots per task (n_memories).
    max_tasks: tasks the memory has rows for (row = task id mod max_tasks).
    memory_strength: lower bound on the dual variables v (official margin).
    qp_eps: ridge added to G G^T in the dual QP (official 1e-3).
    grad_clip_norm: norm clip of every gradient before projection (0: off).
    glances: SGD steps on each incoming batch.
  """
  lr: float = 0.1
  memory_per_task: int = 10
  max_tasks: int = 20
  memory_strength: float = 0.5
  qp_eps: float = 1e-3
  grad_clip_norm: float = 2.0
  glances: int = 1

  def validate(self) -> 'GEMConfig':
    """Raises ValueError naming the first bad field; returns self."""
    if not self.lr > 0:
      raise ValueError(f'lr must be > 0, got {self.lr}')
    for name in ('memory_per_task', 'max_tasks', 'glances'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
    for name in ('memory_strength', 'qp_eps', 'grad_clip_norm'):
      if not getattr(self, name) >= 0:
        raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
    return self


class TaskMemory(NamedTuple):
  """GEM's episodic memory: one ring buffer of samples per task row.

  Attributes:
    x: stored inputs, [max_tasks, memory_per_task, ...], the stream's dtype.
    y: stored labels, [max_tasks, memory_per_task], int32.
    task: task id stored in each row, [max_tasks], int32 (-1: never used).
    count: samples written to each row so far, [max_tasks], int32; slots
      [0, min(count, memory_per_task)) hold samples, the next write goes to
      slot count mod memory_per_task.
  """
  x: chex.Array
  y: chex.Array
  task: chex.Array
  count: chex.Array


class GEMState(NamedTuple):
  """Attributes: params; memory (TaskMemory); step (batches seen, int32 [])."""
  params: chex.ArrayTree
  memory: TaskMemory
  step: chex.Array


def memory_init(max_tasks: int, memory_per_task: int,
                example: Batch) -> TaskMemory:
  """An empty memory of [max_tasks, memory_per_task] samples like `example`."""
  shape = (max_tasks, memory_per_task)
  return TaskMemory(
      x=jnp.zeros(shape + example.x.shape[1:], example.x.dtype),
      y=jnp.zeros(shape, jnp.int32),
      task=jnp.full((max_tasks,), -1, jnp.int32),
      count=jnp.zeros((max_tasks,), jnp.int32))


def memory_add(memory: TaskMemory, batch: Batch, task: chex.Array
              ) -> TaskMemory:
  """Writes `batch`, in order, into the ring buffer of row task mod
  max_tasks (a row taken over by a new task starts afresh).

  Only the last memory_per_task samples of a batch can survive its own
  writes, so only those are written (distinct slots, one scatter).
  """
  max_tasks, n = memory.y.shape
  row = task % max_tasks
  count = jnp.where(memory.task[row] == task, memory.count[row], 0)
  b = batch.y.shape[0]
  i = jnp.arange(b)
  slots = jnp.where(i >= b - n, (count + i) % n, n)  # n: dropped

  def put(store, values):
    old = store[row]
    return store.at[row].set(old.at[slots].set(values.astype(store.dtype),
                                               mode='drop'))

  return TaskMemory(put(memory.x, batch.x), put(memory.y, batch.y),
                    memory.task.at[row].set(task),
                    memory.count.at[row].set(count + b))


def memory_batches(memory: TaskMemory) -> tuple[Batch, chex.Array]:
  """Every row's samples as a batch [max_tasks, memory_per_task, ...] and
  their weights [max_tasks, memory_per_task] (1 for a stored sample)."""
  max_tasks, n = memory.y.shape
  t = jnp.broadcast_to(memory.task[:, None], (max_tasks, n))
  weights = jnp.arange(n)[None, :] < memory.count[:, None]
  return Batch(memory.x, memory.y, t), weights.astype(jnp.float32)


def init(params: chex.ArrayTree, example: Batch,
         config: GEMConfig = GEMConfig()) -> GEMState:
  """Initial state: the parameters and an empty episodic memory."""
  return GEMState(params,
                  memory_init(config.max_tasks, config.memory_per_task,
                              example),
                  jnp.zeros((), jnp.int32))


def past_task_gradients(params: chex.ArrayTree, memory: TaskMemory, *,
                        loss_fn: LossFn) -> chex.ArrayTree:
  """Step 1 of the module docstring, before clipping: g_k of GEM's Eq 6
  for every row k, as a pytree like params with a leading [max_tasks] axis
  (0 for an empty row). `projection.gem_project` clips and masks them."""
  batches, weights = memory_batches(memory)
  return jax.vmap(jax.grad(loss_fn), in_axes=(None, 0, 0))(
      params, batches, weights)


def update(state: GEMState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: GEMConfig = GEMConfig()
          ) -> tuple[GEMState, dict[str, chex.Array]]:
  """One incoming batch: memory write, then `glances` projected SGD steps
  (module docstring, steps 1-4). `key` is unused (GEM is deterministic).

  Returns:
    (new state, metrics): 'loss' (batch loss before the last step),
    'projected' (1.0 if the last step's gradient was projected),
    'qp_iterations' (active-set iterations of the last solve).
  """
  del key
  task = batch.t[0]
  memory = memory_add(state.memory, batch, task)
  row = task % config.max_tasks
  past = (memory.count > 0) & (jnp.arange(config.max_tasks) != row)
  ones = jnp.ones(batch.y.shape, jnp.float32)

  def glance(params, _):
    loss, g = jax.value_and_grad(loss_fn)(params, batch, ones)
    g = clipping.clip_by_global_norm(g, config.grad_clip_norm)

    def constrained(g):
      big_g = past_task_gradients(params, memory, loss_fn=loss_fn)
      g_tilde, violated, info = projection.gem_project(
          g, big_g, past, clip_norm=config.grad_clip_norm,
          margin=config.memory_strength, eps=config.qp_eps)
      return g_tilde, violated, info.iterations

    def first_task(g):
      return g, jnp.asarray(False), jnp.zeros((), jnp.int32)

    # No past task (the first task): no memory gradients to compute.
    g_tilde, violated, iterations = jax.lax.cond(jnp.any(past), constrained,
                                                 first_task, g)
    params = jax.tree.map(lambda p, d: p - config.lr * d, params, g_tilde)
    return params, (loss, violated.astype(jnp.float32), iterations)

  params, (losses, violated, iterations) = jax.lax.scan(
      glance, state.params, None, length=config.glances)
  return (GEMState(params, memory, state.step + 1),
          {'loss': losses[-1], 'projected': violated[-1],
           'qp_iterations': iterations[-1]})


def method(loss_fn: LossFn, example: Batch,
           config: GEMConfig = GEMConfig()) -> Method:
  """GEM as a `Method` (init/update pair) for the training engine."""
  return bind(init, update, loss_fn, example, config)
