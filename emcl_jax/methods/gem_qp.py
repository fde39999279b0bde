"""GEM's dual quadratic program (Lopez-Paz & Ranzato, 2017, Eq 13), solved
exactly in JAX.

  min_v 1/2 v^T (G G^T + eps I) v + (G g)^T v   s.t.  v_k >= margin,

with G the [k, p] matrix of past-task gradients and g the proposed
gradient. The dual has one variable per task, so it is solved here by an
active-set method (Lawson & Hanson's NNLS, generalised to a quadratic
objective) under a static iteration cap: no host round-trip, so it runs
inside `jit` and `lax.scan`. Variables can be masked off (tasks not seen
yet).

The official code (facebookresearch/GradientEpisodicMemory, copied into
La-MAML's model/gem.py) solves the dual with quadprog on
P = G G^T + eps I and with v >= margin (its `memory_strength`) rather than
v >= 0; `gem_dual` takes both as arguments (margin = 0, eps = 0 is the
paper's problem).
"""

from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp


class QPInfo(NamedTuple):
  """Diagnostics of `gem_dual`.

  Attributes:
    iterations: active-set iterations taken, int32 [].
    converged: the KKT conditions held within tolerance at exit, bool [].
  """
  iterations: chex.Array
  converged: chex.Array


class _Problem(NamedTuple):
  """The dual in u = v - lower: min 1/2 u^T P u + c^T u, u >= 0 on mask."""
  p: chex.Array  # [k, k] P = G G^T + eps I, masked rows/columns zero.
  c: chex.Array  # [k] P lower + G g on the mask, 0 elsewhere.
  mask: chex.Array  # bool [k], the constrained variables.
  tol: chex.Array  # [] gradients below -tol count as negative.


class _Iterate(NamedTuple):
  """The active-set loop's carry."""
  u: chex.Array  # [k] the current feasible point.
  free: chex.Array  # bool [k], the free set F.
  banned: chex.Array  # bool [k], variables not to free again yet.
  it: chex.Array  # int32 [], iterations taken.
  done: chex.Array  # bool [], the KKT conditions hold.


def default_max_iter(k: int) -> int:
  """Iteration cap of the active-set solver for k variables: each outer
  step frees one variable and each inner step fixes one, so a few times k
  is ample (the solver stops as soon as the KKT conditions hold)."""
  return 3 * k + 10


def _solve_on(qp: _Problem, free: chex.Array) -> chex.Array:
  """argmin over {u : u_j = 0 for j not free} of 1/2 u^T P u + c^T u."""
  k, dtype = qp.c.shape[0], qp.p.dtype
  a = jnp.where(free[:, None] & free[None, :], qp.p, 0) + jnp.where(
      free, 0, 1).astype(dtype) * jnp.eye(k, dtype=dtype)
  return jnp.where(free, jnp.linalg.solve(a, -qp.c), 0)


def _kkt_holds(qp: _Problem, u: chex.Array) -> chex.Array:
  """No bound variable whose gradient is negative (bool [])."""
  grad = qp.p @ u + qp.c
  return ~jnp.any(qp.mask & (u <= 0) & (grad < -qp.tol))


def _accept(qp: _Problem, z, free, banned):
  """z is optimal on F: free the bound variable whose gradient is most
  negative, or stop if there is none (the KKT conditions hold, or only
  rounding errors are left: every candidate is banned)."""
  grad = qp.p @ z + qp.c
  pick = qp.mask & ~free & ~banned & (grad < -qp.tol)
  j = jnp.argmin(jnp.where(pick, grad, jnp.inf))
  more = jnp.any(pick)
  return (z, free.at[j].set(free[j] | more), banned & ~more, ~more)


def _step_back(u, z, free, banned):
  """Moves from u toward z until the first free variable reaches 0, and
  fixes the variables that did."""
  k = u.shape[0]
  blocking = free & (z <= 0)
  # u >= 0 >= z on blocking entries, so u - z >= 0 (0 only if both are).
  gap = jnp.where(blocking, u - z, 1)
  ratio = jnp.where(blocking, u / jnp.where(gap > 0, gap, 1), jnp.inf)
  j = jnp.argmin(ratio)
  alpha = jnp.clip(ratio[j], 0, 1)
  u_new = u + alpha * (z - u)
  fixed = free & ((u_new <= 0) | (jnp.arange(k) == j))
  free_new = free & ~fixed
  # A variable freed at 0 that leaves again at once (a rounding error: in
  # exact arithmetic it would have entered F with z_j > 0) is not picked
  # again until F changes otherwise (Lawson & Hanson's rule).
  stuck = fixed & (u <= 0) & (alpha <= 0)
  return (jnp.where(free_new, u_new, 0), free_new, banned | stuck,
          jnp.asarray(False))


def _iterate(qp: _Problem, carry: _Iterate) -> _Iterate:
  """One active-set iteration: solve on F, then accept or step back."""
  u, free, banned, it, _ = carry
  z = _solve_on(qp, free)
  feasible = ~jnp.any(free & (z <= 0))
  u, free, banned, done = jax.lax.cond(
      feasible, lambda _: _accept(qp, z, free, banned),
      lambda _: _step_back(u, z, free, banned), None)
  return _Iterate(u, free, banned, it + 1, done)


def gem_dual(gram: chex.Array, dots: chex.Array, mask: chex.Array, *,
             margin: float = 0.0, eps: float = 0.0,
             max_iter: Optional[int] = None
            ) -> tuple[chex.Array, QPInfo]:
  """Solves GEM's dual QP (Eq 13) over the masked tasks, exactly.

    min_v 1/2 v^T (G G^T + eps I) v + (G g)^T v   s.t.  v_k >= margin,

  for the tasks with mask_k; v_k = 0 for the others. With u = v - margin
  this is a QP with u >= 0, solved by a primal active-set method (Lawson &
  Hanson, "Solving Least Squares Problems", 1974, Ch. 23, with the normal
  equations replaced by the QP's): grow the set F of free variables one at
  a time by the most negative gradient, solve the equality-constrained
  problem on F, and step back to the boundary when that solution leaves the
  feasible set. Each iteration is one masked k x k linear solve; the loop
  stops when the KKT conditions hold or after `max_iter` iterations.

  Args:
    gram: G G^T, [k, k] (rows/columns of masked tasks are ignored).
    dots: G g, [k], the inner products of the proposed gradient with each
      task's gradient.
    mask: bool [k], the tasks whose constraints apply.
    margin: lower bound on v (official code: memory_strength); 0 in the paper.
    eps: ridge added to G G^T (official code: 1e-3), which keeps the QP
      strictly convex when task gradients are linearly dependent.
    max_iter: iteration cap (static); `default_max_iter(k)` if None.

  Returns:
    (v [k], QPInfo).
  """
  k = dots.shape[0]
  if max_iter is None:
    max_iter = default_max_iter(k)
  dtype = jnp.result_type(gram.dtype, dots.dtype)
  mask = mask.astype(bool)
  both = mask[:, None] & mask[None, :]
  p = jnp.where(both, gram.astype(dtype), 0) + eps * jnp.eye(k, dtype=dtype)
  lower = jnp.where(mask, jnp.asarray(margin, dtype), 0)
  c = jnp.where(mask, p @ lower + dots.astype(dtype), 0)
  # Gradients of the objective below -tol count as negative (rounding
  # errors in P u + c are of the order of eps * |c| near the optimum).
  tol = 10 * jnp.finfo(dtype).eps * k * jnp.max(jnp.abs(c))
  qp = _Problem(p, c, mask, tol)
  none = jnp.zeros((k,), bool)
  out = jax.lax.while_loop(
      lambda s: (~s.done) & (s.it < max_iter),
      lambda s: _iterate(qp, s),
      _Iterate(jnp.zeros((k,), dtype), none, none,
               jnp.zeros((), jnp.int32), jnp.asarray(False)))
  return out.u + lower, QPInfo(out.it, _kkt_holds(qp, out.u))
