"""Gradient clipping by global norm: one formula for every method.

Every method that clips a gradient (La-MAML's meta-gradients, GEM's and
A-GEM's gradients, MER's and ER's steps, EMCL's meta-gradient of Eq 10)
scales it as `torch.nn.utils.clip_grad_norm_` does:

  g <- g * min(1, max_norm / (||g|| + 1e-6)),

with ||g|| the L2 norm of all the leaves together. The official code of
each of those methods is PyTorch and calls `clip_grad_norm_`
(montrealrobotics/La-MAML: its lamaml, gem, agem, meralg1 and er models;
EMCL's `meta_clip` is that of La-MAML, whose code the EMCL paper ran).
`optax.clip_by_global_norm` differs: it scales by max_norm / ||g|| (no
1e-6) and only when ||g|| >= max_norm, so a clipped gradient's norm is
max_norm exactly instead of max_norm * ||g|| / (||g|| + 1e-6); the two
agree to a relative 1e-6 / ||g||.

`max_norm` <= 0 turns clipping off (the factor is 1, the gradient comes
back unchanged), the convention of the methods' `grad_clip_norm` and
`meta_clip`. One formula serves a Python float and a traced array alike (a
grid of settings, `training.grid`, may hold 0 and 2.0 in one program): the
off switch is a `jnp.where` on the value. XLA folds it for a float, and
with it the norm an unclipped gradient does not need, so a run with floats
keeps its numbers (tests/test_golden.py).
"""

import chex
import jax
import jax.numpy as jnp
import optax

from emcl_jax import trees

EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s, added to the norm.


def clip_scale(norm: chex.Array, max_norm: float) -> chex.Array:
  """The factor a gradient of norm `norm` is scaled by.

  Args:
    norm: the gradient's L2 norm(s), any shape.
    max_norm: the norm to clip to; <= 0 turns clipping off.

  Returns:
    min(1, max_norm / (norm + 1e-6)) like `norm`; ones when max_norm <= 0.
  """
  return jnp.where(max_norm > 0, jnp.minimum(1.0, max_norm / (norm + EPS)),
                   1.0)


def global_norm(grads: chex.ArrayTree) -> chex.Array:
  """||grads||: the L2 norm of all the leaves together, float [].

  The squared norm of each leaf is a matrix-vector product with ones, not a
  `jnp.sum`: on CPU the sums made a clipped per-sample step of the MNIST MLP
  2-3x as slow as an unclipped one, the products about 1.1x (measured).
  """

  def squared_norm(g):
    rows = jnp.square(g).reshape(-1, g.shape[-1] if g.ndim else 1)
    return jnp.sum(rows @ jnp.ones(rows.shape[-1], rows.dtype))

  return jnp.sqrt(sum(squared_norm(g) for g in jax.tree.leaves(grads)))


def clip_by_global_norm(grads: chex.ArrayTree,
                        max_norm: float) -> chex.ArrayTree:
  """grads * `clip_scale`(||grads||, max_norm) (module docstring).

  Args:
    grads: a gradient, any pytree of float arrays.
    max_norm: the global norm to clip to (a float, or a traced scalar in a
      grid); <= 0 leaves the values of `grads` as they are.

  Returns:
    The clipped gradient, like `grads` (each leaf keeps its dtype).
  """
  grads = trees.materialize(grads)
  scale = clip_scale(global_norm(grads), max_norm)
  return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def clip_transform(max_norm: float) -> optax.GradientTransformation:
  """`clip_by_global_norm` as a stateless optax transformation, to chain in
  front of an update rule (EMCL's Eq 8 step)."""
  return optax.stateless(
      lambda updates, params=None: clip_by_global_norm(updates, max_norm))
