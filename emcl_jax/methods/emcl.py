"""EMCL: Efficient Meta-learning for Continual Learning (Algorithm 1).

One call of `update` is one incoming batch b, seen `glances` times; each
glance is one meta-update j:
  1. the inner stream S = b (+ replay samples), shuffled          (stream.py)
  2. first glance only: Omega = |grad L_t(theta0) * theta0|,
     h <- EMA of Omega                                            (Eq 13, 7)
  3. k inner steps, one per sample of S: theta <- prox(theta - beta grad)
                                                                  (Eq 16, 21)
  4. meta-gradient lam * h * (theta0 - theta_k), closed form      (Eq 10)
  5. theta0 <- theta0 - alpha * meta-gradient, alpha from Eq 8    (transforms)
b is offered to the reservoir memory once, after the first glance's replay
draw (La-MAML's order; docs/algorithm.md #7).

Ablations, as options (Table IV, Fig. 3):
  inner='gd'             plain gradient descent on Eq 6 instead of PGD;
  inner='lr_modulation'  no regulariser in the inner loss; instead each
                         parameter's inner step is scaled by the importance,
                         theta <- theta - beta * grad / (1 + gamma lam h):
                         the same per-parameter factor PGD applies, without
                         PGD's pull towards theta0;
  importance='none'      the control: hn is its mean everywhere;
  importance='si'        EMCL-SI: Omega = |grad * (theta0^j - theta0^{j-1})|,
                         the gradient times the previous batch's whole
                         meta-update (all its glances), as SI's path
                         integral (method name `emcl_si`).

Every open point of docs/algorithm.md is a field of `EMCLConfig`; the
defaults were chosen by measurement, see docs/algorithm.md.
"""

from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import optax

from emcl_jax.equations import importance as importance_lib
from emcl_jax.equations import inner as inner_lib
from emcl_jax import losses as losses_lib
from emcl_jax.methods import memory as memory_lib
from emcl_jax.equations import meta_grad
from emcl_jax.methods import stream as stream_lib
from emcl_jax.equations import transforms
from emcl_jax.base import Batch, LossFn, Method, bind

IMPORTANCE_GRADS = ('first_inner', 'batch', 'meta')
INNER_RULES = ('pgd', 'gd', 'lr_modulation')
IMPORTANCES = ('taylor', 'si', 'none')
META_H_NORMS = ('same',) + importance_lib.H_NORMS


class EMCLConfig(NamedTuple):
  """Hyper-parameters of EMCL (Table II) and its open points (docs/algorithm.md).

  The class defaults are the cheapest setting, the single pass (one glance,
  the `inverse` reading of Eq 8). The benchmarks' defaults, chosen by the
  study of docs/algorithm.md #9 (glances, the `task` reading), are in
  `emcl_jax/configs/` and are what `experiments/run.py` uses.

  Attributes:
    alpha0: initial meta learning rate alpha_0 (Table II).
    beta: inner learning rate beta (Table II; docs/algorithm.md #4).
    lam: regularisation lambda of Eq 6 (Table II).
    gamma: proximal step gamma of Eq 21 (Table II; #4).
    eta: decay of the importance moving average, Eq 7 (#6).
    r: scale factor of Eq 8 (#6).
    meta_lr: reading of Eq 8 (#1): 'inverse', 'literal', 'constant',
      'bounded', 'task' or 'lagged' (emcl_jax/equations/transforms.py).
    meta_h_norm: rescaling of h in Eq 8's factor r / h: 'same' (the inner
      loop's hn) or one of h_norm's modes ('mean': r near 1 is neutral).
    alpha_min: floor on the per-parameter meta rate alpha (bounded, task).
    alpha_max: ceiling on the per-parameter meta rate alpha (bounded, task).
    meta_clip: global-norm clip of the meta-gradient of Eq 10 before the
      Eq 8 step (La-MAML's 2.0); 0 turns it off.
    importance_grad: gradient that feeds Eq 13 (#2): 'first_inner' (the
      first inner step's one-sample gradient at theta0, free), 'batch' (the
      batch's gradient at theta0) or 'meta' (batch plus replay samples).
    h_norm: rescaling of h before use: 'mean', 'max' or 'none' (#5).
    h_init: initial value of h, 0 or 1 (#6).
    h_min: floor on the (normalised) importance used by Eq 6, 8, 10 and 21,
      so that zero-initialised parameters can move (#5, #6).
    memory_size: reservoir memory slots; 0 turns replay off (#3).
    replay_size: stored samples added to each inner stream (#3).
    glances: meta-updates per incoming batch (#7); 1 is the single pass.
    inner: 'pgd' (Eq 16 + 21), 'gd' (plain gradient descent on Eq 6) or
      'lr_modulation' (importance-scaled inner steps, no regulariser).
    importance: 'taylor' (Eq 13), 'si' (EMCL-SI, Fig. 3) or 'none' (the
      control: hn held at a constant equal to its mean over all parameters).
  """
  alpha0: float = 0.3
  beta: float = 0.03
  lam: float = 10.0
  gamma: float = 0.3
  eta: float = 0.99
  r: float = 0.2
  meta_lr: str = 'inverse'
  meta_h_norm: str = 'same'
  alpha_min: float = 0.0
  alpha_max: float = 1.0
  meta_clip: float = 0.0
  importance_grad: str = 'batch'
  h_norm: str = 'max'
  h_init: float = 0.0
  h_min: float = 0.01
  memory_size: int = 200
  replay_size: int = 10
  glances: int = 1
  inner: str = 'pgd'
  importance: str = 'taylor'

  def validate(self) -> 'EMCLConfig':
    """Raises ValueError naming the first bad field; returns self."""
    for name in ('alpha0', 'beta', 'lam', 'gamma', 'r'):
      if not getattr(self, name) > 0:
        raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
    if not 0 <= self.eta < 1:
      raise ValueError(f'eta must be in [0, 1), got {self.eta}')
    if self.h_init < 0 or self.h_min < 0:
      raise ValueError('h_init and h_min must be >= 0')
    if not 0 <= self.alpha_min < self.alpha_max:
      raise ValueError(f'need 0 <= alpha_min < alpha_max, got '
                       f'{self.alpha_min}, {self.alpha_max}')
    if not self.meta_clip >= 0:
      raise ValueError(f'meta_clip must be >= 0 (0: off), got '
                       f'{self.meta_clip}')
    stream_lib.check_replay(self.memory_size, self.replay_size, self.glances)
    for name, allowed in (('meta_lr', transforms.META_LR_MODES),
                          ('importance_grad', IMPORTANCE_GRADS),
                          ('h_norm', importance_lib.H_NORMS),
                          ('meta_h_norm', META_H_NORMS),
                          ('inner', INNER_RULES),
                          ('importance', IMPORTANCES)):
      if getattr(self, name) not in allowed:
        raise ValueError(f'{name} must be one of {allowed}, '
                         f'got {getattr(self, name)!r}')
    return self


class EMCLState(NamedTuple):
  """State of EMCL between meta-updates.

  Attributes:
    params: meta-parameters theta0 (the model's weights).
    h: smoothed importance h (Eq 7), like params, float32.
    opt_state: state of the Eq 8 meta learning-rate transformation.
    memory: reservoir replay memory, or None when memory_size == 0.
    step: meta-updates taken, int32 [].
    delta: the previous batch's meta-update theta0^j - theta0^{j-1} (all
      its glances), like params (only
      with importance='si'; None otherwise).
  """
  params: chex.ArrayTree
  h: chex.ArrayTree
  opt_state: optax.OptState
  memory: Optional[memory_lib.MemoryState]
  step: chex.Array
  delta: Optional[chex.ArrayTree] = None


def _meta_opt(config: EMCLConfig) -> optax.GradientTransformationExtraArgs:
  return transforms.meta_learning_rate(
      config.alpha0, config.r, config.meta_lr, alpha_min=config.alpha_min,
      alpha_max=config.alpha_max, clip_norm=config.meta_clip)


def init(params: chex.ArrayTree, example: Batch,
         config: EMCLConfig = EMCLConfig()) -> EMCLState:
  """Builds EMCL's state around initial parameters theta0^0.

  Args:
    params: the model's initial parameters.
    example: a batch shaped like the stream's (sizes the replay memory).
    config: hyper-parameters, used as they are: `config.validate()` checks
      them (a run's config is checked by `configs.resolve`); its float
      fields may be traced scalars (`training.grid`).

  Returns:
    The initial `EMCLState`.
  """
  memory = (memory_lib.init(config.memory_size, example)
            if config.memory_size else None)
  return EMCLState(
      params=params,
      h=jax.tree.map(lambda p: jnp.full(p.shape, config.h_init, jnp.float32),
                     params),
      opt_state=_meta_opt(config).init(params),
      memory=memory,
      step=jnp.zeros((), jnp.int32),
      delta=(jax.tree.map(jnp.zeros_like, params)
             if config.importance == 'si' else None))


class _Importance(NamedTuple):
  """The normalised importance one batch's glances use (`_normalised`)."""
  inner: chex.ArrayTree  # hn of Eq 6, 10, 21
  meta: chex.ArrayTree   # the h of Eq 8's factor r / h


def _normalised(h: chex.ArrayTree, config: EMCLConfig) -> _Importance:
  """hn = max(normalise(h), h_min) for the inner loop and Eq 10, and the
  (possibly differently normalised) h of Eq 8; both replaced by their mean
  over all parameters with importance='none' (docs/algorithm.md #5, #9)."""
  hn = importance_lib.floor(importance_lib.normalise(h, config.h_norm),
                            config.h_min)
  if config.meta_h_norm == 'same':
    hm = hn
  else:
    hm = importance_lib.floor(importance_lib.normalise(h, config.meta_h_norm),
                              config.h_min)
  if config.importance == 'none':
    hn, hm = importance_lib.flatten(hn), importance_lib.flatten(hm)
  return _Importance(hn, hm)


def _glance(state: EMCLState, batch: Batch, key: chex.PRNGKey,
            memory: Optional[memory_lib.MemoryState], *, fresh: bool,
            loss_fn: LossFn, config: EMCLConfig
           ) -> tuple[EMCLState, dict[str, chex.Array]]:
  """Steps 1-5 of the module docstring: one glance at `batch`, replay drawn
  from `memory`. With `fresh` (the batch's first glance) Eq 13 and Eq 7 run
  and h advances; later glances reuse the batch's h."""
  theta0 = state.params
  stream, weights = stream_lib.build(batch, memory, config.replay_size, key)
  grad_fn = jax.value_and_grad(loss_fn)

  h = state.h
  if fresh:
    # Eq 13's gradient at theta0 (docs/algorithm.md #2).
    if config.importance_grad == 'first_inner':
      first = Batch(*(a[:1] for a in stream))
      loss0, g0 = grad_fn(theta0, first, weights[:1])
    elif config.importance_grad == 'batch':
      loss0, g0 = grad_fn(theta0, batch, jnp.ones(batch.y.shape, jnp.float32))
    else:  # 'meta': batch plus replay samples, L_t of Eq 1
      loss0, g0 = grad_fn(theta0, stream, weights)
    if config.importance == 'si':
      omega = importance_lib.si_importance(g0, state.delta)
    else:
      omega = importance_lib.taylor_importance(g0, theta0)
    h = importance_lib.update_importance(h, omega, config.eta)
  hn = _normalised(h, config)

  # Inner loop (Algorithm 1, lines 5-7).
  if config.inner == 'pgd':
    coef = inner_lib.pgd_coefficients(theta0, hn.inner, lam=config.lam,
                                      gamma=config.gamma)
    step_fn = lambda theta, grads: inner_lib.pgd_step_prepared(
        theta, grads, coef, beta=config.beta)
  elif config.inner == 'gd':
    step_fn = lambda theta, grads: inner_lib.regularised_gd_step(
        theta, theta0, hn.inner, grads, beta=config.beta, lam=config.lam)
  else:
    rates = inner_lib.modulated_rates(hn.inner, beta=config.beta,
                                      lam=config.lam, gamma=config.gamma)
    step_fn = lambda theta, grads: inner_lib.modulated_step(theta, grads,
                                                            rates)
  if fresh and config.importance_grad == 'first_inner':
    # The first inner step reuses g0: no extra gradient for Eq 13.
    # A padding first row is skipped, as in stream.per_sample_scan.
    theta1 = jax.lax.cond(weights[0] > 0, lambda t: step_fn(t, g0),
                          lambda t: t, theta0)
    rest = Batch(*(a[1:] for a in stream))
    theta_k, losses = stream_lib.per_sample_scan(loss_fn, theta1, rest,
                                                 weights[1:], step_fn)
    losses = jnp.concatenate([loss0[None], losses])
  else:
    theta_k, losses = stream_lib.per_sample_scan(loss_fn, theta0, stream,
                                                 weights, step_fn)

  # Closed-form meta-gradient (Eq 10) and the Eq 8 meta step.
  grads = meta_grad.meta_gradient(theta0, theta_k, hn.inner, config.lam)
  updates, opt_state = _meta_opt(config).update(
      grads, state.opt_state, theta0, importance=hn.meta, task=batch.t[0],
      advance=fresh)
  params = optax.apply_updates(theta0, updates)
  metrics = {'loss': losses_lib.weighted_mean(losses, weights),
             'meta_grad_norm': optax.tree.norm(grads),
             'meta_share': meta_grad.meta_step_share(theta0, theta_k, params)}
  return state._replace(params=params, h=h, opt_state=opt_state,
                        step=state.step + 1), metrics


def update(state: EMCLState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: EMCLConfig = EMCLConfig()
          ) -> tuple[EMCLState, dict[str, chex.Array]]:
  """One incoming batch: `glances` EMCL meta-updates (Algorithm 1, l. 4-10).

  Glances run as La-MAML's code runs them (docs/algorithm.md #7): Eq 13 and
  the moving average of Eq 7 advance once per batch (on its first glance);
  every glance reshuffles the stream and redraws its replay samples; the
  batch joins the memory once, after the first glance's replay draw, so
  later glances may replay it.

  Pure and jittable; bind `loss_fn` and `config` with functools.partial
  before `jax.jit` (a config of Python values is hashable and static; its
  float fields may instead be traced scalars, `training.grid`).

  Args:
    state: the current `EMCLState`.
    batch: the incoming samples b, [k, ...].
    key: PRNG key for replay draws, stream order and memory writes.
    loss_fn: loss_fn(params, batch, weights) -> weighted mean loss.
    config: hyper-parameters.

  Returns:
    (new state, metrics) with metrics 'loss' (mean inner-stream loss of the
    last glance), 'meta_grad_norm' and 'meta_share' (the last glance's
    `meta_grad.meta_step_share`: 0 when the Eq 8 step copies theta_k).
  """
  k_first, k_rest, k_memory = jax.random.split(key, 3)
  start = state.params
  kwargs = dict(loss_fn=loss_fn, config=config)
  state, metrics = _glance(state, batch, k_first, state.memory, fresh=True,
                           **kwargs)
  memory = state.memory
  if memory is not None:
    memory = memory_lib.add(memory, batch, k_memory)
    state = state._replace(memory=memory)
  if config.glances > 1:

    def again(state, k):
      return _glance(state, batch, k, memory, fresh=False, **kwargs)

    state, metrics = jax.lax.scan(
        again, state, jax.random.split(k_rest, config.glances - 1))
    metrics = jax.tree.map(lambda m: m[-1], metrics)
  if state.delta is not None:  # EMCL-SI: this batch's whole meta-update
    state = state._replace(
        delta=jax.tree.map(jnp.subtract, state.params, start))
  return state, metrics


def method(loss_fn: LossFn, example: Batch,
           config: EMCLConfig = EMCLConfig()) -> Method:
  """EMCL as a `Method` (init/update pair) for the training engine."""
  return bind(init, update, loss_fn, example, config)
