"""The closed-form meta-gradient of EMCL (Section IV-B, Eq 9-10)."""

import chex
import jax
import jax.numpy as jnp
import optax


def meta_gradient(theta0: chex.ArrayTree, theta_k: chex.ArrayTree,
                  h: chex.ArrayTree, lam: float) -> chex.ArrayTree:
  """Eq 10: grad_{theta0} L_t(theta_k) = lam * H^2 (theta0 - theta_k).

  Valid when theta_k minimises the inner objective of Eq 6 (so that Eq 9,
  grad L(theta_k) + lam H^2 (theta_k - theta0) = 0, holds): the Jacobian
  d theta_k / d theta0 then drops out and no second derivative is needed.

  Args:
    theta0: meta-parameters.
    theta_k: fast weights after the k inner steps.
    h: importance, H^2 = diag(h), the same h the inner loop regularised with.
    lam: lambda of Eq 6.

  Returns:
    The meta-gradient, a tree like theta0.
  """
  return jax.tree.map(lambda p0, pk, hm: lam * hm * (p0 - pk), theta0, theta_k,
                      h)


def meta_step_share(theta0: chex.ArrayTree, theta_k: chex.ArrayTree,
                    theta_new: chex.ArrayTree) -> chex.Array:
  """How much the Eq 8 step does beyond copying the inner loop's end point:
  ||theta_new - theta_k|| / ||theta_k - theta0||.

  With the closed form of Eq 10 the meta step moves theta0 along
  (theta_k - theta0), per parameter by alpha * lam * h. Under the `inverse`
  reading of Eq 8 (alpha = alpha0 * r / h) that factor is alpha0 * r * lam
  for every parameter, and at alpha0 * r * lam = 1 the meta step is a copy,
  theta0 <- theta_k: this ratio is 0 and the meta-learning part does
  nothing. It is |1 - alpha0 r lam| under that reading, and 1 when theta0
  does not move.

  Args:
    theta0: meta-parameters before the step.
    theta_k: fast weights after the inner loop.
    theta_new: meta-parameters after the Eq 8 step.

  Returns:
    The ratio, a float32 scalar (0 when the inner loop did not move).
  """
  inner = optax.tree.norm(optax.tree.sub(theta_k, theta0))
  outer = optax.tree.norm(optax.tree.sub(theta_new, theta_k))
  return jnp.where(inner > 0, outer / jnp.maximum(inner, 1e-30), 0.0)
