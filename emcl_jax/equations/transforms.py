"""Per-parameter meta learning rates modulated by importance (Eq 8).

`scale_by_importance` is an optax `GradientTransformationExtraArgs`: it takes
the importance h as the extra keyword argument `importance` and scales each
coordinate of the incoming (meta-)gradient by a per-parameter factor.
Compose it with a global rate in the optax way::

    meta_opt = optax.chain(scale_by_importance(r=1.0),
                           optax.scale(-alpha0))
    updates, opt_state = meta_opt.update(grads, opt_state, importance=h)

`meta_learning_rate(alpha0, r, mode, ...)` returns that chain, with a
global-norm clip of the meta-gradient in front of it (`emcl_jax.clipping`,
the formula of every method's clip; a clip norm of 0 turns it off).

docs/algorithm.md #1: Eq 8, alpha_j = (r / h_j) alpha_{j-1}, compounds every
step and, read literally, explodes or vanishes unless h stays near r. The
readings offered as `mode` (alpha below is alpha_j / alpha0, the multiplier
this transformation applies):
  'literal':  alpha_j = (r / h_j) * alpha_{j-1}, alpha_0 = 1.
  'inverse':  alpha_j = r / (h_j + eps): no compounding. With the closed-form
              meta-gradient lam*h*(theta0 - theta_k) the h cancels and the
              meta step is a Reptile-like move of theta0 toward theta_k,
              alpha0 * r * lam * (theta_k - theta0).
  'constant': alpha_j = 1 (no modulation).
  'bounded':  alpha_j = clip(alpha_{j-1} r / (h_j + eps), lo, hi): the
              recursion of Eq 8 with La-MAML's floor on the rate (relu) and a
              ceiling; alpha is state.
  'task':     alpha fixed within a task; at the first update of a new task
              alpha <- clip(alpha r / (h + eps), lo, hi) (Eq 8 once per task:
              "less important parameters allow having larger step sizes in
              future tasks"). Needs the extra argument `task`.
  'lagged':   Algorithm 1's order: alpha^j = r / (h^{j-1} + eps) from the
              previous importance, so that with Eq 10's h^j the ratio
              h^j / h^{j-1} survives. The importance "advances" on calls with
              `advance=True` (the default); calls with advance=False (more
              glances on the same batch) reuse the same pair.
'literal' and 'bounded' take their factor at every update, i.e. every
glance in EMCL (with G glances alpha moves by (r/h)^G per batch while h
advances once); 'task' moves once per task and 'lagged' once per batch.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from emcl_jax import clipping

META_LR_MODES = ('literal', 'inverse', 'constant', 'bounded', 'task',
                 'lagged')


class ScaleByImportanceState(NamedTuple):
  """State of `scale_by_importance`.

  Attributes:
    alpha: per-parameter multiplier alpha_j / alpha0 (a tree like the params,
      float32); all ones at init. 'literal', 'bounded' and 'task' change it.
    prev: 'lagged': the importance h^{j-1} of the previous advance (ones
      until the first call).
    last: 'lagged': the importance h^j of the latest advance.
    task: 'task': the task of the latest update, int32 [] (-1 at init).
    count: updates taken, int32 [].
  """
  alpha: chex.ArrayTree
  prev: chex.ArrayTree
  last: chex.ArrayTree
  task: chex.Array
  count: chex.Array


def scale_by_importance(r: float = 1.0, mode: str = 'inverse',
                        eps: float = 1e-8, lo: float = 0.0,
                        hi: float = float('inf')
                       ) -> optax.GradientTransformationExtraArgs:
  """Eq 8: scales each coordinate by a factor inversely proportional to h.

  The numbers (r, eps, lo, hi) may be floats or traced scalars (a grid of
  settings, `training.grid`); their ranges are checked where a run's
  values enter, `EMCLConfig.validate`.

  Args:
    r: the scale factor r of Eq 8 (> 0).
    mode: one of META_LR_MODES (see the module docstring).
    eps: added to h before dividing.
    lo, hi: bounds on the multiplier alpha / alpha0 in the 'bounded' and
      'task' modes (0 <= lo < hi).

  Returns:
    A transformation whose `update(updates, state, params=None, *,
    importance, task=None, advance=True)` needs the importance tree h; the
    'task' mode also the current task index.

  Raises:
    ValueError: an unknown mode.
  """
  if mode not in META_LR_MODES:
    raise ValueError(f'unknown meta learning-rate mode {mode!r}; '
                     f'use one of {META_LR_MODES}')

  def init_fn(params):
    # Three distinct trees (not one shared): the engine donates the state.
    ones = lambda: jax.tree.map(lambda p: jnp.ones_like(p, jnp.float32),
                                params)
    return ScaleByImportanceState(alpha=ones(), prev=ones(), last=ones(),
                                  task=-jnp.ones((), jnp.int32),
                                  count=jnp.zeros((), jnp.int32))

  def update_fn(updates, state, params=None, *, importance=None, task=None,
                advance=True, **extra):
    del params, extra
    count = state.count + 1
    if mode == 'constant':
      return updates, state._replace(count=count)
    if importance is None:
      raise ValueError('scale_by_importance needs importance=h in update()')
    factor = jax.tree.map(lambda h: r / (h + eps), importance)
    alpha, prev, last, last_task = (state.alpha, state.prev, state.last,
                                    state.task)
    if mode == 'literal':
      alpha = jax.tree.map(lambda f, a: f * a, factor, alpha)
      applied = alpha
    elif mode == 'inverse':
      applied = factor
    elif mode == 'bounded':
      alpha = jax.tree.map(lambda f, a: jnp.clip(f * a, lo, hi), factor,
                           alpha)
      applied = alpha
    elif mode == 'task':
      if task is None:
        raise ValueError("meta_lr 'task' needs task=index in update()")
      task = jnp.asarray(task, jnp.int32)
      new_task = (task != state.task) & (state.count > 0)
      alpha = jax.tree.map(
          lambda f, a: jnp.where(new_task, jnp.clip(f * a, lo, hi), a),
          factor, alpha)
      last_task = task
      applied = alpha
    else:  # 'lagged'
      if advance:
        first = state.count == 0
        prev = jax.tree.map(lambda l, h: jnp.where(first, h, l), last,
                            importance)
        last = importance
      applied = jax.tree.map(lambda h: r / (h + eps), prev)
    updates = jax.tree.map(lambda a, u: (a * u).astype(u.dtype), applied,
                           updates)
    return updates, ScaleByImportanceState(alpha, prev, last, last_task,
                                           count)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def meta_learning_rate(alpha0: float, r: float = 1.0, mode: str = 'inverse',
                       eps: float = 1e-8, *, alpha_min: float = 0.0,
                       alpha_max: float = float('inf'),
                       clip_norm: float = 0.0
                      ) -> optax.GradientTransformationExtraArgs:
  """Algorithm 1, lines 8-9: alpha^j from Eq 8, then a descent step.

  Every number may be a float or a traced scalar (see
  `scale_by_importance`).

  Args:
    alpha0: initial (global) meta learning rate alpha_0 of Table II (> 0).
    r: scale factor of Eq 8.
    mode: reading of Eq 8, see `scale_by_importance`.
    eps: see `scale_by_importance`.
    alpha_min, alpha_max: bounds on the per-parameter rate alpha itself
      (absolute units) in the 'bounded' and 'task' modes.
    clip_norm: if > 0, the meta-gradient is first clipped to this global
      norm (La-MAML's `clip_grad_norm_` before its weight step,
      `clipping.clip_by_global_norm`); 0 leaves it as it is.

  Returns:
    `optax.chain(scale_by_importance(r, mode, eps, alpha_min/alpha0,
    alpha_max/alpha0), optax.scale(-alpha0))` applied to the clipped
    meta-gradient (`clipping.clip_by_global_norm`, stateless).
  """
  step = optax.chain(
      scale_by_importance(r, mode, eps, alpha_min / alpha0,
                          alpha_max / alpha0),
      optax.scale(-alpha0))

  def update_fn(updates, state, params=None, **extra_args):
    # The clip keeps no state: the chain's state is the same with or
    # without it (a run's checkpoints restore either way).
    return step.update(clipping.clip_by_global_norm(updates, clip_norm),
                       state, params, **extra_args)

  return optax.GradientTransformationExtraArgs(step.init, update_fn)
