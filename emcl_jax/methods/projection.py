"""Gradient projections of GEM and A-GEM over flat gradients (or pytrees).

GEM (Lopez-Paz & Ranzato, 2017, Sec. 3) keeps the proposed gradient g when
it agrees with every past task's memory gradient G_k (<g, G_k> >= 0, Eq 6),
and otherwise moves it to the closest vector that does (Eq 11-13):

  primal  min_z 1/2 ||z - g||^2          s.t.  G z >= 0,
  dual    min_v 1/2 v^T G G^T v + g^T G^T v   s.t.  v >= 0,
  g~ = G^T v* + g,

with G the [k, p] matrix of past-task gradients. The dual has one variable
per task, so it is solved exactly here, in JAX, by an active-set method
(Lawson & Hanson's NNLS, generalised to a quadratic objective) under a
static iteration cap: no host round-trip, so it runs inside `jit` and
`lax.scan`. Rows of G can be masked off (tasks not seen yet).

The official code (facebookresearch/GradientEpisodicMemory, copied into
La-MAML's model/gem.py) solves the dual with quadprog on
P = G G^T + eps I and with v >= margin (its `memory_strength`) rather than
v >= 0; `gem_dual` takes both as arguments (margin = 0, eps = 0 is the
paper's problem).

A-GEM (Chaudhry et al., 2019, Sec. 4, Eq 11) replaces the k constraints by
one, on the gradient g_ref of a batch drawn from the memory:

  g~ = g - (<g, g_ref> / <g_ref, g_ref>) g_ref   if <g, g_ref> < 0, else g.

A flat gradient is a vector [p] and the task gradients a matrix [k, p];
`ravel` / `ravel_rows` flatten pytrees into them with
`jax.flatten_util.ravel_pytree`. Both projections also take the pytrees
themselves (for `gem_project`, G as a pytree whose leaves have a leading
task axis k) and work leaf by leaf: the methods never copy gradients into
one flat vector or [k, p] matrix, which costs more than the projection on
the MLP of the paper.
"""

from typing import Callable, NamedTuple, Optional

import chex
import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp


def ravel(tree: chex.ArrayTree
         ) -> tuple[chex.Array, Callable[[chex.Array], chex.ArrayTree]]:
  """(flat vector [p], unravel) of a pytree, leaves in tree order."""
  return ravel_pytree(tree)


def ravel_rows(trees: chex.ArrayTree) -> chex.Array:
  """A pytree whose leaves have a leading axis k -> matrix [k, p] (row i is
  `ravel` of the i-th tree)."""
  return jax.vmap(lambda tree: ravel_pytree(tree)[0])(trees)


def clip_scale(norm: chex.Array, max_norm: float) -> chex.Array:
  """The factor torch.nn.utils.clip_grad_norm_ scales a gradient of norm
  `norm` by: min(1, max_norm / (norm + 1e-6)); 1 when max_norm <= 0 (no
  clipping). GEM's and A-GEM's official code clip every gradient so."""
  if max_norm <= 0:
    return jnp.ones_like(norm)
  return jnp.minimum(1.0, max_norm / (norm + 1e-6))


def clip_by_norm(g: chex.Array, max_norm: float) -> chex.Array:
  """Clips each flat gradient of g [..., p] to norm max_norm (`clip_scale`);
  max_norm <= 0 leaves g as it is."""
  if max_norm <= 0:
    return g
  return g * clip_scale(jnp.linalg.norm(g, axis=-1, keepdims=True), max_norm)


def clip_by_global_norm(grads: chex.ArrayTree,
                        max_norm: float) -> chex.ArrayTree:
  """torch.nn.utils.clip_grad_norm_ on a pytree (La-MAML's meta-gradients,
  MER's and ER's steps): grads * `clip_scale`(||grads||), ||.|| the global
  L2 norm.

  The squared norm of each leaf is a matrix-vector product with ones, not a
  `jnp.sum`: on CPU the sums made a clipped per-sample step of the MNIST MLP
  2-3x as slow as an unclipped one, the products about 1.1x (measured).
  """

  def squared_norm(g):
    rows = jnp.square(g).reshape(-1, g.shape[-1] if g.ndim else 1)
    return jnp.sum(rows @ jnp.ones(rows.shape[-1], rows.dtype))

  if max_norm <= 0:
    return grads
  grads = materialize(grads)
  norm = jnp.sqrt(sum(squared_norm(g) for g in jax.tree.leaves(grads)))
  scale = clip_scale(norm, max_norm)
  return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def _row_sum(fn: Callable[..., chex.Array], *trees: chex.ArrayTree
            ) -> chex.Array:
  """Sum over leaves of fn(leaf, ...): a per-task quantity of a pytree of
  stacked gradients."""
  return sum(jax.tree.leaves(jax.tree.map(fn, *trees)))


class QPInfo(NamedTuple):
  """Diagnostics of `gem_dual`.

  Attributes:
    iterations: active-set iterations taken, int32 [].
    converged: the KKT conditions held within tolerance at exit, bool [].
  """
  iterations: chex.Array
  converged: chex.Array


def default_max_iter(k: int) -> int:
  """Iteration cap of the active-set solver for k variables: each outer
  step frees one variable and each inner step fixes one, so a few times k
  is ample (the solver stops as soon as the KKT conditions hold)."""
  return 3 * k + 10


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
  # Objective in u = v - lower:  1/2 u^T P u + c^T u,  u >= 0 on the mask.
  c = jnp.where(mask, p @ lower + dots.astype(dtype), 0)
  # Gradients of the objective below -tol count as negative (rounding
  # errors in P u + c are of the order of eps * |c| near the optimum).
  tol = 10 * jnp.finfo(dtype).eps * k * jnp.max(jnp.abs(c))
  eye = jnp.eye(k, dtype=dtype)

  def solve_on(free):
    # argmin over {u : u_j = 0 for j not free} of 1/2 u^T P u + c^T u.
    a = jnp.where(free[:, None] & free[None, :], p, 0) + jnp.where(
        free, 0, 1).astype(dtype) * eye
    return jnp.where(free, jnp.linalg.solve(a, -c), 0)

  def kkt_holds(u):
    grad = p @ u + c
    return ~jnp.any(mask & (u <= 0) & (grad < -tol))

  def cond(carry):
    *_, it, done = carry
    return (~done) & (it < max_iter)

  def body(carry):
    u, free, banned, it, _ = carry
    z = solve_on(free)
    feasible = ~jnp.any(free & (z <= 0))

    def accept(_):
      # z is optimal on F: free the bound variable whose gradient is most
      # negative, or stop if there is none (the KKT conditions hold, or
      # only rounding errors are left: every candidate is banned).
      grad = p @ z + c
      pick = mask & ~free & ~banned & (grad < -tol)
      j = jnp.argmin(jnp.where(pick, grad, jnp.inf))
      more = jnp.any(pick)
      return (z, free.at[j].set(free[j] | more), banned & ~more, ~more)

    def step_back(_):
      # Move from u toward z until the first free variable reaches 0, and
      # fix the variables that did.
      blocking = free & (z <= 0)
      # u >= 0 >= z on blocking entries, so u - z >= 0 (0 only if both are).
      gap = jnp.where(blocking, u - z, 1)
      ratio = jnp.where(blocking, u / jnp.where(gap > 0, gap, 1), jnp.inf)
      j = jnp.argmin(ratio)
      alpha = jnp.clip(ratio[j], 0, 1)
      u_new = u + alpha * (z - u)
      fixed = free & ((u_new <= 0) | (jnp.arange(k) == j))
      free_new = free & ~fixed
      # A variable freed at 0 that leaves again at once (a rounding error:
      # in exact arithmetic it would have entered F with z_j > 0) is not
      # picked again until F changes otherwise (Lawson & Hanson's rule).
      stuck = fixed & (u <= 0) & (alpha <= 0)
      return (jnp.where(free_new, u_new, 0), free_new, banned | stuck,
              jnp.asarray(False))

    u, free, banned, done = jax.lax.cond(feasible, accept, step_back, None)
    return u, free, banned, it + 1, done

  u0 = jnp.zeros((k,), dtype)
  none = jnp.zeros((k,), bool)
  u, _, _, it, _ = jax.lax.while_loop(
      cond, body, (u0, none, none, jnp.zeros((), jnp.int32),
                   jnp.asarray(False)))
  return u + lower, QPInfo(it, kkt_holds(u))


def gem_project(g: chex.ArrayTree, big_g: chex.ArrayTree, mask: chex.Array,
                *, clip_norm: float = 0.0, margin: float = 0.0,
                eps: float = 0.0, max_iter: Optional[int] = None
               ) -> tuple[chex.ArrayTree, chex.Array, QPInfo]:
  """GEM's gradient projection (Eq 11-13): g itself if <g, G_k> >= 0 for
  every masked task k, else G^T v* + g with v* from `gem_dual`.

  Args:
    g: proposed gradient: a flat vector [p], or any pytree.
    big_g: past-task gradients G: a matrix [k, p], or a pytree like g whose
      leaves have a leading task axis k. Masked rows are ignored but must
      be finite.
    mask: bool [k], the tasks whose constraints apply (seen, past tasks).
    clip_norm: if > 0, each G_k is first clipped to this norm (`clip_scale`,
      as the official code clips every task gradient). The factors come
      from the diagonal of G G^T and are applied to G G^T, G g and v, never
      to a copy of G; clipping does not change the signs of <g, G_k>.
    margin, eps, max_iter: see `gem_dual`.

  Returns:
    (g~ like g, violated bool [] (a constraint failed and g was projected),
    QPInfo of the solve; zero iterations when nothing was violated).
  """
  mask = mask.astype(bool)
  k = mask.shape[0]
  dots = _row_sum(lambda a, b: a.reshape(k, -1) @ b.reshape(-1), big_g, g)
  dots = jnp.where(mask, dots, 0)
  violated = jnp.any(mask & (dots < 0))

  def project(_):
    gram = _row_sum(lambda a: a.reshape(k, -1) @ a.reshape(k, -1).T, big_g)
    norms = jnp.sqrt(jnp.maximum(jnp.diag(gram), 0))
    scale = jnp.where(mask, clip_scale(norms, clip_norm), 0)
    gram = scale[:, None] * gram * scale[None, :]
    v, info = gem_dual(gram, scale * dots, mask, margin=margin, eps=eps,
                       max_iter=max_iter)
    w = scale * v
    g_tilde = jax.tree.map(
        lambda a, b: (b + jnp.tensordot(w.astype(a.dtype), a, axes=1)
                     ).astype(b.dtype), big_g, g)
    return g_tilde, info

  def keep(_):
    return g, QPInfo(jnp.zeros((), jnp.int32), jnp.asarray(True))

  g_tilde, info = jax.lax.cond(violated, project, keep, None)
  return g_tilde, violated, info


def agem_project(g: chex.ArrayTree, g_ref: chex.ArrayTree
                ) -> tuple[chex.ArrayTree, chex.Array]:
  """A-GEM's projection (Chaudhry et al. 2019, Sec. 4, Eq 11).

  Args:
    g: proposed gradient, a flat [p] vector or a pytree.
    g_ref: reference gradient on the memory batch, shaped like g.

  Returns:
    (g~, violated): g - (<g, g_ref> / <g_ref, g_ref>) g_ref when
    <g, g_ref> < 0, else g unchanged (exactly); violated is that condition.
    A zero g_ref (empty memory) never violates.
  """
  dot = tree_vdot(g, g_ref)
  ref_sq = tree_vdot(g_ref, g_ref)
  violated = dot < 0
  coef = dot / jnp.where(violated, ref_sq, 1)
  return jax.tree.map(lambda a, r: jnp.where(violated, a - coef * r, a),
                      g, g_ref), violated


def tree_vdot(a: chex.ArrayTree, b: chex.ArrayTree) -> chex.Array:
  """<a, b> of two pytrees seen as flat vectors (a scalar)."""
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a),
                                            jax.tree.leaves(b)))


def materialize(tree: chex.ArrayTree) -> chex.ArrayTree:
  """The tree unchanged, computed before any of its consumers.

  XLA on the CPU may fuse a gradient's matrix product (e.g. x^T delta of a
  dense layer) into a reduction that consumes it (a norm, an inner product)
  and then evaluates it as a slow scalar loop, once per consumer: A-GEM's
  update on the MNIST MLP took 18 ms instead of 1.3 ms (measured). An
  optimization barrier makes the gradients ordinary buffers first.
  """
  return jax.lax.optimization_barrier(tree)
