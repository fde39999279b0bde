"""Flax models. The MNIST benchmarks use the MLP of MER and La-MAML."""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
  """Fully connected ReLU network, 784-100-100-10 by default (Section V).

  Inputs are uint8 pixels or floats; uint8 is scaled to [0, 1] here, on
  device, inside the jitted step. Single head: one shared classifier.
  """
  hidden: Sequence[int] = (100, 100)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    if x.dtype == jnp.uint8:
      x = x.astype(jnp.float32) / 255.0
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_classes)(x)
