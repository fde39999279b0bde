"""Test helpers: a run config from config paths, and the library's run
functions called with it (`emcl_jax.configs`, `emcl_jax.runner`).

Settings have one spelling, their config path, as on the command line
(`--config.data.num_tasks=2`): `overrides={'data.num_tasks': 2,
'method.beta': 0.05}`."""

from typing import Any, Optional, Sequence

from emcl_jax import configs
from emcl_jax import runner


def config(dataset: str = 'mnist_permutations', method: str = 'emcl',
           seeds: Sequence[int] = (0,),
           overrides: Optional[dict[str, Any]] = None) -> configs.RunConfig:
  """The run of `method` on `dataset` for consecutive `seeds`, with
  `overrides` ({config path: value})."""
  seeds = list(seeds)
  assert seeds == list(range(seeds[0], seeds[0] + len(seeds))), seeds
  return configs.get_config(dataset, method, {
      'seed': seeds[0], 'seeds': len(seeds), **(overrides or {})})


def run(dataset: str = 'mnist_permutations', method: str = 'emcl',
        seed: int = 0, overrides: Optional[dict[str, Any]] = None,
        **kw) -> dict[str, Any]:
  """The results of one seed (`runner.run`, given `kw`: tasks,
  checkpoint_dir, resume, record_fn, ...)."""
  return runner.run(config(dataset, method, (seed,), overrides), **kw)[0]


def run_seeds(dataset: str, method: str, seeds: Sequence[int],
              overrides: Optional[dict[str, Any]] = None,
              **kw) -> list[dict[str, Any]]:
  """The results of seeds run as one vmapped program."""
  return runner.run(config(dataset, method, seeds, overrides),
                        together=True, **kw)


def setup(dataset: str = 'mnist_permutations', method: str = 'emcl',
          seed: int = 0, overrides: Optional[dict[str, Any]] = None,
          **kw) -> runner.Setup:
  """`runner.setup` of one seed (given `kw`: model_fn, tasks, ...)."""
  return runner.setup(
      configs.resolve(config(dataset, method, (seed,), overrides)), seed, **kw)
