"""ER: experience replay with a reservoir memory.

Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual Learning"
(ER-Reservoir), in the form of Riemer et al. 2019's Algorithm 4 as the
official code runs it on batches (montrealrobotics/La-MAML,
model/eralg4.py, `ER`). For each incoming batch b, `glances` times:

  B <- replay_size samples of M, then b                   (getBatch)
  theta <- theta - lr * clip(grad (1/|B|) sum_{i in B} l(theta; B[i]))

then every sample of b is offered to the reservoir M, in order. The loss is
the mean over the real samples of B (the official `take_multitask_loss`
with one head: the per-sample mean). The La-MAML repo clips the gradient to
a global norm (2.0); mattriemer/MER's eralg4, whose MNIST hyper-parameters
we use, does not: `grad_clip_norm` defaults to 0 (off).

Deviations (as in `mer`): replay samples are distinct (`memory.sample`;
the official draw may repeat one), and the reservoir is Vitter's
Algorithm R (`memory.add`). While the memory holds fewer than replay_size
samples the missing rows are 0-weight padding, so the mean runs over the
stored samples and the batch only, as in the official code.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from emcl_jax import clipping
from emcl_jax.equations import inner as inner_lib
from emcl_jax.methods import memory as memory_lib
from emcl_jax.methods import stream as stream_lib
from emcl_jax.base import Batch, LossFn, Method, bind, concat


class ERConfig(NamedTuple):
  """Hyper-parameters, named after the official code's flags; the defaults
  are mattriemer/MER's mer_examples.sh for MNIST Permutations, 200 memories.

  Attributes:
    lr: SGD learning rate of the replay step.
    memory_size: reservoir memory slots (200 / 500 in the paper's setting).
    replay_size: memory samples joined to each incoming batch.
    glances: replay steps per incoming batch, each with a fresh draw.
    grad_clip_norm: global-norm clip of the gradient; 0 turns it off.
  """
  lr: float = 0.1
  memory_size: int = 200
  replay_size: int = 10
  glances: int = 1
  grad_clip_norm: float = 0.0

  def validate(self) -> 'ERConfig':
    """Raises ValueError naming the first bad field; returns self."""
    if not self.lr > 0:
      raise ValueError(f'lr must be > 0, got {self.lr}')
    if self.grad_clip_norm < 0:
      raise ValueError(f'grad_clip_norm must be >= 0, got '
                       f'{self.grad_clip_norm}')
    if not self.memory_size:
      raise ValueError('ER needs a replay memory: memory_size must be > 0')
    stream_lib.check_replay(self.memory_size, self.replay_size, self.glances)
    return self


class ERState(NamedTuple):
  """Attributes: params; memory (reservoir M); step (incoming batches seen,
  int32 [])."""
  params: chex.ArrayTree
  memory: memory_lib.MemoryState
  step: chex.Array


def init(params: chex.ArrayTree, example: Batch,
         config: ERConfig = ERConfig()) -> ERState:
  """The parameters and an empty memory."""
  return ERState(params, memory_lib.init(config.memory_size, example),
                 jnp.zeros((), jnp.int32))


def replay_step(params: chex.ArrayTree, batch: Batch,
                memory: memory_lib.MemoryState, key: chex.PRNGKey, *,
                loss_fn: LossFn, config: ERConfig
               ) -> tuple[chex.ArrayTree, chex.Array]:
  """One SGD step of Algorithm 4 on the replay samples joined to `batch`.

  Args:
    params: theta.
    batch: the incoming samples.
    memory: M, drawn with `memory.sample(memory, key, replay_size)`.
    key: PRNG key of the draw.
    loss_fn: loss_fn(params, batch, weights), a weighted mean.
    config: lr, replay_size, grad_clip_norm.

  Returns:
    (theta after the step, the combined loss before it).
  """
  replay, replay_w = memory_lib.sample(memory, key, config.replay_size)
  combined = concat(replay, batch)
  weights = jnp.concatenate([replay_w, jnp.ones(batch.y.shape, jnp.float32)])
  loss, grads = jax.value_and_grad(loss_fn)(params, combined, weights)
  grads = clipping.clip_by_global_norm(grads, config.grad_clip_norm)
  return inner_lib.gradient_step(params, grads, config.lr), loss


def update(state: ERState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: ERConfig = ERConfig()
          ) -> tuple[ERState, dict[str, chex.Array]]:
  """`glances` replay steps on the batch, then the reservoir update.

  Glance g draws with jax.random.split(k_glances, glances)[g], where
  (k_glances, k_memory) = jax.random.split(key).

  Returns:
    (new state, metrics) with 'loss', the combined loss of the last glance.
  """
  k_glances, k_memory = jax.random.split(key)

  def glance(params, k):
    return replay_step(params, batch, state.memory, k, loss_fn=loss_fn,
                       config=config)

  params, losses = jax.lax.scan(glance, state.params,
                                jax.random.split(k_glances, config.glances))
  memory = memory_lib.add(state.memory, batch, k_memory)
  return ERState(params, memory, state.step + 1), {'loss': losses[-1]}


def method(loss_fn: LossFn, example: Batch,
           config: ERConfig = ERConfig()) -> Method:
  """ER as a `Method` (init/update pair) for the training engine."""
  return bind(init, update, loss_fn, example, config)
