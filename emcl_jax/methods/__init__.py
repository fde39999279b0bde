"""Methods by name: each module has `method(loss_fn, example, config)`.

`METHODS[name] = (factory, config class)`. Some names are variants of one
module with other defaults (`VARIANTS`, applied before Table II's values):
C-MAML and Sync-La-MAML are La-MAML with other update rules, EMCL-SI is EMCL
with SI-style importance, and `joint` is fine-tuning on all tasks' data
shuffled into one stream (see `JOINT`).
"""

from emcl_jax.methods import emcl
from emcl_jax.methods import finetune
from emcl_jax.methods import lamaml

METHODS = {
    'emcl': (emcl.method, emcl.EMCLConfig),
    'emcl_si': (emcl.method, emcl.EMCLConfig),
    'finetune': (finetune.method, finetune.FinetuneConfig),
    'joint': (finetune.method, finetune.FinetuneConfig),
    'lamaml': (lamaml.method, lamaml.LaMAMLConfig),
    'cmaml': (lamaml.method, lamaml.LaMAMLConfig),
    'sync': (lamaml.method, lamaml.LaMAMLConfig),
}

# name -> defaults that make the variant (before Table II and overrides).
VARIANTS = {
    'emcl_si': dict(importance='si'),
    'cmaml': dict(learn_lr=False, sync_update=True),
    'sync': dict(sync_update=True),
}

# Methods trained on one stream of every task's samples, shuffled together.
JOINT = ('joint',)

__all__ = ['JOINT', 'METHODS', 'VARIANTS', 'emcl', 'finetune', 'lamaml']
