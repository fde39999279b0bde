"""Loss functions in the form every method takes: loss_fn(params, batch, w)."""

from typing import Callable

import chex
import jax.numpy as jnp
import optax

from emcl_jax.base import Batch, LossFn


def weighted_mean(values: chex.Array, weights: chex.Array) -> chex.Array:
  """sum(w * v) / max(sum(w), 1): the mean over real (w = 1) samples."""
  return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def cross_entropy(apply_fn: Callable[[chex.ArrayTree, chex.Array], chex.Array]
                 ) -> LossFn:
  """Softmax cross-entropy of a model `apply_fn(params, x) -> logits`.

  Args:
    apply_fn: the model.

  Returns:
    loss_fn(params, batch, weights), the weighted mean over samples.
  """

  def loss_fn(params, batch: Batch, weights):
    logits = apply_fn(params, batch.x)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch.y)
    return weighted_mean(losses, weights)

  return loss_fn
