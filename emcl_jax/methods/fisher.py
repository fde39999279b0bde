"""The empirical Fisher information, the importance EWC weights its penalty by.

Kirkpatrick et al. (2017), "Overcoming catastrophic forgetting in neural
networks", Eq 3 and its Methods: the diagonal of the Fisher information at
the end of task A, F_m = E[(d log p(y|x, theta) / d theta_m)^2], estimated
on the task's samples with their own labels (the *empirical* Fisher):

  F_m = 1/n sum_i (d l_i / d theta_m)^2,  l_i = -log p(y_i | x_i, theta),

one gradient per sample (`jax.vmap` of `jax.grad`), squared, then averaged.
It is not the square of the mean gradient (what the GEM repository's
model/ewc.py computes), which is smaller by the gradients' variance.
"""

import chex
import jax
import jax.numpy as jnp

from emcl_jax.base import Batch, LossFn


def per_sample_grads(loss_fn: LossFn, params: chex.ArrayTree,
                     batch: Batch) -> chex.ArrayTree:
  """Gradient of every sample's loss: a tree like params with a leading [n].

  Args:
    loss_fn: loss_fn(params, batch, weights) -> scalar (mean over samples).
    params: the parameters to differentiate at.
    batch: samples [n, ...].

  Returns:
    grads[i] = grad of loss_fn on sample i alone.
  """
  grad_fn = jax.grad(loss_fn)

  def one(x, y, t):
    return grad_fn(params, Batch(x[None], y[None], t[None]),
                   jnp.ones((1,), jnp.float32))

  return jax.vmap(one)(batch.x, batch.y, batch.t)


def empirical_fisher(loss_fn: LossFn, params: chex.ArrayTree, batch: Batch,
                     weights: chex.Array, *,
                     chunk_size: int = 1) -> chex.ArrayTree:
  """Diagonal empirical Fisher (Kirkpatrick et al. 2017, Eq 3's F_i).

  F_m = sum_i w_i g_im^2 / max(sum_i w_i, 1), g_i the gradient of sample
  i's loss (for the cross-entropy, -grad log p(y_i | x_i, theta)).

  The samples are taken `chunk_size` at a time (per-sample gradients of a
  chunk by `jax.vmap`), their squares summed into one accumulator by
  `lax.scan`, so at most chunk_size gradients are held at once. On CPU one
  sample per step is the fastest (200 samples of the 784-100-100-10 MLP:
  12 ms, against 77 ms for one vmap over all of them).

  Args:
    loss_fn: loss_fn(params, batch, weights) -> scalar.
    params: theta*, the parameters at the end of the task.
    batch: the task's samples, [n, ...].
    weights: [n] float, 1 for a real sample, 0 for padding.
    chunk_size: samples per vmapped chunk (static, >= 1); n is padded with
      zero-weight samples to a multiple of it.

  Returns:
    F, a float32 tree like params (all zeros when no weight is positive).
  """
  if chunk_size < 1:
    raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
  weights = weights.astype(jnp.float32)
  n = weights.shape[0]
  pad = -n % chunk_size

  def chunks(a):
    a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
    return a.reshape((-1, chunk_size) + a.shape[1:])

  def accumulate(total, chunk):
    x, y, t, w = chunk
    grads = per_sample_grads(loss_fn, params, Batch(x, y, t))
    return jax.tree.map(
        lambda s, g: s + jnp.tensordot(w, jnp.square(g.astype(jnp.float32)),
                                       axes=1), total, grads), None

  zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
  total, _ = jax.lax.scan(accumulate, zeros,
                          tuple(chunks(a) for a in (*batch, weights)))
  norm = jnp.maximum(jnp.sum(weights), 1.0)
  return jax.tree.map(lambda s: s / norm, total)
