"""Methods by name: each module has `method(loss_fn, example, config)`.

`RECORDS[name]` is everything known about a name (`Record`: factory,
config class, label, variant switches); `METHODS[name] = (factory, config
class)` is its view. Some names are variants of one module (`VARIANTS`: the
base method and the switches that make the variant, applied before a
benchmark's values): C-MAML and Sync-La-MAML are La-MAML
with other update rules, EMCL-SI is EMCL with SI-style importance, Table IV's
ablations `emcl_gd` and `emcl_lr_modulation` are EMCL with another inner
loop, `ewc_online` is online EWC, and `joint` is fine-tuning on all tasks'
data shuffled into one stream (see `JOINT`). Every script takes every name.

The blocks the methods are built from live beside them: `memory` (the
reservoir replay memory), `stream` (the inner stream: the batch plus replay,
the per-sample scan), `projection` (GEM's and A-GEM's gradient
projections), `gem_qp` (GEM's dual QP) and `fisher` (EWC's Fisher).
"""

from typing import Any, Callable, Mapping, NamedTuple

from emcl_jax.methods import agem
from emcl_jax.methods import emcl
from emcl_jax.methods import er
from emcl_jax.methods import ewc
from emcl_jax.methods import finetune
from emcl_jax.methods import gem
from emcl_jax.methods import lamaml
from emcl_jax.methods import mer
from emcl_jax.methods import si


class Record(NamedTuple):
  """Everything the library knows about one method name; every registry
  (configs, the runner, tables and figures) reads these.

  Every method with a float field in its config joins a grid of settings
  (`training.grid.traceable` names the fields), so grid-ability needs no
  entry of its own.
  """
  factory: Callable[..., Any]  # method(loss_fn, example, config) -> Method
  config: type                 # its config class
  label: str                   # the display name, as the paper writes it
  base: str = ''               # a variant's base method ('' if none)
  switches: Mapping[str, Any] = {}  # the config values that make the variant
  joint: bool = False          # trained on every task's data in one stream


RECORDS = {
    'emcl': Record(emcl.method, emcl.EMCLConfig, 'EMCL'),
    'emcl_si': Record(emcl.method, emcl.EMCLConfig, 'EMCL-SI', 'emcl',
                      dict(importance='si')),
    'emcl_gd': Record(emcl.method, emcl.EMCLConfig, 'EMCL (GD)', 'emcl',
                      dict(inner='gd')),
    'emcl_lr_modulation': Record(emcl.method, emcl.EMCLConfig,
                                 'EMCL (LR mod.)', 'emcl',
                                 dict(inner='lr_modulation')),
    # The paper's EMCL as written: no episodic memory (Table II gives it
    # none), one meta-update per batch (the single pass, Algorithm 1), Eq 8
    # as its recursion alpha <- alpha r / h at every meta-update, bounded to
    # [0, 1] (unbounded it diverges, docs/algorithm.md #1) with h
    # mean-normalised so that r = 1 is neutral at average importance: an
    # important parameter's meta rate shrinks, an unimportant one's grows.
    # The benchmarks give it Table II's alpha0, beta, lambda, gamma.
    'emcl_paper': Record(emcl.method, emcl.EMCLConfig, 'EMCL (paper)',
                         'emcl', dict(memory_size=0, glances=1,
                                      meta_lr='bounded', meta_h_norm='mean',
                                      r=1.0, alpha_min=0.0, alpha_max=1.0)),
    'finetune': Record(finetune.method, finetune.FinetuneConfig, 'Fine-tune'),
    'joint': Record(finetune.method, finetune.FinetuneConfig, 'Joint',
                    'finetune', joint=True),
    'lamaml': Record(lamaml.method, lamaml.LaMAMLConfig, 'La-MAML'),
    'cmaml': Record(lamaml.method, lamaml.LaMAMLConfig, 'C-MAML', 'lamaml',
                    dict(learn_lr=False, sync_update=True)),
    'sync': Record(lamaml.method, lamaml.LaMAMLConfig, 'Sync-La-MAML',
                   'lamaml', dict(sync_update=True)),
    'mer': Record(mer.method, mer.MERConfig, 'MER'),
    'gem': Record(gem.method, gem.GEMConfig, 'GEM'),
    'agem': Record(agem.method, agem.AGEMConfig, 'A-GEM'),
    'ewc': Record(ewc.method, ewc.EWCConfig, 'EWC'),
    'ewc_online': Record(ewc.method, ewc.EWCConfig, 'Online EWC', 'ewc',
                         dict(online=True, ewc_gamma=0.9)),
    'er': Record(er.method, er.ERConfig, 'ER'),
    'si': Record(si.method, si.SIConfig, 'SI'),
}

# Views of RECORDS. METHODS[name] = (factory, config class).
METHODS = {name: (r.factory, r.config) for name, r in RECORDS.items()}
# name -> (base method, the switches that make the variant). A variant takes
# a benchmark's values for its base method, its switches over them, unless
# the benchmark lists it (its own values, over its switches).
VARIANTS = {name: (r.base, dict(r.switches)) for name, r in RECORDS.items()
            if r.base}
# Methods trained on one stream of every task's samples, shuffled together.
JOINT = tuple(name for name, r in RECORDS.items() if r.joint)


def label(name: str) -> str:
  """The display name of a method name (the name itself if unknown)."""
  record = RECORDS.get(name)
  return record.label if record else name


__all__ = ['JOINT', 'METHODS', 'RECORDS', 'Record', 'VARIANTS', 'label', 'agem', 'emcl', 'er', 'ewc',
           'finetune', 'gem', 'lamaml', 'mer', 'si']
