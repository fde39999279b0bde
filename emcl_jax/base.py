"""Shared types: a batch of samples and the (init, update) pair every method is.

Every continual-learning method in this library, EMCL and the baselines alike,
is a `Method`: a pair of pure functions in the style of optax's
`GradientTransformation`::

    state = method.init(params, key)
    state, metrics = method.update(state, batch, key)

`update` performs one step on one incoming batch of the stream (for EMCL, one
meta-update, Algorithm 1 lines 4-10). The training engine scans `update` over
a task's batches, so the same engine runs every method.
"""

import functools
from typing import Any, Callable, NamedTuple, Protocol

import chex
import jax.numpy as jnp


class Batch(NamedTuple):
  """Samples of the stream, with a leading sample axis.

  Attributes:
    x: inputs, [n, ...]; uint8 images or floats, as the loss function expects.
    y: integer class labels, [n].
    t: integer task identities, [n] (used by multi-head models; single-head
      models ignore it).
  """
  x: chex.Array
  y: chex.Array
  t: chex.Array


# loss_fn(params, batch, weights) -> scalar: the weighted mean loss of the
# samples of `batch` (weights [n], 1 for a real sample, 0 for padding).
LossFn = Callable[[chex.ArrayTree, Batch, chex.Array], chex.Array]


class InitFn(Protocol):

  def __call__(self, params: chex.ArrayTree, key: chex.PRNGKey) -> Any:
    """Builds the method's state around the model's initial parameters."""


class UpdateFn(Protocol):

  def __call__(self, state: Any, batch: Batch,
               key: chex.PRNGKey) -> tuple[Any, dict[str, chex.Array]]:
    """Consumes one batch of the stream; returns new state and scalar metrics."""


class Method(NamedTuple):
  """A continual-learning method: pure `init` and `update` functions.

  `params_of(state)` returns the model parameters to evaluate with, so the
  engine never needs to know the layout of a method's state.
  """
  init: InitFn
  update: UpdateFn
  params_of: Callable[[Any], chex.ArrayTree]


def take(batch: Batch, i) -> Batch:
  """Sample(s) `i` of `batch`, keeping the leading axis (i is an index array
  or a slice)."""
  return Batch(batch.x[i], batch.y[i], batch.t[i])


def concat(a: Batch, b: Batch) -> Batch:
  """Concatenates two batches along the sample axis."""
  return Batch(*(jnp.concatenate([u, v.astype(u.dtype)]) for u, v in zip(a, b)))


def bind(init_fn: Callable[..., Any], update_fn: Callable[..., Any],
         loss_fn: LossFn, example: Batch, config: Any) -> Method:
  """The `Method` of a module's `init(params, example, config)` and
  `update(state, batch, key, *, loss_fn, config)`, for a state whose
  `.params` are the model's parameters.

  `config` is used as it is: its values were checked where they entered,
  by its class's `validate` (`configs.resolve` calls it for every run), and
  its float fields may be traced scalars (a grid of settings,
  `training.grid`), which no Python check could read.
  """
  return Method(
      init=lambda params, key: init_fn(params, example, config),
      update=functools.partial(update_fn, loss_fn=loss_fn, config=config),
      params_of=lambda state: state.params)
