"""Methods by name: each module has `method(loss_fn, example, config)`."""

from emcl_jax.methods import emcl
from emcl_jax.methods import finetune

# name -> (factory, config class)
METHODS = {
    'emcl': (emcl.method, emcl.EMCLConfig),
    'finetune': (finetune.method, finetune.FinetuneConfig),
}

__all__ = ['METHODS', 'emcl', 'finetune']
