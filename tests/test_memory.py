"""Reservoir replay memory: uniformity, filling, sampling, jit."""

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax.methods import memory
from emcl_jax.base import Batch


def stream_batch(start, n):
  ids = start + jnp.arange(n, dtype=jnp.int32)
  return Batch(x=ids[:, None].astype(jnp.float32), y=ids, t=ids // 100)


class MemoryTest(chex.TestCase):

  def test_fills_in_order_until_full(self):
    mem = memory.init(8, stream_batch(0, 5))
    mem = memory.add(mem, stream_batch(0, 5), jax.random.PRNGKey(0))
    np.testing.assert_array_equal(mem.y[:5], np.arange(5))
    np.testing.assert_array_equal(mem.y[5:], 0)
    self.assertEqual(int(mem.seen), 5)
    chex.assert_shape(mem.x, (8, 1))
    self.assertEqual(mem.x.dtype, jnp.float32)

  def test_reservoir_is_uniform(self):
    # Stream of N = 200 items through M = 20 slots, in batches of 10, over
    # many independent runs: every item must be kept with probability
    # M / N = 0.1. With R runs the count of one item is Binomial(R, 0.1);
    # we allow 5 standard deviations per item (false alarm < 1e-4 overall).
    n_items, size, runs = 200, 20, 2000

    def one_run(key):
      def add(mem, i_key):
        i, k = i_key
        return memory.add(mem, stream_batch(10 * i, 10), k), None

      steps = n_items // 10
      mem, _ = jax.lax.scan(add, memory.init(size, stream_batch(0, 10)),
                            (jnp.arange(steps), jax.random.split(key, steps)))
      return jnp.zeros(n_items).at[mem.y].add(1.0)

    counts = jax.jit(jax.vmap(one_run))(
        jax.random.split(jax.random.PRNGKey(0), runs)).sum(0)
    p = size / n_items
    std = np.sqrt(runs * p * (1 - p))
    np.testing.assert_array_less(np.abs(np.asarray(counts) - runs * p),
                                 5 * std)
    # And the memory always holds exactly `size` distinct items.
    self.assertEqual(float(counts.sum()), runs * size)
    # Early and late halves of the stream are equally represented.
    early, late = counts[:100].sum(), counts[100:].sum()
    self.assertLess(abs(float(early - late)), 5 * np.sqrt(2 * 100) * std)

  def test_sample_distinct_and_masks_empty_slots(self):
    mem = memory.init(10, stream_batch(0, 3))
    batch, w = memory.sample(mem, jax.random.PRNGKey(0), 4)
    np.testing.assert_array_equal(w, 0.0)  # empty memory: all padding
    mem = memory.add(mem, stream_batch(100, 3), jax.random.PRNGKey(1))
    batch, w = memory.sample(mem, jax.random.PRNGKey(2), 4)
    self.assertEqual(float(w.sum()), 3.0)
    real = np.asarray(batch.y)[np.asarray(w) > 0]
    self.assertEqual(sorted(real.tolist()), [100, 101, 102])
    mem = memory.add(mem, stream_batch(200, 7), jax.random.PRNGKey(3))
    batch, w = jax.jit(memory.sample, static_argnums=2)(
        mem, jax.random.PRNGKey(4), 10)
    np.testing.assert_array_equal(w, 1.0)
    self.assertLen(set(np.asarray(batch.y).tolist()), 10)

  def test_rejects_bad_sizes(self):
    with self.assertRaisesRegex(ValueError, 'memory size must be > 0'):
      memory.init(0, stream_batch(0, 1))
    mem = memory.init(3, stream_batch(0, 1))
    with self.assertRaisesRegex(ValueError, 'cannot sample 4'):
      memory.sample(mem, jax.random.PRNGKey(0), 4)


if __name__ == '__main__':
  absltest.main()
