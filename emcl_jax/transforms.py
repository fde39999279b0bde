"""Per-parameter meta learning rates modulated by importance (Eq 8).

`scale_by_importance` is an optax `GradientTransformationExtraArgs`: it takes
the importance h as the extra keyword argument `importance` and scales each
coordinate of the incoming (meta-)gradient by a per-parameter factor.
Compose it with a global rate in the optax way::

    meta_opt = optax.chain(scale_by_importance(r=1.0),
                           optax.scale(-alpha0))
    updates, opt_state = meta_opt.update(grads, opt_state, importance=h)

`meta_learning_rate(alpha0, r, mode)` returns exactly that chain.

ALGORITHM_NOTES #1: Eq 8, alpha_j = (r / h_j) alpha_{j-1}, compounds every step
and, read literally, explodes or vanishes unless h stays near r. The readings
offered as `mode`:
  'literal':  alpha_j = (r / h_j) * alpha_{j-1}, alpha_0 = alpha0 (the state
              carries the running product).
  'inverse':  alpha_j = alpha0 * r / (h_j + eps): no compounding. With the
              closed-form meta-gradient lam*h*(theta0 - theta_k) the h cancels
              and the meta step is a Reptile-like move of theta0 toward theta_k,
              alpha0 * r * lam * (theta_k - theta0).
  'constant': alpha_j = alpha0 (no modulation).
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

META_LR_MODES = ('literal', 'inverse', 'constant')


class ScaleByImportanceState(NamedTuple):
  """State of `scale_by_importance`.

  Attributes:
    alpha: per-parameter multiplier alpha_j / alpha0 (a tree like the params,
      float32); all ones at init. Only 'literal' mode changes it.
  """
  alpha: chex.ArrayTree


def scale_by_importance(r: float = 1.0, mode: str = 'inverse',
                        eps: float = 1e-8
                       ) -> optax.GradientTransformationExtraArgs:
  """Eq 8: scales each coordinate by a factor inversely proportional to h.

  Args:
    r: the scale factor r of Eq 8 (> 0).
    mode: 'literal', 'inverse' or 'constant' (see the module docstring).
    eps: added to h before dividing.

  Returns:
    A transformation whose `update(updates, state, params=None, *,
    importance)` needs the importance tree h as a keyword argument.

  Raises:
    ValueError: for a non-positive r or an unknown mode.
  """
  if r <= 0:
    raise ValueError(f'scale factor r must be > 0, got {r}')
  if mode not in META_LR_MODES:
    raise ValueError(f'unknown meta learning-rate mode {mode!r}; '
                     f'use one of {META_LR_MODES}')

  def init_fn(params):
    return ScaleByImportanceState(
        alpha=jax.tree.map(lambda p: jnp.ones_like(p, jnp.float32), params))

  def update_fn(updates, state, params=None, *, importance=None, **extra):
    del params, extra
    if mode == 'constant':
      return updates, state
    if importance is None:
      raise ValueError('scale_by_importance needs importance=h in update()')
    factor = jax.tree.map(lambda h: r / (h + eps), importance)
    if mode == 'literal':
      alpha = jax.tree.map(lambda f, a: f * a, factor, state.alpha)
    else:
      alpha = factor
    updates = jax.tree.map(lambda a, u: (a * u).astype(u.dtype), alpha, updates)
    return updates, ScaleByImportanceState(
        alpha=alpha if mode == 'literal' else state.alpha)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def meta_learning_rate(alpha0: float, r: float = 1.0, mode: str = 'inverse',
                       eps: float = 1e-8
                      ) -> optax.GradientTransformationExtraArgs:
  """Algorithm 1, lines 8-9: alpha^j from Eq 8, then a descent step.

  Args:
    alpha0: initial (global) meta learning rate alpha_0 of Table II (> 0).
    r: scale factor of Eq 8.
    mode: reading of Eq 8, see `scale_by_importance`.
    eps: see `scale_by_importance`.

  Returns:
    `optax.chain(scale_by_importance(r, mode, eps), optax.scale(-alpha0))`.
  """
  if alpha0 <= 0:
    raise ValueError(f'meta learning rate alpha0 must be > 0, got {alpha0}')
  return optax.chain(scale_by_importance(r, mode, eps), optax.scale(-alpha0))
