"""emcl_jax: fast, functional meta-continual learning in JAX.

The core is EMCL (Zou & Lin, "Efficient Meta-Learning for Continual Learning
with Taylor Expansion Approximation"). The public API:

  emcl_jax.init(params, example_batch, config) -> EMCLState
  emcl_jax.update(state, batch, key, loss_fn=..., config=...) -> (state, metrics)

and the pure pieces it is made of, in `emcl_jax.equations`: `inner` (Eq 16, 18,
21), `importance` (Eq 7, 13), `meta_grad` (Eq 10), `transforms` (Eq 8 as an
optax transformation); in `emcl_jax.methods`: `memory` (reservoir replay);
in `emcl_jax.training`: `engine` (scanned training); in
`emcl_jax.reporting`: `metrics` (Eq 22, 23). Each stays importable as
`emcl_jax.<name>`.

The packages, each importing only those listed before it:
`base`, `errors`, `files`, `trees`, `clipping`, `losses`, `patch_conv`,
`models`, `data` (foundations) < `equations` (the paper) < `methods` (the
algorithms and their building blocks: replay memory, inner stream) <
`training` (the engine that runs any method) < `configs` (a run as one
typed config) < `reporting` < `runner` (`sweep(run_configs, workdir)`: the
one entry of a run) < `launch` (the command-line scripts).
`emcl_jax.configs` and `emcl_jax.runner` load on first use.
"""

from emcl_jax.base import Batch, Method
from emcl_jax.equations import importance
from emcl_jax.equations import inner
from emcl_jax.equations import meta_grad
from emcl_jax.equations import transforms
from emcl_jax.equations.transforms import meta_learning_rate, scale_by_importance
from emcl_jax.methods import memory
from emcl_jax.methods.emcl import EMCLConfig, EMCLState, init, update
from emcl_jax.reporting import metrics
from emcl_jax.training import engine
from emcl_jax.version import __version__



def __getattr__(name):
  # The run-level packages load on first use: `import emcl_jax` stays the
  # paper's pure functions.
  if name in ('configs', 'runner'):
    import importlib  # pylint: disable=g-import-not-at-top
    return importlib.import_module(f'emcl_jax.{name}')
  raise AttributeError(f'module emcl_jax has no attribute {name!r}')


__all__ = [
    'Batch', 'EMCLConfig', 'EMCLState', 'Method', '__version__', 'engine',
    'importance', 'init', 'inner', 'memory', 'meta_grad', 'meta_learning_rate',
    'metrics', 'scale_by_importance', 'transforms', 'update',
]
