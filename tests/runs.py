"""Test helpers: a run config from short keyword arguments, and the
library's run functions called with it (`emcl_jax.configs`,
`emcl_jax.experiment`)."""

from typing import Any, Optional, Sequence

from emcl_jax import configs
from emcl_jax import experiment

# Keyword -> config path.
PATHS = {
    'num_tasks': 'data.num_tasks', 'samples_per_task': 'data.samples_per_task',
    'data_source': 'data.source', 'data_dir': 'data.dir',
    'class_order': 'data.class_order', 'model': 'model.name',
    'norm': 'model.norm', 'batch_size': 'protocol.batch_size',
    'epochs': 'protocol.epochs', 'eval_mode': 'protocol.eval',
    'name': 'output.name', 'overlap_eval': 'output.overlap_eval',
}


def config(dataset: str = 'mnist_permutations', method: str = 'emcl',
           seeds: Sequence[int] = (0,), *,
           overrides: Optional[dict[str, Any]] = None,
           **settings: Any) -> configs.RunConfig:
  """The run of `method` on `dataset` for consecutive `seeds`; `overrides`
  are method fields ({'beta': 0.05}), `settings` keywords of `PATHS`."""
  seeds = list(seeds)
  assert seeds == list(range(seeds[0], seeds[0] + len(seeds))), seeds
  values = {'seed': seeds[0], 'seeds': len(seeds)}
  values.update({PATHS[k]: v for k, v in settings.items() if v is not None})
  values.update({f'method.{k}': v for k, v in (overrides or {}).items()})
  return configs.get_config(dataset, method, values)


def _split(kw):
  lib = {k: kw.pop(k) for k in ('tasks', 'model_fn', 'record_fn', 'batch_fn',
                                'checkpoint_dir', 'resume', 'shard')
         if k in kw}
  return lib, kw


def run(dataset: str = 'mnist_permutations', method: str = 'emcl',
        seed: int = 0, **kw) -> dict[str, Any]:
  """The results of one seed (`experiment.run`)."""
  lib, kw = _split(kw)
  return experiment.run(config(dataset, method, (seed,), **kw), **lib)[0]


def run_seeds(dataset: str, method: str, seeds: Sequence[int],
              **kw) -> list[dict[str, Any]]:
  """The results of seeds run as one vmapped program."""
  lib, kw = _split(kw)
  return experiment.run(config(dataset, method, seeds, **kw), together=True,
                        **lib)


def setup(dataset: str = 'mnist_permutations', method: str = 'emcl',
          seed: int = 0, **kw) -> experiment.Setup:
  """`experiment.setup` of one seed."""
  lib, kw = _split(kw)
  return experiment.setup(configs.resolve(config(dataset, method, (seed,),
                                                 **kw)), seed, **lib)
