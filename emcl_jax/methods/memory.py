"""A functional reservoir replay memory with fixed-size arrays.

The memory is a NamedTuple of arrays of static shape, so it lives inside
`jax.lax.scan` and `jit`. `add` keeps a uniform sample of everything seen
(reservoir sampling, Vitter's Algorithm R); `sample` draws distinct stored
samples uniformly. EMCL, fine-tuning and the replay baselines share it.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from emcl_jax.base import Batch


class MemoryState(NamedTuple):
  """Reservoir memory of `size` samples.

  Attributes:
    x: stored inputs, [size, ...], the dtype of the stream's inputs.
    y: stored labels, [size], int32.
    t: stored task identities, [size], int32.
    seen: number of stream samples offered to the memory so far, int32 [].
  """
  x: chex.Array
  y: chex.Array
  t: chex.Array
  seen: chex.Array

  @property
  def size(self) -> int:
    return self.y.shape[0]


def init(size: int, example: Batch) -> MemoryState:
  """An empty memory of `size` slots shaped like one sample of `example`."""
  if size <= 0:
    raise ValueError(f'memory size must be > 0, got {size}')
  return MemoryState(
      x=jnp.zeros((size,) + example.x.shape[1:], example.x.dtype),
      y=jnp.zeros((size,), jnp.int32),
      t=jnp.zeros((size,), jnp.int32),
      seen=jnp.zeros((), jnp.int32))


def add(memory: MemoryState, batch: Batch, key: chex.PRNGKey) -> MemoryState:
  """Offers each sample of `batch`, in order, to the reservoir.

  The n-th sample seen (0-based) fills slot n while the memory is not full;
  afterwards it replaces a uniformly chosen slot with probability size/(n+1).
  Every sample seen is then in the memory with the same probability.
  """
  keys = jax.random.split(key, batch.y.shape[0])

  def offer(i, mem):
    n = mem.seen
    j = jax.random.randint(keys[i], (), 0, jnp.maximum(n + 1, 1))
    slot = jnp.where(n < mem.size, n, j)
    keep = slot < mem.size
    slot = jnp.minimum(slot, mem.size - 1)

    def put(store, value):
      # Select on the one row only, not on the whole store.
      old = jax.lax.dynamic_index_in_dim(store, slot, 0, keepdims=False)
      row = jnp.where(keep, value.astype(store.dtype), old)
      return jax.lax.dynamic_update_index_in_dim(store, row, slot, 0)

    return MemoryState(put(mem.x, batch.x[i]), put(mem.y, batch.y[i]),
                       put(mem.t, batch.t[i]), n + 1)

  return jax.lax.fori_loop(0, batch.y.shape[0], offer, memory)


def sample(memory: MemoryState, key: chex.PRNGKey,
           n: int) -> tuple[Batch, chex.Array]:
  """Draws `n` distinct stored samples uniformly at random.

  Args:
    memory: the memory.
    key: PRNG key.
    n: how many samples (static; at most the memory size).

  Returns:
    (batch, weights): `n` samples and float32 weights [n], 1 for a real stored
    sample, 0 where the memory holds fewer than `n` samples (those rows are
    padding and must not be trained on).
  """
  if n > memory.size:
    raise ValueError(f'cannot sample {n} from a memory of {memory.size}')
  filled = jnp.arange(memory.size) < memory.seen
  u = jnp.where(filled, jax.random.uniform(key, (memory.size,)), 2.0)
  _, idx = jax.lax.top_k(-u, n)
  batch = Batch(memory.x[idx], memory.y[idx], memory.t[idx])
  return batch, filled[idx].astype(jnp.float32)
