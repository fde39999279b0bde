"""The inner stream of a meta-update: the batch, plus replay samples.

Algorithm 1 takes k = sizeof(b) inner steps, one sample each. When a replay
memory is on (docs/algorithm.md #3), `replay_size` stored samples join the
batch, as in La-MAML, and the stream is shuffled. Fine-tuning walks the very
same stream, which makes it the cost floor of EMCL.
"""

from typing import Callable, Optional

import chex
import jax
import jax.numpy as jnp

from emcl_jax.methods import memory as memory_lib
from emcl_jax.base import Batch, LossFn, concat


def check_replay(memory_size: int, replay_size: int, glances: int) -> None:
  """Raises ValueError for replay settings no method can run with."""
  if memory_size < 0 or replay_size < 0:
    raise ValueError('memory_size and replay_size must be >= 0')
  if memory_size and replay_size > memory_size:
    raise ValueError(f'replay_size {replay_size} exceeds memory_size '
                     f'{memory_size}')
  if glances < 1:
    raise ValueError(f'glances must be >= 1, got {glances}')


def build(batch: Batch, memory: Optional[memory_lib.MemoryState],
          replay_size: int, key: chex.PRNGKey) -> tuple[Batch, chex.Array]:
  """Returns the shuffled inner stream and its sample weights (1 real, 0 pad).

  Args:
    batch: the incoming samples, [b, ...].
    memory: the replay memory, or None for no replay.
    replay_size: stored samples to add (ignored without a memory).
    key: PRNG key (replay draw and shuffle).

  Returns:
    (stream, weights) with b + replay_size samples (b without memory).
  """
  weights = jnp.ones(batch.y.shape, jnp.float32)
  k_replay, k_perm = jax.random.split(key)
  if memory is not None and replay_size > 0:
    replay, replay_w = memory_lib.sample(memory, k_replay, replay_size)
    batch = concat(batch, replay)
    weights = jnp.concatenate([weights, replay_w])
  perm = jax.random.permutation(k_perm, weights.shape[0])
  return Batch(*(jnp.asarray(a)[perm] for a in batch)), weights[perm]


def per_sample_scan(
    loss_fn: LossFn, theta: chex.ArrayTree, stream: Batch, weights: chex.Array,
    step: Callable[[chex.ArrayTree, chex.ArrayTree], chex.ArrayTree],
) -> tuple[chex.ArrayTree, chex.Array]:
  """Takes one `step(theta, grads)` per stream sample, skipping padding.

  Args:
    loss_fn: loss_fn(params, batch, weights) -> scalar.
    theta: starting weights.
    stream: samples [k, ...].
    weights: [k], 0 marks padding (no step is taken on it).
    step: the update rule, e.g. SGD or EMCL's PGD step.

  Returns:
    (theta_k, losses [k]).
  """
  grad_fn = jax.value_and_grad(loss_fn)

  def body(theta, sample):
    x, y, t, w = sample
    one = Batch(x[None], y[None], t[None])

    def take_step(theta):
      loss, grads = grad_fn(theta, one, w[None])
      return step(theta, grads), loss

    # Padding rows (w = 0) leave theta as it is; a branch, not a select over
    # every parameter, so real samples pay nothing for it.
    return jax.lax.cond(w > 0, take_step,
                        lambda theta: (theta, jnp.zeros((), jnp.float32)),
                        theta)

  return jax.lax.scan(body, theta, (*stream, weights))
