"""La-MAML: Look-ahead MAML (Gupta, Yadav & Paull, NeurIPS 2020), and its
variants C-MAML and Sync-La-MAML, as in the official code
(montrealrobotics/La-MAML, model/lamaml.py).

One call of `update` is one incoming batch b, seen `glances` times. Each
glance (the paper's Algorithm 1; the code's `observe`):
  1. b is shuffled; M_b = replay_size samples of the memory, plus b.
  2. k inner steps, one per sample of b (not the replay samples):
       theta_i = theta_{i-1} - relu(alpha) * grad l(theta_{i-1}; b[i])
     with per-parameter learning rates alpha (the paper's Eq 3 / Alg. 1 l.8).
  3. meta-loss  L_meta = (1/k) sum_i L(theta_i; M_b)  (the look-ahead
     objective: the replay+batch loss after every inner step, averaged).
  4. grad L_meta w.r.t. theta0 and alpha, each clipped to a global norm
     `grad_clip_norm`; first-order (inner gradients held constant, the
     official default; `first_order_meta_gradients`) or `second_order`
     (autodiff of `look_ahead_loss` through the inner scan).
  5. if learn_lr: alpha <- alpha - opt_lr * grad_alpha          (Alg. 1 l.10)
     theta0 <- theta0 - relu(alpha) * grad_theta0                (Alg. 1 l.11)
     or, with sync_update, theta0 <- theta0 - opt_wt * grad_theta0.
On the first glance the batch's samples are offered to the reservoir
memory, after the replay draw (as the official code pushes them inside the
inner loop, after `getBatch`).

Variants (the official run_experiments.sh): `lamaml` learns alpha and steps
theta0 with relu(alpha); `sync` learns alpha but steps theta0 with the
constant opt_wt; `cmaml` (learn_lr off, sync on) keeps alpha = alpha_init.

Two details of the official code are kept on purpose: the inner gradients
are not clipped (its `torch.clamp` discards its result), and the per-sample
inner steps cover the batch only. Replay draws are distinct samples here; the
official draw may repeat a sample.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from emcl_jax import clipping
from emcl_jax.training import memory as memory_lib
from emcl_jax.training import stream as stream_lib
from emcl_jax.base import Batch, LossFn, Method, bind, concat


class LaMAMLConfig(NamedTuple):
  """Hyper-parameters, named as the official code's flags.

  Attributes:
    alpha_init: initial per-parameter learning rate alpha_0 (Table II).
    opt_lr: learning rate of alpha, eta in Table II.
    opt_wt: constant weight learning rate of the sync variants.
    learn_lr: learn alpha (off: C-MAML).
    sync_update: step theta0 with opt_wt instead of relu(alpha).
    second_order: differentiate through the inner gradients.
    grad_clip_norm: global-norm clip of the meta-gradients (theta0, alpha).
    memory_size: reservoir slots (Table II: 200 / 500).
    replay_size: memory samples in the meta batch M_b.
    glances: passes over each incoming batch.
  """
  alpha_init: float = 0.15
  opt_lr: float = 0.3
  opt_wt: float = 0.1
  learn_lr: bool = True
  sync_update: bool = False
  second_order: bool = False
  grad_clip_norm: float = 2.0
  memory_size: int = 200
  replay_size: int = 10
  glances: int = 5

  def validate(self) -> 'LaMAMLConfig':
    """Raises ValueError naming the first bad field; returns self."""
    for name in ('alpha_init', 'opt_lr', 'opt_wt', 'grad_clip_norm'):
      if not getattr(self, name) > 0:
        raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
    if not self.memory_size:
      raise ValueError('La-MAML needs a replay memory: memory_size must be '
                       '> 0')
    stream_lib.check_replay(self.memory_size, self.replay_size, self.glances)
    return self


class LaMAMLState(NamedTuple):
  """Attributes: params (theta0); alpha (learning rates, like params,
  float32); memory (reservoir); step (batches seen, int32 [])."""
  params: chex.ArrayTree
  alpha: chex.ArrayTree
  memory: memory_lib.MemoryState
  step: chex.Array


def init(params: chex.ArrayTree, example: Batch,
         config: LaMAMLConfig = LaMAMLConfig()) -> LaMAMLState:
  """theta0 = params, alpha = alpha_init everywhere, an empty memory."""
  alpha = jax.tree.map(
      lambda p: jnp.full(p.shape, config.alpha_init, jnp.float32), params)
  return LaMAMLState(params, alpha,
                     memory_lib.init(config.memory_size, example),
                     jnp.zeros((), jnp.int32))


def look_ahead_loss(theta0: chex.ArrayTree, alpha: chex.ArrayTree,
                    batch: Batch, meta_batch: Batch, meta_weights: chex.Array,
                    *, loss_fn: LossFn, second_order: bool = False
                   ) -> chex.Array:
  """La-MAML's meta-objective (Gupta et al., Eq 4-5; EMCL paper Eq 5).

  Steps 2-3 of the module docstring: one inner SGD step per sample of
  `batch` with rates relu(alpha), and the mean of the meta-batch loss at
  each theta_i, i = 1..k. Differentiate it with `jax.grad` for the
  meta-gradients; with second_order=False the inner gradients are constants
  (first-order), as in the official code's default.

  Args:
    theta0: weights at the start of the glance.
    alpha: per-parameter learning rates, like theta0.
    batch: the k incoming samples (inner stream).
    meta_batch: M_b, the replay samples plus the batch.
    meta_weights: [len(M_b)], 0 for padding rows of a not-yet-full memory.
    loss_fn: loss_fn(params, batch, weights).
    second_order: keep the inner gradients in the graph.

  Returns:
    The scalar meta-loss.
  """
  grad_fn = jax.grad(loss_fn)
  rates = jax.tree.map(jax.nn.relu, alpha)
  one = jnp.ones((1,), jnp.float32)

  def body(theta, sample):
    x, y, t = sample
    g = grad_fn(theta, Batch(x[None], y[None], t[None]), one)
    if not second_order:
      g = jax.lax.stop_gradient(g)
    theta = jax.tree.map(lambda p, gi, a: p - a * gi, theta, g, rates)
    return theta, theta

  # The inner steps are sequential; the k meta-losses are not: evaluate
  # them at all of theta_1..theta_k at once (one batched matmul per layer).
  _, thetas = jax.lax.scan(body, theta0, tuple(batch))
  meta_losses = jax.vmap(loss_fn, in_axes=(0, None, None))(
      thetas, meta_batch, meta_weights)
  return jnp.mean(meta_losses)


def first_order_meta_gradients(
    theta0: chex.ArrayTree, alpha: chex.ArrayTree, batch: Batch,
    meta_batch: Batch, meta_weights: chex.Array, *, loss_fn: LossFn
) -> tuple[chex.Array, tuple[chex.ArrayTree, chex.ArrayTree]]:
  """`jax.value_and_grad(look_ahead_loss, (0, 1))` in first-order mode,
  accumulated step by step in one forward scan, with no stored trajectory
  and no backward scan (20% faster than autodiff through the scan here):

    dL/dtheta0 = (1/k) sum_i G_i,
    dL/dalpha  = -(1/k) sum_i (sum_{j<=i} g_j) * G_i * [alpha > 0],

  with g_j the inner gradient of step j and G_i = grad L(theta_i; M_b).
  """
  grad_fn = jax.grad(loss_fn)
  meta_fn = jax.value_and_grad(loss_fn)
  rates = jax.tree.map(jax.nn.relu, alpha)
  one = jnp.ones((1,), jnp.float32)
  zeros = jax.tree.map(jnp.zeros_like, theta0)

  def body(carry, sample):
    theta, cum, loss_sum, g_theta, g_rate = carry
    x, y, t = sample
    g = grad_fn(theta, Batch(x[None], y[None], t[None]), one)
    theta = jax.tree.map(lambda p, gi, a: p - a * gi, theta, g, rates)
    cum = jax.tree.map(jnp.add, cum, g)
    loss, big_g = meta_fn(theta, meta_batch, meta_weights)
    g_theta = jax.tree.map(jnp.add, g_theta, big_g)
    g_rate = jax.tree.map(lambda s, c, gm: s - c * gm, g_rate, cum, big_g)
    return (theta, cum, loss_sum + loss, g_theta, g_rate), None

  (_, _, loss_sum, g_theta, g_rate), _ = jax.lax.scan(
      body, (theta0, zeros, jnp.zeros((), jnp.float32), zeros, zeros),
      tuple(batch))
  k = batch.y.shape[0]
  g_theta = jax.tree.map(lambda g: g / k, g_theta)
  g_alpha = jax.tree.map(lambda g, a: g / k * (a > 0), g_rate, alpha)
  return loss_sum / k, (g_theta, g_alpha)


def _glance(state: LaMAMLState, batch: Batch, key: chex.PRNGKey,
            memory: memory_lib.MemoryState, *, loss_fn: LossFn,
            config: LaMAMLConfig) -> tuple[LaMAMLState, chex.Array]:
  """Steps 1-5 of the module docstring, with `memory` as the replay source."""
  k_perm, k_replay = jax.random.split(key)
  batch = Batch(*(a[jax.random.permutation(k_perm, batch.y.shape[0])]
                  for a in batch))
  replay, replay_w = memory_lib.sample(memory, k_replay, config.replay_size)
  meta_batch = concat(replay, batch)
  meta_w = jnp.concatenate([replay_w, jnp.ones(batch.y.shape, jnp.float32)])
  if not config.second_order:
    loss, (g_theta, g_alpha) = first_order_meta_gradients(
        state.params, state.alpha, batch, meta_batch, meta_w, loss_fn=loss_fn)
  else:
    loss, (g_theta, g_alpha) = jax.value_and_grad(
        look_ahead_loss, argnums=(0, 1))(
            state.params, state.alpha, batch, meta_batch, meta_w,
            loss_fn=loss_fn, second_order=config.second_order)
  g_theta = clipping.clip_by_global_norm(g_theta, config.grad_clip_norm)
  alpha = state.alpha
  if config.learn_lr:
    g_alpha = clipping.clip_by_global_norm(g_alpha, config.grad_clip_norm)
    alpha = jax.tree.map(lambda a, g: a - config.opt_lr * g, alpha, g_alpha)
  if config.sync_update:
    params = jax.tree.map(lambda p, g: p - config.opt_wt * g, state.params,
                          g_theta)
  else:
    params = jax.tree.map(lambda p, g, a: p - jax.nn.relu(a) * g,
                          state.params, g_theta, alpha)
  return state._replace(params=params, alpha=alpha), loss


def update(state: LaMAMLState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: LaMAMLConfig = LaMAMLConfig()
          ) -> tuple[LaMAMLState, dict[str, chex.Array]]:
  """One incoming batch: `glances` La-MAML meta-updates (module docstring).

  The first glance draws its replay from the memory as it was before this
  batch; the batch then joins the reservoir, and later glances draw from the
  updated memory (the official code pushes during the first glance).

  Returns:
    (new state, metrics) with 'loss' (meta-loss of the last glance) and
    'mean_rate' (mean of relu(alpha) over all parameters).
  """
  k_first, k_rest, k_memory = jax.random.split(key, 3)
  state, loss = _glance(state, batch, k_first, state.memory, loss_fn=loss_fn,
                        config=config)
  memory = memory_lib.add(state.memory, batch, k_memory)
  state = state._replace(memory=memory, step=state.step + 1)
  if config.glances > 1:

    def again(state, k):
      return _glance(state, batch, k, memory, loss_fn=loss_fn, config=config)

    state, losses = jax.lax.scan(
        again, state, jax.random.split(k_rest, config.glances - 1))
    loss = losses[-1]
  leaves = jax.tree.leaves(state.alpha)
  mean_rate = (sum(jnp.sum(jax.nn.relu(a)) for a in leaves)
               / sum(a.size for a in leaves))
  return state, {'loss': loss, 'mean_rate': mean_rate}


def method(loss_fn: LossFn, example: Batch,
           config: LaMAMLConfig = LaMAMLConfig()) -> Method:
  """La-MAML (or C-MAML / Sync, by config) as a `Method` for the engine."""
  return bind(init, update, loss_fn, example, config)

