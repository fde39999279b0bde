"""Gradient projections of GEM and A-GEM, over flat gradients or pytrees.

GEM (Lopez-Paz & Ranzato, 2017, Sec. 3) keeps the proposed gradient g when
it agrees with every past task's memory gradient G_k (<g, G_k> >= 0, Eq 6),
and otherwise moves it to the closest vector that does (Eq 11-13):

  primal  min_z 1/2 ||z - g||^2          s.t.  G z >= 0,
  dual    min_v 1/2 v^T G G^T v + g^T G^T v   s.t.  v >= 0,
  g~ = G^T v* + g,

with G the [k, p] matrix of past-task gradients; the dual is solved in
`gem_qp`. Rows of G can be masked off (tasks not seen yet).

A-GEM (Chaudhry et al., 2019, Sec. 4, Eq 11) replaces the k constraints by
one, on the gradient g_ref of a batch drawn from the memory:

  g~ = g - (<g, g_ref> / <g_ref, g_ref>) g_ref   if <g, g_ref> < 0, else g.

A flat gradient is a vector [p] and the task gradients a matrix [k, p]
(`emcl_jax.trees.ravel`, `ravel_rows`). Both projections also take the
pytrees themselves (for `gem_project`, G as a pytree whose leaves have a
leading task axis k) and work leaf by leaf: the methods never copy
gradients into one flat vector or [k, p] matrix, which costs more than the
projection on the MLP of the paper.
"""

from typing import Optional

import chex
import jax
import jax.numpy as jnp

from emcl_jax import clipping
from emcl_jax import trees
from emcl_jax.methods.gem_qp import QPInfo, gem_dual


def gem_project(g: chex.ArrayTree, big_g: chex.ArrayTree, mask: chex.Array,
                *, clip_norm: float = 0.0, margin: float = 0.0,
                eps: float = 0.0, max_iter: Optional[int] = None
               ) -> tuple[chex.ArrayTree, chex.Array, QPInfo]:
  """GEM's gradient projection (Eq 11-13): g itself if <g, G_k> >= 0 for
  every masked task k, else G^T v* + g with v* from `gem_qp.gem_dual`.

  Args:
    g: proposed gradient: a flat vector [p], or any pytree.
    big_g: past-task gradients G: a matrix [k, p], or a pytree like g whose
      leaves have a leading task axis k. Masked rows are ignored but must
      be finite.
    mask: bool [k], the tasks whose constraints apply (seen, past tasks).
    clip_norm: if > 0, each G_k is first clipped to this norm
      (`clipping.clip_scale`, as the official code clips every task
      gradient). The factors come from the diagonal of G G^T and are
      applied to G G^T, G g and v, never to a copy of G; clipping does not
      change the signs of <g, G_k>.
    margin, eps, max_iter: see `gem_qp.gem_dual`.

  Returns:
    (g~ like g, violated bool [] (a constraint failed and g was projected),
    QPInfo of the solve; zero iterations when nothing was violated).
  """
  mask = mask.astype(bool)
  k = mask.shape[0]
  dots = trees.row_sum(lambda a, b: a.reshape(k, -1) @ b.reshape(-1),
                       big_g, g)
  dots = jnp.where(mask, dots, 0)
  violated = jnp.any(mask & (dots < 0))

  def project(_):
    gram = trees.row_sum(lambda a: a.reshape(k, -1) @ a.reshape(k, -1).T,
                         big_g)
    norms = jnp.sqrt(jnp.maximum(jnp.diag(gram), 0))
    scale = jnp.where(mask, clipping.clip_scale(norms, clip_norm), 0)
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
  dot = trees.tree_vdot(g, g_ref)
  ref_sq = trees.tree_vdot(g_ref, g_ref)
  violated = dot < 0
  coef = dot / jnp.where(violated, ref_sq, 1)
  return jax.tree.map(lambda a, r: jnp.where(violated, a - coef * r, a),
                      g, g_ref), violated
