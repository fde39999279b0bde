"""Plain online fine-tuning: SGD, one sample per step, on EMCL's inner stream.

The lower bound on accuracy and the floor on cost: the same per-sample
gradient steps EMCL takes (replay samples included when a memory is on, the
same number of glances), with nothing else — no importance, no proximal step,
no meta-update. With a memory this is per-sample experience replay.
"""

from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp

from emcl_jax.equations import inner as inner_lib
from emcl_jax import losses as losses_lib
from emcl_jax.methods import memory as memory_lib
from emcl_jax.methods import stream as stream_lib
from emcl_jax.base import Batch, LossFn, Method, bind


class FinetuneConfig(NamedTuple):
  """Hyper-parameters of fine-tuning (and of `joint`).

  Attributes:
    lr: SGD learning rate of the per-sample steps.
    memory_size: reservoir memory slots; 0 turns replay off.
    replay_size: stored samples added to each inner stream.
    glances: passes over each incoming batch.
  """
  lr: float = 0.01
  memory_size: int = 0
  replay_size: int = 10
  glances: int = 1

  def validate(self) -> 'FinetuneConfig':
    if not self.lr > 0:
      raise ValueError(f'lr must be > 0, got {self.lr}')
    stream_lib.check_replay(self.memory_size, self.replay_size, self.glances)
    return self


class FinetuneState(NamedTuple):
  """Attributes: params; memory (or None); step (batches seen, int32 [])."""
  params: chex.ArrayTree
  memory: Optional[memory_lib.MemoryState]
  step: chex.Array


def init(params: chex.ArrayTree, example: Batch,
         config: FinetuneConfig = FinetuneConfig()) -> FinetuneState:
  """Initial state: the parameters and an empty memory (if any)."""
  memory = (memory_lib.init(config.memory_size, example)
            if config.memory_size else None)
  return FinetuneState(params, memory, jnp.zeros((), jnp.int32))


def update(state: FinetuneState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: FinetuneConfig = FinetuneConfig()
          ) -> tuple[FinetuneState, dict[str, chex.Array]]:
  """SGD over the inner stream, one sample per step (Eq 16 with lr)."""
  k_glances, k_memory = jax.random.split(key)
  step = lambda theta, grads: inner_lib.gradient_step(theta, grads, config.lr)

  def glance(params, k):
    stream, weights = stream_lib.build(batch, state.memory,
                                       config.replay_size, k)
    params, losses = stream_lib.per_sample_scan(loss_fn, params, stream,
                                                weights, step)
    return params, losses_lib.weighted_mean(losses, weights)

  params, losses = jax.lax.scan(glance, state.params,
                                jax.random.split(k_glances, config.glances))
  memory = state.memory
  if memory is not None:
    memory = memory_lib.add(memory, batch, k_memory)
  return FinetuneState(params, memory, state.step + 1), {'loss': losses[-1]}


def method(loss_fn: LossFn, example: Batch,
           config: FinetuneConfig = FinetuneConfig()) -> Method:
  """Fine-tuning as a `Method` (init/update pair) for the training engine."""
  return bind(init, update, loss_fn, example, config)
