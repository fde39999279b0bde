"""The closed-form meta-gradient of EMCL (Section IV-B, Eq 9-10)."""

import chex
import jax


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
