"""A-GEM: Averaged GEM (Chaudhry, Ranzato, Rohrbach & Elhoseiny, ICLR 2019).

A-GEM keeps GEM's idea (do not increase the loss on past tasks) with one
constraint instead of one per task: the update must not point against the
gradient g_ref of the memory loss (Sec. 4, Eq 10-11).

Memory: the reservoir memory of `emcl_jax.memory` (`memory_size` samples,
uniform over everything seen), shared with the replay methods. The
reference batch is `replay_size` distinct samples drawn from it; by default
the whole memory (replay_size = memory_size), which is what the official
codes do at Table II's sizes: A-GEM's own MNIST scripts draw 256 stored
samples per step (EPS_MEM_BATCH_SIZE, more than the 200 stored here), and
La-MAML's model/agem.py, the
code the EMCL paper ran, takes the mean gradient of all past tasks'
stored samples. As in both official codes, the reference comes from
*past* tasks only (`past_tasks_only`): stored samples of the batch's own
task get weight 0, so during the first task g_ref = 0 and nothing is
projected.

Known differences from La-MAML's agem.py, on purpose: it keeps
`n_memories` slots per task (GEM's memory) and averages per-task gradients
(each clipped), where we take one clipped gradient of a reservoir batch, as
the A-GEM paper and the brief of this library describe; and it never
protects task 0 (its task counter starts at 0, so task 0 is never recorded
as observed).

One call of `update` is one incoming batch b (10 samples), seen `glances`
times (official default 1); each glance is one SGD step on the whole batch:
  1. g_ref = grad of the mean loss on the reference batch (past-task
     samples), clipped to norm `grad_clip_norm`.
  2. g = grad of the mean loss on b, clipped to norm `grad_clip_norm`.
  3. g~ = g - (<g, g_ref> / <g_ref, g_ref>) g_ref if <g, g_ref> < 0, else g
     (`projection.agem_project`, Eq 11).
  4. theta <- theta - lr * g~.
The reference batch is drawn once per incoming batch, before b joins the
reservoir (the official code pushes b after its steps).
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from emcl_jax import clipping
from emcl_jax import trees
from emcl_jax.methods import memory as memory_lib
from emcl_jax.methods import projection
from emcl_jax.base import Batch, LossFn, Method, bind


class AGEMConfig(NamedTuple):
  """Hyper-parameters.

  Attributes:
    lr: SGD learning rate.
    memory_size: reservoir memory slots (Table II: 200 / 500).
    replay_size: stored samples in the reference batch (at most memory_size).
    past_tasks_only: leave the batch's own task out of the reference batch.
    grad_clip_norm: norm clip of g and g_ref before projection (0: off).
    glances: SGD steps on each incoming batch.
  """
  lr: float = 0.03
  memory_size: int = 200
  replay_size: int = 200
  past_tasks_only: bool = True
  grad_clip_norm: float = 2.0
  glances: int = 1

  def validate(self) -> 'AGEMConfig':
    """Raises ValueError naming the first bad field; returns self."""
    if not self.lr > 0:
      raise ValueError(f'lr must be > 0, got {self.lr}')
    if self.memory_size < 1 or self.replay_size < 1:
      raise ValueError('A-GEM needs a memory: memory_size and replay_size '
                       f'must be >= 1, got {self.memory_size}, '
                       f'{self.replay_size}')
    if self.replay_size > self.memory_size:
      raise ValueError(f'replay_size {self.replay_size} exceeds memory_size '
                       f'{self.memory_size}')
    if self.glances < 1:
      raise ValueError(f'glances must be >= 1, got {self.glances}')
    if not self.grad_clip_norm >= 0:
      raise ValueError(f'grad_clip_norm must be >= 0, got '
                       f'{self.grad_clip_norm}')
    return self


class AGEMState(NamedTuple):
  """Attributes: params; memory (reservoir MemoryState); step (batches seen,
  int32 [])."""
  params: chex.ArrayTree
  memory: memory_lib.MemoryState
  step: chex.Array


def init(params: chex.ArrayTree, example: Batch,
         config: AGEMConfig = AGEMConfig()) -> AGEMState:
  """Initial state: the parameters and an empty reservoir memory."""
  return AGEMState(params, memory_lib.init(config.memory_size, example),
                   jnp.zeros((), jnp.int32))


def reference_batch(memory: memory_lib.MemoryState, task: chex.Array,
                    key: chex.PRNGKey, config: AGEMConfig
                   ) -> tuple[Batch, chex.Array]:
  """The memory batch of g_ref and its weights: `replay_size` distinct
  stored samples, weight 0 for empty slots and (past_tasks_only) for
  samples of `task`."""
  replay, weights = memory_lib.sample(memory, key, config.replay_size)
  if config.past_tasks_only:
    weights = weights * (replay.t != task)
  return replay, weights


def update(state: AGEMState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: AGEMConfig = AGEMConfig()
          ) -> tuple[AGEMState, dict[str, chex.Array]]:
  """One incoming batch: `glances` A-GEM steps (module docstring, 1-4),
  then the batch joins the reservoir.

  Returns:
    (new state, metrics): 'loss' (batch loss before the last step),
    'projected' (1.0 if the last step's gradient was projected).
  """
  k_replay, k_memory = jax.random.split(key)
  replay, replay_w = reference_batch(state.memory, batch.t[0], k_replay,
                                     config)
  ones = jnp.ones(batch.y.shape, jnp.float32)
  grad_fn = jax.value_and_grad(loss_fn)

  def glance(params, _):
    loss, g = grad_fn(params, batch, ones)
    g_ref = jax.grad(loss_fn)(params, replay, replay_w)
    g, g_ref = trees.materialize((g, g_ref))
    g = clipping.clip_by_global_norm(g, config.grad_clip_norm)
    g_ref = clipping.clip_by_global_norm(g_ref, config.grad_clip_norm)
    g_tilde, violated = projection.agem_project(g, g_ref)
    params = jax.tree.map(lambda p, d: p - config.lr * d, params, g_tilde)
    return params, (loss, violated.astype(jnp.float32))

  params, (losses, violated) = jax.lax.scan(glance, state.params, None,
                                            length=config.glances)
  memory = memory_lib.add(state.memory, batch, k_memory)
  return (AGEMState(params, memory, state.step + 1),
          {'loss': losses[-1], 'projected': violated[-1]})


def method(loss_fn: LossFn, example: Batch,
           config: AGEMConfig = AGEMConfig()) -> Method:
  """A-GEM as a `Method` (init/update pair) for the training engine."""
  return bind(init, update, loss_fn, example, config)
