"""The inner update of EMCL (Section IV-A, IV-D): proximal gradient descent.

Notation (the paper's, used throughout the library):
  theta0  meta-parameters theta_0^j at meta-step j (the model's weights).
  theta   fast weights theta_kappa after kappa inner steps.
  h       smoothed parameter importance h^j (Eq 7), a pytree like theta0.
  lam     lambda, the strength of the importance-weighted regulariser (Eq 6).
  beta    inner learning rate of the gradient step (Algorithm 1, line 6).
  gamma   step of the proximal operator (Eq 14, 21).

The inner objective (Eq 6) is  L(theta) + lam/2 * sum_m h_m (theta_m - theta0_m)^2.
PGD splits it: a gradient step on L (Eq 16), then the closed-form proximal
operator of the quadratic regulariser (Eq 21). docs/algorithm.md #4: Eq 16 writes
the gradient step with gamma, Algorithm 1 with beta; we take the gradient step
with beta and the proximal step with gamma (with beta == gamma this is textbook
PGD).
"""

from typing import NamedTuple

import chex
import jax


def prox_quadratic(v: chex.Array, x0: chex.Array, c: chex.Numeric,
                   gamma: chex.Numeric) -> chex.Array:
  """Lemma 1 (Eq 18): prox_{gamma f}(v) for f(x) = c * ||x - x0||^2.

  Args:
    v: the point to map.
    x0: the centre of the quadratic.
    c: its (positive, possibly per-element) curvature.
    gamma: the proximal step (> 0).

  Returns:
    (v + 2 gamma c x0) / (2 gamma c + 1), the minimiser of Eq 19.
  """
  return (v + 2.0 * gamma * c * x0) / (2.0 * gamma * c + 1.0)


def gradient_step(theta: chex.ArrayTree, grads: chex.ArrayTree,
                  beta: chex.Numeric) -> chex.ArrayTree:
  """Eq 16: theta_hat = theta - beta * grad L(theta)."""
  return jax.tree.map(lambda p, g: p - beta * g, theta, grads)


def proximal_step(theta_hat: chex.ArrayTree, theta0: chex.ArrayTree,
                  h: chex.ArrayTree, *, lam: float,
                  gamma: float) -> chex.ArrayTree:
  """Eq 21: the proximal operator of the regulariser of Eq 15, per parameter.

  theta_m = (theta_hat_m + gamma lam h_m theta0_m) / (gamma lam h_m + 1),
  i.e. Lemma 1 with c = lam * h_m / 2.
  """
  return jax.tree.map(
      lambda v, x0, hm: prox_quadratic(v, x0, 0.5 * lam * hm, gamma),
      theta_hat, theta0, h)


def pgd_step(theta: chex.ArrayTree, theta0: chex.ArrayTree, h: chex.ArrayTree,
             grads: chex.ArrayTree, *, beta: float, lam: float,
             gamma: float) -> chex.ArrayTree:
  """One inner step of Algorithm 1 (line 6): Eq 16 followed by Eq 21.

  Args:
    theta: fast weights theta_{kappa-1}.
    theta0: meta-parameters (centre of the regulariser).
    h: importance (already scaled as the caller wants it, see `importance`).
    grads: grad of the empirical risk L at theta, on the kappa-th sample.
    beta: gradient step. lam: regulariser strength. gamma: proximal step.

  Returns:
    theta_kappa.
  """
  return proximal_step(gradient_step(theta, grads, beta), theta0, h,
                       lam=lam, gamma=gamma)


class PGDCoefficients(NamedTuple):
  """Eq 16 + 21 rewritten as theta <- a * (theta - beta * grad) + b.

  a = 1 / (gamma lam h + 1) and b = gamma lam h theta0 * a depend only on
  theta0 and h, which are fixed during the k inner steps of one meta-update:
  computing them once makes each inner step two fused elementwise passes.
  """
  a: chex.ArrayTree
  b: chex.ArrayTree


def pgd_coefficients(theta0: chex.ArrayTree, h: chex.ArrayTree, *,
                     lam: float, gamma: float) -> PGDCoefficients:
  """The per-meta-update constants of Eq 21 (see `PGDCoefficients`)."""
  a = jax.tree.map(lambda hm: 1.0 / (gamma * lam * hm + 1.0), h)
  b = jax.tree.map(lambda am, hm, p0: gamma * lam * hm * p0 * am, a, h, theta0)
  return PGDCoefficients(a, b)


def pgd_step_prepared(theta: chex.ArrayTree, grads: chex.ArrayTree,
                      coef: PGDCoefficients, *, beta: float) -> chex.ArrayTree:
  """`pgd_step` (Eq 16 then Eq 21) with precomputed coefficients."""
  return jax.tree.map(lambda p, g, a, b: a * (p - beta * g) + b, theta, grads,
                      coef.a, coef.b)


def regularised_gd_step(theta: chex.ArrayTree, theta0: chex.ArrayTree,
                        h: chex.ArrayTree, grads: chex.ArrayTree, *,
                        beta: float, lam: float) -> chex.ArrayTree:
  """Ablation of Table IV ("PGD" off): plain gradient descent on Eq 6.

  theta <- theta - beta * (grad L(theta) + lam * h * (theta - theta0)).
  """
  return jax.tree.map(lambda p, p0, hm, g: p - beta * (g + lam * hm * (p - p0)),
                      theta, theta0, h, grads)


def modulated_rates(h: chex.ArrayTree, *, beta: float, lam: float,
                    gamma: float) -> chex.ArrayTree:
  """Ablation of Table IV ("inner LR modulation"): per-parameter inner rates
  beta / (1 + gamma lam h), the factor by which Eq 21 scales a step, used
  without the regulariser."""
  return jax.tree.map(lambda hm: beta / (1.0 + gamma * lam * hm), h)


def modulated_step(theta: chex.ArrayTree, grads: chex.ArrayTree,
                   rates: chex.ArrayTree) -> chex.ArrayTree:
  """theta <- theta - rates * grad L(theta), elementwise rates."""
  return jax.tree.map(lambda p, g, r: p - r * g, theta, grads, rates)
