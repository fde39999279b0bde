"""Methods by name: each module has `method(loss_fn, example, config)`.

`METHODS[name] = (factory, config class)`. Some names are variants of one
module (`VARIANTS`: the base method and the switches that make the variant,
applied before a benchmark's values): C-MAML and Sync-La-MAML are La-MAML
with other update rules, EMCL-SI is EMCL with SI-style importance, Table IV's
ablations `emcl_gd` and `emcl_lr_modulation` are EMCL with another inner
loop, `ewc_online` is online EWC, and `joint` is fine-tuning on all tasks'
data shuffled into one stream (see `JOINT`). Every script takes every name.
"""

from emcl_jax.methods import agem
from emcl_jax.methods import emcl
from emcl_jax.methods import er
from emcl_jax.methods import ewc
from emcl_jax.methods import finetune
from emcl_jax.methods import gem
from emcl_jax.methods import lamaml
from emcl_jax.methods import mer
from emcl_jax.methods import si

METHODS = {
    'emcl': (emcl.method, emcl.EMCLConfig),
    'emcl_si': (emcl.method, emcl.EMCLConfig),
    'emcl_gd': (emcl.method, emcl.EMCLConfig),
    'emcl_lr_modulation': (emcl.method, emcl.EMCLConfig),
    'finetune': (finetune.method, finetune.FinetuneConfig),
    'joint': (finetune.method, finetune.FinetuneConfig),
    'lamaml': (lamaml.method, lamaml.LaMAMLConfig),
    'cmaml': (lamaml.method, lamaml.LaMAMLConfig),
    'sync': (lamaml.method, lamaml.LaMAMLConfig),
    'mer': (mer.method, mer.MERConfig),
    'gem': (gem.method, gem.GEMConfig),
    'agem': (agem.method, agem.AGEMConfig),
    'ewc': (ewc.method, ewc.EWCConfig),
    'ewc_online': (ewc.method, ewc.EWCConfig),
    'er': (er.method, er.ERConfig),
    'si': (si.method, si.SIConfig),
}

# name -> (base method, the switches that make the variant). A variant takes
# a benchmark's values for its base method unless the benchmark lists it.
VARIANTS = {
    'emcl_si': ('emcl', dict(importance='si')),
    'emcl_gd': ('emcl', dict(inner='gd')),
    'emcl_lr_modulation': ('emcl', dict(inner='lr_modulation')),
    'cmaml': ('lamaml', dict(learn_lr=False, sync_update=True)),
    'sync': ('lamaml', dict(sync_update=True)),
    'ewc_online': ('ewc', dict(online=True, ewc_gamma=0.9)),
    'joint': ('finetune', {}),
}

# Methods trained on one stream of every task's samples, shuffled together.
JOINT = ('joint',)

__all__ = ['JOINT', 'METHODS', 'VARIANTS', 'agem', 'emcl', 'er', 'ewc',
           'finetune', 'gem', 'lamaml', 'mer', 'si']
