"""The paper's pieces, each a pure function over parameter pytrees.

  inner       the PGD inner step (Eq 16, 18, 21)
  importance  the Taylor importance h (Eq 7, 13)
  meta_grad   the closed-form meta-gradient (Eq 10)
  transforms  the per-parameter meta learning rates (Eq 8) as optax
              transformations

`emcl_jax.methods.emcl` assembles them into Algorithm 1.
"""

from emcl_jax.equations import importance
from emcl_jax.equations import inner
from emcl_jax.equations import meta_grad
from emcl_jax.equations import transforms

__all__ = ['importance', 'inner', 'meta_grad', 'transforms']
