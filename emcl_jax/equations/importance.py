"""Parameter importance by first-order Taylor expansion (Section IV-C).

Omega_m = |dL_t/dtheta0_m * theta0_m|   (Eq 13), the first-order estimate of
how much the loss changes when parameter m is zeroed (Eq 11-12), smoothed by
an exponential moving average h^j = eta h^{j-1} + (1 - eta) Omega^j (Eq 7).
"""

import chex
import jax
import jax.numpy as jnp

H_NORMS = ('none', 'mean', 'layer_mean', 'max')


def taylor_importance(grads: chex.ArrayTree,
                      theta0: chex.ArrayTree) -> chex.ArrayTree:
  """Eq 13: Omega = |grad * theta0|, elementwise."""
  return jax.tree.map(lambda g, p: jnp.abs(g * p), grads, theta0)


def si_importance(grads: chex.ArrayTree,
                  delta: chex.ArrayTree) -> chex.ArrayTree:
  """EMCL-SI (Fig. 3): Omega = |grad * parameter update|, as in SI [4]."""
  return jax.tree.map(lambda g, d: jnp.abs(g * d), grads, delta)


def update_importance(h: chex.ArrayTree, omega: chex.ArrayTree,
                      eta: float) -> chex.ArrayTree:
  """Eq 7: h^j = eta * h^{j-1} + (1 - eta) * Omega^j."""
  return jax.tree.map(lambda a, o: eta * a + (1.0 - eta) * o, h, omega)


def normalise(h: chex.ArrayTree, mode: str, eps: float = 1e-12
             ) -> chex.ArrayTree:
  """Rescales h over the whole tree (docs/algorithm.md #5).

  |g * theta| is often 1e-4 or smaller, which makes lam * h vanish. With
  `mode='mean'` h is divided by its mean over all parameters (so the average
  parameter has h = 1 and lam keeps the meaning the paper's Table II gives
  it); `'layer_mean'` divides each leaf (layer weight or bias) by its own
  mean, so every layer averages 1; `'max'` divides by the largest value;
  `'none'` leaves h as it is.

  Args:
    h: importance tree.
    mode: one of 'none', 'mean', 'layer_mean', 'max'.
    eps: guards the division when h is all zeros.

  Returns:
    The rescaled tree.
  """
  if mode == 'none':
    return h
  if mode == 'layer_mean':
    return jax.tree.map(lambda x: x / (jnp.mean(x) + eps), h)
  leaves = jax.tree.leaves(h)
  if mode == 'mean':
    total = sum(jnp.sum(x) for x in leaves)
    scale = total / sum(x.size for x in leaves)
  elif mode == 'max':
    scale = jnp.max(jnp.stack([jnp.max(x) for x in leaves]))
  else:
    raise ValueError(f'unknown importance normalisation {mode!r}; '
                     f'use one of {H_NORMS}')
  return jax.tree.map(lambda x: x / (scale + eps), h)


def floor(h: chex.ArrayTree, h_min: float) -> chex.ArrayTree:
  """max(h, h_min): no parameter counts as entirely unimportant.

  Eq 13 gives Omega = 0 to a parameter that is exactly 0 (biases at their
  zero initialisation), and with h = 0 the meta-gradient of Eq 10 is 0 too, so
  such a parameter would never move. A small floor keeps Eq 8 and Eq 10 in
  their h -> 0 limit (a Reptile-like move) instead (docs/algorithm.md #5, #6).
  """
  return jax.tree.map(lambda x: jnp.maximum(x, h_min), h)


def flatten(h: chex.ArrayTree) -> chex.ArrayTree:
  """Every entry replaced by the mean of h over all parameters: the
  `importance='none'` control, which keeps the regulariser's and the meta
  step's overall strength but no per-parameter differences."""
  leaves = jax.tree.leaves(h)
  mean = sum(jnp.sum(x) for x in leaves) / sum(x.size for x in leaves)
  return jax.tree.map(lambda x: jnp.full_like(x, mean), h)
