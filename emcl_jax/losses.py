"""Loss functions in the form every method takes: loss_fn(params, batch, w).

Multi-head (class-split benchmarks): with a `class_mask` [T, C], sample i of
task batch.t[i] sees only its task's logits (the others are set to
`MASKED`), so the shared C-way layer acts as one head per task.
"""

from typing import Callable, Optional

import chex
import jax.numpy as jnp
import optax

from emcl_jax.base import Batch, LossFn


def weighted_mean(values: chex.Array, weights: chex.Array) -> chex.Array:
  """sum(w * v) / max(sum(w), 1): the mean over real (w = 1) samples."""
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


MASKED = -1e9  # logit of a class outside the sample's task


def mask_logits(logits: chex.Array, mask: Optional[chex.Array]) -> chex.Array:
  """Logits with the classes where `mask` is False set to `MASKED`; `mask`
  broadcasts against logits ([..., C]); None leaves them as they are."""
  if mask is None:
    return logits
  return jnp.where(mask, logits, MASKED)


def cross_entropy(apply_fn: Callable[[chex.ArrayTree, chex.Array], chex.Array],
                  class_mask: Optional[chex.Array] = None) -> LossFn:
  """Softmax cross-entropy of a model `apply_fn(params, x) -> logits`.

  Args:
    apply_fn: the model.
    class_mask: [T, C] bool, each task's classes (multi-head), or None.

  Returns:
    loss_fn(params, batch, weights), the weighted mean over samples.
  """
  table = None if class_mask is None else jnp.asarray(class_mask, bool)

  def loss_fn(params, batch: Batch, weights):
    logits = apply_fn(params, batch.x)
    if table is not None:
      logits = mask_logits(logits, table[batch.t])
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch.y)
    return weighted_mean(losses, weights)

  return loss_fn
