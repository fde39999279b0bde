"""MER: Meta-Experience Replay (Riemer et al., ICLR 2019), Algorithm 1.

"Learning to Learn without Forgetting by Maximizing Transfer and Minimizing
Interference", Algorithm 1 (within-batch and across-batch Reptile), as in
the official code (mattriemer/MER and montrealrobotics/La-MAML,
model/meralg1.py). Notation: s batches per example
(`batches_per_example`), each of k samples, the current one plus k - 1
(`replay_size`) drawn from the reservoir memory M; alpha the SGD rate (`lr`);
the comments in brackets are those of Algorithm 1 and the official code.

MER learns from one example at a time. `update` receives the engine's batch
of 10 and scans its samples in order; for each example (x, y):

  theta_A_0 <- theta                                 (code: before)
  for i = 1..s:
    B_i <- [(x, y)] + (k - 1) samples of M           (draw batch from buffer)
    theta_W_i0 <- theta                              (code: weights_before)
    for j = 1..k:  theta <- theta - alpha * grad l(theta; B_i[j])
    theta <- theta_W_i0 + beta (theta - theta_W_i0)  (within-batch Reptile)
  theta <- theta_A_0 + gamma (theta - theta_A_0)     (across-batch Reptile)
  M <- reservoir(M, (x, y))                          (reservoir sampling)

So the next example of the same incoming batch may already replay (x, y),
as in the official code, which writes M after every example.

Details kept from the official code: the current example is first in every
B_i; the s batches are drawn afresh, from the memory as it was before the
example. The La-MAML repo's meralg1 clips each per-sample gradient to a
global norm (its flag's default 2.0; its run_experiments.sh passes 10.0);
mattriemer/MER, whose MNIST hyper-parameters we use, does not. We default to
no clip (`grad_clip_norm` = 0): at 2.0, Permuted MNIST ACC drops from 74.6
to 64.2 (seed 0). Deviations: each B_i holds k - 1 *distinct* memory samples
(`memory.sample`; the official draw, a fresh shuffle per draw, may repeat
one); and the reservoir is Vitter's Algorithm R (`memory.add`: the n-th
sample, 0-based, replaces a slot with probability size / (n + 1); the
official `randint(0, age)` after `age += 1` uses size / (n + 2)). While the
memory holds fewer than k - 1 samples the missing rows are padding and take
no step, as the official draw then returns only the stored samples.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from emcl_jax import clipping
from emcl_jax.equations import inner as inner_lib
from emcl_jax import losses as losses_lib
from emcl_jax.methods import memory as memory_lib
from emcl_jax.methods import stream as stream_lib
from emcl_jax.base import Batch, LossFn, Method, bind


class MERConfig(NamedTuple):
  """Hyper-parameters, named after the official code's flags; the defaults
  are mattriemer/MER's mer_examples.sh for MNIST Permutations, 200 memories.

  Attributes:
    lr: alpha, the SGD rate of the per-sample steps.
    beta: within-batch Reptile meta-learning rate.
    gamma: across-batch Reptile meta-learning rate.
    batches_per_example: s, batches drawn for each incoming example.
    memory_size: reservoir memory slots (200 / 500 in the paper's setting).
    replay_size: k - 1, memory samples in each batch besides the example.
    grad_clip_norm: global-norm clip of each per-sample gradient; 0 = off.
  """
  lr: float = 0.03
  beta: float = 0.03
  gamma: float = 1.0
  batches_per_example: int = 10
  memory_size: int = 200
  replay_size: int = 10
  grad_clip_norm: float = 0.0

  def validate(self) -> 'MERConfig':
    """Raises ValueError naming the first bad field; returns self."""
    for name in ('lr', 'beta', 'gamma'):
      if not getattr(self, name) > 0:
        raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
    if self.grad_clip_norm < 0:
      raise ValueError(f'grad_clip_norm must be >= 0, got '
                       f'{self.grad_clip_norm}')
    if self.batches_per_example < 1:
      raise ValueError(f'batches_per_example must be >= 1, got '
                       f'{self.batches_per_example}')
    if not self.memory_size:
      raise ValueError('MER needs a replay memory: memory_size must be > 0')
    stream_lib.check_replay(self.memory_size, self.replay_size, 1)
    return self


class MERState(NamedTuple):
  """Attributes: params (theta); memory (reservoir M); step (incoming
  batches seen, int32 [])."""
  params: chex.ArrayTree
  memory: memory_lib.MemoryState
  step: chex.Array


def init(params: chex.ArrayTree, example: Batch,
         config: MERConfig = MERConfig()) -> MERState:
  """theta = params and an empty memory (Algorithm 1: M <- {})."""
  return MERState(params, memory_lib.init(config.memory_size, example),
                  jnp.zeros((), jnp.int32))


def reptile(start: chex.ArrayTree, end: chex.ArrayTree,
            rate: float) -> chex.ArrayTree:
  """Algorithm 1's Reptile meta-updates: start + rate * (end - start)."""
  return jax.tree.map(lambda a, b: a + rate * (b - a), start, end)


def draw_batches(memory: memory_lib.MemoryState, example: Batch,
                 key: chex.PRNGKey, config: MERConfig
                ) -> tuple[Batch, chex.Array]:
  """B_1..B_s of Algorithm 1: the example, then k - 1 memory samples each.

  Batch i uses `memory.sample(memory, jax.random.split(key, s)[i], k - 1)`.

  Args:
    memory: M as it is before this example.
    example: the incoming example, a batch of one.
    key: PRNG key of the draws.
    config: gives s and k - 1.

  Returns:
    (batches, weights): samples [s, k, ...] and weights [s, k], 0 on the
    padding rows of a memory that holds fewer than k - 1 samples.
  """
  s = config.batches_per_example
  replay, replay_w = jax.vmap(memory_lib.sample, in_axes=(None, 0, None))(
      memory, jax.random.split(key, s), config.replay_size)
  batches = Batch(*(
      jnp.concatenate([jnp.broadcast_to(e.astype(r.dtype), (s,) + e.shape),
                       r], axis=1) for e, r in zip(example, replay)))
  weights = jnp.concatenate([jnp.ones((s, 1), jnp.float32), replay_w], axis=1)
  return batches, weights


def meta_update(theta: chex.ArrayTree, batches: Batch, weights: chex.Array,
                *, loss_fn: LossFn, config: MERConfig
               ) -> tuple[chex.ArrayTree, chex.Array]:
  """Algorithm 1 for one example, given its batches B_1..B_s.

  Per-sample SGD through each B_i (padding rows skipped), the within-batch
  Reptile step after each, the across-batch Reptile step at the end.

  Args:
    theta: weights before the example (theta_A_0).
    batches: [s, k, ...] from `draw_batches`.
    weights: [s, k], 0 marks padding.
    loss_fn: loss_fn(params, batch, weights).
    config: lr, beta, gamma, grad_clip_norm.

  Returns:
    (theta after the across-batch step, mean loss of the steps taken).
  """

  def sgd(theta, grads):
    grads = clipping.clip_by_global_norm(grads, config.grad_clip_norm)
    return inner_lib.gradient_step(theta, grads, config.lr)

  def one_batch(theta_w0, batch_and_weights):
    batch, w = batch_and_weights
    theta, losses = stream_lib.per_sample_scan(loss_fn, theta_w0, batch, w,
                                               sgd)
    return reptile(theta_w0, theta, config.beta), losses

  theta_s, losses = jax.lax.scan(one_batch, theta, (batches, weights))
  return (reptile(theta, theta_s, config.gamma),
          losses_lib.weighted_mean(losses, weights))


def update(state: MERState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: MERConfig = MERConfig()
          ) -> tuple[MERState, dict[str, chex.Array]]:
  """Algorithm 1 over the samples of `batch`, one example at a time.

  Example j of the batch uses key_j = jax.random.split(key, b)[j], split
  into (draw key, memory key): the draws of `draw_batches`, then
  `memory.add` of the example after its meta-update.

  Returns:
    (new state, metrics) with 'loss', the mean loss of the steps taken.
  """

  def example(carry, inputs):
    theta, memory = carry
    x, y, t, k = inputs
    k_draw, k_memory = jax.random.split(k)
    one = Batch(x[None], y[None], t[None])
    batches, weights = draw_batches(memory, one, k_draw, config)
    theta, loss = meta_update(theta, batches, weights, loss_fn=loss_fn,
                              config=config)
    return (theta, memory_lib.add(memory, one, k_memory)), loss

  keys = jax.random.split(key, batch.y.shape[0])
  (params, memory), losses = jax.lax.scan(
      example, (state.params, state.memory), (*batch, keys))
  return (MERState(params, memory, state.step + 1),
          {'loss': jnp.mean(losses)})


def method(loss_fn: LossFn, example: Batch,
           config: MERConfig = MERConfig()) -> Method:
  """MER as a `Method` (init/update pair) for the training engine."""
  return bind(init, update, loss_fn, example, config)
