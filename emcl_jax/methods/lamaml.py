"""La-MAML: Look-ahead MAML (Gupta, Yadav & Paull, NeurIPS 2020), and its
variants C-MAML and Sync-La-MAML, as in the official code
(montrealrobotics/La-MAML): its MNIST algorithm (`model/lamaml.py`) by
default, its vision algorithm (`model/lamaml_cifar.py`, every CIFAR-100 and
TinyImageNet run of its script) by four switches.

One call of `update` is one incoming batch b, seen `glances` times. Each
glance (the paper's Algorithm 1; the code's `observe`):
  1. b is shuffled; M_b = replay_size samples of the memory, plus b.
  2. k inner steps on b (not on the replay samples), each on a chunk c_i:
       theta_i = theta_{i-1} - r(alpha) * clamp(grad l(theta_{i-1}; c_i))
     with per-parameter learning rates alpha (the paper's Eq 3 / Alg. 1 l.8)
     and l the mean loss over the chunk.
  3. meta-loss  L_meta = (1/k) sum_i L(theta_i; M_b)  (the look-ahead
     objective: the replay+batch loss after every inner step, averaged).
  4. grad L_meta w.r.t. theta0 and alpha, each clipped to a global norm
     `grad_clip_norm`; first-order (inner gradients held constant;
     `first_order_meta_gradients`) or `second_order` (autodiff of
     `look_ahead_loss` through the inner scan and its gradients).
  5. if learn_lr: alpha <- alpha - opt_lr * grad_alpha          (Alg. 1 l.10)
     theta0 <- theta0 - relu(alpha) * grad_theta0                (Alg. 1 l.11)
     or, with sync_update, theta0 <- theta0 - opt_wt * grad_theta0.
On the first glance the batch's samples are offered to the reservoir
memory, after the replay draw (as the official code pushes them inside the
inner loop, after `getBatch`).

The two official algorithms differ in steps 2 and 4 only:

                      MNIST (`lamaml.py`)     vision (`lamaml_cifar.py`)
  chunks c_i          one sample each, k = b  `cifar_batches` contiguous
                                              chunks of ceil(b/k) samples
  rate r(alpha)       relu(alpha)             alpha, raw (a negative rate
                                              steps uphill, and alpha's
                                              meta-gradient is not masked
                                              by alpha > 0)
  clamp               none (its `torch.clamp` each element to
                      discards its result)    [-grad_clip_norm,
                                              +grad_clip_norm], inside the
                                              second-order graph (a clamped
                                              element passes no gradient)
  meta-gradients      first order             second order (`--second_order`
                                              on every vision run)

The config fields `inner_batches` (None: per sample; k: k chunks),
`inner_relu`, `inner_clamp` and `second_order` switch them, one by one. The
defaults are the MNIST algorithm; the CIFAR-100, miniImageNet and
TinyImageNet configs set the vision one. Both step theta0 with relu(alpha)
in step 5.

Variants (the official run_experiments.sh): `lamaml` learns alpha and steps
theta0 with relu(alpha); `sync` learns alpha but steps theta0 with the
constant opt_wt; `cmaml` (learn_lr off, sync on) keeps alpha = alpha_init.

The inner steps cover the batch only, as in the official code. Replay draws
are distinct samples here; the official draw may repeat a sample.
"""

from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp

from emcl_jax import clipping
from emcl_jax.methods import memory as memory_lib
from emcl_jax.methods import stream as stream_lib
from emcl_jax.base import Batch, LossFn, Method, bind, concat


class LaMAMLConfig(NamedTuple):
  """Hyper-parameters, named as the official code's flags.

  Attributes:
    alpha_init: initial per-parameter learning rate alpha_0 (Table II).
    opt_lr: learning rate of alpha, eta in Table II.
    opt_wt: constant weight learning rate of the sync variants.
    learn_lr: learn alpha (off: C-MAML).
    sync_update: step theta0 with opt_wt instead of relu(alpha).
    second_order: differentiate through the inner gradients (the official
      vision runs; off: first order, its MNIST runs).
    inner_batches: inner steps per glance, each on a contiguous chunk of
      ceil(batch size / inner_batches) samples of the shuffled batch (the
      official vision code's cifar_batches: 5 chunks of 2 of a batch of
      10; `inner_chunks`); None: one step per sample (its MNIST code).
    inner_relu: inner steps with relu(alpha), as the official MNIST code;
      off: with alpha as it is, as its vision code (alpha's meta-gradient
      is then not masked by alpha > 0).
    inner_clamp: clamp each inner-gradient element to +-grad_clip_norm, as
      the official vision code (its MNIST code's clamp is a no-op).
    grad_clip_norm: global-norm clip of the meta-gradients (theta0, alpha),
      and the inner clamp's bound.
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
  inner_batches: Optional[int] = None
  inner_relu: bool = True
  inner_clamp: bool = False
  grad_clip_norm: float = 2.0
  memory_size: int = 200
  replay_size: int = 10
  glances: int = 5

  def validate(self) -> 'LaMAMLConfig':
    """Raises ValueError naming the first bad field; returns self."""
    for name in ('alpha_init', 'opt_lr', 'opt_wt', 'grad_clip_norm'):
      if not getattr(self, name) > 0:
        raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
    if self.inner_batches is not None and self.inner_batches < 1:
      raise ValueError('inner_batches must be >= 1 (or None: one inner step '
                       f'per sample), got {self.inner_batches}')
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


def inner_chunks(batch: Batch, inner_batches: Optional[int] = None
                ) -> tuple[Batch, Optional[chex.Array]]:
  """The inner stream: `batch` cut into contiguous chunks, one per step.

  As the official vision code slices it: chunks of s = ceil(b / k)
  samples, chunk i holding samples i*s .. (i+1)*s - 1, so the last chunk is
  shorter when s does not divide b (its padding rows get weight 0), and a
  chunk that would be empty is left out (the official code's loss on it is
  NaN): ceil(b / s) steps, k wherever the official code's loss is finite.

  Args:
    batch: the (shuffled) incoming samples, [b, ...].
    inner_batches: k, the number of chunks (the official `cifar_batches`);
      None: one sample per chunk (the official MNIST code).

  Returns:
    (chunks, weights): `batch` as [steps, s, ...] (zero rows padding the
    last chunk), and their [steps, s] weights, 1 for a sample and 0 for
    padding, or None when every chunk is full.
  """
  b = batch.y.shape[0]
  size = 1 if inner_batches is None else -(-b // inner_batches)
  steps = -(-b // size)
  pad = steps * size - b

  def split(a):
    a = jnp.asarray(a)
    if pad:
      a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
    return a.reshape((steps, size) + a.shape[1:])

  weights = None
  if pad:
    weights = split(jnp.ones((b,), jnp.float32))
  return Batch(*(split(a) for a in batch)), weights


def inner_rates(alpha: chex.ArrayTree, inner_relu: bool = True
               ) -> chex.ArrayTree:
  """The inner steps' rates: relu(alpha), or alpha itself (raw)."""
  return jax.tree.map(jax.nn.relu, alpha) if inner_relu else alpha


def inner_gradient(theta: chex.ArrayTree, chunk: Batch,
                   weights: Optional[chex.Array] = None, *, loss_fn: LossFn,
                   clamp: Optional[float] = None) -> chex.ArrayTree:
  """The gradient of the mean loss over `chunk`'s samples (`weights`, None:
  all of its rows) at `theta`, each element clamped to [-clamp, clamp]
  (None: as it is). The clamp passes no gradient through a clamped element
  (`torch.clamp`'s backward too)."""
  if weights is None:
    weights = jnp.ones(chunk.y.shape, jnp.float32)
  g = jax.grad(loss_fn)(theta, chunk, weights)
  if clamp is not None:
    g = jax.tree.map(lambda gi: jnp.clip(gi, -clamp, clamp), g)
  return g


def look_ahead_loss(theta0: chex.ArrayTree, alpha: chex.ArrayTree,
                    batch: Batch, meta_batch: Batch, meta_weights: chex.Array,
                    *, loss_fn: LossFn, second_order: bool = False,
                    inner_batches: Optional[int] = None,
                    inner_relu: bool = True, clamp: Optional[float] = None
                   ) -> chex.Array:
  """La-MAML's meta-objective (Gupta et al., Eq 4-5; EMCL paper Eq 5).

  Steps 2-3 of the module docstring: one inner SGD step per chunk of
  `batch` (`inner_chunks`) with rates `inner_rates(alpha)` and clamped
  gradients (`inner_gradient`), and the mean of the meta-batch loss at
  each theta_i, i = 1..k. Differentiate it with `jax.grad` for the
  meta-gradients; with second_order=False the inner gradients are constants
  (first-order), as in the official MNIST code.

  Args:
    theta0: weights at the start of the glance.
    alpha: per-parameter learning rates, like theta0.
    batch: the incoming samples (inner stream).
    meta_batch: M_b, the replay samples plus the batch.
    meta_weights: [len(M_b)], 0 for padding rows of a not-yet-full memory.
    loss_fn: loss_fn(params, batch, weights).
    second_order: keep the inner gradients in the graph.
    inner_batches: chunks of `batch` (None: one per sample).
    inner_relu: step with relu(alpha) (False: raw alpha).
    clamp: elementwise bound of the inner gradients (None: none).

  Returns:
    The scalar meta-loss.
  """
  rates = inner_rates(alpha, inner_relu)

  def body(theta, chunk_and_weights):
    g = inner_gradient(theta, *chunk_and_weights, loss_fn=loss_fn,
                       clamp=clamp)
    if not second_order:
      g = jax.lax.stop_gradient(g)
    theta = jax.tree.map(lambda p, gi, a: p - a * gi, theta, g, rates)
    return theta, theta

  # The inner steps are sequential; the k meta-losses are not: evaluate
  # them at all of theta_1..theta_k at once (one batched matmul per layer).
  _, thetas = jax.lax.scan(body, theta0, inner_chunks(batch, inner_batches))
  meta_losses = jax.vmap(loss_fn, in_axes=(0, None, None))(
      thetas, meta_batch, meta_weights)
  return jnp.mean(meta_losses)


def first_order_meta_gradients(
    theta0: chex.ArrayTree, alpha: chex.ArrayTree, batch: Batch,
    meta_batch: Batch, meta_weights: chex.Array, *, loss_fn: LossFn,
    inner_batches: Optional[int] = None, inner_relu: bool = True,
    clamp: Optional[float] = None
) -> tuple[chex.Array, tuple[chex.ArrayTree, chex.ArrayTree]]:
  """`jax.value_and_grad(look_ahead_loss, (0, 1))` in first-order mode,
  accumulated step by step in one forward scan, with no stored trajectory
  and no backward scan (20% faster than autodiff through the scan here):

    dL/dtheta0 = (1/k) sum_i G_i,
    dL/dalpha  = -(1/k) sum_i (sum_{j<=i} g_j) * G_i * [alpha > 0],

  with g_j the (clamped) inner gradient of step j, G_i = grad L(theta_i;
  M_b), and the mask [alpha > 0] (relu') only with inner_relu. The
  arguments are `look_ahead_loss`'s.
  """
  meta_fn = jax.value_and_grad(loss_fn)
  rates = inner_rates(alpha, inner_relu)
  zeros = jax.tree.map(jnp.zeros_like, theta0)

  def body(carry, chunk_and_weights):
    theta, cum, loss_sum, g_theta, g_rate = carry
    g = inner_gradient(theta, *chunk_and_weights, loss_fn=loss_fn,
                       clamp=clamp)
    theta = jax.tree.map(lambda p, gi, a: p - a * gi, theta, g, rates)
    cum = jax.tree.map(jnp.add, cum, g)
    loss, big_g = meta_fn(theta, meta_batch, meta_weights)
    g_theta = jax.tree.map(jnp.add, g_theta, big_g)
    g_rate = jax.tree.map(lambda s, c, gm: s - c * gm, g_rate, cum, big_g)
    return (theta, cum, loss_sum + loss, g_theta, g_rate), None

  chunks = inner_chunks(batch, inner_batches)
  loss_dtype = jax.eval_shape(loss_fn, theta0, meta_batch, meta_weights).dtype
  (_, _, loss_sum, g_theta, g_rate), _ = jax.lax.scan(
      body, (theta0, zeros, jnp.zeros((), loss_dtype), zeros, zeros), chunks)
  k = chunks[0].y.shape[0]
  g_theta = jax.tree.map(lambda g: g / k, g_theta)
  if inner_relu:
    g_alpha = jax.tree.map(lambda g, a: g / k * (a > 0), g_rate, alpha)
  else:
    g_alpha = jax.tree.map(lambda g: g / k, g_rate)
  return loss_sum / k, (g_theta, g_alpha)


def meta_gradients(
    theta0: chex.ArrayTree, alpha: chex.ArrayTree, batch: Batch,
    meta_batch: Batch, meta_weights: chex.Array, *, loss_fn: LossFn,
    config: LaMAMLConfig
) -> tuple[chex.Array, tuple[chex.ArrayTree, chex.ArrayTree]]:
  """Step 4 of the module docstring before the clip: the meta-loss and its
  gradients w.r.t. (theta0, alpha), with `config`'s inner loop and order
  (`first_order_meta_gradients`, or autodiff of `look_ahead_loss` through
  the inner gradients). The arguments are `look_ahead_loss`'s."""
  inner = dict(inner_batches=config.inner_batches,
               inner_relu=config.inner_relu,
               clamp=config.grad_clip_norm if config.inner_clamp else None)
  if not config.second_order:
    return first_order_meta_gradients(theta0, alpha, batch, meta_batch,
                                      meta_weights, loss_fn=loss_fn, **inner)
  return jax.value_and_grad(look_ahead_loss, argnums=(0, 1))(
      theta0, alpha, batch, meta_batch, meta_weights, loss_fn=loss_fn,
      second_order=True, **inner)


def meta_update(state: LaMAMLState, batch: Batch, meta_batch: Batch,
                meta_weights: chex.Array, *, loss_fn: LossFn,
                config: LaMAMLConfig) -> tuple[LaMAMLState, chex.Array]:
  """Steps 2-5 of the module docstring: one meta-update of theta0 and alpha
  from the (shuffled) incoming `batch` and the meta batch M_b.

  Args:
    state: theta0 and alpha (its memory is not read).
    batch: the incoming samples, in the order of the inner steps.
    meta_batch: M_b, the replay samples plus the batch.
    meta_weights: [len(M_b)], 0 for padding rows of a not-yet-full memory.
    loss_fn: loss_fn(params, batch, weights).
    config: the method's settings.

  Returns:
    (state with the new params and alpha, the meta-loss).
  """
  loss, (g_theta, g_alpha) = meta_gradients(
      state.params, state.alpha, batch, meta_batch, meta_weights,
      loss_fn=loss_fn, config=config)
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
  return meta_update(state, batch, meta_batch, meta_w, loss_fn=loss_fn,
                     config=config)


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

